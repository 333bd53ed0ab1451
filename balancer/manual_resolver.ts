/**
 * A resolver whose answers the program sets, as grpc-go's `manual.Resolver`.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { experimental, status } from "@grpc/grpc-js";
import { parseServiceConfig } from "./service_config.ts";

type Endpoint = experimental.Endpoint;
type ResolverListener = experimental.ResolverListener;

/** What a {@linkcode ManualResolver} hands the channel. */
export interface ResolverState {
  /**
   * One `host:port` per endpoint, in order. Each host name is resolved to
   * all of its addresses, so that pick_first can use Happy Eyeballs among
   * them.
   */
  readonly endpoints: readonly string[];
  /**
   * The service config, as JSON text or a parsed object. It is checked with
   * {@linkcode parseServiceConfig}; an invalid one reaches the channel as a
   * service-config error.
   */
  readonly serviceConfig?: unknown;
}

/**
 * Hands every channel of its scheme a list of endpoints and a service config
 * that the program sets, and pushes later changes to them.
 *
 * @example
 * ```ts
 * const resolver = new ManualResolver("example", {
 *   endpoints: ["localhost:50050", "localhost:50051"],
 *   serviceConfig: { loadBalancingConfig: [{ custom_round_robin: {} }] },
 * });
 * resolver.register();
 * const client = new grpc.Client("example:///echo", creds);
 * resolver.update({ endpoints: ["localhost:50050", "localhost:50052"] });
 * ```
 */
export class ManualResolver {
  /** The URI scheme this resolver serves, e.g. `example` for `example:///x`. */
  readonly scheme: string;
  #state: ResolverState;
  readonly #channels = new Set<ChannelResolver>();
  #lastEndpoints: readonly Endpoint[] = [];

  /**
   * @param scheme The target URI scheme to serve.
   * @param state The first answer.
   */
  constructor(scheme: string, state: ResolverState) {
    this.scheme = scheme;
    this.#state = state;
  }

  /** The current answer. */
  get state(): ResolverState {
    return this.#state;
  }

  /** The endpoints last handed to a channel, with their resolved addresses. */
  get lastEndpoints(): readonly Endpoint[] {
    return this.#lastEndpoints;
  }

  /** Registers the scheme with grpc-js; channels created after it use it. */
  register(): void {
    const owner = this;
    experimental.registerResolver(
      this.scheme,
      class extends ChannelResolver {
        constructor(_target: experimental.GrpcUri, listener: ResolverListener) {
          super(owner, listener);
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
    for (const channel of this.#channels) channel.updateResolution();
  }

  /** Reports a resolution failure to every channel using this resolver. */
  reportError(message: string): void {
    for (const channel of this.#channels) channel.reportError(message);
  }

  /** @internal Called by a channel's resolver. */
  attach(channel: ChannelResolver): void {
    this.#channels.add(channel);
  }

  /** @internal Called by a channel's resolver. */
  detach(channel: ChannelResolver): void {
    this.#channels.delete(channel);
  }

  /** @internal Called by a channel's resolver with what it handed over. */
  recordEndpoints(endpoints: readonly Endpoint[]): void {
    this.#lastEndpoints = endpoints;
  }
}

/** The resolver grpc-js creates per channel; it reads its owner's state. */
class ChannelResolver implements experimental.Resolver {
  readonly #owner: ManualResolver;
  readonly #listener: ResolverListener;
  /** Bumped by every resolution and by destroy, to drop stale answers. */
  #generation = 0;

  constructor(owner: ManualResolver, listener: ResolverListener) {
    this.#owner = owner;
    this.#listener = listener;
  }

  updateResolution(): void {
    this.#owner.attach(this);
    void this.#resolve(++this.#generation);
  }

  reportError(message: string): void {
    const generation = ++this.#generation;
    queueMicrotask(() => {
      if (generation !== this.#generation) return;
      this.#listener(
        experimental.statusOrFromError({
          code: status.UNAVAILABLE,
          details: message,
        }),
        {},
        null,
        "",
      );
    });
  }

  destroy(): void {
    this.#generation++;
    this.#owner.detach(this);
  }

  async #resolve(generation: number): Promise<void> {
    const { endpoints, serviceConfig } = this.#owner.state;
    let resolved: experimental.StatusOr<Endpoint[]>;
    try {
      resolved = experimental.statusOrFromValue(
        await Promise.all(endpoints.map(resolveEndpoint)),
      );
    } catch (error) {
      resolved = experimental.statusOrFromError({
        code: status.UNAVAILABLE,
        details: `${this.#owner.scheme} resolver: ${(error as Error).message}`,
      });
    }
    if (generation !== this.#generation) return;
    if (resolved.ok) this.#owner.recordEndpoints(resolved.value);
    this.#listener(resolved, {}, checkedServiceConfig(serviceConfig), "");
  }
}

function checkedServiceConfig(
  json: unknown,
): experimental.StatusOr<ReturnType<typeof parseServiceConfig>> | null {
  if (json === undefined) return null;
  try {
    return experimental.statusOrFromValue(parseServiceConfig(json));
  } catch (error) {
    return experimental.statusOrFromError({
      code: status.UNAVAILABLE,
      details: (error as Error).message,
    });
  }
}

/** Resolves `host:port` to an endpoint holding all of the host's addresses. */
async function resolveEndpoint(hostPort: string): Promise<Endpoint> {
  const parsed = experimental.splitHostPort(hostPort);
  if (parsed === null || parsed.port === undefined) {
    throw new Error(`endpoint must be host:port, got "${hostPort}"`);
  }
  const { host, port } = parsed;
  if (isIP(host)) return { addresses: [{ host, port }] };
  try {
    const found = await lookup(host, { all: true });
    return { addresses: found.map(({ address }) => ({ host: address, port })) };
  } catch (error) {
    throw new Error(`cannot resolve ${host}: ${(error as Error).message}`);
  }
}
