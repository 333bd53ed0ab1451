/**
 * Service-config validation that refuses what grpc-js would silently ignore.
 *
 * grpc-js picks the first `loadBalancingConfig` entry it can parse and falls
 * back to pick_first when none parses, logging that at DEBUG only: a typo in
 * a policy name or a bad field sends every RPC to one backend without a
 * word. {@linkcode checkServiceConfig} turns both into errors instead.
 *
 * @module
 */
import {
  Channel,
  credentials,
  experimental,
  type ServiceConfig,
} from "@grpc/grpc-js";
import { registeredDefinition } from "./define_policy.ts";
import { healthCheckServiceFromConfig } from "./health_check.ts";

/**
 * Checks a service config's structure as grpc-js does, and returns it in the
 * shape grpc-js takes from a resolver.
 *
 * grpc-js exports no name for its check, but runs it on the
 * `grpc.service_config` option of every channel it makes: a channel that is
 * never used (its resolver starts with a first call) is made for the check
 * and closed at once. Of what that check normalises, only durations change
 * shape: a method's `timeout` is `"<seconds>s"` in JSON and
 * `{ seconds, nanos }` in grpc-js.
 *
 * @throws {Error} grpc-js's message for the first problem found.
 */
function checkedStructure(config: Record<string, unknown>): ServiceConfig {
  new Channel("ipv4:127.0.0.1:1", credentials.createInsecure(), {
    "grpc.service_config": JSON.stringify(config),
    "grpc.enable_channelz": 0,
  }).close();
  const methodConfig = config.methodConfig ?? [];
  if (!Array.isArray(methodConfig)) {
    throw new Error("Invalid service config: methodConfig must be an array");
  }
  return {
    ...config,
    loadBalancingConfig: config.loadBalancingConfig ?? [],
    methodConfig: methodConfig.map((method) =>
      typeof method.timeout === "string"
        ? { ...method, timeout: duration(method.timeout) }
        : method
    ),
  } as ServiceConfig;
}

/** `"1.5s"` as `{ seconds: 1, nanos: 500000000 }`; grpc-js checked the form. */
function duration(text: string): { seconds: number; nanos: number } {
  const [seconds, fraction = ""] = text.slice(0, -1).split(".");
  return {
    seconds: Number(seconds),
    nanos: Number(fraction.padEnd(9, "0").slice(0, 9)),
  };
}

/**
 * Checks a service config (JSON text or a parsed object) before a channel is
 * given it.
 *
 * The structure is checked as grpc-js checks it. Then, as the gRPC service
 * config spec says, the first `loadBalancingConfig` entry whose policy is
 * registered is the one used: it must parse, and if no entry names a
 * registered policy the config is invalid. The same holds for the
 * `child_policy` list of the chosen policy, as `outlier_detection` has; over
 * a policy with at most N endpoints (`custom_round_robin`: 2),
 * `outlier_detection` must be able to eject (a `minimum_hosts` of at most
 * N) and take its durations as
 * `{seconds, nanos}`. `healthCheckConfig`, when present, must name a service
 * as a string.
 *
 * @throws {Error} with a one-line message saying what is wrong.
 *
 * @example A mistake is an error, not a fallback to pick_first
 * ```ts
 * import assert from "node:assert/strict";
 * import { registerCustomRoundRobin } from "./custom_round_robin.ts";
 *
 * registerCustomRoundRobin();
 * assert.throws(
 *   () =>
 *     checkServiceConfig({
 *       loadBalancingConfig: [{ custom_round_robin: { chooseSecond: -1 } }],
 *     }),
 *   /chooseSecond must be an integer from 0 to 4294967295, got -1/,
 * );
 * ```
 */
export function checkServiceConfig(json: unknown): void {
  parseServiceConfig(json);
}

/** A service config that {@linkcode parseServiceConfig} checked. */
export interface ParsedServiceConfig {
  /**
   * The config in the shape grpc-js takes from a resolver, with only the
   * policy that will be used.
   */
  readonly config: ServiceConfig;
  /**
   * `healthCheckConfig.serviceName`, or `null` for no health checking:
   * grpc-js keeps no `healthCheckConfig` in `config`, so a resolver hands it
   * on as the `HEALTH_CHECK_SERVICE_NAME` attribute.
   */
  readonly healthCheckServiceName: string | null;
}

/**
 * {@linkcode checkServiceConfig}, returning the config as a resolver hands
 * it on.
 *
 * @throws {Error} with a one-line message saying what is wrong.
 */
