/**
 * `sharded_round_robin`, a small policy on the block, made by `definePolicy`, for
 * measuring the block at scale: it takes turns over its READY children, as
 * grpc-js's `round_robin` does over its own, so the two can be set side by
 * side.
 *
 * @module
 */
import {
  connectivityState as ConnectivityState,
  experimental,
} from "@grpc/grpc-js";
import { definePolicy } from "../balancer/mod.ts";

/** The policy's name in a service config. */
export const SHARDED_ROUND_ROBIN = "sharded_round_robin";

/** Takes turns over the READY children's pickers. */
class TurnsPicker implements experimental.Picker {
  readonly #pickers: experimental.Picker[];
  #next: number;

  /** @param start Where the turns begin: an index, taken modulo the length. */
  constructor(pickers: experimental.Picker[], start: number) {
    this.#pickers = pickers;
    this.#next = start % pickers.length;
  }

  /** Where the next turn falls. */
  get next(): number {
    return this.#next;
  }

  pick(args: experimental.PickArgs): experimental.PickResult {
    const picker = this.#pickers[this.#next];
    this.#next = (this.#next + 1) % this.#pickers.length;
    return picker.pick(args);
  }
}

/**
 * The policy: the children's READY pickers in turn, else the aggregate.
 * The turns go on where the last picker left them, as round_robin's do:
 * each picker starting over would keep sending RPCs to the first children
 * while the others connect.
 */
const shardedRoundRobin = definePolicy({
  name: SHARDED_ROUND_ROBIN,
  parse: () => ({}),
  instance: (): { turns: TurnsPicker | null } => ({ turns: null }),
  combine(state, children, _settings, instance) {
    const ready = children.filter((child) =>
      child.state === ConnectivityState.READY
    ).map((child) => child.picker);
    if (ready.length === 0) return { state };
    instance.turns = new TurnsPicker(ready, instance.turns?.next ?? 0);
    return { state: ConnectivityState.READY, picker: instance.turns };
  },
});

/** The policy's load balancer, for benchmarks that construct it. */
export const ShardedRoundRobin = shardedRoundRobin.LoadBalancer;

/** Registers the policy with grpc-js. */
export function registerShardedRoundRobin(): void {
  shardedRoundRobin.register();
}
