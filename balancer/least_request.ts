/**
 * The `least_request_experimental` load-balancing policy (gRFC A48): each
 * RPC goes to the endpoint with the fewest outstanding RPCs among
 * `choiceCount` READY endpoints sampled at random.
 *
 * Read top to bottom: the config, the picker, the policy, its registration.
 * As `custom_round_robin`, it only decides; the block (`EndpointSharding`)
 * keeps one pick_first child per endpoint, health checked when the service
 * config asks.
 *
 * @module
 */
import {
  connectivityState as ConnectivityState,
  experimental,
} from "@grpc/grpc-js";
import { definePolicy } from "./define_policy.ts";
import { shown } from "./_config.ts";
import { unreachable } from "./_failures.ts";

type Picker = experimental.Picker;
type PickArgs = experimental.PickArgs;
type PickResult = experimental.PickResult;

/**
 * The name under which the policy is registered and configured, gRFC A48's.
 *
 * @example The policy's entry in a service config
 * ```ts
 * const serviceConfig = {
 *   loadBalancingConfig: [{ [LEAST_REQUEST]: { choiceCount: 2 } }],
 * };
 * ```
 */
export const LEAST_REQUEST = "least_request_experimental";

/**
 * `choiceCount` when the config leaves it out: two random choices.
 *
 * @example An empty entry takes the default
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const config = leastRequest.Config.createFromJson({});
 * assert.equal(config.settings.choiceCount, DEFAULT_CHOICE_COUNT);
 * ```
 */
export const DEFAULT_CHOICE_COUNT = 2;

/**
 * The largest `choiceCount` used: a config's larger value is taken as this,
 * as gRFC A48 and Envoy do.
 *
 * @example A larger value is capped
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const config = leastRequest.Config.createFromJson({ choiceCount: 50 });
 * assert.equal(config.settings.choiceCount, MAX_CHOICE_COUNT);
 * ```
 */
export const MAX_CHOICE_COUNT = 10;

/** The settings of a `least_request_experimental` config. */
export interface LeastRequestSettings {
  /** How many READY endpoints each pick samples: 2 to 10. */
  readonly choiceCount: number;
}

/**
 * The policy's settings from its config entry: `choiceCount`, an integer
 * of at least 2; above {@linkcode MAX_CHOICE_COUNT}, taken as it.
 *
 * @throws {Error} if `choiceCount` is not an integer of at least 2.
 */
function parse(config: Record<string, unknown>): LeastRequestSettings {
  const choiceCount = "choiceCount" in config
    ? config.choiceCount
    : DEFAULT_CHOICE_COUNT;
  if (!Number.isInteger(choiceCount) || (choiceCount as number) < 2) {
    throw new Error(
      `choiceCount must be an integer of at least 2, got ${shown(choiceCount)}`,
    );
  }
  return { choiceCount: Math.min(choiceCount as number, MAX_CHOICE_COUNT) };
}

/** One endpoint's outstanding RPCs, kept for as long as its child lives. */
export interface Outstanding {
  /** RPCs started on the endpoint and not yet ended; never below 0. */
  count: number;
}

/** A READY endpoint as the picker sees it. */
export interface ReadyEndpoint {
  /** Its child's picker. */
  readonly picker: Picker;
  /** Its outstanding RPCs. */
  readonly outstanding: Outstanding;
}

/**
 * Samples `choiceCount` READY endpoints at random, with replacement, as
 * gRFC A48's pseudo-code and Envoy do, and delegates the pick to the one
 * with the fewest outstanding RPCs (the first sampled, of a tie). A pick
 * costs O(`choiceCount`), whatever the number of endpoints.
 *
 * An RPC counts as outstanding from when grpc-js starts it on the chosen
 * connection (`onCallStarted`) until it ends, however it ends
 * (`onCallEnded`). grpc-js calls `onCallEnded` for every call it called
 * `onCallStarted` for, and neither for a pick whose call never starts, so a
 * count neither leaks nor goes below zero.
 */
