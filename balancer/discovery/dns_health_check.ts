/**
 * grpc-js's `dns` resolver, passing on the `healthCheckConfig` of a service
 * config published in DNS.
 *
 * gRFC A17 takes the health-check service name from the service config,
 * whichever resolver supplies it. grpc-js's DNS resolver reads a service
 * config from the name's TXT record (`grpc_config=[...]`), but its check of
 * the config keeps only the fields grpc-js knows, and `healthCheckConfig` is
 * not one of them: it never reaches a balancer. This wrapper looks up the
 * same TXT record, picks the same choice grpc-js picks, and hands its
 * `healthCheckConfig.serviceName` on as the
 * {@linkcode HEALTH_CHECK_SERVICE_NAME} attribute, which the balancer reads
 * ahead of the channel's default config. Addresses, the load-balancing
 * config and method configs still come from grpc-js's resolver itself.
 *
 * @module
 */
import { Resolver as DnsClient, resolveTxt } from "node:dns/promises";
import { isIP } from "node:net";
import process from "node:process";
import { type ChannelOptions, experimental } from "@grpc/grpc-js";
import { TxtHealthCheckResolver } from "./_txt_health_check.ts";

type ResolverListener = experimental.ResolverListener;
type ResolverClass =
  & (new (
    target: experimental.GrpcUri,
    listener: ResolverListener,
    options: ChannelOptions,
  ) => experimental.Resolver)
  & {
    getDefaultAuthority(target: experimental.GrpcUri): string;
  };

/** Looks up `host`'s TXT records at the target's DNS server, as grpc-js does. */
function txtLookup(
  target: experimental.GrpcUri,
  host: string,
): () => Promise<string[][]> {
  // grpc-js asks the target's DNS server only with its alternative resolver.
  if (
    process.env.GRPC_NODE_USE_ALTERNATIVE_RESOLVER === "true" &&
    target.authority
  ) {
    const client = new DnsClient();
    client.setServers([target.authority]);
    return () => client.resolveTxt(host);
  }
  return () => resolveTxt(host);
}

/** grpc-js's own `dns` resolver class, once {@linkcode registerDnsHealthCheckConfig} ran. */
let grpcDnsResolver: ResolverClass | null = null;

/** The `dns` resolver as registered: grpc-js's, wrapped. */
class HealthCheckingDnsResolver extends TxtHealthCheckResolver {
  constructor(
    target: experimental.GrpcUri,
    listener: ResolverListener,
    options: ChannelOptions,
  ) {
    const host = experimental.splitHostPort(target.path)?.host;
    super(
      listener,
      (inner) => new grpcDnsResolver!(target, inner, options),
      options["grpc.service_config_disable_resolution"] === 1 ||
        host === undefined || isIP(host) !== 0
        ? null
        : txtLookup(target, host),
    );
  }

  static getDefaultAuthority(target: experimental.GrpcUri): string {
    return grpcDnsResolver!.getDefaultAuthority(target);
  }
}

/**
 * Puts the wrapper in the place of grpc-js's `dns` resolver, for every
 * channel of the process created afterwards: `dns:` targets then resolve as
 * before, and a `healthCheckConfig` in their TXT service config turns on
 * health checking. Once; later calls do nothing.
 *
 * @example Health checking from a service config in DNS
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 * import { registerCustomRoundRobin } from "../custom_round_robin.ts";
 *
 * registerCustomRoundRobin();
 * registerDnsHealthCheckConfig();
 * // backends.internal's TXT record: grpc_config=[{"serviceConfig":
 * //   {"loadBalancingConfig":[{"custom_round_robin":{}}],
 * //    "healthCheckConfig":{"serviceName":"grpc.examples.echo.Echo"}}}]
 * const client = new grpc.Client(
 *   "dns:///backends.internal:50051",
 *   grpc.credentials.createInsecure(),
 * );
 * client.close();
 * ```
 */
export function registerDnsHealthCheckConfig(): void {
  if (grpcDnsResolver !== null) return;
  // grpc-js exports no name for its DNS resolver; one made for a name that
  // is never resolved gives its class.
  const probe = experimental.createResolver(
    { scheme: "dns", path: "localhost" },
    () => true,
    {},
  );
  grpcDnsResolver = probe.constructor as ResolverClass;
  probe.destroy();
  experimental.registerResolver("dns", HealthCheckingDnsResolver);
}