export function parseServiceConfig(json: unknown): ParsedServiceConfig {
  let config: ServiceConfig;
  let healthCheck: string | null;
  try {
    const parsed = typeof json === "string" ? JSON.parse(json) : json;
    if (
      typeof parsed !== "object" || parsed === null || Array.isArray(parsed)
    ) {
      throw new Error(`expected a JSON object, got ${JSON.stringify(parsed)}`);
    }
    config = checkedStructure(parsed);
    healthCheck = healthCheckServiceFromConfig(parsed);
  } catch (error) {
    throw new Error(`invalid service config: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const entries = config.loadBalancingConfig;
  return {
    config: entries.length === 0 ? config : {
      ...config,
      loadBalancingConfig: [chosenPolicy(entries, "loadBalancingConfig")],
    },
    healthCheckServiceName: healthCheck,
  };
}

type LoadBalancingConfig = ServiceConfig["loadBalancingConfig"][number];

/**
 * The entry of `entries` that grpc-js will use: the first whose policy is
 * registered. It must parse, and so must the entry its own `child_policy`
 * list would use, for a policy that has one (as `outlier_detection`): grpc-js
 * reports a child's mistake only as "no valid recognized policy found".
 *
 * @param field Where `entries` sits, for messages.
 * @throws {Error} naming the field and what is wrong with it.
 */
function chosenPolicy(
  entries: readonly LoadBalancingConfig[],
  field: string,
): LoadBalancingConfig {
  const chosen = entries.find((entry) =>
    experimental.isLoadBalancerNameRegistered(Object.keys(entry)[0])
  );
  if (chosen === undefined) {
    const names = entries.map((entry) => Object.keys(entry)[0]).join(", ");
    throw new Error(
      `invalid service config: no load-balancing policy in ${field} is registered: ${names}`,
    );
  }
  const name = Object.keys(chosen)[0];
  const body = chosen[name] as Record<string, unknown>;
  const childField = `${name}.child_policy`;
  let child: string | null = null;
  if (Array.isArray(body?.child_policy)) {
    try {
      child = Object.keys(chosenPolicy(body.child_policy, childField))[0];
    } catch (error) {
      const message = (error as Error).message;
      throw new Error(
        message.startsWith("invalid service config: ")
          ? message
          : `invalid service config: ${childField}: ${message}`,
        { cause: error },
      );
    }
  }
  if (name === "outlier_detection") checkOutlierDetection(body, child);
  // grpc-js's message names the policy.
  experimental.parseLoadBalancingConfig(chosen);
  return chosen;
}

/** `outlier_detection`'s ejection methods, each with a `minimum_hosts`. */
const EJECTIONS = ["success_rate_ejection", "failure_percentage_ejection"];
/** grpc-js's `minimum_hosts` where an ejection method leaves it out. */
const DEFAULT_MINIMUM_HOSTS = 5;

/**
 * What grpc-js's `outlier_detection` takes but cannot use: a duration as
 * JSON text, where it wants `{seconds, nanos}`, and, above a policy that
 * uses at most N endpoints (`custom_round_robin`: 2), a `minimum_hosts`
 * above N, with which no backend is ever ejected.
 *
 * @param child The policy under it, once chosen.
 */
function checkOutlierDetection(
  body: Record<string, unknown>,
  child: string | null,
): void {
  for (const field of ["interval", "base_ejection_time", "max_ejection_time"]) {
    if (typeof body[field] === "string") {
      throw new Error(
        `invalid service config: outlier_detection.${field}: grpc-js wants a duration as {"seconds": N, "nanos": N}, got ${
          JSON.stringify(body[field])
        }`,
      );
    }
  }
  const most = child === null
    ? undefined
    : registeredDefinition(child)?.maxEndpoints;
  if (most === undefined) return;
  for (const ejection of EJECTIONS) {
    const knobs = body[ejection] as Record<string, unknown> | undefined;
    if (typeof knobs !== "object" || knobs === null) continue;
    const hosts = knobs.minimum_hosts ?? DEFAULT_MINIMUM_HOSTS;
    if (typeof hosts === "number" && hosts > most) {
      throw new Error(
        `invalid service config: outlier_detection.${ejection}.minimum_hosts is ${hosts}${
          "minimum_hosts" in knobs ? "" : " (grpc-js's default)"
        }, but ${child} has ${most} endpoints, so no backend could ever be ejected: set it to ${most}`,
      );
    }
  }
}
