/**
 * Client-side health checking (gRFC A17) for grpc-js, which has none.
 *
 * With `"healthCheckConfig": {"serviceName": "<name>"}` in the service
 * config, a balancer gives each child policy a helper decorated by
 * {@linkcode healthCheckingHelper}: every subchannel the child creates is
 * wrapped in a {@linkcode HealthCheckingSubchannel}, and the child's picker
 * hands back the subchannels underneath. Once connected it opens a
 * `grpc.health.v1.Health/Watch` stream and reports itself READY only after
 * the first answer, healthy only while the latest answer is SERVING. grpc-js's
 * pick_first, as `LeafLoadBalancer`, already turns an unhealthy pick into
 * TRANSIENT_FAILURE, so the parent policy moves traffic away by itself.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";

const TRACER = "health_check";
const WATCH_METHOD = "/grpc.health.v1.Health/Watch";
const watch = healthService.Watch;

/**
 * The channel option (or resolver attribute) that carries the health-check
 * service name to the balancer. Its prefix keeps it out of subchannel keys,
 * so a changed name does not force new connections.
 */
export const HEALTH_CHECK_SERVICE_NAME =
  `${grpc.experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.health_check_service_name`;

/**
 * Reads `healthCheckConfig.serviceName` from a parsed service config.
 *
 * @returns the service name, or `null` when health checking is off (no
 *   `healthCheckConfig`, or one without `serviceName`).
 * @throws {Error} when `healthCheckConfig` or its `serviceName` has the
 *   wrong type.
 */
export function healthCheckServiceFromConfig(
  serviceConfig: unknown,
): string | null {
  const config = (serviceConfig as { healthCheckConfig?: unknown })
    ?.healthCheckConfig;
  if (config === undefined) return null;
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new Error(
      `healthCheckConfig must be an object, got ${JSON.stringify(config)}`,
    );
  }
  const name = (config as { serviceName?: unknown }).serviceName;
  if (name === undefined) return null;
  if (typeof name !== "string") {
    throw new Error(
      `healthCheckConfig.serviceName must be a string, got ${
        JSON.stringify(name)
      }`,
    );
  }
  return name;
}

/**
 * The health-check service name a balancer sees in its channel options: the
 * resolver's {@linkcode HEALTH_CHECK_SERVICE_NAME} attribute if there is one
 * (`null` there: the resolver's service config has no health checking),
 * else the one in the `grpc.service_config` channel option, else `null`.
 */
export function healthCheckServiceFromOptions(
  options: grpc.ChannelOptions,
): string | null {
  // A resolver's service config, even one without health checking, takes
  // the place of the channel's default.
  if (HEALTH_CHECK_SERVICE_NAME in options) {
    const name = options[HEALTH_CHECK_SERVICE_NAME];
    return typeof name === "string" ? name : null;
  }
  const json = options["grpc.service_config"];
  if (typeof json !== "string") return null;
  try {
    return healthCheckServiceFromConfig(JSON.parse(json));
  } catch {
    // grpc-js rejects such a channel option itself when the channel is made.
    return null;
  }
}

/**
 * `parent`, decorated for one child policy with health checking (gRFC A17):
 * each subchannel the child creates is a {@linkcode HealthCheckingSubchannel}
 * watching `serviceName`, and each picker it reports is a
 * {@linkcode HealthCheckUnwrappingPicker}, so that its picks hand `parent`'s
 * subchannels back. pick_first asks for its subchannels again on every
 * resolver update: the wrapper of a connection is reused while it lives, so
 * that a connection keeps one health stream.
 *
 * @param parent The helper the child's subchannels and states go to.
 * @param serviceName The service whose health is asked for; `""` asks for
 *   the server as a whole.
 *
 * @example A pick_first child whose subchannels are health checked
 * ```ts
 * import { experimental } from "@grpc/grpc-js";
 *
 * function healthCheckedLeaf(
 *   helper: experimental.ChannelControlHelper,
 *   endpoint: experimental.Endpoint,
 * ): experimental.LeafLoadBalancer {
 *   return new experimental.LeafLoadBalancer(
 *     endpoint,
 *     healthCheckingHelper(helper, "grpc.examples.echo.Echo"),
 *     {},
 *     "",
 *   );
 * }
 * ```
 */
