/**
 * The client's proof of the ratio, fed the windows a policy would make.
 */
import assert from "node:assert/strict";
import { judgeWindow, RatioProof } from "../cli/ratio_proof.ts";
import { repeated } from "../testing/rpcs.ts";

/** `n` windows of `size` RPCs cut from `pattern` repeated. */
function windows(pattern: string[], size: number, n: number): string[][] {
  const peers = repeated(pattern, size * n);
  return Array.from(
    { length: n },
    (_, i) => peers.slice(i * size, (i + 1) * size),
  );
}

/** Whether feeding `windows` proves the ratio, and after how many. */
function proves(proof: RatioProof, windows: string[][]): number | null {
  for (const [i, window] of windows.entries()) {
    if (proof.add(window)) return i + 1;
  }
  return null;
}

Deno.test("client: custom_round_robin's first, first, second proves 1:2 in three windows, with or without knowing the second", () => {
  const pattern = ["A", "A", "B"];
  assert.equal(
    proves(new RatioProof(1, (peer) => peer === "B"), windows(pattern, 3, 3)),
    3,
  );
  assert.equal(proves(new RatioProof(1, null), windows(pattern, 3, 3)), 3);
  // Windows need not start where the pattern does.
  assert.equal(
    proves(new RatioProof(1, null), windows(["A", "B", "A"], 3, 3)),
    3,
  );
});

Deno.test("client: round_robin's alternation never proves 1:2 with --target, though each window has a lone RPC", () => {
  const alternating = windows(["A", "B"], 3, 30);
  assert.deepEqual(alternating.slice(0, 3), [["A", "B", "A"], ["B", "A", "B"], [
    "A",
    "B",
    "A",
  ]]);
  assert.equal(proves(new RatioProof(1, null), alternating), null);
  assert.equal(
    proves(new RatioProof(1, (peer) => peer === "B"), alternating),
    null,
  );
});

Deno.test("client: a window with two RPCs on the second backend does not hold", () => {
  const isSecond = (peer: string) => peer === "B";
  const broken = { kind: "broken" };
  assert.deepEqual(judgeWindow(["A", "B", "B"], 1, isSecond), broken);
  assert.deepEqual(judgeWindow(["B", "B", "B"], 1, isSecond), broken);
  assert.deepEqual(judgeWindow(["A", "A", "A"], 1, isSecond), broken);
  assert.deepEqual(judgeWindow(["A", "A", "B"], 1, isSecond), {
    kind: "held",
  });
  assert.deepEqual(judgeWindow(["A", "B", "B"], 1, null), {
    kind: "setApart",
    by: "A",
  });
  assert.equal(
    proves(new RatioProof(1, isSecond), windows(["A", "B", "B"], 3, 10)),
    null,
  );
});

Deno.test("client: chooseSecond 0 proves 0:1 only with every RPC on one backend", () => {
  assert.deepEqual(judgeWindow(["A"], 0, null), { kind: "setApart", by: "A" });
  assert.deepEqual(judgeWindow(["A"], 0, (peer) => peer === "B"), {
    kind: "held",
  });
  assert.deepEqual(judgeWindow(["B"], 0, (peer) => peer === "B"), {
    kind: "broken",
  });
  assert.equal(
    proves(new RatioProof(0, null), [["A"], ["B"], ["A"], ["B"]]),
    null,
  );
  assert.equal(proves(new RatioProof(0, null), [["A"], ["A"], ["A"]]), 3);
});
