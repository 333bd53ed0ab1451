/**
 * Endpoint sharding: a load balancer that keeps one child policy per
 * endpoint, pick_first by default, and leaves to the policy built on it
 * only how the children's states combine (as grpc-go's `endpointsharding`).
 *
 * The children do all connection work: Happy Eyeballs across an endpoint's
 * addresses, sticky TRANSIENT_FAILURE and reconnect backoff. What else a
 * child needs attaches from outside: health checking, when the channel
 * carries a health-check service name (`health_check.ts`), each backend's
 * TLS name from discovery (`discovery/server_names.ts`), and an observer,
 * which metrics use (`metrics.ts`). A policy on the block
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
import { StateCounts } from "./_aggregate_state.ts";
import {
  healthCheckingHelper,
  healthCheckServiceFromOptions,
} from "./health_check.ts";
import { serverNamed } from "./discovery/server_names.ts";

const TRACER = "endpoint_sharding";
const EMPTY_RESOLUTION_NOTE = /\. Resolution note: $/;

function trace(text: string): void {
  experimental.trace(LogVerbosity.DEBUG, TRACER, text);
}

/**
 * One endpoint's child as the policy sees it: what it last reported. An
 * entry always shows its child's latest report.
 *
 * @typeParam Data What the policy keeps per child (see
 *   {@linkcode ShardedPolicy.childData}).
 */
