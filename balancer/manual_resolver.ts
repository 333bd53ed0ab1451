/**
 * A resolver whose answers the program sets, as grpc-go's `manual.Resolver`.
 *
 * @module
 */
import {
  experimental,
  logVerbosity as LogVerbosity,
  status,
} from "@grpc/grpc-js";
import { resolveEndpoint, serverNames } from "./_addresses.ts";
import { SERVER_NAMES } from "./endpoint_sharding.ts";
import { parseServiceConfig } from "./service_config.ts";
import {
  HEALTH_CHECK_SERVICE_NAME,
  healthCheckServiceName,
} from "./health_check.ts";

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
   * One `host:port` per endpoint, in order. Each host name is resolved to
   * all of its addresses, so that pick_first can use Happy Eyeballs among
   * them.
   */
  readonly endpoints: readonly string[];
  /**
   * The service config, as JSON text or a parsed object. It is checked with
   * {@linkcode parseServiceConfig}; an invalid one is logged and reaches the
   * channel as a service-config error, and the channel keeps the last valid
   * one. Its `healthCheckConfig` turns on health checking.
   */
  readonly serviceConfig?: unknown;
}

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
 * resolver.update({ endpoints: ["localhost:50050", "localhost:50052"] });
 * client.close();
 * ```
 */
export class ManualResolver {
  /** The URI scheme this resolver serves, e.g. `example` for `example:///x`. */
  readonly scheme: string;
  #state: ResolverState;
  #lastAddresses: readonly (readonly string[])[] = [];
  readonly #source: Source;

  /**
   * Makes a resolver for `scheme`; {@linkcode ManualResolver.register} puts
   * it in use.
   *
   * @param scheme The target URI scheme to serve.
   * @param state The first answer.
   */
  constructor(scheme: string, state: ResolverState) {
    this.scheme = scheme;
    this.#state = state;
    this.#source = {
      scheme,
      state: () => this.#state,
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
        static getDefaultAuthority(target: experimental.GrpcUri): string {
          return target.path;
        }
      },
    );
  }

  /** Sets a new answer and hands it to every channel using this resolver. */
  update(state: ResolverState): void {
    this.#state = state;
    for (const channel of this.#source.channels) channel.resolveNow();
  }
}

/** What a channel's resolver reads from, and reports to, its owner. */
interface Source {
  readonly scheme: string;
  state(): ResolverState;
  /** The channels' resolvers that are live. */
  readonly channels: Set<ChannelResolver>;
  resolved(endpoints: readonly Endpoint[]): void;
}

/** The resolver grpc-js creates per channel; it reads its owner's state. */
class ChannelResolver implements experimental.Resolver {
  readonly #source: Source;
  readonly #listener: ResolverListener;
  /** Bumped by every resolution and by destroy, to drop stale answers. */
  #generation = 0;
  /** Attributes of the last valid service config, kept past invalid ones. */
  #attributes: { [key: string]: unknown } = {};
  #lastResolution = -Infinity;
  #pending: ReturnType<typeof setTimeout> | null = null;

  constructor(source: Source, listener: ResolverListener) {
    this.#source = source;
    this.#listener = listener;
  }

  updateResolution(): void {
    this.#source.channels.add(this);
    if (this.#pending !== null) return;
    const wait = this.#lastResolution + MIN_RERESOLUTION_INTERVAL_MS -
      performance.now();
    if (wait <= 0) {
      this.resolveNow();
      return;
    }
    this.#pending = setTimeout(() => this.resolveNow(), wait);
  }

  /** Resolves at once, dropping a resolution that waits for its turn. */
  resolveNow(): void {
    this.#cancelPending();
    this.#lastResolution = performance.now();
    void this.#resolve(++this.#generation);
  }

  #cancelPending(): void {
    if (this.#pending !== null) clearTimeout(this.#pending);
    this.#pending = null;
  }

  destroy(): void {
    this.#cancelPending();
    this.#generation++;
    this.#source.channels.delete(this);
  }

  async #resolve(generation: number): Promise<void> {
    const { endpoints, serviceConfig } = this.#source.state();
    let resolved: experimental.StatusOr<Endpoint[]>;
    try {
      resolved = experimental.statusOrFromValue(
        await Promise.all(endpoints.map(resolveEndpoint)),
      );
    } catch (error) {
      resolved = experimental.statusOrFromError({
        code: status.UNAVAILABLE,
        details: `${this.#source.scheme} resolver: ${(error as Error).message}`,
      });
    }
    if (generation !== this.#generation) return;
    if (resolved.ok) this.#source.resolved(resolved.value);
    const checked = this.#checkedServiceConfig(serviceConfig);
    const names = resolved.ok ? serverNames(endpoints, resolved.value) : {};
    this.#listener(
      resolved,
      { ...this.#attributes, [SERVER_NAMES]: names },
      checked,
      "",
    );
  }

  #checkedServiceConfig(
    json: unknown,
  ): experimental.StatusOr<ReturnType<typeof parseServiceConfig>> | null {
    if (json === undefined) {
      this.#attributes = {};
      return null;
    }
    try {
      const config = parseServiceConfig(json);
      const name = healthCheckServiceName(
        typeof json === "string" ? JSON.parse(json) : json,
      );
      this.#attributes = { [HEALTH_CHECK_SERVICE_NAME]: name };
      return experimental.statusOrFromValue(config);
    } catch (error) {
      const details = (error as Error).message;
      experimental.log(
        LogVerbosity.ERROR,
        `${this.#source.scheme} resolver: ${details}`,
      );
      return experimental.statusOrFromError({
        code: status.UNAVAILABLE,
        details,
      });
    }
  }
}
