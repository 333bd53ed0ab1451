/**
 * Echo servers that answer with their own address, so a client can see which
 * backend served each RPC.
 *
 * ```sh
 * deno task server                                  # localhost:50050 and :50051
 * deno task server --addrs localhost:0,localhost:0  # two free ports
 * ```
 *
 * @module
 */
import {
  type EchoServer,
  startEchoServers,
  stopEchoServers,
} from "./echo/mod.ts";
import { releaseWarning } from "./cli/deno_release.ts";
import { EtcdRegistration } from "./cli/etcd_registration.ts";
import { explainEtcdFailure } from "./cli/etcd_access.ts";
import { printServing, runMain, withoutGrpcLog } from "./cli/main.ts";
import {
  type EtcdFlags,
  readServerFlags,
  SERVER_USAGE,
} from "./cli/server_flags.ts";
import { serverCredentials } from "./cli/tls.ts";
import { serveMetrics } from "./cli/metrics.ts";
import { serverCallMetricsInterceptor } from "./balancer/mod.ts";

async function main(): Promise<number> {
  const flags = readServerFlags(Deno.args);
  if (flags === null) {
    console.log(SERVER_USAGE);
    return 0;
  }
  const warning = releaseWarning(Deno.version.deno);
  if (warning !== null) console.error(warning);
  const credentials = serverCredentials(flags.tls);
  const metrics = flags.metrics && await serveMetrics(flags.metrics);
  const servers = await withoutGrpcLog(() =>
    startEchoServers(flags.addresses, (i) => ({
      ...(flags.failures === null ? {} : { failures: flags.failures }),
      delayMs: flags.delaysMs[i],
      credentials,
      interceptors: metrics ? [serverCallMetricsInterceptor()] : [],
    }))
  );
  printServing(servers);
  if (metrics) console.log(`metrics on ${metrics.url}`);
  const registration = flags.etcd === null
    ? null
    : await register(servers, flags.etcd);
  await signalled();
  // Deregistered first, so that clients drop this server on etcd's word
  // while it still serves.
  await registration?.stop();
  await stopEchoServers(servers, { drainMs: flags.drainMs });
  await metrics?.stop();
  return 0;
}

/**
 * Registers every server in etcd, printing each key; if that fails, no
 * server is left running.
 */
async function register(
  servers: readonly EchoServer[],
  etcd: EtcdFlags,
): Promise<EtcdRegistration> {
  let registration: EtcdRegistration;
  try {
    registration = await EtcdRegistration.start({
      ...etcd,
      access: etcd.settings.access,
      addresses: servers.map(({ address }) => address),
    });
  } catch (error) {
    for (const { server } of servers) server.forceShutdown();
    throw await explainEtcdFailure(
      error as Error,
      etcd.endpoints,
      etcd.settings,
    );
  }
  for (const key of registration.keys) console.log(`registered ${key}`);
  return registration;
}

/** Resolves on the first SIGINT or SIGTERM. */
function signalled(): Promise<void> {
  return new Promise((resolve) => {
    Deno.addSignalListener("SIGINT", resolve);
    Deno.addSignalListener("SIGTERM", resolve);
  });
}

if (import.meta.main) {
  await runMain("server", SERVER_USAGE, main);
}
