/**
 * A resolver for `etcd:///PREFIX` targets: the endpoints registered in etcd
 * under `PREFIX/`, watched, so that a change reaches the channel as soon as
 * etcd has it.
 *
 * Keys and values follow grpc-go's etcd naming (`go.etcd.io/etcd/client/v3/
 * naming`): every key `PREFIX/…` holds `{"Addr": "host:port", "Metadata":
 * …}`, so servers registered by grpc-go's endpoints manager are found too.
 * The endpoints are handed on in key order, so the first and the second are
 * the same for every client. The etcd cluster is named by the
 * {@linkcode ETCD_ENDPOINTS} channel option.
 *
 * While etcd cannot be reached, the channel keeps the last endpoints it was
 * given; the watch resumes where it stopped when etcd is back.
 *
 * @module
 */
import {
  type ChannelOptions,
  experimental,
  logVerbosity as LogVerbosity,
  status,
} from "@grpc/grpc-js";
import type { Etcd3, IKeyValue, Watcher } from "etcd3";
import { resolveEndpoint, serverNames } from "./_addresses.ts";
import {
  connectEtcd,
  DEFAULT_ETCD_ENDPOINTS,
  type EtcdAccess,
  etcdKeyPrefix,
  etcdRefusal,
  type EtcdValue,
  etcdValue,
  parseEtcdEndpoints,
} from "./etcd_naming.ts";
import { SERVER_NAMES } from "./server_names.ts";

type Endpoint = experimental.Endpoint;
type ResolverListener = experimental.ResolverListener;

/**
 * The channel option naming the etcd cluster of an `etcd:` target: its
 * client URLs, comma-separated (default {@linkcode DEFAULT_ETCD_ENDPOINTS}).
 *
 * @example A channel to the endpoints under `services/echo`
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 * import { registerCustomRoundRobin } from "../custom_round_robin.ts";
 *
 * registerCustomRoundRobin();
 * const client = new grpc.Client(
 *   "etcd:///services/echo",
 *   grpc.credentials.createInsecure(),
 *   { [ETCD_ENDPOINTS]: "http://10.0.0.1:2379,http://10.0.0.2:2379" },
 * );
 * client.close();
 * ```
 */
export const ETCD_ENDPOINTS = "customlb.etcd_endpoints";

const TRACER = "etcd_resolver";

function trace(text: string): void {
  experimental.trace(LogVerbosity.DEBUG, TRACER, text);
}

/** The resolver grpc-js creates for each channel to an `etcd:` target. */
class EtcdResolver implements experimental.Resolver {
  readonly #listener: ResolverListener;
  /** The key prefix, `PREFIX/`. */
  readonly #prefix: string;
  /** The cluster's URLs, or why the target or option is not valid. */
  readonly #endpoints: string[] | Error;
  #client: Etcd3 | null = null;
  /** Set while the watch is up; the watch hands on every change. */
  #watcher: Watcher | null = null;
  #starting = false;
  /** Address by key, of every valid key under the prefix. */
  readonly #addresses = new Map<string, EtcdValue>();
  /** Bumped by each hand-on and by destroy, to drop a stale one. */
  #generation = 0;
  #destroyed = false;

  readonly #access: EtcdResolverOptions;

  constructor(
    target: experimental.GrpcUri,
    listener: ResolverListener,
    options: ChannelOptions,
    access: EtcdResolverOptions,
  ) {
    this.#access = access;
    this.#listener = listener;
    this.#prefix = etcdKeyPrefix(target.path);
    this.#endpoints = checkedTarget(target, options);
  }