export interface ChildState<Data = unknown> {
  /** The endpoint this child connects to. */
  readonly endpoint: experimental.Endpoint;
  /**
   * The endpoint's key: its addresses as `host:port` (`[host]:port` for
   * IPv6), sorted and joined by spaces. The same for the same addresses in
   * any order, and stable for the child's life.
   */
  readonly key: string;
  /** The child's connectivity state. */
  readonly state: ConnectivityState;
  /** The child's picker: delegate a pick to it to send the RPC there. */
  readonly picker: experimental.Picker;
  /** The child's most recent error message, or `null` if it reported none. */
  readonly lastError: string | null;
  /** What the policy's `childData` made for this child, kept for its life. */
  readonly data: Data;
  /**
   * Starts the child connecting if it is IDLE: how a policy whose children
   * are `lazy` connects one. Nothing for a child in any other state.
   */
  exitIdle(): void;
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
 * the endpoint lists it refuses, what it keeps per child, and how its
 * children's states combine. Its config is the class registered with it,
 * checked by grpc-js with `createFromJson`; the block hands the latest one
 * on. `definePolicy` writes the rest of a policy around one of these.
 *
 * @typeParam Config The policy's config class.
 * @typeParam Data What the policy keeps per child.
 *
 * @example A policy that sends every RPC to the first READY endpoint
 * ```ts
 * import { connectivityState } from "@grpc/grpc-js";
 *
 * const firstReady: ShardedPolicy = {
 *   name: "first_ready",
 *   combine: (state, children) =>
 *     state === connectivityState.READY
 *       ? {
 *         state,
 *         picker: children.find((child) => child.state === state)!.picker,
 *       }
 *       : { state },
 * };
 * ```
 */
export interface ShardedPolicy<
  Config extends experimental.TypedLoadBalancingConfig =
    experimental.TypedLoadBalancingConfig,
  Data = unknown,
> {
  /**
   * The name the policy is registered and configured under: the block's
   * `getTypeName`, and the name of the configs it takes.
   */
  readonly name: string;
  /**
   * Why the policy cannot use `endpoints`, or `null` when it can. A refused
   * list is logged and then handled as a resolver error with this reason
   * (see {@linkcode EndpointSharding}).
   */
  refuse?(endpoints: readonly experimental.Endpoint[], config: Config):
    | string
    | null;
  /**
   * What the policy keeps for a new child, as its `data`: made once, when
   * the child is, and dropped with it.
   */
  childData?(endpoint: experimental.Endpoint): Data;
  /**
   * Whether children connect only when the policy asks (`exitIdle` of a
   * child), as ring hash's do, instead of at once and again whenever they
   * go IDLE. Left out, `false`.
   */
  readonly lazy?: boolean;
  /**
   * What the channel's request to leave IDLE does, in place of telling
   * every child to: for a `lazy` policy, which children to connect.
   */
  exitIdle?(children: readonly ChildState<Data>[], config: Config): void;
  /**
   * What the channel sees, given the children's states: called once at the
   * end of every accepted update, and once after the children report
   * changes, however many report in the same turn of the event loop (in a
   * microtask after the first). None follows `destroy`.
   *
   * @param state The children's states aggregated: READY if any is READY,
   *   else CONNECTING if any is, else IDLE if any is, else
   *   TRANSIENT_FAILURE.
   * @param children One entry per endpoint, in the order of the latest
   *   update; never empty. The list and its entries are the block's own,
   *   and go on showing the children's latest reports after the call
   *   returns: read them during the call, and keep what you need of them
   *   (a picker, a `data`), not them.
   * @param config The policy's latest config.
   * @param options The channel's options of the latest update.
   */
  combine(
    state: ConnectivityState,
    children: readonly ChildState<Data>[],
    config: Config,
    options: ChannelOptions,
  ): PolicyState;
}

/**
 * What watches one block: told of each child, of the children's states,
 * and of the block's end. `metrics.ts` records metrics through one.
 */
export interface ShardingObserver {
  /** A child for the endpoint of `key` joined, or the observer is new. */
  child(key: string): ChildObserver;
  /** The children's states, after each combination. */
  states(counts: { count(state: ConnectivityState): number }): void;
  /** The block is destroyed, or watched by another observer from now on. */
  close(): void;
}

/** What watches one child. */
export interface ChildObserver {
  /** What the policy gets in place of the child's picker. */
  picker(picker: experimental.Picker): experimental.Picker;
  /** A subchannel the child's policy got, health-checking or not. */
  subchannel(subchannel: experimental.SubchannelInterface): void;
  /** The child is gone, or watched by another observer from now on. */
  close(): void;
}

/**
 * The observer of a block for an update's channel options, asked at every
 * accepted update with the block's observer of the moment; `null` for
 * none. Returning `current` keeps it.
 */
export type ObserverSource = (
  policyName: string,
  options: ChannelOptions,
  current: ShardingObserver | null,
) => ShardingObserver | null;

/** What a child needs of its block. */
interface Block {
  /** The channel's helper, which applies each backend's TLS name. */
  readonly helper: experimental.ChannelControlHelper;
  /** The child policy's config, or `null` for pick_first as a leaf. */
  readonly childPolicy: experimental.TypedLoadBalancingConfig | null;
  /** Whether children connect only when asked. */
  readonly lazy: boolean;
  /** The latest update's resolution note, which children hand their policy. */
  resolutionNote: string;
  /** After each state change; `previous` is the state before it. */
  report(child: Child<unknown>, previous: ConnectivityState): void;
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
 * grpc-go's `endpointState`): it keeps the child connected, and reports
 * each change. It is also the entry the policy's `combine` reads, and the
 * overrides of its policy's helper (`createSubchannel`, `updateState`).
 */
class Child<Data> implements ChildState<Data> {
  readonly key: string;
  readonly data: Data;
  /**
   * The health-check service its subchannels watch, or `null`. Fixed for
   * the child's life: a child keeps the subchannel it picked, so a change
   * of service replaces the child.
   */
  readonly healthCheckService: string | null;
  /**
   * The child policy; only this wrapper calls it. pick_first runs as
   * grpc-js's `LeafLoadBalancer`, which turns an unhealthy pick into
   * TRANSIENT_FAILURE; any other policy runs behind a
   * `ChildLoadBalancerHandler`.
   */
  readonly #balancer:
    | experimental.LeafLoadBalancer
    | experimental.ChildLoadBalancerHandler;
  readonly #block: Block;
  #endpoint: experimental.Endpoint;
  #destroyed = false;
  #state: ConnectivityState = ConnectivityState.IDLE;
  #picker: experimental.Picker = QUEUE;
  /** The child's latest error message, kept past reports without one. */
  #lastError: string | null = null;
  /** The latest subchannel per address, as the child's policy got it. */
  readonly #subchannels: experimental.SubchannelInterface[] = [];
  #observer: ChildObserver | null;
  /** The health-checking helper its subchannels come from, or `null`. */
  #inner: experimental.ChannelControlHelper | null = null;

  /** Makes the child, and starts it connecting unless the block is lazy. */
  constructor(
    key: string,
    endpoint: experimental.Endpoint,
    block: Block,
    options: ChannelOptions,
    healthCheckService: string | null,
    data: Data,
    observer: ChildObserver | null,
  ) {
    this.key = key;
    this.data = data;
    this.#block = block;
    this.healthCheckService = healthCheckService;
    this.#endpoint = endpoint;
    this.#observer = observer;
    const helper = healthCheckService === null
      // The child is the helper's overrides itself: one helper object a child.
      ? experimental.createChildChannelControlHelper(block.helper, this)
      : this.#healthChecked(healthCheckService);
    if (block.childPolicy === null) {
      const leaf = new experimental.LeafLoadBalancer(
        endpoint,
        helper,
        options,
        block.resolutionNote,
      );
      this.#balancer = leaf;
      if (!block.lazy) leaf.startConnecting();
    } else {
      this.#balancer = new experimental.ChildLoadBalancerHandler(helper);
      this.update(endpoint, options);
    }
  }

