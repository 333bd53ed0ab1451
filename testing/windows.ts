/**
 * The ratio as the client proves it: windows of consecutive RPCs, each with
 * exactly one on the second server.
 *
 * @module
 */
import assert from "node:assert/strict";

/** The server that answered: the `(from HOST:PORT)` tag of a reply. */
export function servedBy(reply: string): string {
  const match = reply.match(/\(from (.+)\)$/);
  assert.ok(match, `untagged reply: ${reply}`);
  return match[1];
}

/**
 * Asserts that `served` splits into windows of 3 with one RPC on `second`
 * and two on `first` each, in any order.
 */
export function assertOneInThree(
  served: readonly string[],
  first: string,
  second: string,
): void {
  assert.ok(served.length > 0 && served.length % 3 === 0);
  for (let i = 0; i < served.length; i += 3) {
    const window = served.slice(i, i + 3);
    assert.deepEqual(
      window.filter((server) => server === second).length,
      1,
      `window ${window}`,
    );
    assert.deepEqual(
      window.filter((server) => server === first).length,
      2,
      `window ${window}`,
    );
  }
}
