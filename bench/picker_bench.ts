/**
 * What `custom_round_robin` adds to each pick: its picker against calling a
 * child's picker directly (the floor) and against grpc-js's round_robin over
 * the same children. Every contender is the picker a real policy reports once
 * its pick_first children are READY (over fake subchannels, so no network).
 *
 * Each bench iteration makes {@linkcode PICKS} picks, so per-pick figures are
 * the iteration time divided by that. The contenders alternate over seven
 * rounds; `bench/pick_summary.ts` turns the JSON report into medians.
 *
 * ```sh
 * deno task bench
 * ```
 *
 * @module
 */
import {
  connectivityState as ConnectivityState,
  experimental,
} from "@grpc/grpc-js";
import { registerCustomRoundRobin } from "../balancer/mod.ts";
import { endpoint, FakeHelper, PICK_ARGS, tick } from "../testing/fakes.ts";
import { PICKS } from "./pick_summary.ts";

/** The picker that the policy `config` reports with all children READY. */
async function readyPicker(
  config: Parameters<typeof experimental.parseLoadBalancingConfig>[0],
  ports: number[],
): Promise<experimental.Picker> {
  const helper = new FakeHelper();
  const policy = new experimental.ChildLoadBalancerHandler(helper);
  policy.updateAddressList(
    experimental.statusOrFromValue(ports.map(endpoint)),
    experimental.parseLoadBalancingConfig(config),
    {},
    "",
  );
  await tick();
  for (const subchannel of helper.subchannels.values()) {
    subchannel.setState(ConnectivityState.READY);
  }
  // Endpoint sharding reports a turn's changes in a microtask after them.
  await tick();
  if (helper.latest.state !== ConnectivityState.READY) {
    throw new Error(`${JSON.stringify(config)} did not become READY`);
  }
  return helper.latest.picker;
}

registerCustomRoundRobin();
const contenders: [string, experimental.Picker][] = [
  ["floor (child picker)", await readyPicker({ pick_first: {} }, [1])],
  [
    "custom_round_robin",
    await readyPicker({ custom_round_robin: { chooseSecond: 3 } }, [1, 2]),
  ],
  ["round_robin", await readyPicker({ round_robin: {} }, [1, 2])],
];

// Results go somewhere, or V8 may drop the child pickers' result objects.
let sink: experimental.PickResult | null = null;

for (const round of [1, 2, 3, 4, 5, 6, 7]) {
  for (const [name, picker] of contenders) {
    Deno.bench({
      name,
      group: `round ${round}`,
      baseline: name.startsWith("floor"),
      fn() {
        for (let i = 0; i < PICKS; i++) sink = picker.pick(PICK_ARGS);
      },
    });
  }
}
globalThis.addEventListener("unload", () => {
  if (sink === null) throw new Error("no pick was made");
});