  /**
   * Starts the watch, or starts it again after it failed; while it is up,
   * there is nothing to do: etcd pushes every change.
   */
  updateResolution(): void {
    if (this.#watcher !== null || this.#starting || this.#destroyed) return;
    const endpoints = this.#endpoints;
    if (endpoints instanceof Error) {
      this.#fail(endpoints.message);
      return;
    }
    this.#starting = true;
    this.#start(endpoints).catch((error) =>
      this.#fail(
        `etcd resolver: cannot read ${this.#prefix} from etcd at ${endpoints}: ${
          etcdRefusal(error, this.#access.user, `read ${this.#prefix}`)
        }`,
      )
    ).finally(() => this.#starting = false);
  }

  /**
   * The prefix's last segment (`echo` for `etcd:///services/echo`): the
   * `:authority` of HTTP/2 may hold no `/`, and servers refuse a stream
   * whose authority does.
   */
  static getDefaultAuthority(target: experimental.GrpcUri): string {
    return target.path.split("/").filter(Boolean).at(-1) ?? "etcd";
  }

  destroy(): void {
    this.#destroyed = true;
    this.#generation++;
    const watcher = this.#watcher;
    this.#watcher = null;
    const client = this.#client;
    void (watcher?.cancel() ?? Promise.resolve()).catch(() => {})
      .finally(() => client?.close());
  }

  /** Reads every key under the prefix, then watches from the next revision. */
  async #start(endpoints: readonly string[]): Promise<void> {
    if (this.#client === null) {
      const connect = this.#access.connect ?? connectEtcd;
      const client = await connect(endpoints, this.#access);
      // Destroyed while the etcd3 package loaded: it never saw this client.
      if (this.#destroyed) return client.close();
      this.#client = client;
    }
    const { header, kvs } = await this.#client.getAll().prefix(this.#prefix)
      .exec();
    if (this.#destroyed) return;
    const watcher = await this.#client.watch().prefix(this.#prefix)
      .startRevision(String(BigInt(header.revision) + 1n)).create();
    if (this.#destroyed) {
      await watcher.cancel();
      return;
    }
    this.#watcher = watcher;
    this.#addresses.clear();
    for (const kv of kvs) this.#put(kv);
    trace(`${this.#prefix}: watching from revision ${header.revision}`);
    watcher.on("put", (kv) => {
      this.#put(kv);
      void this.#handOn();
    });
    watcher.on("delete", (kv) => {
      this.#addresses.delete(kv.key.toString());
      void this.#handOn();
    });
    // The etcd3 package reconnects the watch by itself and resumes it
    // after the last revision it saw; meanwhile the channel keeps the
    // endpoints it has.
    watcher.on(
      "disconnected",
      (error) => trace(`${this.#prefix}: watch lost: ${error.message}`),
    );
    watcher.on("connected", () => trace(`${this.#prefix}: watch resumed`));
    // Cancelled by etcd, as when its revision was compacted away, or when
    // it no longer knows the user's token (it expired, or etcd restarted):
    // read the whole prefix again, on a new client. The etcd3 package opens
    // every watch of a client on one stream, which keeps the token it was
    // opened with, so a watch made again on it is cancelled again.
    watcher.on("error", (error) => {
      trace(`${this.#prefix}: watch cancelled: ${error.message}`);
      if (this.#watcher !== watcher) return;
      this.#watcher = null;
      this.#client?.close();
      this.#client = null;
      this.updateResolution();
    });
    await this.#handOn();
  }

  #put(kv: IKeyValue): void {
    const key = kv.key.toString();
    try {
      this.#addresses.set(key, etcdValue(kv.value.toString()));
    } catch (error) {
      this.#addresses.delete(key);
      experimental.log(
        LogVerbosity.ERROR,
        `${TRACER}: skipping ${key}: ${(error as Error).message}`,
      );
    }
  }

  /** Hands the channel the endpoints in key order, host names resolved. */
  async #handOn(): Promise<void> {
    // The watch may still deliver while its cancellation is on its way.
    if (this.#destroyed) return;
    const generation = ++this.#generation;
    const given = [...this.#addresses].sort(([a], [b]) => a < b ? -1 : 1);
    const settled = await Promise.allSettled(
      given.map(([, { address, hashKey }]) =>
        resolveEndpoint(address, hashKey)
      ),
    );
    if (generation !== this.#generation) return;
    const endpoints: Endpoint[] = [];
    const addresses: string[] = [];
    settled.forEach((result, i) => {
      if (result.status === "fulfilled") {
        endpoints.push(result.value);
        addresses.push(given[i][1].address);
      } else {
        experimental.log(
          LogVerbosity.ERROR,
          `${TRACER}: skipping ${given[i][0]}: ${result.reason.message}`,
        );
      }
    });
    trace(`${this.#prefix}: ${addresses.join(", ") || "no endpoints"}`);
    this.#listener(
      experimental.statusOrFromValue(endpoints),
      { [SERVER_NAMES]: serverNames(addresses, endpoints) },
      null,
      "",
    );
  }

  #fail(details: string): void {
    if (this.#destroyed) return;
    trace(details);
    this.#listener(
      experimental.statusOrFromError({ code: status.UNAVAILABLE, details }),
      {},
      null,
      "",
    );
  }
}

/** The cluster's URLs, or why the target or the option is not valid. */
function checkedTarget(
  target: experimental.GrpcUri,
  options: ChannelOptions,
): string[] | Error {
  if (target.authority) {
    return new Error(
      `etcd resolver: give the cluster by the ${ETCD_ENDPOINTS} option, not in the target ("${target.authority}")`,
    );
  }
  if (etcdKeyPrefix(target.path) === "/") {
    return new Error(
      "etcd resolver: the target needs a prefix: etcd:///PREFIX",
    );
  }
  const option = options[ETCD_ENDPOINTS] ?? DEFAULT_ETCD_ENDPOINTS;
  try {
    return parseEtcdEndpoints(String(option));
  } catch (error) {
    return new Error(`etcd resolver: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * How {@linkcode registerEtcdResolver}'s resolvers reach etcd: how their
 * clients prove themselves, and, for a test, what makes a client.
 */
export interface EtcdResolverOptions extends EtcdAccess {
  /**
   * Makes the etcd client of a channel's resolver (default
   * {@linkcode connectEtcd}); one that wraps it can watch or hold back
   * what the resolver asks of etcd.
   */
  readonly connect?: (
    endpoints: readonly string[],
    access: EtcdAccess,
  ) => Promise<Etcd3>;
}

/**
 * Registers the `etcd` scheme with grpc-js, for every channel of the
 * process created afterwards: `etcd:///PREFIX` targets then reach the
 * endpoints registered under `PREFIX/`. Call it once, before those
 * channels; a later call replaces the options for channels made after it.
 *
 * @param options How the resolvers' etcd clients prove themselves to etcd.
 *
 * @example A channel to the endpoints under `services/echo`
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 *
 * registerEtcdResolver();
 * const client = new grpc.Client(
 *   "etcd:///services/echo",
 *   grpc.credentials.createInsecure(),
 *   { [ETCD_ENDPOINTS]: "http://127.0.0.1:2379" },
 * );
 * client.close();
 * ```
 *
 * @example Over TLS, as an etcd user
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 *
 * registerEtcdResolver({
 *   tls: { ca: new TextEncoder().encode("-----BEGIN CERTIFICATE-----...") },
 *   user: { name: "reader", password: "from a secret store" },
 * });
 * const client = new grpc.Client(
 *   "etcd:///services/echo",
 *   grpc.credentials.createInsecure(),
 *   { [ETCD_ENDPOINTS]: "https://etcd-0.example:2379" },
 * );
 * client.close();
 * ```
 */
export function registerEtcdResolver(options: EtcdResolverOptions = {}): void {
  experimental.registerResolver(
    "etcd",
    class extends EtcdResolver {
      constructor(
        target: experimental.GrpcUri,
        listener: ResolverListener,
        channelOptions: ChannelOptions,
      ) {
        super(target, listener, channelOptions, options);
      }
    },
  );
}
