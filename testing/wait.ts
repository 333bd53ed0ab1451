/**
 * Waiting: for a time, for a condition, for a line grpc-js logs.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `check()` holds, polling; fails after `ms`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 5000,
): Promise<void> {
  const end = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > end) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

/**
 * Collects what grpc-js logs while `body` runs; `body` sees the lines so
 * far, to wait for one.
 */
export async function logged(
  body: (lines: readonly string[]) => Promise<void>,
): Promise<string[]> {
  const lines: string[] = [];
  grpc.setLogger({ error: (...args: unknown[]) => lines.push(args.join(" ")) });
  try {
    await body(lines);
  } finally {
    grpc.setLogger(console);
  }
  return lines;
}
