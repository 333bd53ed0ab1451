/**
 * ring_hash end to end: five echo servers, one process each, and keyed
 * RPCs through `ring_hash_experimental`, from the client task and from a
 * channel in this process while a backend is killed and started again.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { ManualResolver, registerRingHash } from "../balancer/mod.ts";
import { buildRing } from "../balancer/ring_hash.ts";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
  withRingHash,
} from "../cli/client_config.ts";
import { type Send, unaryEcho, withResend } from "../cli/load.ts";
import { EchoClient } from "../echo/mod.ts";
import {
  runTask,
  type ServerTask,
  startServerTask,
} from "../testing/processes.ts";
import { LEAVES_RECONNECT_TIMERS } from "../testing/sanitizers.ts";

registerRingHash();

const KEYS = Array.from({ length: 100 }, (_, i) => `key-${i}`);

/** Where each key's RPC went, or why it failed. */
async function round(send: Send): Promise<Map<string, string>> {
  const served = new Map<string, string>();
  await Promise.all(KEYS.map(async (key) => {
    const metadata = new grpc.Metadata();
    metadata.set("x-user", key);
    try {
      const { peer } = await send(new Date(Date.now() + 10_000), metadata);
      served.set(key, peer);
    } catch (error) {
      served.set(key, `failed: ${(error as Error).message}`);
    }
  }));
  return served;
}

/** The keys the client task printed for each backend, as key → backend. */
function printedKeys(stdout: readonly string[]): Map<string, string> {
  const served = new Map<string, string>();
  for (const line of stdout) {
    const match = line.match(/^(\S+): \d+ keys: (.*)$/);
    if (match === null) continue;
    for (const key of match[2].split(" ")) {
      assert.ok(!served.has(key), `${key} printed twice`);
      served.set(key, match[1]);
    }
  }
  return served;
}

Deno.test(
  "ring_hash e2e: 5 backends, 100 keys, each on one backend from the channel's start; a killed backend's keys, and only they, move, none fails; restarted, every key goes back",
  LEAVES_RECONNECT_TIMERS,
  async () => {
    const servers: ServerTask[] = [];
    for (let i = 0; i < 5; i++) {
      servers.push(await startServerTask(["127.0.0.1:0"]));
    }
    const addresses = servers.map((server) => server.addresses[0]);
    const client = await runTask([
      "client",
      "--policy",
      "ring_hash",
      "--hash-header",
      "x-user",
      "--keys",
      "100",
      "--addrs",
      addresses.join(","),
      "--quiet",
    ]);
    assert.equal(client.code, 0, client.stderr.join("\n"));
    assert.equal(
      client.stdout.at(-1),
      "100 keys, 0 on two backends; failed: 0 of 300 RPCs",
    );
    const home = printedKeys(client.stdout);
    assert.equal(home.size, 100);

    const resolver = new ManualResolver("ring-hash-e2e", {
      endpoints: addresses,
      serviceConfig: withRingHash(clientServiceConfig(3), "x-user"),
    });
    resolver.register();
    const channel = new EchoClient(
      "ring-hash-e2e:///echo",
      grpc.credentials.createInsecure(),
      CLIENT_CHANNEL_OPTIONS,
    );
    const send = withResend((deadline, metadata) =>
      unaryEcho(channel, deadline, metadata)
    );
    try {
      // Keyed RPCs as the channel starts: each to its own backend.
      assert.deepEqual(await round(send), home);
      const killed = 2;
      const load = round(send);
      await servers[killed].stop("SIGKILL");
      await load;
      const moved = await round(send);
      const held = KEYS.filter((key) => home.get(key) === addresses[killed]);
      for (const key of KEYS) {
        const now = moved.get(key)!;
        assert.ok(!now.startsWith("failed"), `${key}: ${now}`);
        if (held.includes(key)) assert.notEqual(now, addresses[killed], key);
        else assert.equal(now, home.get(key), `${key} stays`);
      }
      // Its ring share, within four standard deviations of 100 keys.
      const ring = buildRing(
        addresses.map((address) => {
          const [host, port] = address.split(":");
          return { addresses: [{ host, port: Number(port) }] };
        }),
        1024,
        4096,
      );
      const share = ring.owners.filter((owner) => owner === killed).length /
        ring.owners.length;
      const spread = 4 * Math.sqrt(100 * share * (1 - share));
      console.log(
        `${held.length} of 100 keys moved; the killed backend's ring share ${
          share.toFixed(3)
        }`,
      );
      assert.ok(
        Math.abs(held.length - 100 * share) <= spread,
        `${held.length} keys moved, ring share ${share}`,
      );

      servers[killed] = await startServerTask([addresses[killed]]);
      const end = performance.now() + 10_000;
      let back = await round(send);
      const restarted = performance.now();
      while (!KEYS.every((key) => back.get(key) === home.get(key))) {
        assert.ok(performance.now() < end, "keys back within 10 s");
        await new Promise((resolve) => setTimeout(resolve, 200));
        back = await round(send);
      }
      console.log(
        `every key back ${
          (performance.now() - restarted).toFixed(0)
        } ms after the restart`,
      );
    } finally {
      channel.close();
      for (const server of servers) await server.stop();
    }
  },
);
