/**
 * Endpoint sharding: one pick_first child per endpoint, the building block of
 * policies that spread RPCs over endpoints (as grpc-go's `endpointsharding`).
 *
 * The children do all connection work: Happy Eyeballs across an endpoint's
 * addresses, sticky TRANSIENT_FAILURE and reconnect backoff. When the
 * channel carries a health-check service name, each subchannel they create
 * watches its server's health (see `health_check.ts`). The parent policy
 * only sees each child's state and picker and decides how to combine them.
 *
 * @module
 */
import {
  type ChannelOptions,
  connectivityState as ConnectivityState,
  experimental,
  logVerbosity as LogVerbosity,
} from "@grpc/grpc-js";
import { StateCounts } from "./_aggregate_state.ts";
import {
  HealthCheckedPicker,
  HealthCheckingSubchannel,
  healthCheckServiceNameOf,
} from "./health_check.ts";

const TRACER = "endpoint_sharding";

/**
 * The resolver attribute that names, per address (`host:port`, as
 * `subchannelAddressToString` writes it), the host name that a TLS
 * backend's certificate is verified against: the name the endpoint was
 * given by, where grpc-js alone would verify every endpoint against the
 * channel's target. Its prefix keeps it out of subchannel keys.
 *
 * @example What the manual resolver hands on for `localhost:50050`
 * ```ts
 * const attributes = { [SERVER_NAMES]: { "127.0.0.1:50050": "localhost" } };
 * ```
 */
export const SERVER_NAMES =
  `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.server_names`;

function trace(text: string): void {
  experimental.trace(LogVerbosity.DEBUG, TRACER, text);
}

/** What one endpoint's pick_first child last reported. */
export interface ChildState {
  /** The endpoint this child connects to. */
  readonly endpoint: experimental.Endpoint;
  /** The child's connectivity state. */
  readonly state: ConnectivityState;
  /** The child's picker: delegate a pick to it to send the RPC there. */
  readonly picker: experimental.Picker;
  /** The child's most recent error message, or `null` if it reported none. */
  readonly lastError: string | null;
}

/**
 * Receives the children's states: exactly once at the end of every
 * {@linkcode EndpointSharding.updateEndpoints}, and once after the children
 * report changes, however many report in the same turn of the event loop
 * (in a microtask after the first). Each call sees every child's latest
 * state; none follows {@linkcode EndpointSharding.destroy}.
 *
 * @param state The children's states aggregated: READY if any is READY,
 *   else CONNECTING if any is, else IDLE if any is, else TRANSIENT_FAILURE.
 * @param children One entry per endpoint, in the order of the latest update.
 *   The list is the block's own and changes after the call returns: keep
 *   the entries, or a copy, not the list.
 */
export type ChildStatesListener = (
  state: ConnectivityState,
  children: readonly ChildState[],
) => void;

/**
 * One endpoint's pick_first child, behind the calls the sharding layer makes
 * (as grpc-go's `endpointState`): it makes the child's subchannels, health
 * checked when asked, keeps the child connected, and reports each change.
 */
class Child {
  /** The child policy; only this wrapper calls it. */
  readonly #balancer: experimental.LeafLoadBalancer;
  readonly #helper: experimental.ChannelControlHelper;
  /**
   * The health-check service its subchannels watch, or `null`. Fixed for
   * the child's life: a change of service replaces the child.
   */
  readonly #healthCheckService: string | null;
  readonly #onReport: (child: Child) => void;
  /** Where its entry sits in the parent's list of children. */
  #slot = 0;
  /** The child's latest error message, kept past reports without one. */
  #lastError: string | null = null;
  /** Whether the child's last report was READY. */
  #ready = false;
  /** Set by destroy, after which the child reports nothing. */
  #destroyed = false;
  /** The latest subchannel per address, so that backoff can be reset. */
  readonly #subchannels = new Map<string, experimental.SubchannelInterface>();

