/**
 * gRFC A94's connection metrics on real servers: each compares
 * `grpc.subchannel.open_connections` with the connections the servers
 * really have open, read from the socket table (`ss`), when channels share
 * grpc-js's subchannels, when they close, when children are replaced, and
 * when the SDK comes after the connections.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { ManualResolver, METRICS_TARGET } from "../balancer/mod.ts";
import { registerCustomRoundRobin } from "../balancer/custom_round_robin.ts";
import {
  EchoClient,
  type EchoServer,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { ANY_PORT } from "../testing/ports.ts";
import { LEAVES_RECONNECT_TIMERS } from "../testing/sanitizers.ts";
import { type Point, valueOf, withSdk } from "../testing/sdk.ts";
import { sleep, until } from "../testing/wait.ts";

registerCustomRoundRobin();

const SERVICE_CONFIG = {
  loadBalancingConfig: [{ custom_round_robin: {} }],
};

let schemes = 0;

/** A target of a resolver of its own, answering with `servers`. */
function target(servers: readonly EchoServer[]): {
  target: string;
  resolver: ManualResolver;
} {
  const scheme = `connections-${++schemes}`;
  const resolver = new ManualResolver(scheme, {
    endpoints: servers.map(({ address }) => address),
    serviceConfig: SERVICE_CONFIG,
  });
  resolver.register();
  return { target: `${scheme}:///echo`, resolver };
}

/** A client of `target` whose metrics carry it, connected to every backend. */
function client(target: string): EchoClient {
  return new EchoClient(target, grpc.credentials.createInsecure(), {
    [METRICS_TARGET]: target,
  });
}

/** Connections the servers have accepted and not closed, by the socket table. */
async function openOnServers(servers: readonly EchoServer[]): Promise<number> {
  let open = 0;
  for (const { address } of servers) {
    const port = address.slice(address.lastIndexOf(":") + 1);
    const { stdout } = await new Deno.Command("ss", {
      args: ["-Htn", "state", "established", `( sport = :${port} )`],
    }).output();
    open += new TextDecoder().decode(stdout).split("\n").filter(Boolean)
      .length;
  }
  return open;
}

/** The gauge's value per `grpc.target`, and the disconnections, in all. */
async function gauge(
  collect: () => Promise<Map<string, Point[]>>,
): Promise<{ open: Record<string, unknown>; disconnections: number }> {
  const collected = await collect();
  const open: Record<string, unknown> = {};
  for (const point of collected.get("grpc.subchannel.open_connections") ?? []) {
    open[point.labels["grpc.target"] as string] = point.value;
  }
  const disconnections = (collected.get("grpc.subchannel.disconnections") ?? [])
    .reduce((sum, point) => sum + (point.value as number), 0);
  return { open, disconnections };
}

/** Waits until every client has both backends' connections READY. */
async function connected(
  clients: readonly EchoClient[],
  servers: readonly EchoServer[],
  expected: number,
): Promise<void> {
  for (const c of clients) {
    await new Promise<void>((resolve, reject) =>
      c.waitForReady(
        Date.now() + 5000,
        (error) => error ? reject(error) : resolve(),
      )
    );
  }
  await until(
    `${expected} connections open`,
    async () => await openOnServers(servers) === expected,
  );
}

async function twoServers(): Promise<EchoServer[]> {
  return [await startEchoServer(ANY_PORT), await startEchoServer(ANY_PORT)];
}

async function stop(servers: EchoServer[]): Promise<void> {
  await stopEchoServers(servers, { drainMs: 0, graceMs: 1000 });
}

Deno.test("connection metrics: two clients of one target share two connections, counted once; closing one changes nothing", async () => {
  await withSdk(async (collect) => {
    const servers = await twoServers();
    const { target: shared } = target(servers);
    const [a, b] = [client(shared), client(shared)];
    try {
      await connected([a, b], servers, 2);
      await until(
        "the gauge at 2",
        async () => (await gauge(collect)).open[shared] === 2,
      );
      a.close();
      // grpc-js moves a subchannel on in process.nextTick; let it.
      await sleep(200);
      assert.equal(await openOnServers(servers), 2);
      assert.deepEqual(await gauge(collect), {
        open: { [shared]: 2 },
        disconnections: 0,
      });
    } finally {
      a.close();
      b.close();
      await stop(servers);
    }
  });
});

Deno.test("connection metrics: a client of each of two targets: each target's connections under its own label", async () => {
  await withSdk(async (collect) => {
    const servers = await twoServers();
    const [one, two] = [target(servers).target, target(servers).target];
    const clients = [client(one), client(two)];
    try {
      // grpc-js's pool keeps subchannels per channel target.
      await connected(clients, servers, 4);
      await until("both gauges at 2", async () => {
        const { open } = await gauge(collect);
        return open[one] === 2 && open[two] === 2;
      });
    } finally {
      for (const c of clients) c.close();
      await stop(servers);
    }
  });
});

Deno.test("connection metrics: a health-service change replaces the children, not the connections, and the gauge stays", async () => {
  await withSdk(async (collect) => {
    const servers = await twoServers();
    const { target: only, resolver } = target(servers);
    const c = client(only);
    try {
      await connected([c], servers, 2);
      await until(
        "the gauge at 2",
        async () => (await gauge(collect)).open[only] === 2,
      );
      resolver.update({
        endpoints: servers.map(({ address }) => address),
        serviceConfig: {
          ...SERVICE_CONFIG,
          healthCheckConfig: { serviceName: "" },
        },
      });
      await sleep(200);
      assert.equal(await openOnServers(servers), 2);
      assert.deepEqual(await gauge(collect), {
        open: { [only]: 2 },
        disconnections: 0,
      });
    } finally {
      c.close();
      await stop(servers);
    }
  });
});

Deno.test(
  "connection metrics: an SDK installed after the connections reaches the channel at its next update; READY connections count open, and their loss counts",
  LEAVES_RECONNECT_TIMERS,
  async () => {
    const servers = await twoServers();
    const { target: only, resolver } = target(servers);
    const c = client(only);
    try {
      await connected([c], servers, 2);
      await withSdk(async (collect) => {
        assert.deepEqual(await gauge(collect), { open: {}, disconnections: 0 });
        resolver.update({ endpoints: servers.map(({ address }) => address) });
        await until(
          "the gauge at 2",
          async () => (await gauge(collect)).open[only] === 2,
        );
        await stop([servers[1]]);
        await until(
          "one connection open",
          async () => await openOnServers(servers) === 1,
        );
        await until("the gauge at 1, one disconnection", async () => {
          const { open, disconnections } = await gauge(collect);
          return open[only] === 1 && disconnections === 1;
        });
        assert.equal(
          valueOf(await collect(), "grpc.subchannel.disconnections", {
            "grpc.disconnect_error": "unknown",
          }),
          1,
        );
      });
    } finally {
      c.close();
      await stop(servers);
    }
  },
);
