/**
 * Endpoint sharding at scale, beside grpc-js's `round_robin`, in the same
 * run, the two taking turns: medians of the rounds, and the median of each
 * round's ratio of the block's figure to round_robin's:
 *
 * - on fakes (`bench/scale_fakes.ts`), for each size: the first update,
 *   every child READY, replacing one endpoint, the same endpoints in a new
 *   order, the same answer again, and heap bytes per endpoint; then the heap
 *   after every 100 of 1,000 updates of a 1,000-endpoint list;
 * - on real servers: one server process on 1,000 loopback ports, and the
 *   time from a channel's creation to the first RPC on each endpoint.
 *
 * ```sh
 * deno task bench:scale                  # 100, 1,000, 10,000 and 30,000
 * deno task bench:scale 100 1000         # those sizes only
 * ```
 *
 * round_robin's all-READY is quadratic: above 10,000 endpoints it is not
 * run (it would take minutes), and shows as "-".
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { ManualResolver } from "../balancer/mod.ts";
import { EchoClient } from "../echo/mod.ts";
import { startServerTask } from "../testing/processes.ts";
import { SHARDED_ROUND_ROBIN } from "../testing/sharded_round_robin.ts";
import {
  type Contender,
  type Costs,
  heapOverUpdates,
  measure,
} from "./scale_fakes.ts";
import { median, medianRatio } from "./stats.ts";

const ROUNDS = 7;
const REAL_ENDPOINTS = 1_000;
const SIZES = Deno.args.length > 0
  ? Deno.args.map(Number)
  : [100, 1_000, 10_000, 30_000];
const KINDS = [
  ["first", "first update"],
  ["ready", "all READY"],
  ["replace", "replace one"],
  ["reorder", "reorder"],
  ["unchanged", "unchanged"],
] as const;

/** Every figure of {@linkcode Costs}: the update kinds, then the heap. */
const FIGURES = [...KINDS.map(([kind]) => kind), "heapPerEndpoint"] as const;

/** Each contender's medians at one size, and the block's ratios to round_robin. */
interface SizeCosts {
  readonly medians: Record<Contender, Costs>;
  /** The median over the rounds of each round's sharding / round_robin. */
  readonly ratios: Costs;
}

/** Costs whose every figure is `figure(key)`. */
function costsBy(figure: (key: keyof Costs) => number): Costs {
  return Object.fromEntries(
    FIGURES.map((key) => [key, figure(key)]),
  ) as unknown as Costs;
}

/** `ROUNDS` rounds of each contender at `n`, taking turns. */
async function fakeRounds(n: number): Promise<SizeCosts> {
  const rounds: Record<Contender, Costs[]> = { sharding: [], round_robin: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order: Contender[] = round % 2 === 0
      ? ["sharding", "round_robin"]
      : ["round_robin", "sharding"];
    for (const contender of order) {
      const skipReady = contender === "round_robin" && n > 10_000;
      rounds[contender].push(await measure(contender, n, skipReady));
    }
  }
  const of = (contender: Contender, key: keyof Costs) =>
    rounds[contender].map((costs) => costs[key]);
  return {
    medians: {
      sharding: costsBy((key) => median(of("sharding", key))),
      round_robin: costsBy((key) => median(of("round_robin", key))),
    },
    ratios: costsBy((key) =>
      medianRatio(of("sharding", key), of("round_robin", key))
    ),
  };
}

function ms(value: number): string {
  if (Number.isNaN(value)) return "-";
  return value < 10 ? value.toFixed(2) : value.toFixed(0);
}

/** The fakes' table: each figure for the block, then round_robin's. */
async function fakesTable(): Promise<Map<number, SizeCosts>> {
  console.log(
    `on fakes, ms, medians of ${ROUNDS} rounds: sharding / round_robin`,
  );
  console.log(
    ["endpoints", ...KINDS.map(([, title]) => title), "heap B/endpoint"]
      .map((title) => title.padStart(17)).join(""),
  );
  const sizes = new Map<number, SizeCosts>();
  for (const n of SIZES) {
    const costs = await fakeRounds(n);
    sizes.set(n, costs);
    const { sharding, round_robin } = costs.medians;
    const cells = FIGURES.map((key) =>
      `${ms(sharding[key])} / ${ms(round_robin[key])}`
    );
    console.log([String(n), ...cells].map((c) => c.padStart(17)).join(""));
  }
  return sizes;
}

