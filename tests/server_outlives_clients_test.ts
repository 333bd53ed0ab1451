/**
 * Servers outlive their clients: on Deno 2.9.4 to 2.9.6, a node:http2 server
 * aborts inside nghttp2 when a client that has just sent thousands of RPCs
 * closes its channel (denoland/deno#36788). The servers run as
 * `deno task server` runs them; the clients are plain grpc-js, one in a
 * process of its own.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { EchoClient } from "../echo/mod.ts";
import { busyClient } from "../testing/busy_client.ts";
import { sleep } from "../testing/wait.ts";
import { denoRunArgs, startServerTask } from "../testing/processes.ts";
import { PINNED_DENO, releaseWarning } from "../cli/deno_release.ts";

/** One in four runs in a process of its own. */
const CLIENTS = 8;
const COUNT = 5000;
const CONCURRENCY = 64;

/** {@linkcode busyClient} in a process of its own; resolves to its failures. */
async function busyClientProcess(addresses: readonly string[]) {
  const { code, stdout } = await new Deno.Command("deno", {
    args: [
      ...denoRunArgs("testing/programs/busy_client.ts", "127.0.0.1"),
      addresses.join(","),
      String(COUNT),
      String(CONCURRENCY),
    ],
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(code, 0);
  const line = new TextDecoder().decode(stdout).trim();
  return Number(line.match(/^sent \d+, failed (\d+)$/)![1]);
}

/** One UnaryEcho on a channel of its own; rejects if nothing answers. */
function answers(address: string): Promise<void> {
  const client = new EchoClient(address, grpc.credentials.createInsecure());
  return new Promise<void>((resolve, reject) =>
    client.UnaryEcho(
      { message: "still there?" },
      { deadline: new Date(Date.now() + 2000) },
      (error) => error ? reject(error) : resolve(),
    )
  ).finally(() => client.close());
}

Deno.test("server: outlives eight busy clients that each send 5000 RPCs at concurrency 64 and close", async () => {
  const server = await startServerTask(["127.0.0.1:0", "127.0.0.1:0"]);
  let exit: number | null = null;
  server.exited.then((code) => exit = code);
  try {
    for (let i = 0; i < CLIENTS; i++) {
      const failed = i % 4 === 0
        ? await busyClientProcess(server.addresses)
        : await busyClient(server.addresses, COUNT, CONCURRENCY);
      assert.equal(failed, 0, `client ${i + 1}: failed RPCs`);
      // The abort follows the close within milliseconds.
      await sleep(300);
      if (exit !== null) {
        const { stderr } = await server.stop();
        assert.fail(`the server exited after client ${i + 1}: ${stderr}`);
      }
      await Promise.all(server.addresses.map(answers));
    }
  } finally {
    await server.stop("SIGKILL");
  }
});

Deno.test("server: warns at start on the Deno releases known to crash, and only on those", () => {
  for (const version of ["2.9.4", "2.9.5", "2.9.6"]) {
    assert.equal(
      releaseWarning(version),
      `server: warning: Deno ${version} can abort this server when a busy ` +
        `client closes (denoland/deno#36788); use Deno ${PINNED_DENO}`,
    );
  }
  for (const version of [PINNED_DENO, "2.9.0", "2.8.3", "2.9.7", "2.10.0"]) {
    assert.equal(releaseWarning(version), null, version);
  }
});
