/**
 * What `custom_round_robin` adds to each pick: its picker against calling a
 * child's picker directly (the floor) and against grpc-js's round_robin over
 * the same children; and `least_request_experimental`'s pick at 10 and at
 * 10,000 READY endpoints, which should cost the same. Every contender is the picker a real policy reports once
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
import {
  LEAST_REQUEST,
  registerCustomRoundRobin,
  registerLeastRequest,
} from "../balancer/mod.ts";
import { endpoint, FakeHelper, PICK_ARGS, tick } from "../testing/fakes.ts";
import {
  LEAST_REQUEST_10,
  LEAST_REQUEST_10_000,
  PICKS,
} from "./pick_summary.ts";

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
registerLeastRequest();
/** Ports 1 to `n`, an endpoint each. */
const ports = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const contenders: [string, experimental.Picker][] = [
  ["floor (child picker)", await readyPicker({ pick_first: {} }, [1])],
  [
    "custom_round_robin",
    await readyPicker({ custom_round_robin: { chooseSecond: 3 } }, [1, 2]),
  ],
  ["round_robin", await readyPicker({ round_robin: {} }, [1, 2])],
  [
    LEAST_REQUEST_10,
    await readyPicker({ [LEAST_REQUEST]: {} }, ports(10)),
  ],
  [
    LEAST_REQUEST_10_000,
    await readyPicker({ [LEAST_REQUEST]: {} }, ports(10_000)),
  ],
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
