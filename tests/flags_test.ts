/**
 * The programs' number flags at their edges and past them, read by the flag
 * readers themselves: whole numbers given fractions, `Infinity`, `NaN`,
 * nothing, out of range; and flags that need a partner.
 */
import assert from "node:assert/strict";
import { readClientFlags } from "../cli/client_flags.ts";
import { readServerFlags } from "../cli/server_flags.ts";
import { UsageError } from "../cli/flags.ts";

/** A flag, values it refuses, and a value it takes, as `[flag, refused, taken]`. */
type Edge = [string, string[], string];

/** What any number flag refuses. */
const NOT_NUMBERS = ["", " ", "abc", "NaN", "Infinity", "1e400", "0x10"];

const CLIENT: Edge[] = [
  ["--timeout", [...NOT_NUMBERS, "0", "-1"], "0.5"],
  ["--count", [...NOT_NUMBERS, "0", "1.5", "-1"], "1"],
];
const COUNTED: Edge[] = [
  ["--concurrency", [...NOT_NUMBERS, "0", "2.5"], "1"],
  ["--rate", [...NOT_NUMBERS, "0", "0.5"], "1"],
];
const SERVER: Edge[] = [
  ["--drain-ms", [...NOT_NUMBERS, "-1", "1.5"], "0"],
  ["--fail-percent", [...NOT_NUMBERS, "-1", "100.5", "101"], "100"],
  ["--delay-ms", [...NOT_NUMBERS, "-1", "2.5", "1,"], "0"],
];

/** Asserts that `read(args)` refuses with `--flag must be …, got "value"`. */
function assertRefused(
  read: (args: string[]) => unknown,
  args: string[],
  flag: string,
  value: string,
): void {
  assert.throws(
    () => read(args),
    (error: Error) =>
      error instanceof UsageError &&
      error.message.startsWith(`${flag} must be `) &&
      error.message.endsWith(`, got "${value.split(",").at(-1)}"`),
    `${flag} ${JSON.stringify(value)}`,
  );
}

Deno.test("flags: every client number flag refuses non-numbers, Infinity, fractions where whole, and values out of range, naming itself and the value", () => {
  for (const [flag, refused, taken] of CLIENT) {
    for (const value of refused) {
      assertRefused(readClientFlags, [flag, value], flag, value);
    }
    assert.ok(readClientFlags([flag, taken]), `${flag} ${taken}`);
  }
  for (const [flag, refused, taken] of COUNTED) {
    for (const value of refused) {
      assertRefused(
        readClientFlags,
        ["--count", "1", flag, value],
        flag,
        value,
      );
    }
    assert.ok(readClientFlags(["--count", "1", flag, taken]));
  }
});

Deno.test("flags: every server number flag refuses the same, --delay-ms in each of its values", () => {
  for (const [flag, refused, taken] of SERVER) {
    for (const value of refused) {
      assertRefused(readServerFlags, [flag, value], flag, value);
    }
    assert.ok(readServerFlags([flag, taken]), `${flag} ${taken}`);
  }
  assert.deepEqual(
    readServerFlags(["--addrs", "localhost:0,localhost:0", "--delay-ms", "3"])
      ?.delaysMs,
    [3, 3],
  );
  assert.deepEqual(
    readServerFlags([
      "--addrs",
      "localhost:0,localhost:0",
      "--delay-ms",
      "3, 4",
    ])
      ?.delaysMs,
    [3, 4],
  );
});

Deno.test("flags: a flag that needs a partner is refused without it, naming the partner", () => {
  const cases: [(args: string[]) => unknown, string[], RegExp][] = [
    [
      readClientFlags,
      ["--concurrency", "2"],
      /--concurrency works with --count only/,
    ],
    [readClientFlags, ["--rate", "2"], /--rate works with --count only/],
    [readClientFlags, ["--policy", "least_request"], /works with --count only/],
    [
      readClientFlags,
      ["--etcd-ca", "ca.pem"],
      /--etcd-ca works with an etcd: --target only/,
    ],
    [
      readServerFlags,
      ["--etcd-ttl", "5"],
      /--etcd-ttl works with --register only/,
    ],
    [
      readServerFlags,
      ["--etcd-endpoints", "http://127.0.0.1:2379"],
      /--etcd-endpoints works with --register only/,
    ],
  ];
  for (const [read, args, message] of cases) {
    assert.throws(() => read(args), message, args.join(" "));
  }
});
