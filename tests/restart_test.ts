/**
 * Backends killed, restarted and stopped under load: each server is its own
 * process, as in production, and the client runs with its real settings.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
} from "../cli/client_config.ts";
import {
  DRAIN_MS,
  EchoClient,
  type EchoResponse,
  GRACE_MS,
} from "../echo/mod.ts";
import { connect } from "../testing/channels.ts";
import { failures, startLoad, untilSent } from "../testing/steady_load.ts";
import { sleep, until } from "../testing/wait.ts";
import { untilPattern, untilServes } from "../testing/rpcs.ts";
import {
  type ServerTask,
  startServerTask,
  task,
} from "../testing/processes.ts";
import { idleRestarts } from "../testing/idle_restarts.ts";
import { LEAVES_RECONNECT_TIMERS } from "../testing/sanitizers.ts";

/** Two server processes, one backend each, on free ports. */
async function twoServers(): Promise<ServerTask[]> {
  return [
    await startServerTask(["127.0.0.1:0"]),
    await startServerTask(["127.0.0.1:0"]),
  ];
}

/**
 * Stops whichever of `servers` still run. Tests stop their servers before
 * they close their channels: see processes.ts on closing busy channels.
 */
async function stopAll(servers: readonly (ServerTask | null)[]) {
  await Promise.all(servers.map((server) => server?.stop("SIGKILL")));
}

/** The client program sending `args` RPCs; resolves to its output. */
function clientRun(addresses: readonly string[], args: string[]) {
  const child = task([
    "client",
    "--addrs",
    addresses.join(","),
    "--quiet",
    ...args,
  ]).spawn();
  return child.output().then(({ code, stdout, stderr }) => ({
    code,
    stdout: new TextDecoder().decode(stdout).trim().split("\n"),
    stderr: new TextDecoder().decode(stderr),
  }));
}

/** The client's in-process equivalent: its channel options and config. */
function probe(addresses: readonly string[]) {
  return connect(addresses, clientServiceConfig(3), CLIENT_CHANNEL_OPTIONS)
    .client;
}

Deno.test("restart: rolling restart of both backends under --count 5000 --concurrency 8 loses no RPC", async () => {
  const servers: (ServerTask | null)[] = await twoServers();
  const addresses = servers.map((server) => server!.addresses[0]);
  try {
    const run = clientRun(addresses, [
      "--count",
      "5000",
      "--concurrency",
      "8",
      "--rate",
      "500",
    ]);
    await sleep(1000);
    for (const i of [1, 0]) {
      const stopped = await servers[i]!.stop("SIGTERM");
      servers[i] = null;
      assert.equal(stopped.code, 0, stopped.stderr.join("\n"));
      servers[i] = await startServerTask([addresses[i]]);
      // Reconnect backoff is at most 1 s (+20% jitter); then the health
      // answer makes it READY.
      await sleep(2000);
    }
    const client = await run;
    assert.equal(client.code, 0, client.stderr);
    assert.equal(client.stdout.at(-1), "failed: 0 of 5000 RPCs");
    assert.match(client.stdout[0], /^first \(127\.0\.0\.1:\d+\): \d+ RPCs$/);
    assert.match(client.stdout[1], /^second \(127\.0\.0\.1:\d+\): \d+ RPCs$/);
  } finally {
    await stopAll(servers);
  }
});

Deno.test(
  "restart: SIGKILL of the second under load: no failed RPC, the first takes all, then 1:2 within 2 s of its restart",
  LEAVES_RECONNECT_TIMERS,
  async () => {
    const servers: (ServerTask | null)[] = await twoServers();
    const [first, second] = servers.map((server) => server!.addresses[0]);
    const client = probe([first, second]);
    try {
      const run = clientRun([first, second], [
        "--count",
        "3000",
        "--concurrency",
        "8",
        "--rate",
        "1000",
      ]);
      await untilServes(client, second);
      const load = startLoad(client, 8);
      await untilSent(load, 500);
      await servers[1]!.stop("SIGKILL");
      servers[1] = null;
      const killedAt = performance.now();
      // Seen as soon as the connection drops: RPCs sent from then on go to
      // the first.
      await until(
        "RPCs after the kill",
        () => load.sent.filter((x) => x.at > killedAt + 100).length > 20,
      );
      const sent = await load.stop();
      assert.deepEqual(failures(sent), []);
      const after = sent.filter((x) => x.at > killedAt + 100);
      assert.ok(after.length > 20, `${after.length} RPCs after the kill`);
      assert.deepEqual(after.filter((x) => x.server !== first), []);

      const client3000 = await run;
      assert.equal(client3000.stdout.at(-1), "failed: 0 of 3000 RPCs");
      assert.equal(client3000.code, 0, client3000.stderr);

      servers[1] = await startServerTask([second]);
      const restartedAt = performance.now();
      await untilPattern(client, first, second);
      const resumedMs = performance.now() - restartedAt;
      console.log(
        `SIGKILL: ${sent.length} in-process RPCs and 3000 from client.ts, 0 failed; 1:2 again ${
          (resumedMs / 1000).toFixed(2)
        } s after the restart`,
      );
      assert.ok(resumedMs < 2000, `1:2 resumed after ${resumedMs} ms`);
    } finally {
      await stopAll(servers);
      client.close();
    }
  },
);

