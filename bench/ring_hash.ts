/**
 * `ring_hash_experimental` beside grpc-js-xds's `ring_hash`, in the same
 * run, the two taking turns over seven rounds, on fake subchannels (no
 * network): medians, and the median of each round's ratio of ours to
 * theirs.
 *
 * - a pick at 10, 1,000 and 10,000 READY endpoints, its hash given as an
 *   xDS route gives it (`extraPickInfo.hash`), as both take it; and ours
 *   again hashing a request header, the work an xDS route does before
 *   grpc-js-xds's pick;
 * - an update of 10,000 endpoints to the first picker (children and ring),
 *   and the heap it leaves per endpoint.
 *
 * ```sh
 * deno task bench:ring_hash
 * ```
 *
 * @module
 */
import {
  connectivityState as ConnectivityState,
  experimental,
  Metadata,
} from "@grpc/grpc-js";
import { registerRingHash, registerXds } from "../balancer/mod.ts";
import { buildRing } from "../balancer/ring_hash.ts";
import { endpoint, FakeHelper, tick } from "../testing/fakes.ts";
import { heapUsed } from "./scale_fakes.ts";
import { median, medianRatio } from "./stats.ts";

const ROUNDS = 7;
const PICKS = 200_000;
const SIZES = [10, 1_000, 10_000];
const OURS = { ring_hash_experimental: {} };
const THEIRS = { ring_hash: {} };
const HEADER = { ring_hash_experimental: { requestHashHeader: "x-user" } };
/** Whether grpc-js-xds's XXH64 has loaded. */
let loaded = false;

type Config = Parameters<typeof experimental.parseLoadBalancingConfig>[0];

/** A policy of `config` over `n` endpoints, from its update to its picker. */
async function update(config: Config, n: number) {
  const helper = new FakeHelper();
  const policy = new experimental.ChildLoadBalancerHandler(helper);
  const start = performance.now();
  policy.updateAddressList(
    experimental.statusOrFromValue(
      Array.from({ length: n }, (_, i) => endpoint(i + 1)),
    ),
    experimental.parseLoadBalancingConfig(config),
    {},
    "",
  );
  // grpc-js-xds builds its ring once its XXH64 has loaded, a promise; ours
  // at once. The first load takes a turn of the event loop.
  while (helper.reports.length === 0) {
    await (loaded ? Promise.resolve() : tick());
  }
  return { helper, policy, ms: performance.now() - start };
}

/**
 * The picker of `config` over `n` endpoints, every endpoint on the ring
 * READY: both connect an endpoint at its first pick, so a pick at each
 * entry's hash connects them all (at 10,000 endpoints a ring of 4,096
 * entries holds fewer).
 */
async function readyPicker(config: Config, n: number) {
  const { helper, policy } = await update(config, n);
  const ring = buildRing(
    Array.from({ length: n }, (_, i) => endpoint(i + 1)),
    1024,
    4096,
  );
  const { picker } = helper.latest;
  if (config === HEADER) {
    // The keys the picks are measured with, and more.
    for (const list = argsList(true, 20 * n); list.length > 0;) {
      picker.pick(list.pop()!);
    }
  } else {
    for (const hash of ring.hashes) picker.pick(args(hash));
  }
  await tick();
  for (const subchannel of helper.subchannels.values()) {
    subchannel.setState(ConnectivityState.CONNECTING);
    subchannel.setState(ConnectivityState.READY);
  }
  await tick();
  const onRing = new Set(ring.owners).size;
  // The header's keys reach those of the measured keys, not all.
  if (config !== HEADER && helper.subchannels.size !== onRing) {
    throw new Error(
      `${
        JSON.stringify(config)
      } at ${n}: ${helper.subchannels.size} of ${onRing} READY`,
    );
  }
  return { picker: helper.latest.picker, policy };
}

function args(hash: bigint): experimental.PickArgs {
  return { metadata: new Metadata(), extraPickInfo: { hash: String(hash) } };
}

/** `n` picks' arguments: random hashes, or header values. */
function argsList(header: boolean, n = 1024): experimental.PickArgs[] {
  return Array.from({ length: n }, (_, i) => {
    if (!header) {
      return args(BigInt(Math.floor(Math.random() * 2 ** 53)) * 2048n);
    }
    const metadata = new Metadata();
    metadata.set("x-user", `user-${i}`);
    return { metadata, extraPickInfo: {} };
  });
}

/** Nanoseconds per pick of `picker` over `list`. */
function pickNs(
  picker: experimental.Picker,
  list: experimental.PickArgs[],
): number {
  let sink: unknown = null;
  const start = performance.now();
  for (let i = 0; i < PICKS; i++) sink = picker.pick(list[i & 1023]);
  if (sink === null) throw new Error("no pick");
  return (performance.now() - start) * 1e6 / PICKS;
}

async function picks(): Promise<void> {
  console.log("ns per pick, medians of 7 rounds: ours / grpc-js-xds's");
  for (const n of SIZES) {
    const ours = await readyPicker(OURS, n);
    const theirs = await readyPicker(THEIRS, n);
    const header = await readyPicker(HEADER, n);
    const hashes = argsList(false);
    const users = argsList(true);
    const times = {
      ours: [] as number[],
      theirs: [] as number[],
      header: [] as number[],
    };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? ["ours", "theirs"] : ["theirs", "ours"];
      for (const who of order) {
        const picker = who === "ours" ? ours.picker : theirs.picker;
        times[who as "ours" | "theirs"].push(pickNs(picker, hashes));
      }
      times.header.push(pickNs(header.picker, users));
    }
    for (const { policy } of [ours, theirs, header]) policy.destroy();
    console.log(
      `${String(n).padStart(6)} endpoints: ${median(times.ours).toFixed(0)} / ${
        median(times.theirs).toFixed(0)
      } ns, ratio ${medianRatio(times.ours, times.theirs).toFixed(2)}; ` +
        `ours hashing a header ${median(times.header).toFixed(0)} ns`,
    );
  }
}

/**
 * The update's time, and the heap the policy holds: the heap with it, less
 * the heap once it is destroyed and dropped (a measure that earlier rounds'
 * garbage does not move).
 */
async function build(config: Config, n: number) {
  let made: Awaited<ReturnType<typeof update>> | null = await update(config, n);
  const { ms } = made;
  await tick();
  const held = heapUsed();
  made.policy.destroy();
  made = null;
  await tick();
  return { ms, bytes: (held - heapUsed()) / n };
}

async function builds(n: number): Promise<void> {
  const times = { ours: [] as number[], theirs: [] as number[] };
  const heaps = { ours: [] as number[], theirs: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ["ours", "theirs"] : ["theirs", "ours"];
    for (const who of order as ("ours" | "theirs")[]) {
      const { ms, bytes } = await build(who === "ours" ? OURS : THEIRS, n);
      heaps[who].push(bytes);
      times[who].push(ms);
    }
  }
  console.log(
    `update of ${n} endpoints to the first picker: ${
      median(times.ours).toFixed(0)
    } / ${median(times.theirs).toFixed(0)} ms, ratio ${
      medianRatio(times.ours, times.theirs).toFixed(2)
    }; heap held ${median(heaps.ours).toFixed(0)} / ${
      median(heaps.theirs).toFixed(0)
    } B per endpoint, ratio ${
      medianRatio(heaps.ours, heaps.theirs).toFixed(2)
    }`,
  );
}

registerRingHash();
await registerXds();
// Loads grpc-js-xds's XXH64 before anything is timed.
(await update(THEIRS, 1)).policy.destroy();
loaded = true;
await picks();
await builds(10_000);
