/**
 * The one way to make a policy on {@linkcode EndpointSharding}: a
 * {@linkcode PolicyDefinition} says what is the policy's own (its name, how
 * its config parses, the lists it refuses, what it keeps per channel and
 * per child, how its children combine), and {@linkcode definePolicy} writes
 * the rest once for every policy: the config class, the load balancer
 * grpc-js constructs, metrics, the registration, and what
 * `checkServiceConfig` knows of it.
 *
 * @module
 */
import {
  type ChannelOptions,
  connectivityState as ConnectivityState,
  experimental,
} from "@grpc/grpc-js";
import {
  type ChildState,
  EndpointSharding,
  type PolicyState,
  type ShardedPolicy,
} from "./endpoint_sharding.ts";
import { metricsObserver } from "./metrics.ts";
import { configObject } from "./_config.ts";

/**
 * What is a policy's own.
 *
 * @typeParam Settings The parsed config: a plain object, written back as
 *   the policy's entry.
 * @typeParam Instance What one channel's policy keeps between combinations.
 * @typeParam Data What it keeps per child.
 */
export interface PolicyDefinition<Settings extends object, Instance, Data> {
  /** The name the policy is registered and configured under. */
  readonly name: string;
  /**
   * The settings of the policy's `loadBalancingConfig` entry, with defaults
   * filled in. Unknown fields are ignored, as gRPC LB configs are forward
   * compatible.
   *
   * @throws {Error} naming the field and the bad value; grpc-js adds the
   *   policy's name when it parses a service config.
   */
  parse(json: Record<string, unknown>): Settings;
  /**
   * Why the policy cannot use `endpoints` (a non-empty list), or `null`
   * when it can: handled as a resolver error with this reason.
   */
  refuse?(endpoints: readonly experimental.Endpoint[], settings: Settings):
    | string
    | null;
  /**
   * The most endpoints the policy ever uses, when it has such a bound:
   * `checkServiceConfig` refuses an `outlier_detection` above the policy
   * whose `minimum_hosts` is larger, as it could never eject.
   */
  readonly maxEndpoints?: number;
  /** What one channel's policy keeps, made with the policy. */
  instance?(): Instance;
  /** What the policy keeps for a new child, as its `data`. */
  childData?(endpoint: experimental.Endpoint): Data;
  /**
   * Whether children connect only when the policy asks (see
   * `ShardedPolicy`'s `lazy`).
   */
  readonly lazy?: boolean;
  /** What the channel's request to leave IDLE does (see `ShardedPolicy`). */
  exitIdle?(
    children: readonly ChildState<Data>[],
    settings: Settings,
    instance: Instance,
  ): void;
  /**
   * What the channel sees, given the children's states (see
   * {@linkcode ShardedPolicy.combine}).
   */
  combine(
    state: ConnectivityState,
    children: readonly ChildState<Data>[],
    settings: Settings,
    instance: Instance,
    options: ChannelOptions,
  ): PolicyState;
}

/**
 * A policy's parsed config, as grpc-js takes it: its settings under its
 * name.
 *
 * @typeParam Settings The policy's settings.
 */
export interface PolicyConfig<Settings extends object>
  extends experimental.TypedLoadBalancingConfig {
  /** The settings, defaults filled in. */
  readonly settings: Settings;
}

/**
 * What {@linkcode definePolicy} makes of a definition.
 *
 * @typeParam Settings The policy's settings.
 * @typeParam Data What it keeps per child.
 */
export interface DefinedPolicy<Settings extends object, Data> {
  /** The policy's name. */
  readonly name: string;
  /** The config class grpc-js parses the policy's entry with. */
  readonly Config: {
    new (settings: Settings): PolicyConfig<Settings>;
    createFromJson(json: unknown): PolicyConfig<Settings>;
  };
  /** The load balancer grpc-js constructs for each channel. */
  readonly LoadBalancer: new (
    helper: experimental.ChannelControlHelper,
  ) => EndpointSharding<PolicyConfig<Settings>, Data>;
  /**
   * Registers the policy with grpc-js, and nothing else. Call it before
   * creating a channel whose service config names the policy; calling it
   * again is harmless.
   */
  register(): void;
}

/** Every registered definition, by name, for `checkServiceConfig`. */
const registered = new Map<string, { readonly maxEndpoints?: number }>();

/**
 * The registered policy of `name` as `checkServiceConfig` sees it, or
 * `undefined` for one not made by {@linkcode definePolicy}.
 */
export function registeredDefinition(
  name: string,
): { readonly maxEndpoints?: number } | undefined {
  return registered.get(name);
}

/**
 * Makes a policy on {@linkcode EndpointSharding} from its definition:
 * pick_first children, health checked when the service config asks, and
 * metered once an OpenTelemetry SDK is installed.
 *
 * @example A policy with a setting: the first READY of the first `n` endpoints
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectivityState } from "@grpc/grpc-js";
 *
 * const firstOfN = definePolicy({
 *   name: "first_of_n",
 *   parse: (json) => {
 *     const n = json.n ?? 2;
 *     if (!Number.isInteger(n) || (n as number) < 1) {
 *       throw new Error(`n must be a positive integer, got ${n}`);
 *     }
 *     return { n: n as number };
 *   },
 *   combine: (state, children, { n }) => {
 *     const ready = children.slice(0, n).find((child) =>
 *       child.state === connectivityState.READY
 *     );
 *     return ready === undefined
 *       ? { state: state === connectivityState.READY ? connectivityState.CONNECTING : state }
 *       : { state: connectivityState.READY, picker: ready.picker };
 *   },
 * });
 * firstOfN.register();
 * assert.deepEqual(firstOfN.Config.createFromJson({}).toJsonObject(), {
 *   first_of_n: { n: 2 },
 * });
 * ```
 */
export function definePolicy<
  Settings extends object,
  Instance = undefined,
  Data = undefined,
>(
  definition: PolicyDefinition<Settings, Instance, Data>,
): DefinedPolicy<Settings, Data> {
  const { name } = definition;

  class Config implements PolicyConfig<Settings> {
    readonly settings: Settings;
    constructor(settings: Settings) {
      this.settings = settings;
    }
    getLoadBalancerName(): string {
      return name;
    }
    toJsonObject(): object {
      return { [name]: this.settings };
    }
    static createFromJson(json: unknown): Config {
      return new Config(definition.parse(configObject(json)));
    }
  }

  class LoadBalancer extends EndpointSharding<Config, Data> {
    constructor(helper: experimental.ChannelControlHelper) {
      super(helper, shardedPolicyOf(definition), null, metricsObserver);
    }
  }

  return {
    name,
    Config,
    LoadBalancer,
    register() {
      experimental.registerLoadBalancerType(name, LoadBalancer, Config);
      registered.set(name, { maxEndpoints: definition.maxEndpoints });
    },
  };
}

/**
 * What the block takes of `definition`, for one channel's policy: each
 * call handed the config's settings and the policy's own instance.
 */
function shardedPolicyOf<Settings extends object, Instance, Data>(
  definition: PolicyDefinition<Settings, Instance, Data>,
): ShardedPolicy<PolicyConfig<Settings>, Data> {
  const instance = definition.instance?.() as Instance;
  const { refuse, exitIdle } = definition;
  return {
    name: definition.name,
    refuse: refuse &&
      ((endpoints, config) => refuse(endpoints, config.settings)),
    childData: definition.childData,
    lazy: definition.lazy,
    exitIdle: exitIdle &&
      ((children, config) => exitIdle(children, config.settings, instance)),
    combine: (state, children, config, options) =>
      definition.combine(state, children, config.settings, instance, options),
  };
}
