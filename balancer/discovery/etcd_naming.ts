/**
 * etcd naming in grpc-go's format (`go.etcd.io/etcd/client/v3/naming`): every
 * key `PREFIX/ADDRESS` holds `{"Addr": "host:port", "Metadata": …}`. The key
 * format is here, for the resolver that reads it and a registration that
 * writes it; so are the cluster's client URLs, and the etcd client both use.
 *
 * @module
 */
import { isIP } from "node:net";
import process from "node:process";
import { experimental } from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import type { Etcd3, IOptions } from "etcd3";

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
 * The runtime whose `node:tls` refuses an IP address as the TLS server name,
 * which grpc-js always sends for a host given by address, or `null` on Node,
 * which verifies the certificate's IP address.
 */
const IP_SERVER_NAME_REFUSED_BY: string | null = "Deno" in globalThis
  ? "Deno"
  : process.versions.bun !== undefined
  ? "Bun"
  : null;

/**
 * Reads comma-separated etcd client URLs: all `http://host:port`, or all
 * `https://host:port` (TLS). Over TLS etcd's certificate is verified for
 * the host: on Deno and Bun a host name, as their `node:tls` refuses an IP
 * address as the server name; on Node an IP address too.
 *
 * @example Two members
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   parseEtcdEndpoints("http://10.0.0.1:2379, http://10.0.0.2:2379"),
 *   ["http://10.0.0.1:2379", "http://10.0.0.2:2379"],
 * );
 * assert.throws(
 *   () => parseEtcdEndpoints("https://etcd-0:2379,http://etcd-1:2379"),
 *   /mix http:\/\/ and https:\/\//,
 * );
 * ```
 *
 * @throws {Error} naming the first URL that is not `http://host:port` or
 *   `https://name:port`, or saying that the URLs mix the two.
 */
export function parseEtcdEndpoints(text: string): string[] {
  const urls = text.split(",").map((given) => {
    const url = given.trim();
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      // Reported below.
    }
    if (
      (parsed?.protocol !== "http:" && parsed?.protocol !== "https:") ||
      parsed.port === "" || parsed.pathname !== "/" ||
      `${parsed.origin}` !== url
    ) {
      throw new Error(
        `etcd endpoints must be http://HOST:PORT or https://HOST:PORT URLs, got "${given}"`,
      );
    }
    const refusing = IP_SERVER_NAME_REFUSED_BY;
    if (
      refusing !== null && parsed.protocol === "https:" &&
      isIP(parsed.hostname.replace(/^\[|\]$/g, "")) !== 0
    ) {
      throw new Error(
        `etcd endpoint ${url}: over TLS grpc-js sends the host it is given by as the TLS server name, and ${refusing}'s node:tls refuses an IP address there: give a name its certificate holds (Node takes an IP address)`,
      );
    }
    return url;
  });
  const schemes = new Set(urls.map((url) => new URL(url).protocol));
  if (schemes.size > 1) {
    throw new Error(
      `etcd endpoints mix http:// and https:// URLs (${
        urls.join(",")
      }): give one scheme for all`,
    );
  }
  return urls;
}

/**
 * Whether `endpoints` (as {@linkcode parseEtcdEndpoints} gives, all of one
 * scheme) are TLS.
 *
 * @example An etcd over TLS
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(etcdEndpointsUseTls(["https://etcd-0:2379"]), true);
 * assert.equal(etcdEndpointsUseTls(["http://127.0.0.1:2379"]), false);
 * ```
 */
export function etcdEndpointsUseTls(endpoints: readonly string[]): boolean {
  return endpoints[0]?.startsWith("https:") ?? false;
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

/** What a registered value says of its endpoint. */
export interface EtcdValue {
  /** Its `Addr`, `host:port`. */
  readonly address: string;
  /**
   * `Metadata.hashKey`, gRFC A76's hash key: where ring_hash places the
   * endpoint in place of its address; `undefined` when not a string.
   */
  readonly hashKey: string | undefined;
}

/**
 * What a registered value holds: its `Addr`, and a `hashKey` in its
 * `Metadata` (grpc-go's naming format leaves `Metadata` to the user).
 *
 * @throws {Error} saying what is wrong with a value that is not JSON with
 *   an `Addr` of `host:port`.
 */
export function etcdValue(value: string): EtcdValue {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error(`value is not JSON: ${JSON.stringify(value)}`);
  }
  const { Addr: address, Metadata: metadata } = (parsed ?? {}) as {
    Addr?: unknown;
    Metadata?: unknown;
  };
  if (
    typeof address !== "string" ||
    experimental.splitHostPort(address)?.port === undefined
  ) {
    throw new Error(`"Addr" is not HOST:PORT in ${value}`);
  }
  const hashKey = (metadata as { hashKey?: unknown } | null)?.hashKey;
  return {
    address,
    hashKey: typeof hashKey === "string" ? hashKey : undefined,
  };
}

