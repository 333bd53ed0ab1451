/**
 * A resolver whose answers the program sets, as grpc-go's `manual.Resolver`.
 *
 * @module
 */
import {
  experimental,
  logVerbosity as LogVerbosity,
  type ServiceConfig,
  status,
} from "@grpc/grpc-js";
import { resolveEndpoint, serverNames } from "./_addresses.ts";
import { SERVER_NAMES } from "./server_names.ts";
import { parseServiceConfig } from "../service_config.ts";
import { HEALTH_CHECK_SERVICE_NAME } from "../health_check.ts";

type Endpoint = experimental.Endpoint;
type ResolverListener = experimental.ResolverListener;

/**
 * The shortest time between two resolutions that a channel asks for. Its
 * policies ask again each time a backend is lost or refuses connections;
 * grpc-js's own DNS resolver rate-limits these requests the same way (by
 * default to one per 30 s), or they would spin while a backend is down.
 * Answers the program pushes with {@linkcode ManualResolver.update} are not
 * limited.
 */
export const MIN_RERESOLUTION_INTERVAL_MS = 1_000;

/**
 * An endpoint with a hash key (gRFC A76): where `ring_hash_experimental`
 * places it on its ring, in place of its address, so that it keeps its keys
 * when its address changes.
 *
 * @example A StatefulSet's pod, by its stable name
 * ```ts
 * const endpoint: NamedEndpoint = {
 *   address: "10.0.3.17:50051",
 *   hashKey: "echo-0",
 * };
 * ```
 */
export interface NamedEndpoint {
  /** Its `host:port`. */
  readonly address: string;
  /** Its hash key. */
  readonly hashKey: string;
}

/**
 * What a {@linkcode ManualResolver} hands the channel.
 *
 * @example Two endpoints and the policy, with health checking
 * ```ts
 * const state: ResolverState = {
 *   endpoints: ["localhost:50050", "localhost:50051"],
 *   serviceConfig: {
 *     loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 3 } }],
 *     healthCheckConfig: { serviceName: "grpc.examples.echo.Echo" },
 *   },
 * };
 * ```
 */
export interface ResolverState {
  /**
   * One `host:port` per endpoint, in order, or a {@linkcode NamedEndpoint}
   * for one that has a hash key. Each host name is resolved to all of its
   * addresses, so that pick_first can use Happy Eyeballs among them.
   */
  readonly endpoints: readonly (string | NamedEndpoint)[];
  /**
   * The service config, as JSON text or a parsed object; `null` for none
   * (the channel's default then holds). Left out of an update, the last one
   * given stays. It is checked as `checkServiceConfig` checks it when a
   * channel first resolves, so that policies registered until then are
   * known; an invalid one is logged and reaches the channel as a
   * service-config error, and the channel keeps the last valid one. Its
   * `healthCheckConfig` turns on health checking.
   */
  readonly serviceConfig?: unknown;
}

/**
 * The time source and timers of {@linkcode ManualResolver}'s rate limit, so
 * that a test can drive them.
 *
 * @example The clock a resolver uses unless given one
 * ```ts
 * const clock: Clock = {
 *   now: () => performance.now(),
 *   setTimeout: (callback, ms) => setTimeout(callback, ms),
 *   clearTimeout: (timer) => clearTimeout(timer as number),
 * };
 * ```
 */
export interface Clock {
  /** Milliseconds from any fixed point, as `performance.now()`. */
  now(): number;
  /** Calls `callback` once, `ms` from now; returns what cancels it. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer that `setTimeout` returned. */
  clearTimeout(timer: unknown): void;
}

const REAL_CLOCK: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer as number),
};

/**
 * Hands every channel of its scheme a list of endpoints and a service config
 * that the program sets, and pushes later changes to them.
 *
 * @example Two endpoints, then a third in place of the second
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 *
 * const resolver = new ManualResolver("example", {
 *   endpoints: ["localhost:50050", "localhost:50051"],
 *   serviceConfig: { loadBalancingConfig: [{ round_robin: {} }] },
 * });
 * resolver.register();
 * const client = new grpc.Client(
 *   "example:///echo",
 *   grpc.credentials.createInsecure(),
 * );
 * // The service config is left out, so round_robin stays.
 * resolver.update({ endpoints: ["localhost:50050", "localhost:50052"] });
 * client.close();
 * ```
 */
export class ManualResolver {
  /** The URI scheme this resolver serves, e.g. `example` for `example:///x`. */
  readonly scheme: string;
  /** The latest answer, as given. */
  #state: ResolverState;
  /** The latest answer checked, once a channel has asked for it. */
  #answer: Answer | null = null;
  #lastAddresses: readonly (readonly string[])[] = [];
  readonly #source: Source;

