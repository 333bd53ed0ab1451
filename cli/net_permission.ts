/**
 * The client's check, before it dials, that Deno lets it reach every host
 * it will dial: without it, each RPC fails with Deno's `NotCapable` and a
 * hint to pass `--allow-net`, a flag that `deno task client` hands to the
 * client instead of to Deno.
 *
 * @module
 */
import { experimental } from "@grpc/grpc-js";
import type { ClientFlags } from "./client_flags.ts";
import { RefusedError } from "./main.ts";

/** The task whose permissions reach any host. */
const REMOTE_TASK = "deno task client:remote";

/**
 * Throws unless the program may dial every host it knows it will dial: the
 * `--addrs`, an `etcd:` target's etcd endpoints, and an `xds:` target's
 * control plane, `xdsServers` (its bootstrap's `server_uri`s). A
 * `--target` whose hosts come from DNS is not known here.
 *
 * @throws {RefusedError} naming the first host it may not reach and the
 *   task that may.
 *
 * @example Loopback, which the program set allows
 * ```ts
 * import { checkMayDial } from "./net_permission.ts";
 * import { readClientFlags } from "./client_flags.ts";
 *
 * checkMayDial(
 *   readClientFlags(["--addrs", "localhost:50050,[::1]:50051"])!,
 *   [],
 * );
 * ```
 */
export function checkMayDial(
  flags: ClientFlags,
  xdsServers: readonly string[],
): void {
  for (const { host, what } of dialled(flags, xdsServers)) {
    const { state } = Deno.permissions.querySync({ name: "net", host });
    if (state !== "granted") {
      throw new RefusedError(
        `may not reach ${what} ${host}: the client's permissions allow loopback only; ${REMOTE_TASK} reaches any host (docs/flags_and_permissions.md)`,
      );
    }
  }
}

/** The hosts the client will dial, each with what it is, as Deno names them. */
function dialled(
  flags: ClientFlags,
  xdsServers: readonly string[],
): { host: string; what: string }[] {
  const scheme = flags.target?.split(":")[0];
  if (scheme === undefined) {
    return flags.addrs.map((address) => ({
      host: permissionHost(address),
      what: "backend",
    }));
  }
  if (scheme === "etcd") {
    return flags.etcdEndpoints.map((endpoint) => ({
      host: new URL(endpoint).host,
      what: "etcd endpoint",
    }));
  }
  if (scheme === "xds") {
    return xdsServers.map((uri) => ({
      host: permissionHost(uri.replace(/^dns:(\/\/[^/]*)?\//, "")),
      what: "xDS server",
    }));
  }
  return [];
}

/** `HOST:PORT` as Deno's net permission writes it: IPv6 in brackets. */
function permissionHost(address: string): string {
  const split = experimental.splitHostPort(address);
  if (split === null) return address;
  const host = split.host.includes(":") ? `[${split.host}]` : split.host;
  return split.port === undefined ? host : `${host}:${split.port}`;
}