  /**
   * The child policy's helper with health checking: its subchannels come
   * through `healthCheckingHelper`, which unwraps the pickers on their way
   * to the child's `updateState`.
   */
  #healthChecked(serviceName: string): experimental.ChannelControlHelper {
    const own = experimental.createChildChannelControlHelper(
      this.#block.helper,
      {
        updateState: (state, picker, error) =>
          this.updateState(state, picker, error),
      },
    );
    this.#inner = healthCheckingHelper(own, serviceName);
    return experimental.createChildChannelControlHelper(this.#inner, {
      createSubchannel: (address, options) =>
        this.createSubchannel(address, options),
    });
  }

  get endpoint(): experimental.Endpoint {
    return this.#endpoint;
  }

  get state(): ConnectivityState {
    return this.#state;
  }

  get picker(): experimental.Picker {
    return this.#observer === null
      ? this.#picker
      : this.#observer.picker(this.#picker);
  }

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
      this.#block.childPolicy!,
      options,
      this.#block.resolutionNote,
    );
  }

  /** Hands the child to `observer`, telling it of the child's subchannels. */
  observe(observer: ChildObserver | null): void {
    this.#observer?.close();
    this.#observer = observer;
    for (const subchannel of this.#subchannels) {
      observer?.subchannel(subchannel);
    }
  }

  exitIdle(): void {
    if (this.#destroyed || this.#state !== ConnectivityState.IDLE) return;
    const balancer = this.#balancer;
    // A lazy leaf that never started has no address to connect to yet.
    if (balancer instanceof experimental.LeafLoadBalancer) {
      balancer.startConnecting();
    } else {
      balancer.exitIdle();
    }
  }

  resetBackoff(): void {
    for (const subchannel of this.#subchannels) {
      subchannel.getRealSubchannel().resetBackoff();
    }
  }

  destroy(): void {
    this.#destroyed = true;
    this.#subchannels.length = 0;
    this.#balancer.destroy();
    this.#observer?.close();
  }

  /**
   * Makes a subchannel for the child's policy, health-checking when asked;
   * keeps the latest of its address, and tells the observer.
   */
  createSubchannel(
    address: experimental.SubchannelAddress,
    options: ChannelOptions,
  ): experimental.SubchannelInterface {
    const subchannel = (this.#inner ?? this.#block.helper).createSubchannel(
      address,
      options,
    );
    const key = subchannel.getAddress();
    const i = this.#subchannels.findIndex((known) =>
      known.getAddress() === key
    );
    this.#subchannels[i < 0 ? this.#subchannels.length : i] = subchannel;
    this.#observer?.subchannel(subchannel);
    return subchannel;
  }

  /** What the child's policy reports: its state, picker, and why it failed. */
  updateState(
    state: ConnectivityState,
    picker: experimental.Picker,
    errorMessage: string | null,
  ): void {
    if (this.#destroyed) return;
    // pick_first ends its message with "Resolution note: " even with no note.
    if (errorMessage) {
      this.#lastError = errorMessage.replace(EMPTY_RESOLUTION_NOTE, "");
    }
    trace(`child ${this.key} reported ${ConnectivityState[state]}`);
    const previous = this.#state;
    this.#state = state;
    this.#picker = picker;
    // pick_first does not ask for re-resolution, and a lost backend is the
    // sign that the resolver's answer may be stale.
    if (
      previous === ConnectivityState.READY && state !== ConnectivityState.READY
    ) {
      this.#block.helper.requestReresolution();
    }
    // Reported first: exitIdle makes pick_first report CONNECTING from
    // within it, and that report's previous state must be this one.
    this.#block.report(this as Child<unknown>, previous);
    if (state === ConnectivityState.IDLE && !this.#block.lazy) {
      this.#balancer.exitIdle();
    }
  }
}

