/**
 * Metrics through `@opentelemetry/api`, which grpc-js does not record: the
 * observer of the block ({@linkcode metricsObserver}), and interceptors for
 * gRFC A66's per-call metrics. All record nothing until an application
 * installs an OpenTelemetry SDK; a policy started without one does no
 * metrics work, and one installed later reaches a policy at its next
 * resolver update.
 *
 * Attempt metrics (`grpc.client.attempt.*`) are left out: an interceptor
 * sees a call, not its retries' attempts, which are inside grpc-js.
 *
 * @module
 */
import {
  type Attributes,
  type Counter,
  createNoopMeter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableCounter,
  type ObservableResult,
  type UpDownCounter,
} from "@opentelemetry/api";
import * as grpc from "@grpc/grpc-js";
import type { ChildObserver, ShardingObserver } from "./endpoint_sharding.ts";
import { Connections, SubchannelMeter } from "./_subchannel_meter.ts";

/**
 * The name of the meter the instruments come from: the package's. A view
 * or filter of an OpenTelemetry SDK selects them by it.
 *
 * @example Every instrument of the package, through a view
 * ```ts
 * const view = { meterName: METER_NAME };
 * ```
 */
export const METER_NAME = "@customlb/custom-round-robin";

/**
 * The channel option whose value labels the channel's metrics as
 * `grpc.target`: grpc-js does not tell a policy its channel's target.
 * Without it the label is `unknown`.
 *
 * @example A channel whose metrics say its target
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 *
 * const target = "dns:///echo.example.com:50051";
 * const client = new grpc.Client(target, grpc.credentials.createInsecure(), {
 *   [METRICS_TARGET]: target,
 * });
 * client.close();
 * ```
 */
export const METRICS_TARGET = "customlb.metrics_target";

/** The `grpc.target` of a channel that sets no {@linkcode METRICS_TARGET}. */
const UNKNOWN_TARGET = "unknown";

/** The block's instruments; see docs/metrics.md for each. */
export interface Instruments {
  readonly picks: ObservableCounter;
  readonly endpoints: UpDownCounter;
  readonly attemptsSucceeded: Counter;
  readonly attemptsFailed: Counter;
  readonly disconnections: Counter;
  readonly openConnections: UpDownCounter;
  readonly healthChanges: Counter;
  readonly unhealthy: UpDownCounter;
  readonly callDuration: Histogram;
  readonly serverCallDuration: Histogram;
  /** The process's real subchannels, each metered once. */
  readonly connections: Connections;
}

/** gRFC A66's latency buckets, in seconds. */
// deno-fmt-ignore
const LATENCY_BUCKETS = [
  0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003,
  0.004, 0.005, 0.006, 0.008, 0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04,
  0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1,
  2, 5, 10, 20, 50, 100,
];

// The API exports no way to tell its no-op provider, but its meters' class.
const NOOP_METER = createNoopMeter().constructor;
let made: {
  readonly provider: MeterProvider;
  readonly instruments: Instruments | null;
} | null = null;

/**
 * The instruments of the global MeterProvider's meter, or `null` while none
 * is installed. Made once per provider: an application that installs its
 * provider after a first channel gets them from its next policy on.
 */
export function instruments(): Instruments | null {
  const provider = metrics.getMeterProvider();
  if (made?.provider !== provider) {
    const meter = provider.getMeter(METER_NAME);
    made = {
      provider,
      instruments: meter.constructor === NOOP_METER ? null : create(meter),
    };
  }
  return made.instruments;
}

