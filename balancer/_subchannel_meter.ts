/**
 * Meters one child's subchannels for gRFC A94 and A17: connection attempts,
 * open connections, disconnections and health changes.
 *
 * @module
 */
import type { Attributes } from "@opentelemetry/api";
import {
  connectivityState as ConnectivityState,
  experimental,
} from "@grpc/grpc-js";
import type { Instruments } from "./metrics.ts";

/** One address's watch: its subchannel, and what stops each part. */
interface Watch {
  readonly subchannel: experimental.SubchannelInterface;
  readonly stopConnections: () => void;
  seen: experimental.SubchannelInterface;
  stopHealth: (() => void) | null;
}

/**
 * Meters one child's subchannels: each connection attempt, open connection
 * and disconnection (gRFC A94, whose labels it uses), and each health change
 * of what the child's policy sees. One watch per address, on the channel's
 * own subchannel, however often the child's policy asks for it again.
 */
export class SubchannelMeter {
  readonly #instruments: Instruments;
  readonly #target: Attributes;
  readonly #watches = new Map<string, Watch>();

  constructor(instruments: Instruments, target: string) {
    this.#instruments = instruments;
    this.#target = { "grpc.target": target };
  }

  /**
   * Watches `made`, a subchannel the parent's helper made, and `seen`, what
   * the child's policy gets for it: `made` or its health-checking wrapper.
   */
  watch(
    made: experimental.SubchannelInterface,
    seen: experimental.SubchannelInterface,
  ): void {
    const address = made.getAddress();
    const subchannel = made.getRealSubchannel();
    let watch = this.#watches.get(address);
    if (watch?.subchannel !== subchannel) {
      if (watch !== undefined) this.#unwatch(address, watch);
      watch = {
        subchannel,
        stopConnections: this.#watchConnections(subchannel),
        seen: made,
        stopHealth: null,
      };
      this.#watches.set(address, watch);
    }
    if (watch.seen === seen) return;
    watch.stopHealth?.();
    watch.seen = seen;
    watch.stopHealth = seen === made ? null : this.#watchHealth(seen);
  }

  /** Stops every watch, as if each connection closed. */
  close(): void {
    for (const [address, watch] of this.#watches) {
      this.#unwatch(address, watch);
    }
  }

  #unwatch(address: string, watch: Watch): void {
    watch.stopConnections();
    watch.stopHealth?.();
    this.#watches.delete(address);
  }

  #watchConnections(subchannel: experimental.SubchannelInterface): () => void {
    const { READY, CONNECTING, TRANSIENT_FAILURE } = ConnectivityState;
    const i = this.#instruments;
    const target = this.#target;
    let open = subchannel.getConnectivityState() === READY;
    if (open) i.openConnections.add(1, target);
    const closed = (reason: string) => {
      open = false;
      i.openConnections.add(-1, target);
      i.disconnections.add(1, { ...target, "grpc.disconnect_error": reason });
    };
    const listener: experimental.ConnectivityStateListener = (
      _subchannel,
      previous,
      state,
    ) => {
      if (previous === CONNECTING && state === READY) {
        open = true;
        i.attemptsSucceeded.add(1, target);
        i.openConnections.add(1, target);
      } else if (previous === CONNECTING && state === TRANSIENT_FAILURE) {
        i.attemptsFailed.add(1, target);
      } else if (open && state !== READY) {
        // grpc-js tells a policy no reason for a closed connection.
        closed("unknown");
      }
    };
    subchannel.addConnectivityStateListener(listener);
    return () => {
      subchannel.removeConnectivityStateListener(listener);
      if (open) closed("subchannel shutdown");
    };
  }

  #watchHealth(seen: experimental.SubchannelInterface): () => void {
    const i = this.#instruments;
    const labels = { ...this.#target, "customlb.address": seen.getAddress() };
    let healthy = seen.isHealthy();
    if (!healthy) i.unhealthy.add(1, labels);
    const watcher = (now: boolean) => {
      if (now === healthy) return;
      healthy = now;
      i.healthChanges.add(1, { ...labels, "customlb.healthy": String(now) });
      i.unhealthy.add(now ? -1 : 1, labels);
    };
    seen.addHealthStateWatcher(watcher);
    return () => {
      seen.removeHealthStateWatcher(watcher);
      if (!healthy) i.unhealthy.add(-1, labels);
    };
  }
}
