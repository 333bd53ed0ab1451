/**
 * What a policy on `EndpointSharding` costs as its endpoints grow, beside
 * grpc-js's `round_robin`, both driven the same way on a fake helper and
 * fake subchannels (`testing/fakes.ts`): the first update, every child
 * READY, an update replacing one endpoint, the same endpoints in a new
 * order, the same answer again, and the heap each endpoint takes. The
 * policy on the block is `sharded_round_robin` (`testing/`), which takes
 * turns over the READY children as round_robin does.
 *
 * @module
 */
import {
  connectivityState as ConnectivityState,
  experimental,
} from "@grpc/grpc-js";
import { endpoint, FakeHelper, tick } from "../testing/fakes.ts";
import {
  registerShardedRoundRobin,
  SHARDED_ROUND_ROBIN,
  ShardedRoundRobin,
} from "../testing/sharded_round_robin.ts";

registerShardedRoundRobin();

/** One measurement of one contender at one size, in ms and bytes. */
export interface Costs {
  readonly first: number;
  readonly ready: number;
  readonly replace: number;
  readonly reorder: number;
  readonly unchanged: number;
  readonly heapPerEndpoint: number;
}

/** The contenders, each a policy made on a helper. */
export const CONTENDERS = {
  sharding: (helper: experimental.ChannelControlHelper) =>
    new ShardedRoundRobin(helper),
  round_robin: (helper: experimental.ChannelControlHelper) =>
    new experimental.ChildLoadBalancerHandler(helper),
};

/** A contender's name. */
export type Contender = keyof typeof CONTENDERS;

const CONFIGS: Record<Contender, experimental.TypedLoadBalancingConfig> = {
  sharding: experimental.parseLoadBalancingConfig({
    [SHARDED_ROUND_ROBIN]: {},
  }),
  round_robin: experimental.parseLoadBalancingConfig({ round_robin: {} }),
};

/** V8's collector, there with `--v8-flags=--expose-gc`. */
const gc = (globalThis as { gc?: () => void }).gc;

/** The heap in use after a full collection. */
export function heapUsed(): number {
  if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
  gc();
  return Deno.memoryUsage().heapUsed;
}

function endpoints(ports: readonly number[]): experimental.Endpoint[] {
  return ports.map(endpoint);
}

/** `body`'s time in milliseconds. */
async function timed(body: () => unknown): Promise<number> {
  const start = performance.now();
  await body();
  return performance.now() - start;
}

/**
 * One round of `contender` at `n` endpoints. Every child is made READY in
 * one loop, as a burst of connections would; with `skipReady`, not (the
 * quadratic one would take minutes), and `ready` is NaN.
 */
export async function measure(
  contender: Contender,
  n: number,
  skipReady = false,
): Promise<Costs> {
  const ports = Array.from({ length: n }, (_, i) => i + 1);
  // pick_first's 250 ms connection timers keep an earlier round's children
  // alive until they fire: the heap is weighed once they have.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const before = heapUsed();
  const helper = new FakeHelper();
  const policy = CONTENDERS[contender](helper);
  const update = (list: readonly number[]) =>
    policy.updateAddressList(
      experimental.statusOrFromValue(endpoints(list)),
      CONFIGS[contender],
      {},
      "",
    );
  const first = await timed(() => update(ports));
  await tick();
  const heapPerEndpoint = (heapUsed() - before) / n;
  const ready = skipReady ? NaN : await timed(async () => {
    for (const subchannel of helper.subchannels.values()) {
      subchannel.setState(ConnectivityState.CONNECTING);
      subchannel.setState(ConnectivityState.READY);
    }
    await tick();
  });
  if (!skipReady && helper.latest.state !== ConnectivityState.READY) {
    throw new Error(`${contender} did not report READY`);
  }
  const replaced = [...ports.slice(0, -1), n + 1];
  const replace = await timed(() => update(replaced));
  const reordered = [...replaced].reverse();
  const reorder = await timed(() => update(reordered));
  const unchanged = await timed(() => update([...reordered]));
  policy.destroy();
  await tick();
  return { first, ready, replace, reorder, unchanged, heapPerEndpoint };
}

/**
 * The heap, in bytes, after every 100 of `updates` updates of an
 * `n`-endpoint list through the policy on the block, each replacing one
 * endpoint with a new one.
 */
export async function heapOverUpdates(
  n: number,
  updates: number,
): Promise<number[]> {
  const helper = new FakeHelper();
  const policy = CONTENDERS.sharding(helper);
  const heaps: number[] = [];
  for (let i = 0; i < updates; i++) {
    const ports = Array.from(
      { length: n },
      (_, j) => j < n - 1 ? j + 1 : n + i,
    );
    policy.updateAddressList(
      experimental.statusOrFromValue(endpoints(ports)),
      CONFIGS.sharding,
      {},
      "",
    );
    await tick();
    // The fake helper keeps every subchannel it made; a channel's pool
    // drops released ones.
    for (const [key, subchannel] of helper.subchannels) {
      if (subchannel.refs <= 0) helper.subchannels.delete(key);
    }
    if ((i + 1) % 100 === 0) heaps.push(heapUsed());
  }
  policy.destroy();
  return heaps;
}
