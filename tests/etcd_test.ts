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
import {
  ETCD_ENDPOINTS,
  registerCustomRoundRobin,
  registerEtcdResolver,
} from "../balancer/mod.ts";
import { connectEtcd } from "../balancer/etcd.ts";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
} from "../cli/client_config.ts";
import { EchoClient, startEchoServer, stopEchoServers } from "../echo/mod.ts";
import { etcdEndpointValue } from "../cli/etcd_registration.ts";
import { untilPattern } from "../testing/rpcs.ts";
import { failures, type Sent, startLoad } from "../testing/steady_load.ts";
import { logged, sleep, until } from "../testing/wait.ts";
import {
  type EtcdCluster,
  etcdUnavailable,
  withEtcdCluster,
} from "../testing/etcd_cluster.ts";
import {
  assertRatioProved,
  runTask,
  type ServerTask,
  startServerTask,
} from "../testing/processes.ts";
import { ANY_PORT } from "../testing/ports.ts";

const reason = await etcdUnavailable();
if (reason !== null) console.log(`etcd test skipped: ${reason}`);

registerCustomRoundRobin();
registerEtcdResolver();

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
    ...cluster.flags,
    "--drain-ms",
    String(DRAIN_MS),
    ...args,
  ], "registered ");
}

/**
 * The client's channel to `etcd:///prefix`; with `healthChecked` false,
 * without health checking, so that only etcd moves RPCs.
 */
function connect(
  cluster: EtcdCluster,
  prefix: string,
  healthChecked = true,
): EchoClient {
  const serviceConfig = healthChecked
    ? clientServiceConfig(3)
    : clientServiceConfig(3, null);
  return new EchoClient(
    `etcd:///${prefix}`,
    grpc.credentials.createInsecure(),
    {
      ...CLIENT_CHANNEL_OPTIONS,
      "grpc.service_config": JSON.stringify(serviceConfig),
      [ETCD_ENDPOINTS]: cluster.endpoints.join(","),
    },
  );
}

/**
 * Waits until `client`'s RPCs go first, first, second, … through `first`
 * and `second`; RPCs that fail meanwhile (fewer than two endpoints) are
 * tried again.
 */
function untilOrdered(
  client: EchoClient,
  first: string,
  second: string,
): Promise<void> {
  return until("first, first, second", async () => {
    try {
      await untilPattern(client, first, second, 1_000);
      return true;
    } catch {
      return false;
    }
  }, CHANGE_MS);
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
 * Under the load `sent`, with `next` one of two endpoints since `at`: the
 * time from `at` to its first RPC.
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
  const firstNextMs = await firstRpcMs(sent, next, at);
  const lastOld = Math.max(...on(sent, old).map((rpc) => rpc.at + rpc.ms));
  return { lastOldMs: lastOld - at, firstNextMs };
}

/** Two registered backends under `prefix`, and the client's load on them. */
async function pairUnderLoad(
  cluster: EtcdCluster,
  prefix: string,
  args: readonly string[] = [],
) {
  const first = await register(cluster, prefix, args);
  const second = await register(cluster, prefix, args);
  const client = connect(cluster, prefix);
  const load = startLoad(client);
  await until(
    "both serve",
    () => on(load.sent, first).length > 0 && on(load.sent, second).length > 0,
  );
  return {
    first,
    second,
    load,
    /** Stops the load, then every server of `servers`, then the channel. */
    async end(servers: readonly ServerTask[]): Promise<readonly Sent[]> {
      const sent = await load.stop();
      await Promise.all(servers.map((server) => server.stop()));
      client.close();
      return sent;
    },
  };
}

/** Waits until `key` is gone from etcd; resolves to when it went. */
async function untilGone(
  cluster: EtcdCluster,
  prefix: string,
  key: string,
  ms: number,
): Promise<number> {
  await until(
    `${key} gone`,
    async () => !(await cluster.keys(prefix)).includes(key),
    ms,
  );
  return performance.now();
}

