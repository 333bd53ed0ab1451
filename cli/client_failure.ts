/**
 * Why a client's RPC failed, when grpc-js only says UNAVAILABLE.
 *
 * @module
 */
import type { ClientFlags } from "./client_flags.ts";
import { explainEtcdFailure } from "./etcd_access.ts";
import { explainConnectFailure } from "./tls.ts";

/**
 * `error`, or, when it is a connection never made, why, naming the backend
 * (or the etcd member of an etcd target) that a handshake of the client's
 * own finds at fault.
 */
export function explainClientFailure(
  error: Error,
  flags: ClientFlags,
): Promise<Error> {
  if (flags.etcd !== null) {
    return explainEtcdFailure(error, flags.etcdEndpoints, flags.etcd);
  }
  const backends = flags.target === undefined
    ? flags.addrs
    : [flags.target.replace(/^[a-z0-9+.-]+:(\/\/[^/]*\/)?/i, "")];
  return explainConnectFailure(
    error,
    backends.map((address) => ({ name: address, address })),
    flags.tls,
  );
}
