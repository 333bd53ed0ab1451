/**
 * `custom_round_robin`: a custom client-side load-balancing policy for
 * `@grpc/grpc-js`. Of every `chooseSecond` RPCs, one goes to the second
 * endpoint and the rest to the first.
 *
 * It is a delegating policy: {@linkcode EndpointSharding} keeps one
 * pick_first child per endpoint, and the policy only decides which child's
 * picker serves each RPC. Register it before creating a channel, and check
 * the service config with {@linkcode parseServiceConfig}, so that a mistake
 * is an error rather than grpc-js's silent fallback to pick_first.
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 * import { ManualResolver, parseServiceConfig, registerCustomRoundRobin } from "./balancer/mod.ts";
 *
 * registerCustomRoundRobin();
 * const serviceConfig = {
 *   loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 3 } }],
 * };
 * parseServiceConfig(serviceConfig); // throws on a bad config
 * new ManualResolver("example", {
 *   endpoints: ["localhost:50050", "localhost:50051"],
 *   serviceConfig,
 * }).register();
 * const client = new grpc.Client("example:///echo", grpc.credentials.createInsecure());
 * ```
 *
 * @module
 */
export {
  CUSTOM_ROUND_ROBIN,
  CustomRoundRobinConfig,
  CustomRoundRobinLoadBalancer,
  CustomRoundRobinPicker,
  DEFAULT_CHOOSE_SECOND,
  MAX_CHOOSE_SECOND,
  registerCustomRoundRobin,
} from "./custom_round_robin.ts";
export {
  aggregateState,
  type ChildState,
  type ChildStatesListener,
  EndpointSharding,
} from "./endpoint_sharding.ts";
export {
  HEALTH_CHECK_SERVICE_NAME,
  HealthCheckingSubchannel,
  healthCheckServiceName,
  healthCheckServiceNameOf,
} from "./health_check.ts";
export {
  ManualResolver,
  MIN_RERESOLUTION_INTERVAL_MS,
  type ResolverState,
} from "./manual_resolver.ts";
export { parseServiceConfig } from "./service_config.ts";