  /**
   * Makes the child and starts it connecting.
   *
   * @param onReport Called with the child after every state change it
   *   reports.
   */
  constructor(
    endpoint: experimental.Endpoint,
    helper: experimental.ChannelControlHelper,
    options: ChannelOptions,
    resolutionNote: string,
    healthCheckService: string | null,
    onReport: (child: Child) => void,
  ) {
    this.#helper = helper;
    this.#healthCheckService = healthCheckService;
    this.#onReport = onReport;
    const childHelper = experimental.createChildChannelControlHelper(helper, {
      createSubchannel: (address, options) =>
        this.#createSubchannel(address, options),
      updateState: (state, _picker, errorMessage) =>
        this.#onState(state, errorMessage),
    });
    this.#balancer = new experimental.LeafLoadBalancer(
      endpoint,
      childHelper,
      options,
      resolutionNote,
    );
    this.#balancer.startConnecting();
  }

  /** Where its entry sits in the parent's list of children. */
  get slot(): number {
    return this.#slot;
  }

  /** Moves its entry to `slot` of the parent's list. */
  set slot(slot: number) {
    this.#slot = slot;
  }

  /** The health-check service its subchannels watch, or `null`. */
  get healthCheckService(): string | null {
    return this.#healthCheckService;
  }

  /** The endpoint it connects to. */
  get endpoint(): experimental.Endpoint {
    return this.#balancer.getEndpoint();
  }

  /** What it last reported, with a picker that returns the parent's subchannels. */
  snapshot(): ChildState {
    const picker = this.#balancer.getPicker();
    return {
      endpoint: this.endpoint,
      state: this.#balancer.getConnectivityState(),
      picker: this.#healthCheckService === null
        ? picker
        : new HealthCheckedPicker(picker),
      lastError: this.#lastError,
    };
  }

  /** Takes the endpoint's new addresses and the channel's new options. */
  update(endpoint: experimental.Endpoint, options: ChannelOptions): void {
    this.#balancer.updateEndpoint(endpoint, options);
  }

  exitIdle(): void {
    this.#balancer.exitIdle();
  }

  resetBackoff(): void {
    for (const subchannel of this.#subchannels.values()) {
      subchannel.getRealSubchannel().resetBackoff();
    }
  }

  destroy(): void {
    this.#destroyed = true;
    this.#subchannels.clear();
    this.#balancer.destroy();
  }

  #createSubchannel(
    address: experimental.SubchannelAddress,
    options: ChannelOptions,
  ): experimental.SubchannelInterface {
    const key = experimental.subchannelAddressToString(address);
    const serverName = options[SERVER_NAMES]?.[key];
    const real = this.#helper.createSubchannel(
      address,
      typeof serverName === "string"
        ? { ...options, "grpc.ssl_target_name_override": serverName }
        : options,
    );
    const serviceName = this.#healthCheckService;
    if (serviceName === null) {
      this.#subchannels.set(key, real);
      return real;
    }
    // pick_first asks for new subchannels on every resolver update; the
    // same wrapper keeps one health stream per connection, not one each.
    const known = this.#subchannels.get(key);
    if (
      known instanceof HealthCheckingSubchannel && !known.released &&
      known.realSubchannelEquals(real)
    ) {
      return known;
    }
    const wrapped = new HealthCheckingSubchannel(real, serviceName);
    this.#subchannels.set(key, wrapped);
    return wrapped;
  }

  #onState(state: ConnectivityState, errorMessage: string | null): void {
    if (this.#destroyed) return;
    if (errorMessage) this.#lastError = errorMessage;
    trace(
      `child ${experimental.endpointToString(this.endpoint)} reported ${
        ConnectivityState[state]
      }`,
    );
    // pick_first does not ask for re-resolution, and a lost backend is the
    // sign that the resolver's answer may be stale.
    if (this.#ready && state !== ConnectivityState.READY) {
      this.#helper.requestReresolution();
    }
    this.#ready = state === ConnectivityState.READY;
    if (state === ConnectivityState.IDLE) this.#balancer.exitIdle();
    this.#onReport(this);
  }
}

/**
 * Keeps one pick_first child per endpoint and hands their states and pickers
 * to a parent policy.
 *
 * An update reuses the child of every endpoint that is still present (no
 * reconnect, no failed RPC) and destroys only the children of removed
 * endpoints, and of those whose health-check service changed. A child that
 * goes IDLE is told to exit idle at once, so every endpoint stays connected. A child leaving READY asks the resolver to
 * re-resolve: grpc-js's pick_first does not, and a lost backend is the sign
 * that the resolver's answer may be stale.
 *
 * @example A policy that sends every RPC to the first READY endpoint
 * ```ts
 * import {
 *   type ChannelOptions,
 *   connectivityState,
 *   experimental,
 * } from "@grpc/grpc-js";
 *
 * class FirstReady implements experimental.LoadBalancer {
 *   readonly #sharding: EndpointSharding;
 *
 *   constructor(helper: experimental.ChannelControlHelper) {
 *     this.#sharding = new EndpointSharding(helper, (state, children) => {
 *       const ready = children.find((child) =>
 *         child.state === connectivityState.READY
 *       );
 *       const picker = ready?.picker ??
 *         (state === connectivityState.TRANSIENT_FAILURE
 *           ? new experimental.UnavailablePicker({ details: "all down" })
 *           : new experimental.QueuePicker(this));
 *       helper.updateState(state, picker, null);
 *     });
 *   }
 *
 *   updateAddressList(
 *     endpoints: experimental.StatusOr<experimental.Endpoint[]>,
 *     _config: experimental.TypedLoadBalancingConfig,
 *     options: ChannelOptions,
 *     resolutionNote: string,
 *   ): boolean {
 *     if (!endpoints.ok) return false;
 *     this.#sharding.updateEndpoints(endpoints.value, options, resolutionNote);
 *     return true;
 *   }
 *   exitIdle(): void {
 *     this.#sharding.exitIdle();
 *   }
 *   resetBackoff(): void {
 *     this.#sharding.resetBackoff();
 *   }
 *   destroy(): void {
 *     this.#sharding.destroy();
 *   }
 *   getTypeName(): string {
 *     return "first_ready";
 *   }
 * }
 * ```
 */
