/**
 * A test fixture, not a control plane: a small state-of-the-world
 * Aggregated Discovery Service (LDS, CDS, EDS) on grpc-js and proto-loader,
 * with the Envoy and xds protos that `@grpc/grpc-js-xds` ships. It serves the
 * resources a test sets, pushes every change to each client subscribed to
 * its type, and records the ACK or NACK of each response. Users run a real
 * control plane (docs/xds.md).
 *
 * Resources are plain objects in proto-loader's JSON form: an `Any` is an
 * object with an `@type`, which proto-loader encodes by that type.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ANY_PORT } from "./ports.ts";

/** The type URL of each resource type served. */
export const TYPE = {
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoints:
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
} as const;

type TypeUrl = typeof TYPE[keyof typeof TYPE];

/** A resource in proto-loader's JSON form, `@type` included. */
export type Resource = { "@type": TypeUrl } & Record<string, unknown>;

/** What a client said of one response. */
export interface Reply {
  readonly typeUrl: string;
  /** The version it answered. */
  readonly version: string;
  /** The NACK's `error_detail.message`, or `null` for an ACK. */
  readonly error: string | null;
}

const DEPS = fileURLToPath(
  import.meta.resolve("@grpc/grpc-js-xds").replace(
    /build\/src\/index\.js$/,
    "deps/",
  ),
);

function loadAds(): grpc.GrpcObject {
  const definition = protoLoader.loadSync([
    "envoy/service/discovery/v3/ads.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto",
    "xds/type/v3/typed_struct.proto",
  ], {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    json: true,
    includeDirs: ["envoy-api", "xds", "googleapis", "protoc-gen-validate"]
      .map((dir) => DEPS + dir),
  });
  return grpc.loadPackageDefinition(definition);
}

type DiscoveryRequest = {
  type_url: string;
  version_info: string;
  response_nonce: string;
  resource_names: string[];
  error_detail: { message: string } | null;
};
type Stream = grpc.ServerDuplexStream<DiscoveryRequest, unknown>;

/** One client's stream: what it subscribed to, per type. */
interface Subscriber {
  readonly stream: Stream;
  readonly names: Map<string, Set<string>>;
}

/** The ADS server: resources by type and name, each type's version. */
export class AdsServer {
  readonly #resources = new Map<string, Map<string, Resource>>();
  readonly #versions = new Map<string, number>();
  readonly #subscribers = new Set<Subscriber>();
  #server: grpc.Server | null = null;
  #port = 0;
  /** Every ACK and NACK, in order. */
  readonly replies: Reply[] = [];

  /** Starts serving on loopback; again on the same port after {@linkcode stop}. */
  async start(): Promise<void> {
    const server = new grpc.Server();
    const ads = loadAds() as unknown as {
      envoy: {
        service: {
          discovery: {
            v3: {
              AggregatedDiscoveryService: { service: grpc.ServiceDefinition };
            };
          };
        };
      };
    };
    server.addService(
      ads.envoy.service.discovery.v3.AggregatedDiscoveryService.service,
      {
        StreamAggregatedResources: (stream: Stream) => this.#serve(stream),
      },
    );
    const address = this.#port === 0 ? ANY_PORT : `127.0.0.1:${this.#port}`;
    this.#port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        address,
        grpc.ServerCredentials.createInsecure(),
        (error, port) => error ? reject(error) : resolve(port),
      )
    );
    this.#server = server;
  }

  /** Stops at once, dropping every stream, as a control plane that dies. */
  stop(): void {
    this.#server?.forceShutdown();
    this.#server = null;
    this.#subscribers.clear();
  }

  /** A bootstrap for `GRPC_XDS_BOOTSTRAP_CONFIG`, naming this server. */
  bootstrap(): string {
    return JSON.stringify({
      xds_servers: [{
        server_uri: `127.0.0.1:${this.#port}`,
        channel_creds: [{ type: "insecure" }],
        server_features: ["xds_v3"],
      }],
      node: { id: "customlb-test", locality: {} },
    });
  }

  /** Sets `resource` under `name` and pushes its type to every subscriber. */
  set(name: string, resource: Resource): void {
    const type = resource["@type"];
    const byName = this.#resources.get(type) ?? new Map<string, Resource>();
    byName.set(name, resource);
    this.#resources.set(type, byName);
    this.#versions.set(type, (this.#versions.get(type) ?? 0) + 1);
    for (const subscriber of this.#subscribers) this.#send(subscriber, type);
  }

  /** The version of `type` the server serves now, as a client answers it. */
  version(type: TypeUrl): string {
    return String(this.#versions.get(type) ?? 0);
  }

  #serve(stream: Stream): void {
    const subscriber: Subscriber = { stream, names: new Map() };
    this.#subscribers.add(subscriber);
    stream.on("data", (request: DiscoveryRequest) => {
      if (request.response_nonce !== "") {
        this.replies.push({
          typeUrl: request.type_url,
          version: request.version_info,
          error: request.error_detail?.message ?? null,
        });
      }
      const before = subscriber.names.get(request.type_url);
      const names = new Set(request.resource_names);
      subscriber.names.set(request.type_url, names);
      const changed = before === undefined || before.size !== names.size ||
        [...names].some((name) => !before.has(name));
      // A NACK or an ACK of what is current asks for nothing new.
      if (changed) this.#send(subscriber, request.type_url);
    });
    stream.on("error", () => this.#subscribers.delete(subscriber));
    stream.on("end", () => {
      this.#subscribers.delete(subscriber);
      stream.end();
    });
  }

  /** Sends `subscriber` every resource of `type` it subscribed to. */
  #send(subscriber: Subscriber, type: string): void {
    const names = subscriber.names.get(type);
    if (names === undefined) return;
    const byName = this.#resources.get(type) ?? new Map();
    const version = String(this.#versions.get(type) ?? 0);
    subscriber.stream.write({
      type_url: type,
      version_info: version,
      nonce: `${type}/${version}`,
      resources: [...names].filter((name) => byName.has(name))
        .map((name) => byName.get(name)),
    });
  }
}
