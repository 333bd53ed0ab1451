/**
 * Reaches two echo servers through `custom_round_robin` and proves the
 * distribution: one RPC in every `chooseSecond` goes to the second server.
 *
 * ```sh
 * deno task client                      # check the 1:2 ratio, exit 0 if it holds
 * deno task client --count 1000 --quiet # send 1000 RPCs, print a summary
 * ```
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  checkServiceConfig,
  ETCD_ENDPOINTS,
  ManualResolver,
} from "./balancer/mod.ts";
import { EchoClient } from "./echo/mod.ts";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
  metricsChannelOptions,
  underOutlierDetection,
  withLeastRequest,
  withRingHash,
} from "./cli/client_config.ts";
import {
  CLIENT_USAGE,
  type ClientFlags,
  type CountFlags,
  readClientFlags,
} from "./cli/client_flags.ts";
import { UsageError } from "./cli/flags.ts";
import { type Send, sendCount, unaryEcho, withResend } from "./cli/load.ts";
import { runMain } from "./cli/main.ts";
import { checkMayDial } from "./cli/net_permission.ts";
import { registerForTarget } from "./cli/registrations.ts";
import { checkRatio } from "./cli/ratio_proof.ts";
import { clientCredentials } from "./cli/tls.ts";
import { explainClientFailure } from "./cli/client_failure.ts";
import { sendKeys } from "./cli/keys.ts";
import { serveMetrics } from "./cli/metrics.ts";

/**
 * Runs the client with command-line `args`; resolves to the exit code.
 *
 * @throws {UsageError} for a bad flag; {@linkcode Error} when the ratio
 *   check fails or an RPC of it fails.
 */
export async function runClient(args: readonly string[]): Promise<number> {
  const flags = readClientFlags(args);
  if (flags === null) {
    console.log(CLIENT_USAGE);
    return 0;
  }
  // 1. The policy is registered before any channel exists; so is what the
  // target's scheme needs beside grpc-js.
  const xdsServers = await registerForTarget(flags);
  // Each RPC to a host Deno's permissions do not reach would fail otherwise.
  checkMayDial(flags, xdsServers);
  // 2. The service config names it, and is checked: grpc-js would quietly
  // fall back to pick_first otherwise.
  const serviceConfig = checkedServiceConfig(flags);
  // 3. Metrics, if asked for, before the channel: its policy finds the
  // MeterProvider when it starts.
  const metrics = flags.metrics && await serveMetrics(flags.metrics);
  if (metrics) console.error(`metrics on ${metrics.url}`);
  // 4. The channel reaches both backends through the policy.
  const { client, endpointOf } = makeChannel(flags, serviceConfig);
  // 5. UnaryEcho RPCs; Echo is idempotent, so a call whose connection was
  // lost in a way the retry policy does not cover is sent once more.
  const send = withResend((deadline, metadata) =>
    unaryEcho(client, deadline, metadata)
  );
  try {
    // 6. The proof of the ratio, a count of RPCs per backend, or each
    // key's backend.
    return flags.keys !== null
      ? await sendKeys(send, flags.keys, flags)
      : flags.count === null
      ? await proveRatio(send, flags, endpointOf)
      : await countRpcs(send, flags.count, flags, endpointOf);
  } catch (error) {
    throw await explainClientFailure(error as Error, flags);
  } finally {
    client.close();
    await metrics?.stop();
  }
}

/** Which endpoint (0: first, 1: second) a peer belongs to, if known. */
type EndpointOf = (peer: string) => number | undefined;

/**
 * The client's service config: the policy, under `outlier_detection` if
 * asked for.
 *
 * @throws {UsageError} in the check's words, for a config it refuses.
 */
function checkedServiceConfig(flags: ClientFlags): Record<string, unknown> {
  const custom = clientServiceConfig(flags.chooseSecond, flags.healthService);
  const policy = flags.policy === "least_request"
    ? withLeastRequest(custom)
    : flags.keys !== null
    ? withRingHash(custom, flags.keys.header)
    : custom;
  const serviceConfig = flags.outlierDetection
    ? underOutlierDetection(policy)
    : policy;
  try {
    checkServiceConfig(serviceConfig);
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
  return serviceConfig;
}

/**
 * The client of the channel: with `--addrs`, through a manual resolver that
 * hands the channel both endpoints, in order, and the service config; with
 * `--target`, through that target's resolver, the config as a channel
 * option.
 */
function makeChannel(
  flags: ClientFlags,
  serviceConfig: Record<string, unknown>,
): { client: EchoClient; endpointOf: EndpointOf } {
  const credentials = flags.tls === null
    ? grpc.credentials.createInsecure()
    : clientCredentials(flags.tls);
  const target = flags.target ?? "example:///echo";
  const options = {
    ...CLIENT_CHANNEL_OPTIONS,
    ...metricsChannelOptions(target, flags.metrics !== null),
  };
  if (flags.target !== undefined) {
    const client = new EchoClient(target, credentials, {
      ...options,
      "grpc.service_config": JSON.stringify(serviceConfig),
      [ETCD_ENDPOINTS]: flags.etcdEndpoints.join(","),
    });
    return { client, endpointOf: () => undefined };
  }
  const resolver = new ManualResolver("example", {
    endpoints: flags.addrs,
    serviceConfig,
  });
  resolver.register();
  const client = new EchoClient(target, credentials, options);
  const endpointOf = (peer: string) => {
    const index = resolver.lastAddresses.findIndex((addresses) =>
      addresses.includes(peer)
    );
    return index < 0 ? undefined : index;
  };
  return { client, endpointOf };
}

/** Sends windows of RPCs until they prove the ratio. */
async function proveRatio(
  send: Send,
  flags: ClientFlags,
  endpointOf: EndpointOf,
): Promise<number> {
  await checkRatio(send, {
    from: flags.target ?? flags.addrs.join(","),
    chooseSecond: flags.chooseSecond,
    timeoutSeconds: flags.timeout,
    quiet: flags.quiet,
    isSecond: flags.target === undefined
      ? (peer) => endpointOf(peer) === 1
      : null,
  });
  return 0;
}

/** Sends `--count` RPCs and prints how many each backend served. */
function countRpcs(
  send: Send,
  count: CountFlags,
  flags: ClientFlags,
  endpointOf: EndpointOf,
): Promise<number> {
  const names = ["first", "second"];
  return sendCount(send, {
    ...count,
    timeoutSeconds: flags.timeout,
    quiet: flags.quiet,
    label: (peer) => {
      const index = endpointOf(peer);
      return index === undefined || flags.policy !== "custom_round_robin"
        ? peer
        : `${names[index]} (${peer})`;
    },
  });
}

if (import.meta.main) {
  await runMain("client", CLIENT_USAGE, () => runClient(Deno.args));
}
