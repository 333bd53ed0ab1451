/**
 * Makes millions of picks between two full collections, for a test that runs
 * it under `--v8-flags=--trace-gc,--expose-gc` and counts the scavenges in
 * between: a picker that allocates per pick fills the young generation and
 * makes V8 scavenge; one that does not lets none happen. The markers are
 * V8's own trace lines of the two `gc()` calls ("testing"), in the same
 * stream as the scavenges' and so in order; a line of the program's own
 * would not be, as V8 buffers its trace.
 *
 * ```sh
 * deno run --v8-flags=--trace-gc,--expose-gc testing/programs/alloc_probe.ts custom|allocating
 * ```
 *
 * @module
 */
import { experimental } from "@grpc/grpc-js";
import { CustomRoundRobinPicker } from "../../balancer/custom_round_robin.ts";
import { PICK_ARGS } from "../fakes.ts";

const RESULT: experimental.PickResult = {
  pickResultType: experimental.PickResultType.QUEUE,
  subchannel: null,
  status: null,
  onCallStarted: null,
  onCallEnded: null,
};
// Children that allocate nothing, so that only the picker under test could.
const child: experimental.Picker = { pick: () => RESULT };

const pickers: Record<string, experimental.Picker> = {
  custom: new CustomRoundRobinPicker(3, child, child),
  // The control: a copy of the child's result per pick.
  allocating: { pick: (args) => ({ ...child.pick(args) }) },
};
const picker = pickers[Deno.args[0]];

let sink: experimental.PickResult = RESULT;
const picks = (n: number) => {
  for (let i = 0; i < n; i++) sink = picker.pick(PICK_ARGS);
};
const { gc } = globalThis as unknown as { gc(): void };
picks(1_000_000);
gc();
picks(10_000_000);
gc();
if (sink === null) console.log("unreachable");