function create(meter: Meter): Instruments {
  // Counts, but of the default value type: Deno's own MeterProvider
  // (OTEL_DENO=true) refuses any other.
  const int = (unit: string, description: string) => ({ unit, description });
  const made: Omit<Instruments, "connections"> = {
    picks: meter.createObservableCounter(
      "customlb.picks",
      int("{pick}", "Picks the policy delegated to each endpoint's child"),
    ),
    endpoints: meter.createUpDownCounter(
      "customlb.endpoints",
      int("{endpoint}", "Endpoints of a policy on the block, per state"),
    ),
    attemptsSucceeded: meter.createCounter(
      "grpc.subchannel.connection_attempts_succeeded",
      int("{attempt}", "Connection attempts that succeeded (gRFC A94)"),
    ),
    attemptsFailed: meter.createCounter(
      "grpc.subchannel.connection_attempts_failed",
      int("{attempt}", "Connection attempts that failed (gRFC A94)"),
    ),
    disconnections: meter.createCounter(
      "grpc.subchannel.disconnections",
      int("{disconnection}", "READY connections that closed (gRFC A94)"),
    ),
    openConnections: meter.createUpDownCounter(
      "grpc.subchannel.open_connections",
      int("{connection}", "Connections that are READY (gRFC A94)"),
    ),
    healthChanges: meter.createCounter(
      "customlb.health.changes",
      int("{change}", "Health changes of an endpoint's address (gRFC A17)"),
    ),
    unhealthy: meter.createUpDownCounter(
      "customlb.health.unhealthy",
      int("{address}", "Addresses that health checking keeps out of picks"),
    ),
    callDuration: latency(meter, "grpc.client.call.duration", "client"),
    serverCallDuration: latency(meter, "grpc.server.call.duration", "server"),
  };
  return { ...made, connections: new Connections(made) };
}

function latency(meter: Meter, name: string, side: string): Histogram {
  return meter.createHistogram(name, {
    unit: "s",
    description: `A call's time on the ${side}, to its status (gRFC A66)`,
    advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
  });
}

/** The `grpc.target` label of a channel's metrics, from its options. */
export function targetOf(options: grpc.ChannelOptions): string {
  const target = options[METRICS_TARGET];
  return typeof target === "string" ? target : UNKNOWN_TARGET;
}

/**
 * The block's observer for a channel, recording through the global
 * MeterProvider's instruments, or `null` while no SDK is installed: an
 * `ObserverSource` for {@linkcode EndpointSharding}. `current`, the
 * block's observer, is kept while the provider and the target are the
 * same.
 *
 * @param policyName The policy's name, the `customlb.policy` label.
 * @param options The channel's options, whose {@linkcode METRICS_TARGET}
 *   is the `grpc.target` label.
 * @param current The block's observer now, or `null`.
 *
 * @example The block under a policy of one's own, metered
 * ```ts
 * import { connectivityState, experimental } from "@grpc/grpc-js";
 * import { EndpointSharding } from "./endpoint_sharding.ts";
 *
 * class FirstReady extends EndpointSharding {
 *   constructor(helper: experimental.ChannelControlHelper) {
 *     super(helper, {
 *       name: "first_ready",
 *       combine: (state, children) =>
 *         state === connectivityState.READY
 *           ? {
 *             state,
 *             picker: children.find((child) => child.state === state)!.picker,
 *           }
 *           : { state },
 *     }, null, metricsObserver);
 *   }
 * }
 * ```
 */
export function metricsObserver(
  policyName: string,
  options: grpc.ChannelOptions,
  current: ShardingObserver | null,
): ShardingObserver | null {
  const made = instruments();
  if (made === null) return null;
  const target = targetOf(options);
  return current instanceof PolicyMeter && current.instruments === made &&
      current.target === target
    ? current
    : new PolicyMeter(made, policyName, target);
}

/** The states a child can be in, in the order their labels are made. */
const STATES = [
  grpc.connectivityState.IDLE,
  grpc.connectivityState.CONNECTING,
  grpc.connectivityState.READY,
  grpc.connectivityState.TRANSIENT_FAILURE,
] as const;

/** One block's metrics: its endpoints per state, and its children's. */
class PolicyMeter implements ShardingObserver {
  readonly instruments: Instruments;
  readonly target: string;
  readonly policyName: string;
  readonly children = new Set<ChildMeter>();
  /** The `customlb.endpoints` labels, by the index of the state in STATES. */
  readonly #stateLabels: Attributes[];
  /** The children per state last recorded, by the same index. */
  readonly #recorded = [0, 0, 0, 0];