export function healthCheckingHelper(
  parent: grpc.experimental.ChannelControlHelper,
  serviceName: string,
): grpc.experimental.ChannelControlHelper {
  /** The latest wrapper per address. */
  const latest = new Map<string, HealthCheckingSubchannel>();
  return grpc.experimental.createChildChannelControlHelper(parent, {
    createSubchannel(address, options) {
      const real = parent.createSubchannel(address, options);
      const key = real.getAddress();
      const known = latest.get(key);
      if (
        known !== undefined && !known.released &&
        known.realSubchannelEquals(real)
      ) {
        return known;
      }
      const made = new HealthCheckingSubchannel(real, serviceName);
      latest.set(key, made);
      return made;
    },
    updateState(state, picker, errorMessage) {
      parent.updateState(
        state,
        new HealthCheckUnwrappingPicker(picker),
        errorMessage,
      );
    },
  });
}

/** Addresses whose UNIMPLEMENTED answer was logged, so it is logged once. */
const loggedUnimplemented = new Set<string>();

/**
 * A subchannel that watches its server's health.
 *
 * Its connectivity state is the real subchannel's, except that a READY
 * connection shows as CONNECTING until the first health answer arrives. Its
 * health is the latest answer: SERVING is healthy; NOT_SERVING,
 * SERVICE_UNKNOWN and a broken stream are not. A server without the health
 * service (UNIMPLEMENTED) counts as healthy. A broken stream is re-opened
 * with backoff while the connection lasts; the stream is closed when the
 * connection goes or the subchannel is released.
 *
 * @example Wrapping the subchannels of a child policy
 * ```ts
 * import { experimental } from "@grpc/grpc-js";
 *
 * function healthChecked(
 *   parent: experimental.ChannelControlHelper,
 * ): experimental.ChannelControlHelper {
 *   return experimental.createChildChannelControlHelper(parent, {
 *     createSubchannel: (address, options) =>
 *       new HealthCheckingSubchannel(
 *         parent.createSubchannel(address, options),
 *         "grpc.examples.echo.Echo",
 *       ),
 *   });
 * }
 * ```
 */