  /**
   * Makes a resolver for `scheme`; {@linkcode ManualResolver.register} puts
   * it in use.
   *
   * @param scheme The target URI scheme to serve.
   * @param state The first answer.
   * @param clock The rate limit's clock (default: the real one).
   */
  constructor(scheme: string, state: ResolverState, clock: Clock = REAL_CLOCK) {
    this.scheme = scheme;
    this.#state = state;
    this.#source = {
      scheme,
      clock,
      answer: () => this.#answer ??= checkedAnswer(this.#state),
      channels: new Set(),
      resolved: (endpoints) =>
        this.#lastAddresses = endpoints.map((endpoint) =>
          endpoint.addresses.map(experimental.subchannelAddressToString)
        ),
    };
  }

  /**
   * The addresses (`host:port`) each endpoint resolved to when last handed
   * to a channel, in the order of the endpoints.
   */
  get lastAddresses(): readonly (readonly string[])[] {
    return this.#lastAddresses;
  }

  /** Registers the scheme with grpc-js; channels created after it use it. */
  register(): void {
    const source = this.#source;
    experimental.registerResolver(
      this.scheme,
      class extends ChannelResolver {
        constructor(_target: experimental.GrpcUri, listener: ResolverListener) {
          super(source, listener);
        }
      },
    );
  }

  /**
   * Sets a new answer and hands it to every channel using this resolver. An
   * answer without `serviceConfig` keeps the last one: leaving it out does
   * not send the channel back to its default (pick_first, for most).
   */
  update(state: ResolverState): void {
    this.#state = state.serviceConfig === undefined
      ? { ...state, serviceConfig: this.#state.serviceConfig }
      : state;
    this.#answer = null;
    for (const channel of this.#source.channels) channel.resolveNow();
  }
}

/** A {@linkcode ResolverState} as channels are handed it. */
interface Answer {
  readonly endpoints: readonly (string | NamedEndpoint)[];
  /** The checked service config, or `null` for none. */
  readonly serviceConfig: experimental.StatusOr<ServiceConfig> | null;
  /**
   * The attributes that go with the service config, or `null` for an
   * invalid one, with which a channel keeps those of its last valid one.
   */
  readonly attributes: { readonly [key: string]: unknown } | null;
}

/** Checks `state`'s service config, once, when a channel first asks. */
function checkedAnswer(state: ResolverState): Answer {
  const { endpoints, serviceConfig } = state;
  if (serviceConfig === undefined || serviceConfig === null) {
    return { endpoints, serviceConfig: null, attributes: {} };
  }
  try {
    const parsed = parseServiceConfig(serviceConfig);
    return {
      endpoints,
      serviceConfig: experimental.statusOrFromValue(parsed.config),
      attributes: {
        [HEALTH_CHECK_SERVICE_NAME]: parsed.healthCheckServiceName,
      },
    };
  } catch (error) {
    return {
      endpoints,
      serviceConfig: experimental.statusOrFromError({
        code: status.UNAVAILABLE,
        details: (error as Error).message,
      }),
      attributes: null,
    };
  }
}

/** What a channel's resolver reads from, and reports to, its owner. */
interface Source {
  readonly scheme: string;
  readonly clock: Clock;
  answer(): Answer;
  /** The channels' resolvers that are live. */
  readonly channels: Set<ChannelResolver>;
  resolved(endpoints: readonly Endpoint[]): void;
}

/** The resolver grpc-js creates per channel; it reads its owner's answer. */
class ChannelResolver implements experimental.Resolver {
  readonly #source: Source;
  readonly #listener: ResolverListener;
  /** Bumped by every resolution and by destroy, to drop stale answers. */
  #generation = 0;
  /** Attributes of the last valid service config, kept past invalid ones. */
  #attributes: { readonly [key: string]: unknown } = {};
  #lastResolution = -Infinity;
  /** The timer of a resolution that waits for its turn, if one does. */
  #pending: unknown = null;

  constructor(source: Source, listener: ResolverListener) {
    this.#source = source;
    this.#listener = listener;
  }

  static getDefaultAuthority(target: experimental.GrpcUri): string {
    return target.path;
  }

  updateResolution(): void {
    this.#source.channels.add(this);
    if (this.#pending !== null) return;
    const { clock } = this.#source;
    const wait = this.#lastResolution + MIN_RERESOLUTION_INTERVAL_MS -
      clock.now();
    if (wait <= 0) {
      this.resolveNow();
      return;
    }
    this.#pending = clock.setTimeout(() => this.resolveNow(), wait);
  }

  /** Resolves at once, dropping a resolution that waits for its turn. */
  resolveNow(): void {
    this.#cancelPending();
    this.#lastResolution = this.#source.clock.now();
    void this.#resolve(++this.#generation);
  }

  #cancelPending(): void {
    if (this.#pending !== null) this.#source.clock.clearTimeout(this.#pending);
    this.#pending = null;
  }

  destroy(): void {
    this.#cancelPending();
    this.#generation++;
    this.#source.channels.delete(this);
  }

  async #resolve(generation: number): Promise<void> {
    const { endpoints, serviceConfig, attributes } = this.#source.answer();
    let resolved: experimental.StatusOr<Endpoint[]>;
    try {
      resolved = experimental.statusOrFromValue(
        await Promise.all(
          endpoints.map((endpoint) =>
            typeof endpoint === "string"
              ? resolveEndpoint(endpoint)
              : resolveEndpoint(endpoint.address, endpoint.hashKey)
          ),
        ),
      );
    } catch (error) {
      resolved = experimental.statusOrFromError({
        code: status.UNAVAILABLE,
        details: `${this.#source.scheme} resolver: ${(error as Error).message}`,
      });
    }
    if (generation !== this.#generation) return;
    if (resolved.ok) this.#source.resolved(resolved.value);
    if (attributes !== null) this.#attributes = attributes;
    if (serviceConfig?.ok === false) {
      experimental.log(
        LogVerbosity.ERROR,
        `${this.#source.scheme} resolver: ${serviceConfig.error.details}`,
      );
    }
    const names = resolved.ok
      ? serverNames(
        endpoints.map((endpoint) =>
          typeof endpoint === "string" ? endpoint : endpoint.address
        ),
        resolved.value,
      )
      : {};
    this.#listener(
      resolved,
      { ...this.#attributes, [SERVER_NAMES]: names },
      serviceConfig,
      "",
    );
  }
}