Deno.test(
  "restart: both backends down fails RPCs fast naming both; one back and the running client recovers",
  LEAVES_RECONNECT_TIMERS,
  async () => {
    const servers: (ServerTask | null)[] = await twoServers();
    const [first, second] = servers.map((server) => server!.addresses[0]);
    const client = probe([first, second]);
    try {
      await untilServes(client, second);
      const load = startLoad(client, 4);
      await Promise.all(servers.map((server) => server!.stop("SIGKILL")));
      servers[0] = servers[1] = null;
      const downAt = performance.now();
      await until(
        "RPCs failing",
        () => load.sent.some((x) => x.at > downAt + 200 && x.error !== null),
      );
      const down = load.sent.filter((x) => x.at > downAt + 200);
      assert.ok(
        down.every((x) => x.error !== null && x.ms < 1000),
        "fail fast",
      );
      assert.match(
        down[0].error!,
        /^UNAVAILABLE: custom_round_robin: both endpoints unreachable: first \[127\.0\.0\.1:\d+\]: .+; second \[127\.0\.0\.1:\d+\]: /,
      );
      servers[0] = await startServerTask([first]);
      const backAt = performance.now();
      await until(
        "RPCs succeeding again",
        () => load.sent.some((x) => x.at > backAt && x.server === first),
        3000,
      );
      await load.stop();
      const slowest = Math.max(...down.map((x) => x.ms));
      const fastest = Math.min(...down.map((x) => x.ms));
      const recovered = load.sent.find((x) =>
        x.at > backAt && x.server === first
      )!;
      console.log(
        `both down: ${down.length} RPCs failed in ${
          (fastest / 1000).toFixed(2)
        }–${(slowest / 1000).toFixed(2)} s each; one back, an RPC succeeded ${
          ((recovered.at + recovered.ms - backAt) / 1000).toFixed(2)
        } s after its restart`,
      );
    } finally {
      await stopAll(servers);
      client.close();
    }
  },
);

Deno.test(
  "restart: a running --count client recovers when a backend comes back",
  LEAVES_RECONNECT_TIMERS,
  async () => {
    // Two ports with nothing behind them.
    const gone = await twoServers();
    await stopAll(gone);
    const [first, second] = gone.map((server) => server.addresses[0]);
    let back: ServerTask | null = null;
    try {
      const run = clientRun([first, second], [
        "--count",
        "300",
        "--concurrency",
        "2",
        "--rate",
        "100",
      ]);
      await sleep(1000);
      back = await startServerTask([first]);
      const client = await run;
      assert.equal(client.code, 1, "some RPCs failed while both were down");
      assert.match(
        client.stdout[0],
        /^first \(127\.0\.0\.1:\d+\): (\d+) RPCs$/,
      );
      const served = Number(client.stdout[0].match(/: (\d+) RPCs$/)![1]);
      const failed = Number(
        client.stdout.at(-1)!.match(/^failed: (\d+) of 300/)![1],
      );
      assert.ok(served > 100, `${served} RPCs served after the return`);
      assert.equal(served + failed, 300);
    } finally {
      await back?.stop("SIGKILL");
    }
  },
);

Deno.test(
  "restart: SIGTERM during a bidi stream: the stream completes, new connections are refused, exit 0 within the bound",
  LEAVES_RECONNECT_TIMERS,
  async () => {
    const servers: (ServerTask | null)[] = [
      await startServerTask(["127.0.0.1:0"]),
    ];
    const address = servers[0]!.addresses[0];
    const insecure = grpc.credentials.createInsecure();
    const client = new EchoClient(address, insecure);
    const late = new EchoClient(address, insecure);
    try {
      const replies: string[] = [];
      const call = client.BidirectionalStreamingEcho();
      const ended = new Promise<void>((resolve, reject) => {
        call.on("data", ({ message }: EchoResponse) => replies.push(message));
        call.on("error", reject);
        call.on("end", resolve);
      });
      call.write({ message: "before" });
      await until("first reply", () => replies.length === 1);
      const stopping = servers[0]!.stop("SIGTERM");
      const stoppedAt = performance.now();
      // After the drain, the server stops accepting connections.
      await until(
        "connections refused",
        () =>
          Deno.connect({
            hostname: "127.0.0.1",
            port: Number(address.split(":")[1]),
          })
            .then((connection) => {
              connection.close();
              return false;
            }, () => true),
        DRAIN_MS + 2000,
      );
      await assert.rejects(
        new Promise((resolve, reject) =>
          late.UnaryEcho(
            { message: "late" },
            { deadline: new Date(Date.now() + 1000) },
            (error, reply) => error ? reject(error) : resolve(reply),
          )
        ),
        { code: grpc.status.UNAVAILABLE },
        "a new connection after the drain is refused",
      );
      call.write({ message: "during shutdown" });
      await until("second reply", () => replies.length === 2);
      call.end();
      await ended;
      const stopped = await stopping;
      servers[0] = null;
      const exitMs = performance.now() - stoppedAt;
      console.log(
        `SIGTERM during a stream: exit ${stopped.code} after ${
          (exitMs / 1000).toFixed(2)
        } s (bound ${(DRAIN_MS + GRACE_MS) / 1000} s)`,
      );
      assert.equal(stopped.code, 0, stopped.stderr.join("\n"));
      assert.ok(exitMs < DRAIN_MS + GRACE_MS, `exited after ${exitMs} ms`);
      assert.deepEqual(replies, [
        `before (from ${address})`,
        `during shutdown (from ${address})`,
      ]);
    } finally {
      await stopAll(servers);
      client.close();
      late.close();
    }
  },
);

Deno.test("restart: idle clients, this project's and a plain grpc-js one, outlive server restarts during their idle periods", async () => {
  // 4 s idle leaves room for a restart (about 1 s) and the reconnection.
  const { runs, restarts } = await idleRestarts(4000, 3);
  assert.equal(restarts, 2);
  for (const run of runs) {
    assert.equal(run.signal, null, `${run.mode} client killed`);
    assert.deepEqual(run.rounds, ["round 1: ok", "round 2: ok", "round 3: ok"]);
    assert.equal(run.code, 0);
  }
});