export class HealthCheckingSubchannel
  extends grpc.experimental.BaseSubchannelWrapper {
  readonly #serviceName: string;
  readonly #listeners = new Set<grpc.experimental.ConnectivityStateListener>();
  #state: grpc.connectivityState;
  #started = false;
  #released = false;
  #call: grpc.ClientReadableStream<{ status: string }> | null = null;
  /** Whether the current stream has delivered an answer. */
  #answered = false;
  readonly #retry = new grpc.experimental.BackoffTimeout(() => this.#watch());

  /**
   * Wraps `child`; health is watched from the first {@linkcode ref} on.
   *
   * @param child The subchannel to wrap.
   * @param serviceName The service whose health is asked for; `""` asks for
   *   the server as a whole.
   */
  constructor(
    child: grpc.experimental.SubchannelInterface,
    serviceName: string,
  ) {
    super(child);
    this.#serviceName = serviceName;
    this.#state = shown(child.getConnectivityState());
    this.#retry.unref();
  }

  /** The service whose health is watched. */
  get serviceName(): string {
    return this.#serviceName;
  }

  /** Whether every reference was released, which stops it for good. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * The subchannel this one wraps: the one the parent policy's helper made,
   * which is what a pick must return (see {@linkcode HealthCheckUnwrappingPicker}).
   */
  getWrappedSubchannel(): grpc.experimental.SubchannelInterface {
    return this.child;
  }

  /** The real subchannel's state, READY only once the server answered. */
  override getConnectivityState(): grpc.connectivityState {
    return this.#state;
  }

  /** Adds a listener to this wrapper's own state changes. */
  override addConnectivityStateListener(
    listener: grpc.experimental.ConnectivityStateListener,
  ): void {
    this.#listeners.add(listener);
  }

  /** Removes a listener added by `addConnectivityStateListener`. */
  override removeConnectivityStateListener(
    listener: grpc.experimental.ConnectivityStateListener,
  ): void {
    this.#listeners.delete(listener);
  }

  /**
   * Takes a reference. The first one starts watching: pick_first creates
   * subchannels it never references, and those must hold no stream open.
   */
  override ref(): void {
    super.ref();
    if (this.#started || this.#released) return;
    this.#started = true;
    this.child.addConnectivityStateListener(this.#onChildState);
    // The child may have moved since the wrapper was made.
    const state = this.child.getConnectivityState();
    if (state === grpc.connectivityState.READY) this.#watch();
    this.#setState(shown(state));
  }

  /** Stops watching for good; called when the last reference goes. */
  protected override destroy(): void {
    super.destroy();
    this.#released = true;
    this.child.removeConnectivityStateListener(this.#onChildState);
    this.#stop();
  }

  #onChildState = (
    _subchannel: grpc.experimental.SubchannelInterface,
    _previous: grpc.connectivityState,
    state: grpc.connectivityState,
    _keepaliveTime: number,
    errorMessage?: string,
  ): void => {
    if (state === grpc.connectivityState.READY) {
      this.#watch();
    } else {
      this.#stop();
      this.#retry.reset();
    }
    this.#setState(shown(state), errorMessage);
  };

  #watch(): void {
    if (this.#released || this.#call !== null) return;
    this.#trace(`watching "${this.#serviceName}"`);
    // Never closed, on purpose: the client runs on the subchannel's own
    // channel, and closing it would close that channel. The call is
    // cancelled instead (#stop).
    const client = new grpc.Client("", grpc.credentials.createInsecure(), {
      channelOverride: failingToStatus(this.child.getChannel()),
    });
    const call = client.makeServerStreamRequest(
      WATCH_METHOD,
      watch.requestSerialize,
      watch.responseDeserialize,
      { service: this.#serviceName },
    ) as grpc.ClientReadableStream<{ status: string }>;
    this.#call = call;
    this.#answered = false;
    call.on("data", ({ status }: { status: string }) => {
      if (this.#call !== call) return;
      this.#answered = true;
      this.#trace(`"${this.#serviceName}" is ${status}`);
      this.#answer(status === "SERVING");
    });
    call.on("error", (error: grpc.ServiceError) => this.#ended(call, error));
    call.on("end", () => this.#ended(call, null));
  }

  #ended(
    call: grpc.ClientReadableStream<unknown>,
    error: grpc.ServiceError | null,
  ): void {
    if (this.#call !== call) return;
    this.#call = null;
    if (error?.code === grpc.status.UNIMPLEMENTED) {
      const address = this.getAddress();
      if (!loggedUnimplemented.has(address)) {
        loggedUnimplemented.add(address);
        grpc.experimental.log(
          grpc.logVerbosity.ERROR,
          `${TRACER}: ${address} does not implement grpc.health.v1.Health; treating it as healthy`,
        );
      }
      this.#answer(true);
      return;
    }
    const reason = error
      ? `${grpc.status[error.code]}: ${error.details}`
      : "stream ended";
    this.#trace(`health stream broke: ${reason}`);
    if (this.child.getConnectivityState() !== grpc.connectivityState.READY) {
      return;
    }
    // A17: unhealthy until the stream is back; a stream that had answered is
    // re-opened at once, one that never answered after a backoff.
    this.#answer(false);
    if (this.#answered) {
      this.#retry.reset();
      this.#watch();
    } else {
      this.#retry.runOnce();
    }
  }

  #answer(healthy: boolean): void {
    this.setHealthy(healthy);
    this.#setState(grpc.connectivityState.READY);
  }

  #stop(): void {
    this.#retry.stop();
    const call = this.#call;
    this.#call = null;
    call?.cancel();
  }

  #setState(state: grpc.connectivityState, errorMessage?: string): void {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    for (const listener of [...this.#listeners]) {
      listener(this, previous, state, -1, errorMessage);
    }
  }

  #trace(text: string): void {
    grpc.experimental.trace(
      grpc.logVerbosity.DEBUG,
      TRACER,
      `${this.getAddress()} ${text}`,
    );
  }
}

/**
 * `channel`, whose calls end with UNAVAILABLE when they fail to start,
 * instead of throwing where nothing can catch it. A subchannel's channel
 * starts a call in an async function that does not catch an error from
 * `session.request`, which throws when the connection went down before
 * grpc-js saw it go: the rejection was unhandled and ended the process
 * (docs/known_issues.md). A health stream re-opened the moment the last one
 * broke is the call that meets that moment.
 */
function failingToStatus(
  channel: grpc.ChannelInterface,
): grpc.ChannelInterface {
  return {
    close: () => channel.close(),
    getTarget: () => channel.getTarget(),
    getConnectivityState: (tryToConnect) =>
      channel.getConnectivityState(tryToConnect),
    watchConnectivityState: (state, deadline, callback) =>
      channel.watchConnectivityState(state, deadline, callback),
    getChannelzRef: () => channel.getChannelzRef(),
    createCall: (...args) => {
      const call = channel.createCall(...args);
      const start = call.start.bind(call);
      call.start = (metadata, listener) => {
        // Typed void, but an async function's promise in grpc-js.
        const started: unknown = start(metadata, listener);
        if (!(started instanceof Promise)) return;
        started.catch((error: Error) =>
          listener.onReceiveStatus({
            code: grpc.status.UNAVAILABLE,
            details: `the call could not start: ${error.message}`,
            metadata: new grpc.Metadata(),
          })
        );
      };
      return call;
    },
  };
}

/**
 * A child policy's picker whose picks return the subchannel the parent's
 * helper made, not the {@linkcode HealthCheckingSubchannel} around it.
 *
 * The wrapper exists only between the child policy and the layer that made
 * it: a parent that wraps subchannels itself, as grpc-js's
 * `outlier_detection` does, expects its own wrapper back from every pick,
 * and fails on any other. grpc-js's `weighted_round_robin` unwraps its ORCA
 * wrapper the same way.
 *
 * @example The picker of a child policy whose subchannels are wrapped
 * ```ts
 * import { experimental } from "@grpc/grpc-js";
 *
 * function pickerOf(child: experimental.LeafLoadBalancer): experimental.Picker {
 *   return new HealthCheckUnwrappingPicker(child.getPicker());
 * }
 * ```
 */
export class HealthCheckUnwrappingPicker implements grpc.experimental.Picker {
  readonly #picker: grpc.experimental.Picker;

  /**
   * Wraps `picker`.
   *
   * @param picker The child policy's picker.
   */
  constructor(picker: grpc.experimental.Picker) {
    this.#picker = picker;
  }

  /** The child's pick, with its subchannel unwrapped. */
  pick(
    pickArgs: grpc.experimental.PickArgs,
  ): grpc.experimental.PickResult {
    const result = this.#picker.pick(pickArgs);
    return result.subchannel instanceof HealthCheckingSubchannel
      ? { ...result, subchannel: result.subchannel.getWrappedSubchannel() }
      : result;
  }
}

/** What a wrapper shows for its real subchannel's state before any answer. */
function shown(state: grpc.connectivityState): grpc.connectivityState {
  return state === grpc.connectivityState.READY
    ? grpc.connectivityState.CONNECTING
    : state;
}
