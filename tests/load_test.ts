/**
 * What the client's UnaryEcho sends once more: only calls whose connection
 * was lost in a way grpc-js's retry policy does not cover.
 */
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { connectionLost } from "../cli/load.ts";

Deno.test("load: a call is resent only if its connection was lost where the retry policy cannot help", () => {
  const cases: [status, string, boolean, boolean][] = [
    // Committed: the reply's headers had arrived.
    [status.UNAVAILABLE, "Connection dropped", true, true],
    // Not committed: the retry policy retries it, so no resend on top.
    [status.UNAVAILABLE, "Connection dropped", false, false],
    [status.INTERNAL, "write EPIPE", false, true],
    [
      status.INTERNAL,
      "Received RST_STREAM with code 2 triggered by internal client error: This socket has been ended by the other party",
      true,
      true,
    ],
    [status.INTERNAL, "a server's own INTERNAL error", false, false],
    [status.INTERNAL, "write EPIPE, and more", false, false],
    [status.DEADLINE_EXCEEDED, "Deadline exceeded", true, false],
    [status.UNKNOWN, "write EPIPE", false, false],
  ];
  for (const [code, details, answered, resent] of cases) {
    assert.equal(
      connectionLost({ code, details, answered }),
      resent,
      `${status[code]} "${details}", answered: ${answered}`,
    );
  }
});