/**
 * A load balancer that keeps one child policy per endpoint and shows the
 * channel what its {@linkcode ShardedPolicy} makes of their states.
 *
 * An update reuses the child of every endpoint that is still present (no
 * reconnect, no failed RPC) and destroys only the children of removed
 * endpoints, and of those whose health-check service changed. A child that
 * goes IDLE is told to exit idle at once, so every endpoint stays
 * connected, unless the policy is `lazy`. A child leaving READY asks the resolver to re-resolve:
 * grpc-js's pick_first does not, and a lost backend is the sign that the
 * resolver's answer may be stale.
 *
 * A resolver error, an empty endpoint list and a list the policy refuses
 * follow one rule, grpc-go's: each asks for re-resolution; with children,
 * the block keeps serving from them; without, it reports
 * TRANSIENT_FAILURE, saying that no endpoints were resolved, why, and the
 * resolution note, so that RPCs fail with it instead of waiting. Each is
 * accepted (`true`), as grpc-js's own policies do, because grpc-js holds
 * RPCs back until an update is.
 *
 * A policy on the block is a subclass that hands its
 * {@linkcode ShardedPolicy} to this constructor, which is what grpc-js's
 * `registerLoadBalancerType` takes; `definePolicy` writes that subclass,
 * its config class and its registration.
 *
 * @typeParam Config The policy's config class.
 * @typeParam Data What the policy keeps per child.
 *
 * @example A subclass: the block under a policy of one's own
 * ```ts
 * import { connectivityState, experimental } from "@grpc/grpc-js";
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
 *     });
 *   }
 * }
 * ```
 */
export class EndpointSharding<
  Config extends experimental.TypedLoadBalancingConfig =
    experimental.TypedLoadBalancingConfig,
  Data = unknown,
