/**
 * `custom_round_robin`: a custom client-side load-balancing policy for
 * `@grpc/grpc-js`. Of every `chooseSecond` RPCs, one goes to the second
 * endpoint and the rest to the first.
 *
 * It is a delegating policy: it keeps one pick_first child per endpoint and
 * only decides which child's picker serves each RPC. Register it before
 * creating a channel, and check the service config with
 * {@linkcode checkServiceConfig}, so that a mistake is an error rather than
 * grpc-js's silent fallback to pick_first. A `healthCheckConfig` in the
 * service config turns on client-side health checking (gRFC A17).
 *
 * The layers it is built on are exported for writing other policies (see
 * `docs/writing_a_policy.md`): {@linkcode EndpointSharding} keeps one
 * pick_first child per endpoint, with health checking when the channel asks
 * for it, and hands a parent policy each child's state and picker;
 * {@linkcode HealthCheckingSubchannel} and {@linkcode HealthCheckUnwrappingPicker}
 * add health checking to the subchannels of any child policy. Their API is
 * grpc-js's `experimental` one.
 *
 * {@linkcode registerCustomRoundRobin} also replaces grpc-js's `dns` resolver
 * for every channel of the process with a wrapper that passes a
 * `healthCheckConfig` from a DNS TXT service config on, which grpc-js alone
 * drops; addresses and everything else resolve as before. It also
 * registers the `etcd` scheme ({@linkcode registerEtcdResolver}): an
 * `etcd:///PREFIX` target reaches the backends registered in etcd under
 * `PREFIX/`, in grpc-go's naming format, and follows their changes.
 *
 * @example Two backends through the policy, with health checking
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 *
 * registerCustomRoundRobin();
 * const serviceConfig = {
 *   loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 3 } }],
 *   healthCheckConfig: { serviceName: "grpc.examples.echo.Echo" },
 * };
 * checkServiceConfig(serviceConfig); // throws on a mistake
 * new ManualResolver("example", {
 *   endpoints: ["localhost:50050", "localhost:50051"],
 *   serviceConfig,
 * }).register();
 * const client = new grpc.Client(
 *   "example:///echo",
 *   grpc.credentials.createInsecure(),
 * );
 * client.close();
 * ```
 *
 * @module
 */
export {
  CUSTOM_ROUND_ROBIN,
  DEFAULT_CHOOSE_SECOND,
  MAX_CHOOSE_SECOND,
  registerCustomRoundRobin,
} from "./custom_round_robin.ts";
export {
  type ChildState,
  EndpointSharding,
  type PolicyState,
  type ShardedPolicy,
} from "./endpoint_sharding.ts";
export {
  DEFAULT_ETCD_ENDPOINTS,
  type EtcdAccess,
  parseEtcdEndpoints,
} from "./discovery/etcd_naming.ts";
export {
  ETCD_ENDPOINTS,
  registerEtcdResolver,
} from "./discovery/etcd_resolver.ts";
export { registerXds } from "./discovery/xds.ts";
export { registerDnsHealthCheckConfig } from "./discovery/dns_health_check.ts";
export {
  HealthCheckingSubchannel,
  healthCheckServiceFromOptions,
  HealthCheckUnwrappingPicker,
} from "./health_check.ts";
export {
  type Clock,
  ManualResolver,
  type ResolverState,
} from "./discovery/manual_resolver.ts";
export { checkServiceConfig } from "./service_config.ts";
