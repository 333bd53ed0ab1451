/**
 * The `custom_round_robin` load-balancing policy: of every `chooseSecond`
 * RPCs, one goes to the second endpoint and the rest to the first.
 *
 * Read top to bottom: the config, the picker, the policy, its registration.
 * The policy only decides; the block under it (`endpoint_sharding.ts`)
 * keeps one pick_first child per endpoint, and those children do all the
 * connection work. `definePolicy` writes what every policy shares.
 *
 * @module
 */
import {
  connectivityState as ConnectivityState,
  experimental,
} from "@grpc/grpc-js";
import { definePolicy } from "./define_policy.ts";
import { shown } from "./_config.ts";
import { describeChild } from "./_failures.ts";

type Endpoint = experimental.Endpoint;
type Picker = experimental.Picker;
type PickArgs = experimental.PickArgs;
type PickResult = experimental.PickResult;

/**
 * The name under which the policy is registered and configured.
 *
 * @example The policy's entry in a service config
 * ```ts
 * const serviceConfig = {
 *   loadBalancingConfig: [{ [CUSTOM_ROUND_ROBIN]: { chooseSecond: 3 } }],
 * };
 * ```
 */
export const CUSTOM_ROUND_ROBIN = "custom_round_robin";

/**
 * The largest `chooseSecond`: the range of a uint32, as in grpc-go.
 *
 * @example The largest config there is
 * ```ts
 * const config = { custom_round_robin: { chooseSecond: MAX_CHOOSE_SECOND } };
 * ```
 */
export const MAX_CHOOSE_SECOND = 0xffff_ffff;

/**
 * `chooseSecond` when the config leaves it out.
 *
 * @example An empty entry takes the default
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const config = customRoundRobin.Config.createFromJson({});
 * assert.equal(config.settings.chooseSecond, DEFAULT_CHOOSE_SECOND);
 * ```
 */
export const DEFAULT_CHOOSE_SECOND = 3;

/** The settings of a `custom_round_robin` config. */
export interface CustomRoundRobinSettings {
  /** Every `chooseSecond`-th pick goes to the second endpoint; 0: never. */
  readonly chooseSecond: number;
}

/**
 * The policy's settings from its config entry.
 *
 * @throws {Error} naming the field and the bad value.
 */
function parse(config: Record<string, unknown>): CustomRoundRobinSettings {
  const chooseSecond = "chooseSecond" in config
    ? config.chooseSecond
    : DEFAULT_CHOOSE_SECOND;
  if (
    !Number.isInteger(chooseSecond) || (chooseSecond as number) < 0 ||
    (chooseSecond as number) > MAX_CHOOSE_SECOND
  ) {
    throw new Error(
      `chooseSecond must be an integer from 0 to ${MAX_CHOOSE_SECOND}, got ${
        shown(chooseSecond)
      }`,
    );
  }
  return { chooseSecond: chooseSecond as number };
}

/**
 * Sends every `chooseSecond`-th pick to the second child's picker and the
 * rest to the first's: with 3, first, first, second, first, first, second…
 *
 * The count restarts at 0 whenever a picker is made. It is kept modulo
 * `chooseSecond` rather than modulo 2^32: the sequence is the same, but it
 * stays exact past 2^32 picks, where a 32-bit counter would skip or double a
 * pick for any `chooseSecond` that does not divide 2^32. A pick allocates
 * nothing.
 */
export class CustomRoundRobinPicker implements Picker {
  readonly #chooseSecond: number;
  readonly #first: Picker;
  readonly #second: Picker;
  #count: number;

  /**
   * @param chooseSecond As in {@linkcode CustomRoundRobinSettings}.
   * @param first The first endpoint's picker.
   * @param second The second endpoint's picker.
   * @param count Picks already made in the current cycle; tests use it to
   *   start at any point of a long cycle.
   */
  constructor(
    chooseSecond: number,
    first: Picker,
    second: Picker,
    count = 0,
  ) {
    this.#chooseSecond = chooseSecond;
    this.#first = first;
    this.#second = second;
    this.#count = count;
  }

  /** Picks for one RPC by delegating to the chosen child's picker. */
  pick(pickArgs: PickArgs): PickResult {
    if (this.#chooseSecond === 0) return this.#first.pick(pickArgs);
    this.#count += 1;
    if (this.#count === this.#chooseSecond) {
      this.#count = 0;
      return this.#second.pick(pickArgs);
    }
    return this.#first.pick(pickArgs);
  }
}

/**
 * The policy: the block (`EndpointSharding`) with a pick_first child per
 * endpoint, combined by its states:
 *
 * | children                          | state             | picks go to            |
 * | --------------------------------- | ----------------- | ---------------------- |
 * | both READY                        | READY             | {@linkcode CustomRoundRobinPicker} |
 * | one READY                         | READY             | the READY child        |
 * | none READY, any CONNECTING / IDLE | CONNECTING        | queued                 |
 * | both TRANSIENT_FAILURE            | TRANSIENT_FAILURE | UNAVAILABLE, naming both errors |
 *
 * It needs exactly two endpoints: the resolver's first is "first", its
 * second is "second". It refuses a list of any other length, or of one
 * endpoint twice.
 *
 * @example The config class parses the policy's entry and writes it back
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const config = customRoundRobin.Config.createFromJson({ chooseSecond: 2 });
 * assert.deepEqual(config.toJsonObject(), {
 *   custom_round_robin: { chooseSecond: 2 },
 * });
 * ```
 */
export const customRoundRobin = definePolicy({
  name: CUSTOM_ROUND_ROBIN,
  parse,
  refuse: endpointListProblem,
  maxEndpoints: 2,
  combine(state, [first, second], { chooseSecond }) {
    if (state === ConnectivityState.READY) {
      return {
        state,
        picker: first.state !== ConnectivityState.READY
          ? second.picker
          : second.state !== ConnectivityState.READY
          ? first.picker
          : new CustomRoundRobinPicker(
            chooseSecond,
            first.picker,
            second.picker,
          ),
      };
    }
    if (state === ConnectivityState.TRANSIENT_FAILURE) {
      return {
        state,
        errorMessage: `${CUSTOM_ROUND_ROBIN}: both endpoints unreachable: ` +
          `first ${describeChild(first)}; second ${describeChild(second)}`,
      };
    }
    return { state: ConnectivityState.CONNECTING };
  },
});

/** Why `endpoints` cannot be used, or `null` if it can. */
function endpointListProblem(endpoints: readonly Endpoint[]): string | null {
  const list = `[${endpoints.map(experimental.endpointToString).join(", ")}]`;
  if (endpoints.length !== 2) {
    return `expected exactly 2 endpoints, got ${endpoints.length}: ${list}`;
  }
  const distinct = new experimental.EndpointMap<true>();
  for (const endpoint of endpoints) distinct.set(endpoint, true);
  if (distinct.size !== 2) {
    return `expected 2 different endpoints, got the same one twice: ${list}`;
  }
  return null;
}

/**
 * Registers `custom_round_robin` with grpc-js, and nothing else. Call it
 * before creating a channel whose service config names the policy; calling
 * it again is harmless. Resolvers are registered by their own functions.
 *
 * @example A channel whose default service config names the policy
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 *
 * registerCustomRoundRobin();
 * const client = new grpc.Client(
 *   "dns:///backends.internal:50051",
 *   grpc.credentials.createInsecure(),
 *   {
 *     "grpc.service_config": JSON.stringify({
 *       loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 3 } }],
 *     }),
 *   },
 * );
 * client.close();
 * ```
 */
export function registerCustomRoundRobin(): void {
  customRoundRobin.register();
}
