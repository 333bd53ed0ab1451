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

/**
 * One endpoint's pick_first child as its parent sees it: what it last
 * reported. An entry always shows its child's latest report.
 */
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
 *   The list and its entries are the block's own, and go on showing the
 *   children's latest reports after the call returns: read them during the
 *   call, and keep what you need of them (a picker), not them.
 */
export type ChildStatesListener = (
  state: ConnectivityState,
  children: readonly ChildState[],
) => void;

/** What a child tells its parent, and the helper it creates through. */
interface Owner {
  readonly helper: experimental.ChannelControlHelper;
  /** After each state change; `previous` is the state before it. */
  report(child: Child, previous: ConnectivityState): void;
}

/**
 * One endpoint's pick_first child, behind the calls the sharding layer makes
 * (as grpc-go's `endpointState`): it makes the child's subchannels, health
 * checked when asked, keeps the child connected, and reports each change.
 *
 * To keep a child to one small object, it is also the helper its pick_first
 * sees, and the entry the parent's listener reads, which shows its latest
 * report.
 */
class Child implements experimental.ChannelControlHelper, ChildState {
  /** Its endpoint's {@linkcode endpointKey}, for traces. */
  readonly #key: string;
  /** The child policy; only this wrapper calls it. */
  readonly #balancer: experimental.LeafLoadBalancer;
  readonly #owner: Owner;
  /**
   * The health-check service its subchannels watch, or `null`. Fixed for
   * the child's life: a change of service replaces the child.
   */
  readonly #healthCheckService: string | null;
  /** Set by destroy, after which the child reports nothing. */
  #destroyed = false;
  /** The state it last reported. */
  #state: ConnectivityState = ConnectivityState.IDLE;
  /** The child's latest error message, kept past reports without one. */
  #lastError: string | null = null;
  /**
   * The latest subchannel per address, so that backoff can be reset: the
   * one subchannel of a one-address endpoint, or a Map by
   * {@linkcode addressKey} for an endpoint of several.
   */
  #subchannels:
    | experimental.SubchannelInterface
    | Map<string, experimental.SubchannelInterface>
    | null = null;

  /**
   * Makes the child and starts it connecting.
   *
   * @param key The endpoint's {@linkcode endpointKey}.
   */
  constructor(
    key: string,
    endpoint: experimental.Endpoint,
    owner: Owner,
    options: ChannelOptions,
    resolutionNote: string,
    healthCheckService: string | null,
  ) {
    this.#key = key;
    this.#owner = owner;
    this.#healthCheckService = healthCheckService;
    // A kept child's endpoint keeps its addresses, so this holds for life.
    if (endpoint.addresses.length > 1) this.#subchannels = new Map();
    this.#balancer = new experimental.LeafLoadBalancer(
      endpoint,
      this,
      options,
      resolutionNote,
    );
    this.#balancer.startConnecting();
  }

  /** The health-check service its subchannels watch, or `null`. */
  get healthCheckService(): string | null {
    return this.#healthCheckService;
  }

  /** The endpoint it connects to. */
  get endpoint(): experimental.Endpoint {
    return this.#balancer.getEndpoint();
  }

  /** The state it last reported. */
  get state(): ConnectivityState {
    return this.#state;
  }

  /** Its picker, which returns the subchannels the parent's helper made. */
  get picker(): experimental.Picker {
    const picker = this.#balancer.getPicker();
    return this.#healthCheckService === null
      ? picker
      : new HealthCheckedPicker(picker);
  }

  /** Its latest error message, or `null`. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Takes the endpoint's new addresses and the channel's new options. */
  update(endpoint: experimental.Endpoint, options: ChannelOptions): void {
    this.#balancer.updateEndpoint(endpoint, options);
  }

  exitIdle(): void {
    this.#balancer.exitIdle();
  }

  resetBackoff(): void {
    const subchannels = this.#subchannels;
    const all = subchannels instanceof Map
      ? [...subchannels.values()]
      : [subchannels];
    for (const subchannel of all) {
      subchannel?.getRealSubchannel().resetBackoff();
    }
  }

  destroy(): void {
    this.#destroyed = true;
    if (this.#subchannels instanceof Map) this.#subchannels.clear();
    else this.#subchannels = null;
    this.#balancer.destroy();
  }

  /** Makes a subchannel for pick_first, through the parent's helper. */
  createSubchannel(
    address: experimental.SubchannelAddress,
    options: ChannelOptions,
  ): experimental.SubchannelInterface {
    const names = options[SERVER_NAMES];
    const serverName = names === undefined
      ? undefined
      : names[experimental.subchannelAddressToString(address)];
    const real = this.#owner.helper.createSubchannel(
      address,
      typeof serverName === "string"
        ? { ...options, "grpc.ssl_target_name_override": serverName }
        : options,
    );
    const subchannels = this.#subchannels;
    const key = subchannels instanceof Map ? addressKey(address) : "";
    const known = subchannels instanceof Map
      ? subchannels.get(key)
      : subchannels;
    const serviceName = this.#healthCheckService;
    // pick_first asks for new subchannels on every resolver update; the
    // same wrapper keeps one health stream per connection, not one each.
    const made = serviceName === null
      ? real
      : known instanceof HealthCheckingSubchannel && !known.released &&
          known.realSubchannelEquals(real)
      ? known
      : new HealthCheckingSubchannel(real, serviceName);
    if (subchannels instanceof Map) subchannels.set(key, made);
    else this.#subchannels = made;
    return made;
  }

  /** What pick_first reports: its state, and why it failed. */
  updateState(
    state: ConnectivityState,
    _picker: experimental.Picker,
    errorMessage: string | null,
  ): void {
    if (this.#destroyed) return;
    if (errorMessage) this.#lastError = errorMessage;
    trace(`child ${this.#key} reported ${ConnectivityState[state]}`);
    const previous = this.#state;
    this.#state = state;
    // pick_first does not ask for re-resolution, and a lost backend is the
    // sign that the resolver's answer may be stale.
    if (
      previous === ConnectivityState.READY && state !== ConnectivityState.READY
    ) {
      this.#owner.helper.requestReresolution();
    }
    // Reported first: exitIdle makes pick_first report CONNECTING from
    // within it, and that report's previous state must be this one.
    this.#owner.report(this, previous);
    if (state === ConnectivityState.IDLE) this.#balancer.exitIdle();
  }

  requestReresolution(): void {
    this.#owner.helper.requestReresolution();
  }

  addChannelzChild(child: ChannelzRef): void {
    this.#owner.helper.addChannelzChild(child);
  }

  removeChannelzChild(child: ChannelzRef): void {
    this.#owner.helper.removeChannelzChild(child);
  }
}

