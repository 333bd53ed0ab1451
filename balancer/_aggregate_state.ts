/**
 * Internal: how endpoint sharding sums its children's states up, kept as a
 * count per state so that one child's change costs the same however many
 * children there are.
 *
 * @module
 */
import { connectivityState as ConnectivityState } from "@grpc/grpc-js";

/** The order states win in: READY > CONNECTING > IDLE > TRANSIENT_FAILURE. */
const WINNERS = [
  ConnectivityState.READY,
  ConnectivityState.CONNECTING,
  ConnectivityState.IDLE,
] as const;

/** How many children are in each state, indexed by the state's number. */
export class StateCounts {
  readonly #counts = [0, 0, 0, 0, 0];

  /** Counts one more child in `state`. */
  add(state: ConnectivityState): void {
    this.#counts[state]++;
  }

  /** Counts one child fewer in `state`. */
  remove(state: ConnectivityState): void {
    this.#counts[state]--;
  }

  /** How many children are in `state`. */
  count(state: ConnectivityState): number {
    return this.#counts[state];
  }

  /** Forgets every child. */
  clear(): void {
    this.#counts.fill(0);
  }

  /** The aggregate: the first of {@linkcode WINNERS} any child is in. */
  aggregate(): ConnectivityState {
    for (const state of WINNERS) {
      if (this.#counts[state] > 0) return state;
    }
    return ConnectivityState.TRANSIENT_FAILURE;
  }
}
