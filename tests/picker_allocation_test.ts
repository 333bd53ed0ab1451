/**
 * The picker on the hot path: 10 million picks of `custom_round_robin`'s
 * picker, in a process of their own, start no young-generation collection.
 */
import assert from "node:assert/strict";

Deno.test("picker: 10 million picks allocate nothing (no young-generation GC)", async () => {
  const scavenges = async (picker: string) => {
    const { code, stdout } = await new Deno.Command("deno", {
      args: [
        "run",
        "--v8-flags=--trace-gc,--expose-gc",
        "--allow-read=proto,node_modules",
        "--allow-sys=uid,gid",
        "--allow-env=GRPC_*",
        new URL("../testing/programs/alloc_probe.ts", import.meta.url).pathname,
        picker,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(code, 0);
    const lines = new TextDecoder().decode(stdout).split("\n");
    // The two gc() calls' collections, around the 10 million picks.
    const markers = lines.flatMap((line, i) =>
      line.includes("Mark-Compact") && line.includes("testing") ? [i] : []
    );
    assert.equal(markers.length, 2, "two full collections around the picks");
    return lines.slice(markers[0], markers[1])
      .filter((line) => line.includes("Scavenge")).length;
  };
  const control = await scavenges("allocating");
  const custom = await scavenges("custom");
  console.log(
    `scavenges in 10 million picks: custom ${custom}, allocating control ${control}`,
  );
  assert.ok(control > 0, "the control allocates");
  assert.equal(custom, 0);
});