/** The block's cost over round_robin's, per size: medians of the rounds. */
function ratioLines(sizes: Map<number, SizeCosts>): void {
  console.log("sharding over round_robin, the median of the rounds' ratios:");
  for (const [n, { ratios }] of sizes) {
    const cells = [...KINDS, ["heapPerEndpoint", "heap"] as const].map(
      ([kind, title]) =>
        `${title} ${
          Number.isNaN(ratios[kind]) ? "-" : ratios[kind].toFixed(2)
        }`,
    );
    console.log(`${String(n).padStart(9)}: ${cells.join(", ")}`);
  }
}

/** Each update kind's cost at 10,000 over its cost at 1,000, for the block. */
function growth(sizes: Map<number, SizeCosts>): void {
  const small = sizes.get(1_000)?.medians.sharding;
  const large = sizes.get(10_000)?.medians.sharding;
  if (small === undefined || large === undefined) return;
  const ratios = KINDS.map(([kind, title]) =>
    `${title} ${(large[kind] / small[kind]).toFixed(1)}`
  );
  console.log(`sharding, 10,000 over 1,000: ${ratios.join(", ")}`);
}

/**
 * The time from creating a channel through `policy` to the first RPC on
 * each of `addresses`: the milliseconds by which the last one had served.
 */
async function allServed(
  policy: string,
  addresses: readonly string[],
  scheme: string,
): Promise<number> {
  const start = performance.now();
  new ManualResolver(scheme, {
    endpoints: addresses,
    serviceConfig: { loadBalancingConfig: [{ [policy]: {} }] },
  }).register();
  const client = new EchoClient(
    `${scheme}:///echo`,
    grpc.credentials.createInsecure(),
    { "grpc.use_local_subchannel_pool": 1 },
  );
  const unseen = new Set(addresses);
  const deadline = Date.now() + 60_000;
  const worker = async () => {
    while (unseen.size > 0 && Date.now() < deadline) {
      const peer = await new Promise<string>((resolve, reject) => {
        const call = client.UnaryEcho(
          { message: "scale" },
          { deadline },
          (error) => error ? reject(error) : resolve(call.getPeer()),
        );
      });
      unseen.delete(peer);
    }
  };
  try {
    await Promise.all(Array.from({ length: 32 }, worker));
    if (unseen.size > 0) throw new Error(`${unseen.size} never served`);
    return performance.now() - start;
  } finally {
    client.close();
  }
}

/** The real servers' line: medians of the rounds, taking turns. */
async function realServers(): Promise<void> {
  const server = await startServerTask(
    Array(REAL_ENDPOINTS).fill("127.0.0.1:0"),
    ["--drain-ms", "0"],
  );
  const times: Record<string, number[]> = {
    [SHARDED_ROUND_ROBIN]: [],
    round_robin: [],
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = Object.keys(times);
      if (round % 2 === 1) order.reverse();
      for (const policy of order) {
        const scheme = `scale-${policy.replaceAll("_", "-")}-${round}`;
        times[policy].push(
          await allServed(policy, server.addresses, scheme),
        );
      }
    }
  } finally {
    await server.stop("SIGKILL");
  }
  console.log(
    `${REAL_ENDPOINTS} real endpoints on loopback, a channel's creation to ` +
      `an RPC on each, medians of ${ROUNDS}: sharding ${
        ms(median(times[SHARDED_ROUND_ROBIN]))
      } ms, round_robin ${ms(median(times.round_robin))} ms, ratio ${
        medianRatio(times[SHARDED_ROUND_ROBIN], times.round_robin).toFixed(2)
      }`,
  );
}

const sizes = await fakesTable();
ratioLines(sizes);
growth(sizes);
const heaps = await heapOverUpdates(1_000, 1_000);
console.log(
  `heap after each 100 of 1,000 updates of 1,000 endpoints, MB: ${
    heaps.map((bytes) => (bytes / 1e6).toFixed(1)).join(" ")
  }`,
);
await realServers();
