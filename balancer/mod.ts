/**
 * `custom_round_robin`: a custom client-side load-balancing policy for
 * `@grpc/grpc-js`. Of every `chooseSecond` RPCs, one goes to the second
 * endpoint and the rest to the first.
 *
 * It is built on {@linkcode EndpointSharding}, a load balancer that keeps one
 * child policy per endpoint (pick_first by default), and only decides which
 * child's picker serves each RPC. Register it before creating a channel, and
 * check the service config with {@linkcode checkServiceConfig}, so that a
 * mistake is an error rather than grpc-js's silent fallback to pick_first. A
 * `healthCheckConfig` in the service config turns on client-side health
 * checking (gRFC A17).
 *
 * A second policy, `least_request_experimental` (gRFC A48), sends each RPC
 * to the least loaded of a few READY endpoints sampled at random; a third,
 * `ring_hash_experimental` (gRFCs A42 and A76), sends every RPC of one key,
 * a request header's value, to the same endpoint.
 *
 * Each register function changes only what its name says:
 * {@linkcode registerCustomRoundRobin}, {@linkcode registerLeastRequest} and
 * {@linkcode registerRingHash} register their policies;
 * {@linkcode registerDnsHealthCheckConfig} puts a wrapper in the place of
 * grpc-js's `dns` resolver that passes on a `healthCheckConfig` from a DNS
 * TXT service config, which grpc-js alone drops;
 * {@linkcode registerEtcdResolver} registers the `etcd` scheme
 * (`etcd:///PREFIX`, grpc-go's naming format); {@linkcode registerXds}
 * loads `@grpc/grpc-js-xds` and registers `xds`. A {@linkcode ManualResolver}
 * registers its own scheme.
 *
 * Metrics go through `@opentelemetry/api` once an application installs an
 * OpenTelemetry SDK: the policies' picks, endpoints per state, connections
 * (gRFC A94) and health changes, and, by {@linkcode callMetricsInterceptor}
 * and {@linkcode serverCallMetricsInterceptor}, the call durations of gRFC
 * A66 (see `docs/metrics.md`).
 *
 * The layers the policies are built on are exported for writing others
 * (see `docs/writing_a_policy.md`): {@linkcode definePolicy}, the one way
 * to make a policy on the block; {@linkcode EndpointSharding} itself, the
 * {@linkcode ShardedPolicy} a policy hands it and the
 * {@linkcode ShardingObserver} that watches it ({@linkcode metricsObserver}
 * is the one metrics use); and {@linkcode healthCheckingHelper}, which adds
 * health checking to any child policy, with the
 * {@linkcode HealthCheckingSubchannel} and
 * {@linkcode HealthCheckUnwrappingPicker} it is made of. Their API is
 * grpc-js's `experimental` one. Programs that write backends to etcd have
 * the entry `@customlb/custom-round-robin/etcd`.
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
  DEFAULT_CHOICE_COUNT,
  LEAST_REQUEST,
  MAX_CHOICE_COUNT,
  registerLeastRequest,
} from "./least_request.ts";
export {
  DEFAULT_MAX_RING_SIZE,
  DEFAULT_MIN_RING_SIZE,
  MAX_RING_SIZE,
  registerRingHash,
  RING_HASH,
  RING_SIZE_CAP,
  type RingHashEndpoint,
} from "./ring_hash.ts";
export {
  type ChildObserver,
  type ChildState,
  EndpointSharding,
  type ObserverSource,
  type PolicyState,
  type ShardedPolicy,
  type ShardingObserver,
} from "./endpoint_sharding.ts";
export {
  type DefinedPolicy,
  definePolicy,
  type PolicyConfig,
  type PolicyDefinition,
} from "./define_policy.ts";
export {
  healthCheckingHelper,
  HealthCheckingSubchannel,
  HealthCheckUnwrappingPicker,
} from "./health_check.ts";
export { checkServiceConfig } from "./service_config.ts";
export {
  callMetricsInterceptor,
  METER_NAME,
  METRICS_TARGET,
  metricsObserver,
  serverCallMetricsInterceptor,
} from "./metrics.ts";
export {
  type Clock,
  ManualResolver,
  type NamedEndpoint,
  type ResolverState,
} from "./discovery/manual_resolver.ts";
export { registerDnsHealthCheckConfig } from "./discovery/dns_health_check.ts";
export type { EtcdAccess } from "./discovery/etcd_naming.ts";
export {
  ETCD_ENDPOINTS,
  type EtcdResolverOptions,
  registerEtcdResolver,
} from "./discovery/etcd_resolver.ts";
export { registerXds } from "./discovery/xds.ts";
