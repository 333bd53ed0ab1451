/**
 * Internal: meters subchannels for gRFC A94 and A17: connection attempts,
 * open connections and disconnections, once per real connection in the
 * process, and each health change of what a child's policy sees.
 *
 * @module
 */
import type { Attributes } from "@opentelemetry/api";
import {
  connectivityState as ConnectivityState,
  experimental,
} from "@grpc/grpc-js";
import { HealthCheckingSubchannel } from "./health_check.ts";
import type { Instruments } from "./metrics.ts";

type Subchannel = experimental.SubchannelInterface;
type Real = ReturnType<Subchannel["getRealSubchannel"]>;

/** One real subchannel's watch, and how many children hold it. */
interface Connection {
  holders: number;
  readonly stop: () => void;
}

/**
 * The real subchannels of the process, each metered once: grpc-js's pool
 * gives every channel of a target with the same options the same
 * subchannel, so several channels' children may hold one connection. The
 * first holder's `grpc.target` labels it; the pool keys subchannels by
 * their channel's target, so every holder has that target.
 */
export class Connections {
  readonly #instruments: Omit<Instruments, "connections">;
  readonly #held = new Map<Real, Connection>();

  constructor(instruments: Omit<Instruments, "connections">) {
    this.#instruments = instruments;
  }

  /**
   * Holds `real`'s watch for one child, starting it for the first: a
   * subchannel READY when first held is counted open. The function
   * returned lets go, once; the last to let go of an open one counts its
   * end.
   */
  hold(real: Real, target: Attributes): () => void {
    let connection = this.#held.get(real);
    if (connection === undefined) {
      connection = { holders: 0, stop: this.#watch(real, target) };
      this.#held.set(real, connection);
    }
    connection.holders++;
    const held = connection;
    // Called once: a child's meter forgets a watch as it lets go.
    return () => {
      if (--held.holders > 0) return;
      this.#held.delete(real);
      held.stop();
    };
  }

  #watch(real: Real, target: Attributes): () => void {
    const { READY, CONNECTING, TRANSIENT_FAILURE } = ConnectivityState;
    const i = this.#instruments;
    let open = real.getConnectivityState() === READY;
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
    real.addConnectivityStateListener(listener);
    return () => {
      real.removeConnectivityStateListener(listener);
      if (open) closed("subchannel shutdown");
    };
  }
}

/** One address's watch in a child: its connection, and its health. */
interface Watch {
  readonly real: Real;
  readonly release: () => void;
  seen: Subchannel;
  stopHealth: (() => void) | null;
}

/**
 * Meters one child's subchannels: each one's connection through
 * {@linkcode Connections}, and the health of a health-checking one. One
 * watch per address, however often the child's policy asks for it again.
 */
export class SubchannelMeter {
  readonly #instruments: Instruments;
  readonly #target: Attributes;
  readonly #watches = new Map<string, Watch>();

  constructor(instruments: Instruments, target: Attributes) {
    this.#instruments = instruments;
    this.#target = target;
  }

  /** Watches `seen`, a subchannel the child's policy got. */
  watch(seen: Subchannel): void {
    const address = seen.getAddress();
    const real = seen.getRealSubchannel();
    let watch = this.#watches.get(address);
    if (watch?.real !== real) {
      if (watch !== undefined) this.#unwatch(address, watch);
      watch = {
        real,
        release: this.#instruments.connections.hold(real, this.#target),
        seen: real,
        stopHealth: null,
      };
      this.#watches.set(address, watch);
    }
    if (watch.seen === seen) return;
    watch.stopHealth?.();
    watch.seen = seen;
    watch.stopHealth = seen instanceof HealthCheckingSubchannel
      ? this.#watchHealth(seen)
      : null;
  }

  /** Lets go of every watch. */
  close(): void {
    for (const [address, watch] of this.#watches) {
      this.#unwatch(address, watch);
    }
  }

  #unwatch(address: string, watch: Watch): void {
    watch.release();
    watch.stopHealth?.();
    this.#watches.delete(address);
  }

  #watchHealth(seen: Subchannel): () => void {
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