Deno.test({
  name:
    "etcd: backends registered in a 3-member cluster, found through etcd:///, under load with no failed RPC",
  ignore: reason !== null,
}, async (t) => {
  await withEtcdCluster(3, async (cluster) => {
    await t.step("the 1:2 proof through etcd:///", async () => {
      // A prefix with a slash, as real ones have: HTTP/2's authority, which
      // grpc-js takes from the resolver, may hold none.
      const servers = [
        await register(cluster, "services/proof"),
        await register(cluster, "services/proof"),
      ];
      assert.deepEqual(
        await cluster.keys("services/proof"),
        servers.map((server) => `services/proof/${server.addresses[0]}`).sort(),
      );
      const client = await runTask([
        "client",
        "--target",
        "etcd:///services/proof",
        ...cluster.flags,
        "--quiet",
      ]);
      assertRatioProved(client);
      assert.deepEqual(client.stderr, []);
      for (const server of servers) await server.stop();
      assert.deepEqual(await cluster.keys("services/proof"), []);
    });

    await t.step(
      "every way a user may write the target reaches the prefix's backends; an authority is refused in one line",
      async () => {
        const servers = [
          await startEchoServer(ANY_PORT),
          await startEchoServer(ANY_PORT),
        ];
        try {
          for (const { address } of servers) {
            await cluster.put(
              `services/forms/${address}`,
              etcdEndpointValue(address),
            );
          }
          const run = (target: string) =>
            runTask([
              "client",
              "--target",
              target,
              ...cluster.flags,
              "--count",
              "6",
              "--quiet",
            ]);
          for (
            const target of [
              "etcd:///services/forms",
              "etcd:services/forms",
              "etcd:/services/forms",
              "etcd:///services/forms/",
            ]
          ) {
            const client = await run(target);
            assert.equal(client.code, 0, `${target}: ${client.stderr}`);
            assert.equal(client.stdout.at(-1), "failed: 0 of 6 RPCs", target);
          }
          const refused = await runTask([
            "client",
            "--target",
            "etcd://etcd-0/services/forms",
            ...cluster.flags,
          ]);
          assert.equal(refused.code, 1);
          assert.equal(refused.stderr.length, 1, refused.stderr.join("\n"));
          assert.match(
            refused.stderr[0],
            /give the cluster by the customlb\.etcd_endpoints option, not in the target \("etcd-0"\)/,
          );
        } finally {
          await stopEchoServers(servers, { drainMs: 0 });
        }
      },
    );

    await t.step(
      "deno task demo takes the client's flags: an etcd:/// target",
      async () => {
        // The demo's own servers, on its fixed ports, registered by hand.
        for (const address of ["localhost:50050", "localhost:50051"]) {
          await cluster.put(`demo/${address}`, etcdEndpointValue(address));
        }
        const demo = await runTask([
          "demo",
          "--target",
          "etcd:///demo",
          ...cluster.flags,
          "--quiet",
        ]);
        assert.equal(demo.code, 0, demo.stderr.join("\n"));
        assert.deepEqual(demo.stdout, [
          "serving on localhost:50050",
          "serving on localhost:50051",
          "Successful multiple iterations of 1:2 ratio",
        ]);
        assert.deepEqual(demo.stderr, []);
      },
    );

    await t.step(
      "a malformed value is skipped, logged naming its key",
      async () => {
        await cluster.put("malformed/a", "not JSON");
        await cluster.put("malformed/b", '{"Addr": 50051}');
        const logs = await logged(async () => {
          const { first, second, end } = await pairUnderLoad(
            cluster,
            "malformed",
          );
          const sent = await end([first, second]);
          assert.deepEqual(failures(sent), []);
        });
        const skipped = logs.filter((line) => line.includes("etcd_resolver"));
        assert.deepEqual(skipped.slice(0, 2), [
          'etcd_resolver: skipping malformed/a: value is not JSON: "not JSON"',
          'etcd_resolver: skipping malformed/b: "Addr" is not HOST:PORT in {"Addr": 50051}',
        ]);
      },
    );

    await t.step(
      "a key overwritten with a bad value drops its endpoint, logged, as one deleted would",
      async () => {
        const servers = [
          await startEchoServer(ANY_PORT),
          await startEchoServer(ANY_PORT),
          await startEchoServer(ANY_PORT),
        ];
        const [a, b, c] = servers.map(({ address }) => address);
        await cluster.put("overwrite/a", etcdEndpointValue(a));
        await cluster.put("overwrite/b", etcdEndpointValue(b));
        const client = connect(cluster, "overwrite", false);
        try {
          await untilOrdered(client, a, b);
          // b's key goes bad as c's comes: two endpoints, a and c. Had b's
          // old address stayed, three would be refused, and c never used.
          const logs = await logged(async () => {
            await cluster.put("overwrite/b", "not JSON");
            await cluster.put("overwrite/c", etcdEndpointValue(c));
            await untilOrdered(client, a, c);
          });
          assert.ok(
            logs.includes(
              'etcd_resolver: skipping overwrite/b: value is not JSON: "not JSON"',
            ),
            logs.join("\n"),
          );
        } finally {
          client.close();
          await stopEchoServers(servers, { drainMs: 0 });
        }
      },
    );

    await t.step(
      "keys that change and vanish while the watch is down are seen when it is back",
      async () => {
        const servers = [
          await startEchoServer(ANY_PORT),
          await startEchoServer(ANY_PORT),
          await startEchoServer(ANY_PORT),
          await startEchoServer(ANY_PORT),
        ];
        const [a, b, c, d] = servers.map(({ address }) => address);
        await cluster.put("down/a", etcdEndpointValue(a));
        await cluster.put("down/b", etcdEndpointValue(b));
        // The client knows one follower alone, so its watch is down while
        // that member is; the other two keep the cluster writable meanwhile.
        const down = (await cluster.leader() + 1) % 3;
        const client = new EchoClient(
          "etcd:///down",
          grpc.credentials.createInsecure(),
          {
            ...CLIENT_CHANNEL_OPTIONS,
            "grpc.service_config": JSON.stringify(clientServiceConfig(3, null)),
            [ETCD_ENDPOINTS]: cluster.endpoints[down],
          },
        );
        let killed = false;
        try {
          await untilOrdered(client, a, b);
          await logged(async () => {
            await cluster.kill(down);
            killed = true;
            // a's key vanishes, b's moves to d, and c comes.
            await cluster.delete("down/a");
            await cluster.put("down/b", etcdEndpointValue(d));
            await cluster.put("down/c", etcdEndpointValue(c));
            await cluster.start(down);
            killed = false;
            await untilOrdered(client, d, c);
          });
        } finally {
          client.close();
          await stopEchoServers(servers, { drainMs: 0 });
          if (killed) await cluster.start(down);
        }
      },
    );

    await t.step(
      "endpoints go in key order, whichever registered first",
      async () => {
        const servers = [
          await startEchoServer(ANY_PORT),
          await startEchoServer(ANY_PORT),
        ];
        const [first, second] = servers.map(({ address }) => address);
        const client = connect(cluster, "order", false);
        const channel = client.getChannel();
        try {
          // The watch is up once the empty prefix has failed the channel;
          // then the higher key arrives first, and the lower one after it.
          channel.getConnectivityState(true);
          await until(
            "the empty prefix fails the channel",
            () =>
              channel.getConnectivityState(false) ===
                grpc.connectivityState.TRANSIENT_FAILURE,
            CHANGE_MS,
          );
          await logged(async () => {
            await cluster.put("order/b", etcdEndpointValue(second));
            await cluster.put("order/a", etcdEndpointValue(first));
            await untilOrdered(client, first, second);
          });
        } finally {
          client.close();
          await stopEchoServers(servers, { drainMs: 0 });
        }
      },
    );

    await t.step(
      "a change between the resolver's read and its watch is not lost",
      async () => {
        const servers = [
          await startEchoServer(ANY_PORT),
          await startEchoServer(ANY_PORT),
        ];
        const [first, second] = servers.map(({ address }) => address);
        await cluster.put("gap/a", etcdEndpointValue(first));
        // The second key lands after the resolver's read, before its watch.
        registerEtcdResolver({
          connect: async (endpoints) => {
            const etcd = await connectEtcd(endpoints);
            const getAll = etcd.getAll.bind(etcd);
            etcd.getAll = () => {
              const builder = getAll();
              const exec = builder.exec.bind(builder);
              builder.exec = async () => {
                const read = await exec();
                await cluster.put("gap/b", etcdEndpointValue(second));
                return read;
              };
              return builder;
            };
            return etcd;
          },
        });
        const client = connect(cluster, "gap", false);
        // Channels made from here on get the plain client again.
        registerEtcdResolver();
        try {
          await logged(() => untilOrdered(client, first, second));
        } finally {
          client.close();
          await stopEchoServers(servers, { drainMs: 0 });
        }
      },
    );

    await t.step(
      "replacements: a third registers, the second deregisters; 5 rounds",
      async () => {
        const first = await register(cluster, "rounds");
        let second = await register(cluster, "rounds");
        // Without health checking, a drained server's NOT_SERVING moves
        // nothing: the figures are etcd's.
        const client = connect(cluster, "rounds", false);
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

    await t.step(
      "a backend SIGKILLed: its key goes with its lease",
      async () => {
        const ttlSeconds = 3;
        const { first, second, load, end } = await pairUnderLoad(
          cluster,
          "killed",
          ["--etcd-ttl", String(ttlSeconds)],
        );
        const key = `killed/${second.addresses[0]}`;
        const at = performance.now();
        await second.stop("SIGKILL");
        // The last keepalive was at most a third of the TTL before the kill;
        // etcd looks for expired leases every 500 ms.
        const goneMs =
          await untilGone(cluster, "killed", key, ttlSeconds * 1000 + 1000) -
          at;
        // One endpoint is refused; the dead one stays, unhealthy, until a
        // backend registers in its place.
        const next = await register(cluster, "killed");
        await firstRpcMs(load.sent, next, performance.now());
        const sent = await end([first, next]);
        assert.deepEqual(failures(sent), []);
        console.log(
          `etcd: the SIGKILLed backend's key went ${
            goneMs.toFixed(0)
          } ms after ` +
            `the kill (TTL ${ttlSeconds} s); ${sent.length} RPCs, 0 failed`,
        );
      },
    );

    await t.step(
      "an etcd member killed, then the leader: changes still arrive",
      async () => {
        const { first, second, load, end } = await pairUnderLoad(
          cluster,
          "members",
        );
        const leader = await cluster.leader();
        const follower = (leader + 1) % 3;
        await cluster.kill(follower);
        const next = await register(cluster, "members");
        const withoutFollower = await replace(load.sent, second, next);
        await cluster.start(follower);
        const elected = await cluster.leader();
        await cluster.kill(elected);
        // Registered while a new leader is elected: the server retries until
        // there is one.
        const last = await register(cluster, "members");
        const withoutLeader = await replace(load.sent, next, last);
        // The next step starts every member again.
        const sent = await end([first, last]);
        assert.deepEqual(failures(sent), []);
        console.log(
          `etcd: a replacement reached the client ` +
            `${
              withoutFollower.firstNextMs.toFixed(0)
            } ms after the SIGTERM with ` +
            `a follower down, ${
              withoutLeader.firstNextMs.toFixed(0)
            } ms with ` +
            `the leader down; ${sent.length} RPCs, 0 failed`,
        );
      },
    );

    await t.step(
      "all of etcd down: the last endpoints serve; back, a change arrives",
      async () => {
        const { first, second, load, end } = await pairUnderLoad(
          cluster,
          "outage",
        );
        await Promise.all([0, 1, 2].map((i) => cluster.kill(i)));
        const downAt = performance.now();
        // Shorter than the lease's TTL (5 s): the servers' keepalives resume.
        await sleep(3000);
        const during = load.sent.filter((rpc) => rpc.at > downAt);
        await Promise.all([0, 1, 2].map((i) => cluster.start(i)));
        const next = await register(cluster, "outage");
        const back = await replace(load.sent, second, next);
        const sent = await end([first, next]);
        assert.deepEqual(failures(sent), []);
        for (const server of [first, second]) {
          const served = on(during, server).length;
          assert.ok(served > 100, `${served} on ${server.addresses}`);
        }
        console.log(
          `etcd: down 3 s, ${during.length} RPCs served meanwhile by both ` +
            `backends; back, a replacement reached the client ` +
            `${back.firstNextMs.toFixed(0)} ms after the SIGTERM; ` +
            `${sent.length} RPCs, 0 failed`,
        );
      },
    );

    await t.step(
      "all of etcd down longer than the lease: back, the server registers again",
      async () => {
        const server = await register(cluster, "relet", ["--etcd-ttl", "1"]);
        const key = `relet/${server.addresses[0]}`;
        assert.deepEqual(await cluster.keys("relet"), [key]);
        await Promise.all([0, 1, 2].map((i) => cluster.kill(i)));
        // Five TTLs: the server's lease is lost, and so would be its key.
        await sleep(5000);
        await Promise.all([0, 1, 2].map((i) => cluster.start(i)));
        // The lease etcd kept expires one TTL after its restart; a key of a
        // new lease is there after that, and stays.
        await sleep(3000);
        await until(
          "the key registered again",
          async () => (await cluster.keys("relet")).includes(key),
          CHANGE_MS,
        );
        await sleep(2000);
        assert.deepEqual(await cluster.keys("relet"), [key]);
        const stopped = await server.stop();
        assert.equal(stopped.code, 0, stopped.stderr.join("\n"));
      },
    );
  });
});
