/**
 * etcd naming in grpc-go's format (`go.etcd.io/etcd/client/v3/naming`), in
 * one place for the resolver that reads it and the registration that writes
 * it: every key `PREFIX/ADDRESS` holds `{"Addr": "host:port", "Metadata":
 * …}`. Also the cluster's client URLs, and the etcd client both use.
 *
 * @module
 */
import { experimental } from "@grpc/grpc-js";
import type { Etcd3 } from "etcd3";

/**
 * The etcd cluster when the channel gives none: etcd's own
 * default client URL.
 *
 * @example Naming it on the command line's default
 * ```ts
 * const endpoints = parseEtcdEndpoints(DEFAULT_ETCD_ENDPOINTS);
 * ```
 */
export const DEFAULT_ETCD_ENDPOINTS = "http://127.0.0.1:2379";

/**
 * Reads comma-separated etcd client URLs, each `http://host:port`.
 *
 * @example Two members
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   parseEtcdEndpoints("http://10.0.0.1:2379, http://10.0.0.2:2379"),
 *   ["http://10.0.0.1:2379", "http://10.0.0.2:2379"],
 * );
 * ```
 *
 * @throws {Error} naming the first URL that is not `http://host:port`.
 */
export function parseEtcdEndpoints(text: string): string[] {
  return text.split(",").map((given) => {
    const url = given.trim();
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      // Reported below.
    }
    if (
      parsed?.protocol !== "http:" || parsed.port === "" ||
      parsed.pathname !== "/" || `${parsed.origin}` !== url
    ) {
      throw new Error(
        `etcd endpoints must be http://HOST:PORT URLs, got "${given}"`,
      );
    }
    return url;
  });
}

/**
 * The prefix of the keys that `PREFIX`'s endpoints sit under, `PREFIX/`,
 * slashes at either end of `PREFIX` dropped: what the resolver watches, and
 * what a registration writes under. `"/"` for a prefix of slashes alone.
 *
 * @example The same keys, however the prefix is written
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(etcdKeyPrefix("services/echo"), "services/echo/");
 * assert.equal(etcdKeyPrefix("/services/echo/"), "services/echo/");
 * ```
 */
export function etcdKeyPrefix(prefix: string): string {
  return `${prefix.replace(/^\/+|\/+$/g, "")}/`;
}

/**
 * The key `address` is registered under: `PREFIX/ADDRESS`.
 *
 * @example The second server of `services/echo`
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   etcdKey("/services/echo", "10.0.0.7:50051"),
 *   "services/echo/10.0.0.7:50051",
 * );
 * ```
 */
export function etcdKey(prefix: string, address: string): string {
  return etcdKeyPrefix(prefix) + address;
}

/**
 * The value a server registers under `PREFIX/ADDRESS`: grpc-go's naming
 * `Endpoint`, `{"Addr": address, "Metadata": null}`.
 *
 * @example What `etcdctl put` would write
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   etcdEndpointValue("10.0.0.7:50051"),
 *   '{"Addr":"10.0.0.7:50051","Metadata":null}',
 * );
 * ```
 */
export function etcdEndpointValue(address: string): string {
  return JSON.stringify({ Addr: address, Metadata: null });
}

/**
 * The address a registered value holds, its `Addr`.
 *
 * @throws {Error} saying what is wrong with a value that is not JSON with
 *   an `Addr` of `host:port`.
 */
export function etcdValueAddress(value: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error(`value is not JSON: ${JSON.stringify(value)}`);
  }
  const address = (parsed as { Addr?: unknown } | null)?.Addr;
  if (
    typeof address !== "string" ||
    experimental.splitHostPort(address)?.port === undefined
  ) {
    throw new Error(`"Addr" is not HOST:PORT in ${value}`);
  }
  return address;
}

/**
 * How the etcd resolver makes its client: {@linkcode connectEtcd}, unless
 * replaced. The tests replace it to wrap the client, as to put a change
 * between the resolver's read of a prefix and its watch.
 */
export const etcdConnector: {
  connect: (endpoints: readonly string[]) => Promise<Etcd3>;
} = { connect: (endpoints) => connectEtcd(endpoints) };

/**
 * An etcd client for `endpoints`, tuned to find a member that is back in
 * about a second: reconnection backoff from 100 ms to 1 s (grpc-js: up to
 * 120 s; the etcd3 package's watch: up to 30 s), and no per-member circuit
 * breaker, which would leave a restarted member unused for 5 s. A failed
 * call is tried on another member, up to 3 times.
 */
export async function connectEtcd(
  endpoints: readonly string[],
): Promise<Etcd3> {
  // Loaded on first use: a program without etcd never reads its protos.
  const [{ Etcd3 }, { ExponentialBackoff, noop }] = await Promise.all([
    import("etcd3"),
    import("cockatiel"),
  ]);
  return new Etcd3({
    hosts: [...endpoints],
    grpcOptions: {
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1_000,
    },
    faultHandling: {
      host: () => noop,
      watchBackoff: new ExponentialBackoff({
        initialDelay: 100,
        maxDelay: 1_000,
      }).next(),
    },
  });
}
