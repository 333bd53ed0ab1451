/**
 * What the client's UnaryEcho sends once more: only calls whose connection
 * was lost in a way grpc-js's retry policy does not cover; and a real one,
 * from a server that dies after a call's headers.
 */
import assert from "node:assert/strict";
import { credentials, status } from "@grpc/grpc-js";
import { connectionLost, unaryEcho, withResend } from "../cli/load.ts";
import { EchoClient } from "../echo/mod.ts";
import { denoRunArgs, lineReader } from "../testing/processes.ts";
import { LEAVES_RECONNECT_TIMERS } from "../testing/sanitizers.ts";

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

Deno.test(
  "load: unaryEcho records that the reply had started, so a call cut after its headers is resent",
  LEAVES_RECONNECT_TIMERS, // the subchannel to the server that exited
  async () => {
    const server = new Deno.Command("deno", {
      args: denoRunArgs("testing/programs/headers_then_exit.ts", "127.0.0.1"),
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = lineReader(server.stdout);
    const { value: port } = await lines.next();
    const client = new EchoClient(
      `127.0.0.1:${port}`,
      credentials.createInsecure(),
    );
    let sends = 0;
    const send = withResend((deadline) => {
      sends++;
      return unaryEcho(client, deadline);
    });
    try {
      // The first call gets headers, then the server dies; the resend finds
      // no server.
      await assert.rejects(send(new Date(Date.now() + 10_000)));
      assert.equal(sends, 2, "sent once more");
    } finally {
      client.close();
      for await (const _ of lines);
      await server.status;
    }
  },
);