/** What a helper's channelz calls take. */
type ChannelzRef = Parameters<
  experimental.ChannelControlHelper["addChannelzChild"]
>[0];

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
  readonly #onUpdate: ChildStatesListener;
  /** What the children tell this layer, and the helper they use. */
  readonly #owner: Owner;
  /**
   * The children by {@linkcode endpointKey}, in the order of the latest
   * endpoint list (a Map keeps the order of insertion).
   */
  #children = new Map<string, Child>();
  /** The same children in a list, what the listener gets. */
  #list: Child[] = [];
  /** How many children are in each state. */
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
    this.#onUpdate = onUpdate;
    this.#owner = {
      helper,
      report: (child, previous) => this.#onChildReport(child, previous),
    };
  }

  /** How many children there are: one per distinct endpoint. */
  get size(): number {
    return this.#children.size;
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
    const previous = this.#children;
    const next = new Map<string, Child>();
    const list: Child[] = [];
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
          key,
          endpoint,
          this.#owner,
          options,
          resolutionNote,
          healthCheckService,
        );
      }
      next.set(key, child);
      list.push(child);
    }
    for (const [key, removed] of previous) {
      trace(`remove child ${key}`);
      removed.destroy();
    }
    this.#children = next;
    this.#list = list;
    this.#updating = false;
    this.#counts.clear();
    for (const child of this.#list) this.#counts.add(child.state);
    this.#report();
  }

  /** Tells every child to leave IDLE and connect. */
  exitIdle(): void {
    for (const child of this.#list) child.exitIdle();
  }

  /** Resets the reconnect backoff of every child's subchannels. */
  resetBackoff(): void {
    for (const child of this.#list) child.resetBackoff();
  }

  /** Destroys every child; no report follows. */
  destroy(): void {
    for (const child of this.#list) child.destroy();
    this.#children = new Map();
    this.#list = [];
    this.#counts.clear();
    this.#changed = false;
  }

  /** One child's change: O(1), and one listener run for a turn's changes. */
  #onChildReport(child: Child, previous: ConnectivityState): void {
    if (this.#updating) return;
    this.#counts.remove(previous);
    this.#counts.add(child.state);
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
    this.#onUpdate(this.#counts.aggregate(), this.#list);
  }
}

/**
 * An endpoint's identity, its set of addresses (gRFC A61), as one string:
 * the same for the same addresses in any order.
 */
function endpointKey(endpoint: experimental.Endpoint): string {
  const { addresses } = endpoint;
  return addresses.length === 1
    ? addressKey(addresses[0])
    : addresses.map(addressKey).sort().join(" ");
}

/**
 * An address as `subchannelAddressToString` writes it (`[::1]:50051` for
 * IPv6), without its IPv6 check, a regular expression that costs more than
 * the rest of a child's bookkeeping: a host with a colon is IPv6.
 */
function addressKey(address: experimental.SubchannelAddress): string {
  if ("path" in address) return address.path;
  const { host, port } = address;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