export class EndpointSharding {
  readonly #helper: experimental.ChannelControlHelper;
  readonly #onUpdate: ChildStatesListener;
  /** Children in the order of the latest endpoint list. */
  #children: Child[] = [];
  /** The same children by {@linkcode endpointKey}. */
  #byKey = new Map<string, Child>();
  /** What each child last reported, in the children's order. */
  readonly #states: ChildState[] = [];
  /** How many of {@linkcode #states} are in each state. */
  readonly #counts = new StateCounts();
  #updating = false;
  /** Whether a child changed since the listener last ran. */
  #changed = false;
  /** Whether a microtask to run the listener is queued. */
  #queued = false;

  /**
   * Starts with no children; the first {@linkcode updateEndpoints} makes them.
   *
   * @param helper The parent policy's helper: children create subchannels and
   *   request re-resolution through it.
   * @param onUpdate Receives the children's aggregated state and their list.
   */
  constructor(
    helper: experimental.ChannelControlHelper,
    onUpdate: ChildStatesListener,
  ) {
    this.#helper = helper;
    this.#onUpdate = onUpdate;
  }

  /** How many children there are: one per distinct endpoint. */
  get size(): number {
    return this.#children.length;
  }

  /**
   * Makes the children match `endpoints`: keeps the children of endpoints
   * still present (updating their addresses and options) unless the
   * health-check service in `options` changed, creates children for new
   * endpoints and destroys the rest. Duplicate endpoints share one
   * child. Reports once, after all children are in place. Costs O(n) in the
   * endpoints: each is found by its addresses in a hash map.
   */
  updateEndpoints(
    endpoints: readonly experimental.Endpoint[],
    options: ChannelOptions,
    resolutionNote: string,
  ): void {
    trace(`update to ${endpoints.length} endpoints`);
    const healthCheckService = healthCheckServiceNameOf(options);
    const previous = this.#byKey;
    const next = new Map<string, Child>();
    this.#updating = true;
    for (const endpoint of endpoints) {
      const key = endpointKey(endpoint);
      if (next.has(key)) continue;
      let child = previous.get(key);
      // A child keeps the subchannel it has picked, so one made before health
      // checking changed would go on without it: such a child is replaced.
      if (child?.healthCheckService === healthCheckService) {
        previous.delete(key);
        child.update(endpoint, options);
      } else {
        child = new Child(
          endpoint,
          this.#helper,
          options,
          resolutionNote,
          healthCheckService,
          (child) => this.#onChildReport(child),
        );
      }
      next.set(key, child);
    }
    for (const [key, removed] of previous) {
      trace(`remove child ${key}`);
      removed.destroy();
    }
    this.#byKey = next;
    this.#children = [...next.values()];
    this.#updating = false;
    this.#takeStates();
    this.#report();
  }

  /** Tells every child to leave IDLE and connect. */
  exitIdle(): void {
    for (const child of this.#children) child.exitIdle();
  }

  /** Resets the reconnect backoff of every child's subchannels. */
  resetBackoff(): void {
    for (const child of this.#children) child.resetBackoff();
  }

  /** Destroys every child; no report follows. */
  destroy(): void {
    for (const child of this.#children) child.destroy();
    this.#children = [];
    this.#byKey = new Map();
    this.#states.length = 0;
    this.#counts.clear();
    this.#changed = false;
  }

  /** Reads every child's state afresh, after an update. */
  #takeStates(): void {
    this.#states.length = this.#children.length;
    this.#counts.clear();
    this.#children.forEach((child, slot) => {
      child.slot = slot;
      const state = child.snapshot();
      this.#states[slot] = state;
      this.#counts.add(state.state);
    });
  }

  /** One child's change: O(1), and one listener run for a turn's changes. */
  #onChildReport(child: Child): void {
    if (this.#updating) return;
    const state = child.snapshot();
    this.#counts.remove(this.#states[child.slot].state);
    this.#counts.add(state.state);
    this.#states[child.slot] = state;
    this.#changed = true;
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      if (this.#changed) this.#report();
    });
  }

  #report(): void {
    this.#changed = false;
    this.#onUpdate(this.#counts.aggregate(), this.#states);
  }
}

/**
 * An endpoint's identity, its set of addresses (gRFC A61), as one string:
 * the same for the same addresses in any order.
 */
function endpointKey(endpoint: experimental.Endpoint): string {
  const addresses = endpoint.addresses.map(
    experimental.subchannelAddressToString,
  );
  return addresses.length === 1 ? addresses[0] : addresses.sort().join(" ");
}
