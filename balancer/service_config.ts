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
import { healthCheckServiceName } from "./health_check.ts";

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
 * registered policy the config is invalid. `healthCheckConfig`, when
 * present, must name a service as a string.
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

/**
 * {@linkcode checkServiceConfig}, returning the config in the shape grpc-js
 * takes from a resolver, with only the policy that will be used.
 *
 * @throws {Error} with a one-line message saying what is wrong.
 */
export function parseServiceConfig(json: unknown): ServiceConfig {
  let config: ServiceConfig;
  try {
    const parsed = typeof json === "string" ? JSON.parse(json) : json;
    if (
      typeof parsed !== "object" || parsed === null || Array.isArray(parsed)
    ) {
      throw new Error(`expected a JSON object, got ${JSON.stringify(parsed)}`);
    }
    config = checkedStructure(parsed);
    healthCheckServiceName(parsed);
  } catch (error) {
    throw new Error(`invalid service config: ${(error as Error).message}`);
  }
  const entries = config.loadBalancingConfig;
  if (entries.length === 0) return config;
  const chosen = entries.find((entry) =>
    experimental.isLoadBalancerNameRegistered(Object.keys(entry)[0])
  );
  if (chosen === undefined) {
    const names = entries.map((entry) => Object.keys(entry)[0]).join(", ");
    throw new Error(
      `invalid service config: no load-balancing policy in loadBalancingConfig is registered: ${names}`,
    );
  }
  const name = Object.keys(chosen)[0];
  try {
    experimental.parseLoadBalancingConfig(chosen);
  } catch (error) {
    // grpc-js prefixes the policy name to the config class's message, which
    // may already start with it.
    const message = (error as Error).message;
    const doubled = `${name}: ${name}: `;
    throw new Error(
      message.startsWith(doubled) ? message.slice(name.length + 2) : message,
    );
  }
  return { ...config, loadBalancingConfig: [chosen] };
}
