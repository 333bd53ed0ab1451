/**
 * Which policy for a backend that slows down: three echo servers in a
 * process of their own, one answering in 10 ms and two in 1 ms, and each
 * shipped policy and grpc-js's round_robin sending UnaryEcho at
 * concurrency 16, taking turns in slices over three rounds: the medians of
 * the rounds' p50 and p99 latencies and throughput.
 *
 * `custom_round_robin` takes exactly two endpoints: it gets a fast one as
 * its first and the slow one as its second, so one RPC in three is slow.
 * `ring_hash_experimental` hashes 1,000 keys taken in turn.
 *
 * ```sh
 * deno task bench:choice
 * ```
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  CUSTOM_ROUND_ROBIN,
  LEAST_REQUEST,
  ManualResolver,
  registerCustomRoundRobin,
  registerLeastRequest,
  registerRingHash,
  RING_HASH,
} from "../balancer/mod.ts";
import { CLIENT_CHANNEL_OPTIONS } from "../cli/client_config.ts";
import { EchoClient } from "../echo/mod.ts";
import { startServerTask } from "../testing/processes.ts";
import { keyedUnary } from "../testing/rpcs.ts";
import { median, quantile } from "./stats.ts";

const CONCURRENCY = 16;
const RPCS = 4_000;
const ROUNDS = 3;
const SLICES = 10;
/** The servers' answer times: the last is ten times the others'. */
const DELAYS_MS = [1, 1, 10];

const POLICIES = {
  round_robin: { round_robin: {} },
  [CUSTOM_ROUND_ROBIN]: { [CUSTOM_ROUND_ROBIN]: { chooseSecond: 3 } },
  [LEAST_REQUEST]: { [LEAST_REQUEST]: {} },
  [RING_HASH]: { [RING_HASH]: { requestHashHeader: "x-user" } },
};
type Policy = keyof typeof POLICIES;

function unary(client: EchoClient): Promise<void> {
  return keyedUnary(client, "choice");
}

/** Sends `rpcs` RPCs, {@linkcode CONCURRENCY} at a time; adds to `into`. */
async function send(
  client: EchoClient,
  rpcs: number,
  into: { ms: number; latencies: number[] },
): Promise<void> {
  let sent = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (sent < rpcs) {
      sent++;
      const begun = performance.now();
      await unary(client);
      into.latencies.push(performance.now() - begun);
    }
  }));
  into.ms += performance.now() - start;
}

const servers = await startServerTask(
  ["localhost:0", "localhost:0", "localhost:0"],
  ["--delay-ms", DELAYS_MS.join(",")],
);
registerCustomRoundRobin();
registerLeastRequest();
registerRingHash();
const [fast, , slow] = servers.addresses;
const clients = new Map<Policy, EchoClient>();
for (const [i, [policy, config]] of Object.entries(POLICIES).entries()) {
  new ManualResolver(`choice-${i}`, {
    endpoints: policy === CUSTOM_ROUND_ROBIN ? [fast, slow] : servers.addresses,
    serviceConfig: { loadBalancingConfig: [config] },
  }).register();
  clients.set(
    policy as Policy,
    new EchoClient(
      `choice-${i}:///echo`,
      grpc.credentials.createInsecure(),
      CLIENT_CHANNEL_OPTIONS,
    ),
  );
}
try {
  for (const client of clients.values()) {
    await send(client, 500, { ms: 0, latencies: [] });
  }
  const rounds = new Map<Policy, { p50: number; p99: number; rps: number }[]>();
  for (let round = 0; round < ROUNDS; round++) {
    const samples = new Map<Policy, { ms: number; latencies: number[] }>(
      [...clients.keys()].map((policy) => [policy, { ms: 0, latencies: [] }]),
    );
    for (let slice = 0; slice < SLICES; slice++) {
      const order = [...clients.keys()];
      for (let i = 0; i < order.length; i++) {
        const policy = order[(i + slice) % order.length];
        await send(clients.get(policy)!, RPCS / SLICES, samples.get(policy)!);
      }
    }
    for (const [policy, { ms, latencies }] of samples) {
      rounds.set(policy, [...rounds.get(policy) ?? [], {
        p50: quantile(latencies, 0.5),
        p99: quantile(latencies, 0.99),
        rps: latencies.length / (ms / 1000),
      }]);
    }
  }
  console.log(
    `backends answering in ${
      DELAYS_MS.join(", ")
    } ms; concurrency ${CONCURRENCY}; medians of ${ROUNDS} rounds`,
  );
  console.log("policy                        p50 ms   p99 ms    RPC/s");
  for (const [policy, measured] of rounds) {
    const of = (key: "p50" | "p99" | "rps") =>
      median(measured.map((m) => m[key]));
    console.log(
      `${policy.padEnd(28)}${of("p50").toFixed(2).padStart(8)}${
        of("p99").toFixed(2).padStart(9)
      }${of("rps").toFixed(0).padStart(9)}`,
    );
  }
} finally {
  for (const client of clients.values()) client.close();
  await servers.stop();
}
