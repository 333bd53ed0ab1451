/**
 * The xDS resources the tests serve, in proto-loader's JSON form
 * (testing/ads_server.ts): a Listener whose route config is inline, a
 * Cluster whose `load_balancing_policy` lists policies (gRFC A52), and a
 * ClusterLoadAssignment by priority. docs/xds.md shows them as JSON.
 *
 * @module
 */
import { type Resource, TYPE } from "./ads_server.ts";

/** One entry of a Cluster's `load_balancing_policy.policies`. */
export type Policy = Record<string, unknown>;

/** A Listener for `xds:///${name}`, routing every RPC to `cluster`. */
export function listener(name: string, cluster: string): Resource {
  return {
    "@type": TYPE.listener,
    name,
    api_listener: {
      api_listener: {
        "@type":
          "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        route_config: {
          name: `${name}-route`,
          virtual_hosts: [{
            name: `${name}-host`,
            domains: ["*"],
            routes: [{ match: { prefix: "" }, route: { cluster } }],
          }],
        },
        http_filters: [{
          name: "router",
          typed_config: {
            "@type":
              "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
          },
        }],
      },
    },
  };
}

/**
 * A policy named by an `xds.type.v3.TypedStruct`: `name` is the policy's
 * registered name, `config` its config, each number a Struct's double.
 */
export function typedStructPolicy(
  name: string,
  config: Record<string, number | string>,
): Policy {
  const fields = Object.fromEntries(
    Object.entries(config).map(([key, value]) => [
      key,
      typeof value === "number" ? { numberValue: value } : {
        stringValue: value,
      },
    ]),
  );
  return {
    typed_extension_config: {
      name,
      typed_config: {
        "@type": "type.googleapis.com/xds.type.v3.TypedStruct",
        type_url: `type.googleapis.com/${name}`,
        value: { fields },
      },
    },
  };
}

/** `custom_round_robin` with `chooseSecond`, as a control plane names it. */
export function customRoundRobin(chooseSecond: number | string): Policy {
  return typedStructPolicy("custom_round_robin", { chooseSecond });
}

/** Envoy's round_robin extension, which grpc-js-xds maps to round_robin. */
export function roundRobin(): Policy {
  return {
    typed_extension_config: {
      name: "round_robin",
      typed_config: {
        "@type":
          "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin",
      },
    },
  };
}

/** An EDS cluster whose endpoints come over ADS, with `policies` in order. */
export function cluster(
  name: string,
  policies: readonly Policy[],
  extra: Record<string, unknown> = {},
): Resource {
  return {
    "@type": TYPE.cluster,
    name,
    type: "EDS",
    eds_cluster_config: { eds_config: { ads: {} }, service_name: name },
    load_balancing_policy: { policies },
    ...extra,
  };
}

/** One endpoint: its `host:port`, and its health as EDS says it. */
export interface Endpoint {
  readonly address: string;
  readonly health?: "HEALTHY" | "UNHEALTHY" | "DRAINING" | "UNKNOWN";
}

/**
 * The endpoints of `cluster`: `priorities[i]` are those of priority `i`,
 * in one locality each.
 */
export function endpoints(
  cluster: string,
  priorities: readonly (readonly (string | Endpoint)[])[],
): Resource {
  return {
    "@type": TYPE.endpoints,
    cluster_name: cluster,
    endpoints: priorities.map((list, priority) => ({
      locality: { region: "test", zone: `zone-${priority}` },
      load_balancing_weight: { value: 1 },
      priority,
      lb_endpoints: list.map((given) => {
        const { address, health = "HEALTHY" } = typeof given === "string"
          ? { address: given }
          : given;
        const [host, port] = address.split(":");
        return {
          endpoint: {
            address: {
              socket_address: { address: host, port_value: Number(port) },
            },
          },
          health_status: health,
        };
      }),
    })),
  };
}
