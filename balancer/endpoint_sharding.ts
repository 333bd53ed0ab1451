/**
 * Endpoint sharding: a load balancer that keeps one child policy per
 * endpoint, pick_first by default, and leaves to the policy built on it
 * only how the children's states combine (as grpc-go's `endpointsharding`).
 *
 * The children do all connection work: Happy Eyeballs across an endpoint's
 * addresses, sticky TRANSIENT_FAILURE and reconnect backoff. When the
 * channel carries a health-check service name, each subchannel they create
 * watches its server's health (see `health_check.ts`). A policy on the block
 * ({@linkcode ShardedPolicy}) supplies its name, what endpoint lists it
 * refuses, and how its children's states become a picker.
 *
 * @module
 */
import {
  type ChannelOptions,
  connectivityState as ConnectivityState,
  experimental,
  logVerbosity as LogVerbosity,
} from "@grpc/grpc-js";
import type { ObservableResult } from "@opentelemetry/api";
import { StateCounts } from "./_aggregate_state.ts";
import { type Instruments, instruments, targetOf } from "./metrics.ts";
import { SubchannelMeter } from "./_subchannel_meter.ts";
import {
  HealthCheckingSubchannel,
  healthCheckServiceFromOptions,
  HealthCheckUnwrappingPicker,
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
 * One endpoint's child as the policy sees it: what it last reported. An
 * entry always shows its child's latest report.
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
 * What a policy on the block shows the channel: a state, and the picker
 * and error message that go with it.
 */
export interface PolicyState {
  /** The policy's connectivity state. */
  readonly state: ConnectivityState;
  /**
   * The picker. Left out, the block's own for the state: one that fails
   * RPCs with `errorMessage` in TRANSIENT_FAILURE, one that queues them in
   * any other state.
   */
  readonly picker?: experimental.Picker;
  /** Why the policy is in TRANSIENT_FAILURE; `null` or left out otherwise. */
  readonly errorMessage?: string | null;
}

/**
 * What a policy built on {@linkcode EndpointSharding} supplies: its name,
 * the endpoint lists it refuses, and how its children's states combine.
 * Its config is the class registered with it, checked by grpc-js with
 * `createFromJson`; the block hands the latest one on.
 *
 * @typeParam Config The policy's config class.
 *
 * @example A policy that sends every RPC to the first READY endpoint
 * ```ts
 * import { connectivityState, experimental } from "@grpc/grpc-js";
 *
 * const firstReady: ShardedPolicy = {
 *   name: "first_ready",
 *   combine: (state, children) => ({
 *     state,
 *     picker: children.find((child) =>
 *       child.state === connectivityState.READY
 *     )?.picker,
 *     errorMessage: "every endpoint is down",
 *   }),
 * };
 * ```
 */
export interface ShardedPolicy<
  Config extends experimental.TypedLoadBalancingConfig =
    experimental.TypedLoadBalancingConfig,
> {
  /**
   * The name the policy is registered and configured under: the block's
   * `getTypeName`, and the name of the configs it takes.
   */
  readonly name: string;
  /**
   * Why the policy cannot use `endpoints`, or `null` when it can. A refused
   * list is logged, asks for re-resolution and is then handled as a
   * resolver error with this reason (see {@linkcode EndpointSharding}).
   */
  refuse?(endpoints: readonly experimental.Endpoint[], config: Config):
    | string
    | null;
  /**
   * What the channel sees, given the children's states: called once at the
   * end of every accepted update, and once after the children report
   * changes, however many report in the same turn of the event loop (in a
   * microtask after the first). None follows `destroy`.
   *
   * @param state The children's states aggregated: READY if any is READY,
   *   else CONNECTING if any is, else IDLE if any is, else
   *   TRANSIENT_FAILURE (also for no children).
   * @param children One entry per endpoint, in the order of the latest
   *   update. The list and its entries are the block's own, and go on
   *   showing the children's latest reports after the call returns: read
   *   them during the call, and keep what you need of them (a picker), not
   *   them.
   * @param config The policy's latest config.
   */
  combine(
    state: ConnectivityState,
    children: readonly ChildState[],
    config: Config,
  ): PolicyState;
}

/** What a child tells the block, and the helper and policy it runs with. */
interface Owner {
  readonly helper: experimental.ChannelControlHelper;
  /** The child policy's config, or `null` for pick_first as a leaf. */
  readonly childPolicy: experimental.TypedLoadBalancingConfig | null;
  /** The latest update's resolution note, which children hand their policy. */
  resolutionNote: string;
  /** The instruments, or `null` when no OpenTelemetry SDK is installed. */
  readonly instruments: Instruments | null;
  /** The policy's name, a label of its metrics. */
  readonly policyName: string;
  /** After each state change; `previous` is the state before it. */
  report(child: Child, previous: ConnectivityState): void;
}

/** A child's picker that counts the picks delegated to it, for metrics. */
class CountingPicker implements experimental.Picker {
  readonly #picker: experimental.Picker;
  readonly #child: Child;

  constructor(picker: experimental.Picker, child: Child) {
    this.#picker = picker;
    this.#child = child;
  }

  pick(pickArgs: experimental.PickArgs): experimental.PickResult {
    this.#child.picks++;
    return this.#picker.pick(pickArgs);
  }
}

/** What a child's picker queues with before the child's first report. */
const QUEUE: experimental.Picker = {
  pick: () => ({
    pickResultType: experimental.PickResultType.QUEUE,
    subchannel: null,
    status: null,
    onCallStarted: null,
    onCallEnded: null,
  }),
};

/**
 * One endpoint's child policy, behind the calls the block makes (as
 * grpc-go's `endpointState`): it makes the child's subchannels, health
 * checked when asked, keeps the child connected, and reports each change.
 *
 * To keep a child to one small object, it is also the helper its policy
 * sees, and the entry the policy's `combine` reads, which shows its latest
 * report.
 */
class Child implements experimental.ChannelControlHelper, ChildState {
  /** Its endpoint's {@linkcode endpointKey}, for traces. */
  readonly #key: string;
  /**
   * The child policy; only this wrapper calls it. pick_first runs as
   * grpc-js's `LeafLoadBalancer`, which turns an unhealthy pick into
   * TRANSIENT_FAILURE; any other policy runs behind a
   * `ChildLoadBalancerHandler`.
   */
  readonly #balancer:
    | experimental.LeafLoadBalancer
    | experimental.ChildLoadBalancerHandler;
  readonly #owner: Owner;
  /**
   * The health-check service its subchannels watch, or `null`. Fixed for
   * the child's life: a change of service replaces the child.
   */
  readonly #healthCheckService: string | null;
  #endpoint: experimental.Endpoint;
  /** Set by destroy, after which the child reports nothing. */
  #destroyed = false;
  /** The state it last reported. */
  #state: ConnectivityState = ConnectivityState.IDLE;
  /** The picker it last reported. */
  #picker: experimental.Picker = QUEUE;
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
  /** Meters its subchannels; `null` without an OpenTelemetry SDK. */
  readonly #meter: SubchannelMeter | null;
  /** Picks its picker was given, counted only with metrics on. */
  picks = 0;
  /** The labels of its picks. */
  readonly pickLabels: Readonly<Record<string, string>>;

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
    healthCheckService: string | null,
  ) {
    this.#key = key;
    this.#owner = owner;
    this.#healthCheckService = healthCheckService;
    this.#endpoint = endpoint;
    const target = targetOf(options);
    this.#meter = owner.instruments === null
      ? null
      : new SubchannelMeter(owner.instruments, target);
    this.pickLabels = {
      "grpc.target": target,
      "customlb.policy": owner.policyName,
      "customlb.endpoint": key,
    };
    // A kept child's endpoint keeps its addresses, so this holds for life.
    if (endpoint.addresses.length > 1) this.#subchannels = new Map();
    if (owner.childPolicy === null) {
      const leaf = new experimental.LeafLoadBalancer(
        endpoint,
        this,
        options,
        owner.resolutionNote,
      );
      this.#balancer = leaf;
      leaf.startConnecting();
    } else {
      this.#balancer = new experimental.ChildLoadBalancerHandler(this);
      this.update(endpoint, options);
    }
  }

  /** The health-check service its subchannels watch, or `null`. */
  get healthCheckService(): string | null {
    return this.#healthCheckService;
  }

  /** The endpoint it connects to. */
  get endpoint(): experimental.Endpoint {
    return this.#endpoint;
  }

  /** The state it last reported. */
  get state(): ConnectivityState {
    return this.#state;
  }

  /** Its picker, which returns the subchannels the parent's helper made. */
  get picker(): experimental.Picker {
    const picker = this.#healthCheckService === null
      ? this.#picker
      : new HealthCheckUnwrappingPicker(this.#picker);
    return this.#meter === null ? picker : new CountingPicker(picker, this);
  }

  /** Its latest error message, or `null`. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Takes the endpoint's new addresses and the channel's new options. */
  update(endpoint: experimental.Endpoint, options: ChannelOptions): void {
    this.#endpoint = endpoint;
    const balancer = this.#balancer;
    if (balancer instanceof experimental.LeafLoadBalancer) {
      balancer.updateEndpoint(endpoint, options);
      return;
    }
    balancer.updateAddressList(
      experimental.statusOrFromValue([endpoint]),
      this.#owner.childPolicy!,
      options,
      this.#owner.resolutionNote,
    );
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
    this.#meter?.close();
  }

  /** Makes a subchannel for the child policy, through the parent's helper. */
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
    this.#meter?.watch(real, made);
    if (subchannels instanceof Map) subchannels.set(key, made);
    else this.#subchannels = made;
    return made;
  }

  /** What the child policy reports: its state, picker, and why it failed. */
  updateState(
    state: ConnectivityState,
    picker: experimental.Picker,
    errorMessage: string | null,
  ): void {
    if (this.#destroyed) return;
    if (errorMessage) this.#lastError = errorMessage;
    trace(`child ${this.#key} reported ${ConnectivityState[state]}`);
    const previous = this.#state;
    this.#state = state;
    this.#picker = picker;
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

/** The states a child can be in, in the order their counts are recorded. */
const STATES = [
  ConnectivityState.IDLE,
  ConnectivityState.CONNECTING,
  ConnectivityState.READY,
  ConnectivityState.TRANSIENT_FAILURE,
] as const;

/** What a helper's channelz calls take. */
type ChannelzRef = Parameters<
  experimental.ChannelControlHelper["addChannelzChild"]
>[0];

/**
 * A load balancer that keeps one child policy per endpoint and shows the
 * channel what its {@linkcode ShardedPolicy} makes of their states.
 *
 * An update reuses the child of every endpoint that is still present (no
 * reconnect, no failed RPC) and destroys only the children of removed
 * endpoints, and of those whose health-check service changed. A child that
 * goes IDLE is told to exit idle at once, so every endpoint stays
 * connected. A child leaving READY asks the resolver to re-resolve:
 * grpc-js's pick_first does not, and a lost backend is the sign that the
 * resolver's answer may be stale.
 *
 * A resolver error, and an endpoint list the policy refuses, follow one
 * rule, grpc-go's: with children, the block keeps serving from them;
 * without, it reports TRANSIENT_FAILURE with the error, so that RPCs fail
 * with it instead of waiting. Either way the update is accepted (`true`),
 * as grpc-js's own policies do, because grpc-js holds RPCs back until one
 * is.
 *
 * A policy on the block is a subclass that hands its
 * {@linkcode ShardedPolicy} to this constructor, which is what grpc-js's
 * `registerLoadBalancerType` takes.
 *
 * @typeParam Config The policy's config class.
 *
 * @example Registering a policy made on the block
 * ```ts
 * import { experimental } from "@grpc/grpc-js";
 *
 * class FirstReadyConfig implements experimental.TypedLoadBalancingConfig {
 *   getLoadBalancerName(): string {
 *     return "first_ready";
 *   }
 *   toJsonObject(): object {
 *     return { first_ready: {} };
 *   }
 *   static createFromJson(): FirstReadyConfig {
 *     return new FirstReadyConfig();
 *   }
 * }
 *
 * class FirstReady extends EndpointSharding {
 *   constructor(helper: experimental.ChannelControlHelper) {
 *     super(helper, {
 *       name: "first_ready",
 *       combine: (state, children) => ({
 *         state,
 *         picker: children.find((child) => child.state === state)?.picker,
 *       }),
 *     });
 *   }
 * }
 *
 * experimental.registerLoadBalancerType(
 *   "first_ready",
 *   FirstReady,
 *   FirstReadyConfig,
 * );
 * ```
 */
export class EndpointSharding<
  Config extends experimental.TypedLoadBalancingConfig =
    experimental.TypedLoadBalancingConfig,
> implements experimental.LoadBalancer {
  readonly #helper: experimental.ChannelControlHelper;
  readonly #policy: ShardedPolicy<Config>;
  /** What the children tell this layer, and the helper they use. */
  readonly #owner: Owner;
  /** The latest config, from the last accepted update. */
  #config: Config | null = null;
  /** The state last shown to the channel. */
  #state: ConnectivityState = ConnectivityState.IDLE;
  /**
   * The children by {@linkcode endpointKey}, in the order of the latest
   * endpoint list (a Map keeps the order of insertion).
   */
  #children = new Map<string, Child>();
  /** The same children in a list, what the policy gets. */
  #list: Child[] = [];
  /** How many children are in each state. */
  readonly #counts = new StateCounts();
  #updating = false;
  /** Whether a child changed since the policy last combined them. */
  #changed = false;
  /** Whether a microtask to combine them is queued. */
  #queued = false;
  /** The children per state last recorded, by state; metrics only. */
  readonly #recorded = [0, 0, 0, 0, 0];
  /** The labels of the endpoints per state, by state, from the first update. */
  #stateLabels: Record<string, string>[] | null = null;

  /**
   * Starts with no children; the first update makes them.
   *
   * @param helper The channel's helper: children create subchannels and
   *   request re-resolution through it, and the policy's state goes to it.
   * @param policy How the children's states combine.
   * @param childPolicy The policy each endpoint's child runs, as grpc-go's
   *   `ChildBuilderFunc`: any registered grpc-js policy that takes one
   *   endpoint, with its parsed config. Left out (`null`), pick_first as
   *   grpc-js's own policies run it under them, which moves an unhealthy
   *   endpoint to TRANSIENT_FAILURE; a `pick_first` config given here runs
   *   as a top-level pick_first, which ignores health (gRFC A61).
   * @throws {Error} when `childPolicy` names no registered policy.
   */
  constructor(
    helper: experimental.ChannelControlHelper,
    policy: ShardedPolicy<Config>,
    childPolicy: experimental.TypedLoadBalancingConfig | null = null,
  ) {
    const childName = childPolicy?.getLoadBalancerName();
    if (
      childName !== undefined &&
      !experimental.isLoadBalancerNameRegistered(childName)
    ) {
      throw new Error(
        `${policy.name}: child policy ${childName} is not registered`,
      );
    }
    this.#helper = helper;
    this.#policy = policy;
    const meters = instruments();
    this.#owner = {
      helper,
      childPolicy,
      resolutionNote: "",
      instruments: meters,
      policyName: policy.name,
      report: (child, previous) => this.#onChildReport(child, previous),
    };
    meters?.picks.addCallback(this.#observePicks);
  }

  /** How many children there are: one per distinct endpoint. */
  get size(): number {
    return this.#children.size;
  }

  /**
   * Takes a resolver update: a config of another policy is not taken
   * (`false`); an error, or a list the policy refuses, follows the rule
   * above; any other list becomes the children.
   */
  updateAddressList(
    endpoints: experimental.StatusOr<experimental.Endpoint[]>,
    config: experimental.TypedLoadBalancingConfig,
    options: ChannelOptions,
    resolutionNote: string,
  ): boolean {
    if (config.getLoadBalancerName() !== this.#policy.name) return false;
    if (!endpoints.ok) return this.#onError(endpoints.error.details);
    const refusal = this.#policy.refuse?.(endpoints.value, config as Config) ??
      null;
    if (refusal !== null) {
      // Without children every RPC fails with the reason; with them none
      // does, and the log is the one place that says why the list was not used.
      if (this.#children.size > 0) {
        experimental.log(
          LogVerbosity.ERROR,
          `${refusal}; still using the previous endpoints`,
        );
      }
      this.#helper.requestReresolution();
      return this.#onError(refusal);
    }
    this.#config = config as Config;
    this.#stateLabels ??= STATES.map((state) => ({
      "grpc.target": targetOf(options),
      "customlb.policy": this.#policy.name,
      "customlb.state": ConnectivityState[state],
    }));
    this.#updateEndpoints(endpoints.value, options, resolutionNote);
    return true;
  }

  /** Tells every child to leave IDLE and connect. */
  exitIdle(): void {
    for (const child of this.#list) child.exitIdle();
  }

  /** Resets the reconnect backoff of every child's subchannels. */
  resetBackoff(): void {
    for (const child of this.#list) child.resetBackoff();
  }

  /** Destroys every child; no state follows. */
  destroy(): void {
    for (const child of this.#list) child.destroy();
    this.#children = new Map();
    this.#list = [];
    this.#counts.clear();
    this.#recordStates();
    this.#owner.instruments?.picks.removeCallback(this.#observePicks);
    this.#changed = false;
    this.#config = null;
  }

  /** The policy's name. */
  getTypeName(): string {
    return this.#policy.name;
  }

  /** The resolver-error rule: keep serving from children, else fail. */
  #onError(details: string): boolean {
    if (this.#children.size > 0) {
      trace(`keeping ${this.#children.size} children past: ${details}`);
      return true;
    }
    this.#show({
      state: ConnectivityState.TRANSIENT_FAILURE,
      errorMessage: details,
    });
    return true;
  }

  /**
   * Makes the children match `endpoints`: keeps the children of endpoints
   * still present (updating their addresses and options) unless the
   * health-check service in `options` changed, creates children for new
   * endpoints and destroys the rest. Duplicate endpoints share one
   * child. Combines once, after all children are in place. Costs O(n) in
   * the endpoints: each is found by its addresses in a hash map.
   */
  #updateEndpoints(
    endpoints: readonly experimental.Endpoint[],
    options: ChannelOptions,
    resolutionNote: string,
  ): void {
    trace(`update to ${endpoints.length} endpoints`);
    const healthCheckService = healthCheckServiceFromOptions(options);
    const previous = this.#children;
    const next = new Map<string, Child>();
    const list: Child[] = [];
    this.#owner.resolutionNote = resolutionNote;
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
    this.#combine();
  }

  /** One child's change: O(1), and one combination for a turn's changes. */
  #onChildReport(child: Child, previous: ConnectivityState): void {
    if (this.#updating) return;
    this.#counts.remove(previous);
    this.#counts.add(child.state);
    this.#changed = true;
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      if (this.#changed && this.#config !== null) this.#combine();
    });
  }

  #combine(): void {
    this.#changed = false;
    this.#recordStates();
    this.#show(
      this.#policy.combine(this.#counts.aggregate(), this.#list, this.#config!),
    );
  }

  /** Records the children per state, as changes since the last record. */
  #recordStates(): void {
    const endpoints = this.#owner.instruments?.endpoints;
    const labels = this.#stateLabels;
    if (endpoints === undefined || labels === null) return;
    STATES.forEach((state, i) => {
      const change = this.#counts.count(state) - this.#recorded[state];
      if (change === 0) return;
      this.#recorded[state] += change;
      endpoints.add(change, labels[i]);
    });
  }

  /** Observes each child's picks, for the picks counter. */
  #observePicks = (result: ObservableResult): void => {
    for (const child of this.#list) {
      result.observe(child.picks, child.pickLabels);
    }
  };

  /** Shows the channel `shown`, with the block's picker where it has none. */
  #show(shown: PolicyState): void {
    const { state } = shown;
    const failed = state === ConnectivityState.TRANSIENT_FAILURE;
    const errorMessage = failed
      ? shown.errorMessage ?? `${this.#policy.name}: no endpoint is up`
      : null;
    const picker = shown.picker ??
      (failed
        ? new experimental.UnavailablePicker({ details: errorMessage! })
        : new experimental.QueuePicker(this));
    experimental.trace(
      LogVerbosity.DEBUG,
      this.#policy.name,
      `${ConnectivityState[this.#state]} -> ${ConnectivityState[state]}`,
    );
    this.#state = state;
    this.#helper.updateState(state, picker, errorMessage);
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
