/**
 * Internal: how endpoint sharding sums its children's states up.
 *
 * @module
 */
import { connectivityState as ConnectivityState } from "@grpc/grpc-js";

/** Aggregates child states: READY > CONNECTING > IDLE > TRANSIENT_FAILURE. */
export function aggregateState(
  children: readonly { readonly state: ConnectivityState }[],
): ConnectivityState {
  for (
    const state of [
      ConnectivityState.READY,
      ConnectivityState.CONNECTING,
      ConnectivityState.IDLE,
    ]
  ) {
    if (children.some((child) => child.state === state)) return state;
  }
  return ConnectivityState.TRANSIENT_FAILURE;
}
