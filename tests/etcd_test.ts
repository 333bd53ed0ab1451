/**
 * Backends that register themselves in a real etcd cluster of three
 * members (etcd_cluster.ts), found by the client through `etcd:///PREFIX`.
 * Each server is a process of its own started with `--register`, so SIGTERM
 * and SIGKILL reach it as in production; the client's channel runs in the
 * test, with the client's options, config and resend.
 *
 * Needs etcd; without it the test is skipped, saying why.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { ETCD_ENDPOINTS, registerCustomRoundRobin } from "../balancer/mod.ts";
import { CLIENT_CHANNEL_OPTIONS, clientServiceConfig } from "../client.ts";
import { EchoClient } from "../proto/echo.ts";
import {
  failures,
  logged,
  type Sent,
  sleep,
  startLoad,
  until,
} from "./helpers.ts";
import {
  type EtcdCluster,
  etcdUnavailable,
  withEtcdCluster,
} from "./etcd_cluster.ts";
import {
  assertRatioProved,
  runTask,
  type ServerTask,
  startServerTask,
} from "./processes.ts";

const reason = await etcdUnavailable();
if (reason !== null) console.log(`etcd test skipped: ${reason}`);

registerCustomRoundRobin();

/** How long a server drains after deregistering: short, to keep rounds short. */
const DRAIN_MS = 300;

/** How long a change may take to show in the RPCs: a server's start, at most a watch reconnection (1 s), a connection and a health answer. */
const CHANGE_MS = 10_000;

/** A server process with one backend, registered under `prefix`. */
function register(
  cluster: EtcdCluster,
  prefix: string,
  args: readonly string[] = [],
): Promise<ServerTask> {
  return startServerTask(["localhost:0"], [
    "--register",
    prefix,
    "--etcd-endpoints",
    cluster.endpoints.join(","),
    "--drain-ms",
    String(DRAIN_MS),
    ...args,
  ], "registered ");
}

/** The client's channel to `etcd:///prefix`. */
function connect(cluster: EtcdCluster, prefix: string): EchoClient {
  return new EchoClient(
    `etcd:///${prefix}`,
    grpc.credentials.createInsecure(),
    {
      ...CLIENT_CHANNEL_OPTIONS,
      "grpc.service_config": JSON.stringify(clientServiceConfig(3)),
      [ETCD_ENDPOINTS]: cluster.endpoints.join(","),
    },
  );
}

/** RPCs of `sent` that `server` answered. */
function on(sent: readonly Sent[], server: ServerTask): Sent[] {
  return sent.filter((rpc) => rpc.server === server.addresses[0]);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Under the load `sent`, `next` takes the place of `old` the way a rolling
 * update does it: `next` registered already (three endpoints, which the
 * policy refuses, keeping the two it has), `old` deregisters on SIGTERM.
 * Resolves to the time from the SIGTERM to `old`'s last RPC and to `next`'s
 * first.
 */
async function replace(
  sent: readonly Sent[],
  old: ServerTask,
  next: ServerTask,
): Promise<{ lastOldMs: number; firstNextMs: number }> {
  assert.deepEqual(on(sent, next), [], "served before it was one of two");
  const at = performance.now();
  const stopped = await old.stop("SIGTERM");
  assert.equal(stopped.code, 0, stopped.stderr.join("\n"));
  await until(
    "the new backend serves",
    () => on(sent, next).length > 0,
    CHANGE_MS,
  );
  const lastOld = Math.max(...on(sent, old).map((rpc) => rpc.at + rpc.ms));
  return {
    lastOldMs: lastOld - at,
    firstNextMs: Math.min(...on(sent, next).map((rpc) => rpc.at)) - at,
  };
}

/**
 * Under the load `sent`, with `next` one of two endpoints again after it
 * registered at `at`: the time to its first RPC.
 */
async function firstRpcMs(
  sent: readonly Sent[],
  next: ServerTask,
  at: number,
): Promise<number> {
  await until(
    "the new backend serves",
    () => on(sent, next).length > 0,
    CHANGE_MS,
  );
  return Math.min(...on(sent, next).map((rpc) => rpc.at)) - at;
}

Deno.test({
  name:
    "etcd: backends registered in a 3-member cluster, found through etcd:///, under load with no failed RPC",
  ignore: reason !== null,
}, async (t) => {
  await withEtcdCluster(3, async (cluster) => {
    await t.step("the 1:2 proof through etcd:///", async () => {
      const servers = [
        await register(cluster, "proof"),
        await register(cluster, "proof"),
      ];
      assert.deepEqual(
        await cluster.keys("proof"),
        servers.map((server) => `proof/${server.addresses[0]}`).sort(),
      );
      const client = await runTask([
        "client",
        "--target",
        "etcd:///proof",
        "--etcd-endpoints",
        cluster.endpoints.join(","),
        "--quiet",
      ]);
      assertRatioProved(client);
      assert.deepEqual(client.stderr, []);
      for (const server of servers) await server.stop();
      assert.deepEqual(await cluster.keys("proof"), []);
    });

    await t.step(
      "replacements: a third registers, the second deregisters; 5 rounds",
      async () => {
        const first = await register(cluster, "rounds");
        let second = await register(cluster, "rounds");
        const client = connect(cluster, "rounds");
        const load = startLoad(client);
        const swaps: { lastOldMs: number; firstNextMs: number }[] = [];
        const registrations: number[] = [];
        const logs = await logged(async () => {
          await until(
            "both serve",
            () =>
              on(load.sent, first).length > 0 &&
              on(load.sent, second).length > 0,
          );
          for (let round = 0; round < 5; round++) {
            // A rolling update: the new backend first, then the old one goes.
            const next = await register(cluster, "rounds");
            swaps.push(await replace(load.sent, second, next));
            // A stop and then a start: the new backend's registration alone
            // makes two endpoints again.
            const stopped = await next.stop("SIGTERM");
            assert.equal(stopped.code, 0);
            second = await register(cluster, "rounds");
            registrations.push(
              await firstRpcMs(load.sent, second, performance.now()),
            );
          }
        });
        const sent = await load.stop();
        await Promise.all([first.stop(), second.stop()]);
        client.close();
        assert.deepEqual(failures(sent), []);
        // The three-endpoint answers were refused, saying so.
        assert.ok(
          logs.some((line) =>
            /expected exactly 2 endpoints, got 3: .*; still using the previous endpoints$/
              .test(line)
          ),
          logs.join("\n"),
        );
        const lastOld = median(swaps.map((swap) => swap.lastOldMs));
        const firstNext = median(swaps.map((swap) => swap.firstNextMs));
        const firstRegistered = median(registrations);
        console.log(
          `etcd: ${sent.length} RPCs, 0 failed; medians of 5: SIGTERM (keys ` +
            `deleted first) to the old backend's last RPC ${
              lastOld.toFixed(0)
            } ms, ` +
            `to its successor's first ${
              firstNext.toFixed(0)
            } ms; registration ` +
            `to the backend's first RPC ${firstRegistered.toFixed(0)} ms`,
        );
        // etcd's push, not the old server's drain, ends its share.
        assert.ok(
          lastOld < DRAIN_MS,
          `old backend's last RPC after ${lastOld} ms`,
        );
      },
    );
  });
});
