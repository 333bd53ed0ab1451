/**
 * What the client registers with grpc-js before it makes a channel: the
 * policy, and what its target's scheme needs beside grpc-js.
 *
 * @module
 */
import {
  registerCustomRoundRobin,
  registerDnsHealthCheckConfig,
  registerEtcdResolver,
  registerLeastRequest,
  registerRingHash,
  registerXds,
} from "../balancer/mod.ts";
import type { ClientFlags } from "./client_flags.ts";
import { withoutDeprecationWarnings } from "./main.ts";
import { checkXdsBootstrap } from "./xds_bootstrap.ts";

/**
 * Registers `custom_round_robin` (and `least_request_experimental`, when
 * the client runs it), and for the target's scheme DNS's
 * health-check config, the etcd resolver with its access, or xDS once its
 * bootstrap is checked. Resolves to the control plane's `server_uri`s for
 * an `xds:` target, which the bootstrap names; else to none.
 *
 * @throws {Error} in one line, for an xDS bootstrap or package that is
 *   missing or wrong.
 */
export async function registerForTarget(
  flags: ClientFlags,
): Promise<string[]> {
  registerCustomRoundRobin();
  if (flags.policy === "least_request") registerLeastRequest();
  if (flags.policy === "ring_hash") registerRingHash();
  const scheme = flags.target?.split(":")[0];
  if (scheme === "dns") registerDnsHealthCheckConfig();
  if (flags.etcd !== null) registerEtcdResolver(flags.etcd.access);
  if (scheme !== "xds") return [];
  const xdsServers = checkXdsBootstrap();
  await withoutDeprecationWarnings(registerXds);
  return xdsServers;
}