  constructor(made: Instruments, policyName: string, target: string) {
    this.instruments = made;
    this.target = target;
    this.policyName = policyName;
    this.#stateLabels = STATES.map((state) => ({
      "grpc.target": target,
      "customlb.policy": policyName,
      "customlb.state": grpc.connectivityState[state],
    }));
    made.picks.addCallback(this.#observePicks);
  }

  child(key: string): ChildObserver {
    const child = new ChildMeter(this, key);
    this.children.add(child);
    return child;
  }

  states(counts: { count(state: grpc.connectivityState): number }): void {
    STATES.forEach((state, i) => this.#record(i, counts.count(state)));
  }

  close(): void {
    STATES.forEach((_state, i) => this.#record(i, 0));
    this.instruments.picks.removeCallback(this.#observePicks);
  }

  /** Records `count` children in the `i`th state, as a change. */
  #record(i: number, count: number): void {
    const change = count - this.#recorded[i];
    if (change === 0) return;
    this.#recorded[i] = count;
    this.instruments.endpoints.add(change, this.#stateLabels[i]);
  }

  #observePicks = (result: ObservableResult): void => {
    for (const child of this.children) {
      result.observe(child.picks, child.labels);
    }
  };
}

/** One child's metrics: its picks, and its subchannels'. */
class ChildMeter implements ChildObserver {
  picks = 0;
  readonly labels: Attributes;
  readonly #policy: PolicyMeter;
  readonly #subchannels: SubchannelMeter;

  constructor(policy: PolicyMeter, key: string) {
    this.#policy = policy;
    this.labels = {
      "grpc.target": policy.target,
      "customlb.policy": policy.policyName,
      "customlb.endpoint": key,
    };
    this.#subchannels = new SubchannelMeter(policy.instruments, {
      "grpc.target": policy.target,
    });
  }

  picker(picker: grpc.experimental.Picker): grpc.experimental.Picker {
    return {
      pick: (args) => {
        this.picks++;
        return picker.pick(args);
      },
    };
  }

  subchannel(subchannel: grpc.experimental.SubchannelInterface): void {
    this.#subchannels.watch(subchannel);
  }

  close(): void {
    this.#subchannels.close();
    this.#policy.children.delete(this);
  }
}

/** A method's A66 label: its full name without the leading slash. */
function methodLabel(path: string): string {
  return path.startsWith("/") ? path.slice(1) : path;
}

/**
 * A client interceptor that records `grpc.client.call.duration` (gRFC A66,
 * in seconds) for every call, labelled `grpc.method`, `grpc.target` and
 * `grpc.status`. Add it to any grpc-js client or channel. It records
 * through the MeterProvider installed when it is made: make it after the
 * SDK is installed.
 *
 * @param target The `grpc.target` label: the channel's target.
 *
 * @example Timing every call of a client
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 *
 * const target = "dns:///echo.example.com:50051";
 * const client = new grpc.Client(target, grpc.credentials.createInsecure(), {
 *   interceptors: [callMetricsInterceptor(target)],
 * });
 * client.close();
 * ```
 */
export function callMetricsInterceptor(target: string): grpc.Interceptor {
  const duration = instruments()?.callDuration;
  return (options, nextCall) => {
    if (duration === undefined) {
      return new grpc.InterceptingCall(nextCall(options));
    }
    const start = performance.now();
    const method = methodLabel(options.method_definition.path);
    return new grpc.InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        next(metadata, {
          onReceiveStatus(status, nextStatus) {
            duration.record((performance.now() - start) / 1000, {
              "grpc.method": method,
              "grpc.target": target,
              "grpc.status": grpc.status[status.code],
            });
            nextStatus(status);
          },
        });
      },
    });
  };
}

/**
 * A server interceptor that records `grpc.server.call.duration` (gRFC A66,
 * in seconds), from the call's arrival to the status sent, labelled
 * `grpc.method` and `grpc.status`. Give it to a grpc-js `Server`, made
 * after the SDK is installed, as {@linkcode callMetricsInterceptor}.
 *
 * @example A server that times every call
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 *
 * const server = new grpc.Server({
 *   interceptors: [serverCallMetricsInterceptor()],
 * });
 * server.forceShutdown();
 * ```
 */
export function serverCallMetricsInterceptor(): grpc.ServerInterceptor {
  const duration = instruments()?.serverCallDuration;
  return (method, call) => {
    if (duration === undefined) return new grpc.ServerInterceptingCall(call);
    const start = performance.now();
    const label = methodLabel(method.path);
    return new grpc.ServerInterceptingCall(call, {
      sendStatus(status, next) {
        duration.record((performance.now() - start) / 1000, {
          "grpc.method": label,
          "grpc.status": grpc.status[status.code],
        });
        next(status);
      },
    });
  };
}
