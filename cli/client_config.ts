/**
 * The client's channel settings, for the client and for every test and
 * benchmark that must behave as it does: its channel options, its service
 * config, and that config under grpc-js's `outlier_detection`.
 *
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import {
  callMetricsInterceptor,
  CUSTOM_ROUND_ROBIN,
  LEAST_REQUEST,
  METRICS_TARGET,
  RING_HASH,
} from "../balancer/mod.ts";
import { ECHO_SERVICE_NAME } from "../echo/mod.ts";

/**
 * The channel options the client uses, tuned for a demo on one machine:
 *
 * - reconnect backoff from 100 ms up to 1 s (grpc-js: 1 s up to 120 s), so a
 *   restarted backend is back in use within about a second;
 * - a keepalive ping every second, answered within a second, so a backend
 *   behind a dead link is noticed in about two seconds, not when TCP gives
 *   up minutes later;
 * - with a `dns:` target, a new DNS answer at most a second after the
 *   policy asks for one (grpc-js: 30 s), so a replaced backend is found
 *   when the old one goes, not half a minute later.
 */
export const CLIENT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
  "grpc.keepalive_time_ms": 1_000,
  "grpc.keepalive_timeout_ms": 1_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.dns_min_time_between_resolutions_ms": 1_000,
};

/**
 * The client's service config: the policy, a retry policy that retries an
 * Echo RPC that failed with UNAVAILABLE on a connection that was lost (up to
 * 4 attempts, backoff 50 ms to 0.5 s), and, unless `healthService` is
 * `null`, health checking of that service.
 */
export function clientServiceConfig(
  chooseSecond: number,
  healthService: string | null = ECHO_SERVICE_NAME,
): Record<string, unknown> {
  return {
    loadBalancingConfig: [{ [CUSTOM_ROUND_ROBIN]: { chooseSecond } }],
    methodConfig: [{
      name: [{ service: ECHO_SERVICE_NAME }],
      retryPolicy: {
        maxAttempts: 4,
        initialBackoff: "0.05s",
        maxBackoff: "0.5s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    }],
    ...(healthService === null
      ? {}
      : { healthCheckConfig: { serviceName: healthService } }),
  };
}

/**
 * `serviceConfig` with `least_request_experimental` (choiceCount 2) in the
 * place of its policy.
 */
export function withLeastRequest(
  serviceConfig: Record<string, unknown>,
): Record<string, unknown> {
  return { ...serviceConfig, loadBalancingConfig: [{ [LEAST_REQUEST]: {} }] };
}

/**
 * `serviceConfig` with `ring_hash_experimental` in place of the policy: the
 * RPCs of one value of `header` to one backend.
 */
export function withRingHash(
  serviceConfig: Record<string, unknown>,
  header: string,
): Record<string, unknown> {
  return {
    ...serviceConfig,
    loadBalancingConfig: [{ [RING_HASH]: { requestHashHeader: header } }],
  };
}

/**
 * The client's `outlier_detection` knobs, for two backends: every second,
 * a backend that failed more than half of its last second's RPCs (10 at
 * least) is ejected for 30 s, and longer each time again; at most one of the
 * two is ejected at once.
 */
export const OUTLIER_DETECTION = {
  interval: { seconds: 1, nanos: 0 },
  base_ejection_time: { seconds: 30, nanos: 0 },
  max_ejection_time: { seconds: 300, nanos: 0 },
  max_ejection_percent: 50,
  failure_percentage_ejection: {
    threshold: 50,
    enforcement_percentage: 100,
    minimum_hosts: 2,
    request_volume: 10,
  },
} as const;

/**
 * `serviceConfig` with its load-balancing policy under grpc-js's
 * `outlier_detection`, set by `knobs`.
 */
export function underOutlierDetection(
  serviceConfig: Record<string, unknown>,
  knobs: Record<string, unknown> = OUTLIER_DETECTION,
): Record<string, unknown> {
  return {
    ...serviceConfig,
    loadBalancingConfig: [{
      outlier_detection: {
        ...knobs,
        child_policy: serviceConfig.loadBalancingConfig,
      },
    }],
  };
}

/**
 * The channel options that label the channel's metrics with `target`, and,
 * with `interceptor`, time its calls (gRFC A66): the interceptor is a layer
 * on every call, so it is there only when asked for.
 */
export function metricsChannelOptions(
  target: string,
  interceptor: boolean,
): grpc.ChannelOptions {
  return {
    [METRICS_TARGET]: target,
    ...(interceptor ? { interceptors: [callMetricsInterceptor(target)] } : {}),
  };
}