export class LeastRequestPicker implements Picker {
  readonly #ready: readonly ReadyEndpoint[];
  readonly #choiceCount: number;
  readonly #random: () => number;

  /**
   * @param ready The READY endpoints; at least one.
   * @param choiceCount As in {@linkcode LeastRequestSettings}.
   * @param random A number in [0, 1), as `Math.random` (the default, read
   *   at each pick) gives; tests pass their own.
   */
  constructor(
    ready: readonly ReadyEndpoint[],
    choiceCount: number,
    random: () => number = () => Math.random(),
  ) {
    this.#ready = ready;
    this.#choiceCount = choiceCount;
    this.#random = random;
  }

  /** Picks for one RPC by delegating to the least loaded sample's picker. */
  pick(pickArgs: PickArgs): PickResult {
    const ready = this.#ready;
    let best = ready[Math.floor(this.#random() * ready.length)];
    for (let i = 1; i < this.#choiceCount; i++) {
      const sampled = ready[Math.floor(this.#random() * ready.length)];
      if (sampled.outstanding.count < best.outstanding.count) best = sampled;
    }
    const result = best.picker.pick(pickArgs);
    if (result.pickResultType !== experimental.PickResultType.COMPLETE) {
      return result;
    }
    const { outstanding } = best;
    const { onCallStarted, onCallEnded } = result;
    return {
      ...result,
      onCallStarted: () => {
        outstanding.count++;
        onCallStarted?.();
      },
      onCallEnded: (code, details, metadata) => {
        outstanding.count = Math.max(0, outstanding.count - 1);
        onCallEnded?.(code, details, metadata);
      },
    };
  }
}

/**
 * The policy: the block (`EndpointSharding`) with a pick_first child per
 * endpoint. While any child is READY it is READY, with a
 * {@linkcode LeastRequestPicker} over the READY children; else it shows the
 * children's aggregate state, queueing RPCs or failing them with every
 * endpoint's last error. Each child's count is its `data`, and lives as
 * long as the child: an endpoint that leaves and comes back starts again at
 * 0, and the RPCs it had out end on the count they started on.
 *
 * @example The config class caps `choiceCount`
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const config = leastRequest.Config.createFromJson({ choiceCount: 50 });
 * assert.deepEqual(config.toJsonObject(), {
 *   least_request_experimental: { choiceCount: MAX_CHOICE_COUNT },
 * });
 * ```
 */
export const leastRequest = definePolicy({
  name: LEAST_REQUEST,
  parse,
  childData: (): Outstanding => ({ count: 0 }),
  combine(state, children, { choiceCount }) {
    const ready: ReadyEndpoint[] = [];
    for (const child of children) {
      if (child.state !== ConnectivityState.READY) continue;
      ready.push({ picker: child.picker, outstanding: child.data });
    }
    if (ready.length > 0) {
      return {
        state: ConnectivityState.READY,
        picker: new LeastRequestPicker(ready, choiceCount),
      };
    }
    return state === ConnectivityState.TRANSIENT_FAILURE
      ? { state, errorMessage: unreachable(LEAST_REQUEST, children) }
      : { state };
  },
});

/**
 * Registers `least_request_experimental` with grpc-js, and nothing else.
 * Call it before creating a channel whose service config names the policy;
 * calling it again is harmless.
 *
 * @example A channel whose default service config names the policy
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 *
 * registerLeastRequest();
 * const client = new grpc.Client(
 *   "dns:///backends.internal:50051",
 *   grpc.credentials.createInsecure(),
 *   {
 *     "grpc.service_config": JSON.stringify({
 *       loadBalancingConfig: [{ least_request_experimental: { choiceCount: 2 } }],
 *     }),
 *   },
 * );
 * client.close();
 * ```
 */
export function registerLeastRequest(): void {
  leastRequest.register();
}