/**
 * How a client proves itself to etcd, beside the URLs: TLS files' contents,
 * and an etcd user for a cluster with auth enabled.
 */
export interface EtcdAccess {
  /** TLS, for `https://` URLs only. */
  readonly tls?: {
    /** The CA etcd's certificate is verified against (PEM); the system's CAs without it. */
    readonly ca?: Uint8Array;
    /** A client certificate chain (PEM), for etcd's `--client-cert-auth`. */
    readonly cert?: Uint8Array;
    /** Its private key (PEM). */
    readonly key?: Uint8Array;
  };
  /** The etcd user the client authenticates as; its token is renewed when it expires. */
  readonly user?: { readonly name: string; readonly password: string };
}

/**
 * What etcd refused, in a few words naming the user, for an error of the
 * etcd3 package; its own message for any other.
 *
 * @param user The user the client authenticated as, if any.
 * @param what What was asked, as `read services/echo/`.
 *
 * @example A user without the permission
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   etcdRefusal(
 *     new Error("7 PERMISSION_DENIED: etcdserver: permission denied"),
 *     { name: "reader", password: "" },
 *     "write services/echo/10.0.0.7:50051",
 *   ),
 *   'etcd user "reader" may not write services/echo/10.0.0.7:50051',
 * );
 * ```
 */
export function etcdRefusal(
  error: Error,
  user: EtcdAccess["user"],
  what: string,
): string {
  if (/etcdserver: authentication failed/.test(error.message)) {
    return `etcd refused user "${user?.name}": wrong user name or password`;
  }
  if (/etcdserver: permission denied/.test(error.message)) {
    return user === undefined
      ? `etcd refused to ${what} without a user: its auth is enabled`
      : `etcd user "${user.name}" may not ${what}`;
  }
  return error.message;
}

/**
 * An etcd client for `endpoints`, tuned to find a member that is back in
 * about a second: reconnection backoff from 100 ms to 1 s (grpc-js: up to
 * 120 s; the etcd3 package's watch: up to 30 s), and no per-member circuit
 * breaker, which would leave a restarted member unused for 5 s. A failed
 * call is tried on another member, up to 3 times. The etcd3 package asks
 * for a new token when etcd says that the user's has expired.
 *
 * @throws {Error} for TLS settings with `http://` URLs, or a certificate
 *   without its key.
 */
export async function connectEtcd(
  endpoints: readonly string[],
  access: EtcdAccess = {},
): Promise<Etcd3> {
  const { tls, user } = access;
  if (tls !== undefined && !etcdEndpointsUseTls(endpoints)) {
    throw new Error(
      `etcd TLS settings need https:// URLs, got ${endpoints.join(",")}`,
    );
  }
  if ((tls?.cert === undefined) !== (tls?.key === undefined)) {
    throw new Error(
      "an etcd client certificate needs its key, and the reverse",
    );
  }
  // Loaded on first use: a program without etcd never reads its protos.
  const [{ Etcd3 }, { ExponentialBackoff, noop }] = await Promise.all([
    import("etcd3"),
    import("cockatiel"),
  ]);
  return new Etcd3({
    hosts: [...endpoints],
    // With https:// URLs and no settings, the package verifies etcd against
    // the system's CAs.
    credentials: tls === undefined ? undefined : {
      rootCertificate: tls.ca && Buffer.from(tls.ca),
      privateKey: tls.key && Buffer.from(tls.key),
      certChain: tls.cert && Buffer.from(tls.cert),
    } as IOptions["credentials"],
    auth: user && { username: user.name, password: user.password },
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
