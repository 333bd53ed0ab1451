/**
 * The client through `custom_round_robin` on Deno, Node and Bun, against the
 * same two echo servers (a separate process), in the same run: RPC/s and p99
 * at concurrency 1 and 64, and each runtime's ratio to Deno.
 *
 * Each runtime runs `npm/bench_client.mjs` in the project a user of it would
 * have (npm/projects.ts: the packed npm package for Node and Bun,
 * `balancer/mod.ts` for Deno). Three rounds; in each, every runtime sends
 * 10,000 RPCs at concurrency 1 and 30,000 at concurrency 64, the runtimes
 * taking turns in slices of a tenth of that. The table shows medians of the
 * rounds.
 *
 * ```sh
 * deno task bench:runtimes
 * ```
 *
 * @module
 */
import {
  type LineClient,
  removeProjects,
  runtimeProjects,
  startLineClient,
} from "../npm/projects.ts";
import { startServerTask } from "../testing/processes.ts";
import { median, quantile } from "./stats.ts";

const RUNS = [
  { concurrency: 1, rpcs: 10_000 },
  { concurrency: 64, rpcs: 30_000 },
] as const;
const ROUNDS = 3;
const SLICES = 10;
const WARM_UP_RPCS = 2_000;

const servers = await startServerTask(["127.0.0.1:0", "127.0.0.1:0"]);
const { runtimes, grpcJs } = await runtimeProjects();
const clients: LineClient[] = [];
try {
  for (const runtime of runtimes) {
    clients.push(
      await startLineClient(
        runtime,
        new URL("../npm/bench_client.mjs", import.meta.url),
        servers.addresses,
      ),
    );
  }
  for (const client of clients) await client.ask(`run 8 ${WARM_UP_RPCS}`);

  // [run][runtime][round] -> { rps, p99 }
  const results = RUNS.map(() =>
    runtimes.map(() => [] as { rps: number; p99: number }[])
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const [r, { concurrency, rpcs }] of RUNS.entries()) {
      const ms = runtimes.map(() => 0);
      const latencies = runtimes.map(() => [] as number[]);
      for (let slice = 0; slice < SLICES; slice++) {
        // A rotating order, so that no runtime always goes first.
        for (let k = 0; k < clients.length; k++) {
          const i = (slice + k) % clients.length;
          const answer = await clients[i].ask(
            `run ${concurrency} ${rpcs / SLICES}`,
          );
          ms[i] += answer.ms as number;
          latencies[i].push(...answer.latencies as number[]);
        }
      }
      for (const i of runtimes.keys()) {
        results[r][i].push({
          rps: latencies[i].length / (ms[i] / 1000),
          p99: quantile(latencies[i], 0.99),
        });
      }
    }
    console.error(`round ${round + 1} of ${ROUNDS} done`);
  }

  console.log(
    `@grpc/grpc-js ${grpcJs}, ${navigator.hardwareConcurrency} cores; servers on Deno ${Deno.version.deno}; medians of ${ROUNDS} rounds`,
  );
  console.log(
    "runtime            c    RPC/s   p99 ms   ratio to Deno: RPC/s, p99",
  );
  for (const [r, { concurrency }] of RUNS.entries()) {
    const rps = results[r].map((rounds) => median(rounds.map((x) => x.rps)));
    const p99 = results[r].map((rounds) => median(rounds.map((x) => x.p99)));
    for (const [i, runtime] of runtimes.entries()) {
      console.log(
        [
          `${runtime.name} ${runtime.version}`.padEnd(16),
          String(concurrency).padStart(3),
          rps[i].toFixed(0).padStart(8),
          p99[i].toFixed(3).padStart(8),
          `   ${(rps[i] / rps[0]).toFixed(2)}, ${(p99[i] / p99[0]).toFixed(2)}`,
        ].join(" "),
      );
    }
  }
} finally {
  for (const client of clients) await client.close();
  await servers.stop("SIGKILL");
  await removeProjects(runtimes);
}