> implements experimental.LoadBalancer {
  readonly #helper: experimental.ChannelControlHelper;
  readonly #policy: ShardedPolicy<Config, Data>;
  readonly #observe: ObserverSource | null;
  readonly #block: Block;
  #config: Config | null = null;
  /** The channel's options of the latest accepted update. */
  #options: ChannelOptions = {};
  #state: ConnectivityState = ConnectivityState.IDLE;
  #observer: ShardingObserver | null = null;
  /**
   * The children by key, in the order of the latest endpoint list (a Map
   * keeps the order of insertion).
   */
  #children = new Map<string, Child<Data>>();
  /** The same children in a list, what the policy gets. */
  #list: Child<Data>[] = [];
  readonly #counts = new StateCounts();
  #updating = false;
  #destroyed = false;
  /** Whether a child changed since the policy last combined them. */
  #changed = false;
  /** Whether a microtask to combine them is queued. */
  #queued = false;

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
   * @param observe Where the block's observer comes from; `null`, none.
   * @throws {Error} when `childPolicy` names no registered policy.
   */
  constructor(
    helper: experimental.ChannelControlHelper,
    policy: ShardedPolicy<Config, Data>,
    childPolicy: experimental.TypedLoadBalancingConfig | null = null,
    observe: ObserverSource | null = null,
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
    this.#observe = observe;
    this.#block = {
      helper: experimental.createChildChannelControlHelper(helper, {
        createSubchannel: (address, options) =>
          helper.createSubchannel(address, serverNamed(address, options)),
      }),
      childPolicy,
      lazy: policy.lazy ?? false,
      resolutionNote: "",
      report: (child, previous) => this.#onChildReport(child, previous),
    };
  }

  /**
   * Takes a resolver update: a config of another policy is not taken
   * (`false`); an error, an empty list, or a list the policy refuses,
   * follows the rule above; any other list becomes the children.
   */
  updateAddressList(
    endpoints: experimental.StatusOr<experimental.Endpoint[]>,
    config: experimental.TypedLoadBalancingConfig,
    options: ChannelOptions,
    resolutionNote: string,
  ): boolean {
    if (config.getLoadBalancerName() !== this.#policy.name) return false;
    const problem = !endpoints.ok
      ? endpoints.error.details
      : endpoints.value.length === 0
      ? "the resolver returned an empty list"
      : this.#policy.refuse?.(endpoints.value, config as Config) ?? null;
    if (problem !== null) {
      this.#onResolutionProblem(problem, resolutionNote, endpoints.ok);
      return true;
    }
    this.#config = config as Config;
    this.#options = options;
    this.#setObserver(
      this.#observe?.(this.#policy.name, options, this.#observer) ?? null,
    );
    this.#updateEndpoints(
      (endpoints as { value: experimental.Endpoint[] }).value,
      options,
      resolutionNote,
    );
    return true;
  }

  /**
   * Tells every child to leave IDLE and connect, or does what the policy's
   * `exitIdle` says.
   */
  exitIdle(): void {
    if (this.#policy.exitIdle !== undefined && this.#config !== null) {
      this.#policy.exitIdle(this.#list, this.#config);
      return;
    }
    for (const child of this.#list) child.exitIdle();
  }

  /** Resets the reconnect backoff of every child's subchannels. */
  resetBackoff(): void {
    for (const child of this.#list) child.resetBackoff();
  }

  /** Destroys every child; no state follows. */
  destroy(): void {
    this.#destroyed = true;
    for (const child of this.#list) child.destroy();
    this.#children = new Map();
    this.#list = [];
    this.#counts.clear();
    this.#observer?.close();
    this.#observer = null;
    this.#changed = false;
    this.#config = null;
  }

  /** The policy's name. */
  getTypeName(): string {
    return this.#policy.name;
  }

  /** The resolver-error rule: keep serving from children, else fail. */
  #onResolutionProblem(problem: string, note: string, resolved: boolean): void {
    const name = this.#policy.name;
    // After the resolver's call returns: a resolver that fails within
    // updateResolution would be asked again before grpc-js starts the
    // backoff that spaces its attempts out.
    queueMicrotask(() => {
      if (!this.#destroyed) this.#helper.requestReresolution();
    });
    if (this.#children.size > 0) {
      // No RPC fails, so for a list that was not used the log is the one
      // place that says why; the resolver reports its own errors.
      if (resolved) {
        experimental.log(
          LogVerbosity.ERROR,
          `${name}: ${problem}; still using the previous endpoints`,
        );
      }
      trace(`keeping ${this.#children.size} children past: ${problem}`);
      return;
    }
    this.#show({
      state: ConnectivityState.TRANSIENT_FAILURE,
      errorMessage: `${name}: no endpoints were resolved: ${problem}${
        note === "" ? "" : `; resolution note: ${note}`
      }`,
    });
  }

  /** Hands every child to `observer` when it is another one. */
  #setObserver(observer: ShardingObserver | null): void {
    if (observer === this.#observer) return;
    this.#observer?.close();
    this.#observer = observer;
    for (const child of this.#list) {
      child.observe(observer?.child(child.key) ?? null);
    }
  }

  /**
   * Makes the children match `endpoints`: keeps the children of endpoints
   * still present (updating their addresses and options) unless the
   * health-check service in `options` changed, creates children for new
   * endpoints and destroys the rest. Duplicate endpoints share one
   * child. Combines once, after all children are in place. Costs O(n) in
   * the endpoints: each is found by its key in a hash map.
   */
  #updateEndpoints(
    endpoints: readonly experimental.Endpoint[],
    options: ChannelOptions,
    resolutionNote: string,
  ): void {
    trace(`update to ${endpoints.length} endpoints`);
    const healthCheckService = healthCheckServiceFromOptions(options);
    const previous = this.#children;
    const next = new Map<string, Child<Data>>();
    const list: Child<Data>[] = [];
    this.#block.resolutionNote = resolutionNote;
    this.#updating = true;
    for (const endpoint of endpoints) {
      const key = endpointKey(endpoint);
      if (next.has(key)) continue;
      let child = previous.get(key);
      if (child?.healthCheckService === healthCheckService) {
        previous.delete(key);
        child.update(endpoint, options);
      } else {
        child = new Child(
          key,
          endpoint,
          this.#block,
          options,
          healthCheckService,
          this.#policy.childData?.(endpoint) as Data,
          this.#observer?.child(key) ?? null,
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
    for (const child of list) this.#counts.add(child.state);
    this.#combine();
  }

  /** One child's change: O(1), and one combination for a turn's changes. */
  #onChildReport(child: Child<unknown>, previous: ConnectivityState): void {
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
    this.#observer?.states(this.#counts);
    this.#show(
      this.#policy.combine(
        this.#counts.aggregate(),
        this.#list,
        this.#config!,
        this.#options,
      ),
    );
  }

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
 * the same for the same addresses in any order. grpc-js's `EndpointMap`
 * finds an endpoint by a linear scan, and its `endpointToString` depends on
 * the addresses' order. The lookups of one update of 10,000 one-address
 * endpoints took 2.3 to 2.4 s through `EndpointMap` and 5 to 7 ms through a
 * Map keyed by this string (three rounds, one run), where `deno task
 * bench:scale` puts the block's whole first update at 10,000 at 123 ms.
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
