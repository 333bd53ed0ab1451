import assert from "node:assert/strict";
import { experimental, Metadata } from "@grpc/grpc-js";
import {
  CustomRoundRobinPicker,
  MAX_CHOOSE_SECOND,
} from "../balancer/custom_round_robin.ts";

type PickResult = experimental.PickResult;

/** A child picker whose result names it. */
function namedPicker(name: "first" | "second"): experimental.Picker {
  const result = {
    pickResultType: experimental.PickResultType.COMPLETE,
    subchannel: { getAddress: () => name },
    status: null,
    onCallStarted: null,
    onCallEnded: null,
  } as unknown as PickResult;
  return { pick: () => result };
}

const ARGS = { metadata: new Metadata(), extraPickInfo: {} };

function picks(picker: experimental.Picker, n: number): string[] {
  return Array.from(
    { length: n },
    () => picker.pick(ARGS).subchannel!.getAddress(),
  );
}

/** The spec's sequence: pick number i (from 1) goes second iff i % c == 0. */
function expected(chooseSecond: number, from: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const pick = from + i;
    return chooseSecond !== 0 && pick % chooseSecond === 0 ? "second" : "first";
  });
}

for (const chooseSecond of [0, 1, 2, 3, 7]) {
  Deno.test(`picker: chooseSecond ${chooseSecond} gives the spec's sequence over 10000 picks`, () => {
    const picker = new CustomRoundRobinPicker(
      chooseSecond,
      namedPicker("first"),
      namedPicker("second"),
    );
    assert.deepEqual(picks(picker, 10_000), expected(chooseSecond, 1, 10_000));
  });
}

Deno.test("picker: chooseSecond 3 starts first, first, second", () => {
  const picker = new CustomRoundRobinPicker(
    3,
    namedPicker("first"),
    namedPicker("second"),
  );
  assert.deepEqual(picks(picker, 6), [
    "first",
    "first",
    "second",
    "first",
    "first",
    "second",
  ]);
});

Deno.test("picker: the count goes past 2^32 picks without a skipped or doubled pick", () => {
  const twoTo32 = 2 ** 32;
  for (const chooseSecond of [2, 3, 7, 1000, MAX_CHOOSE_SECOND]) {
    // Start as a picker that has already made 2^32 - 10 picks.
    const made = twoTo32 - 10;
    const picker = new CustomRoundRobinPicker(
      chooseSecond,
      namedPicker("first"),
      namedPicker("second"),
      made % chooseSecond,
    );
    assert.deepEqual(
      picks(picker, 20),
      expected(chooseSecond, made + 1, 20),
      `chooseSecond ${chooseSecond}`,
    );
  }
});

Deno.test("picker: chooseSecond 2^32 - 1 sends exactly the last pick of its cycle second", () => {
  const picker = new CustomRoundRobinPicker(
    MAX_CHOOSE_SECOND,
    namedPicker("first"),
    namedPicker("second"),
    MAX_CHOOSE_SECOND - 3,
  );
  assert.deepEqual(picks(picker, 5), [
    "first",
    "first",
    "second",
    "first",
    "first",
  ]);
});

Deno.test("picker: 10 million picks allocate nothing (no young-generation GC)", async () => {
  const scavenges = async (picker: string) => {
    const { code, stdout } = await new Deno.Command("deno", {
      args: [
        "run",
        "--v8-flags=--trace-gc",
        "--allow-read=proto,node_modules",
        "--allow-sys=uid,gid",
        "--allow-env=GRPC_*",
        new URL("programs/alloc_probe.ts", import.meta.url).pathname,
        picker,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(code, 0);
    const lines = new TextDecoder().decode(stdout).split("\n");
    const between = lines.slice(lines.indexOf("BEGIN"), lines.indexOf("END"));
    return between.filter((line) => line.includes("Scavenge")).length;
  };
  assert.ok(await scavenges("allocating") > 0, "the control allocates");
  assert.equal(await scavenges("custom"), 0);
});
