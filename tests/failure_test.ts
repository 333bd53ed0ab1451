/**
 * Resolver swaps under load and bad input of every kind: from the resolver
 * (service configs, endpoint counts) and at a server's port (oversized
 * messages, garbage bytes, half-open connections).
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
} from "../cli/client_config.ts";
import {
  EchoClient,
  type EchoHandlers,
  echoHandlers,
  type EchoServer,
  echoService,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { connect, policyConfig, setup } from "../testing/channels.ts";
import {
  deadline,
  unary,
  untilPattern,
  untilSecondServes,
  untilServes,
} from "../testing/rpcs.ts";
import { failures, startLoad, untilSent } from "../testing/steady_load.ts";
import { ANY_PORT, listen } from "../testing/ports.ts";
import { logged, until } from "../testing/wait.ts";
import { startServerTask } from "../testing/processes.ts";

/** An echo server that records the peer (client address) of each call. */
async function peerCountingServer(): Promise<
  { address: string; peers: Set<string>; stop(): Promise<void> }
> {
  const server = new grpc.Server();
  const address = await listen(server);
  const peers = new Set<string>();
  const handlers = echoHandlers(address);
  const counted: EchoHandlers = {
    ...handlers,
    UnaryEcho(call, callback) {
      peers.add(call.getPeer());
      handlers.UnaryEcho(call, callback);
    },
  };
  server.addService(echoService, counted);
  return {
    address,
    peers,
    stop: () =>
      stopEchoServers([{ address, server, health: null }], {
        drainMs: 0,
        graceMs: 1000,
      }),
  };
}

Deno.test("failure: swapping the second endpoint under load fails no RPC, moves the pattern, keeps the first connection", async () => {
  const first = await peerCountingServer();
  const servers: EchoServer[] = [
    await startEchoServer(ANY_PORT),
    await startEchoServer(ANY_PORT),
  ];
  const [second, third] = servers.map(({ address }) => address);
  const config = clientServiceConfig(3, null);
  const { resolver, client } = connect(
    [first.address, second],
    config,
    CLIENT_CHANNEL_OPTIONS,
  );
  try {
    await untilServes(client, second);
    const load = startLoad(client, 8);
    await untilSent(load, 300);
    resolver.update({
      endpoints: [first.address, third],
      serviceConfig: config,
    });
    const updatedAt = performance.now();
    await until(
      "third serving",
      () => load.sent.some((x) => x.server === third),
    );
    await untilSent(load, 300);
    const sent = await load.stop();
    const firstOnThird = sent.find((x) => x.server === third)!;
    console.log(
      `swap: ${sent.length} RPCs, ${
        failures(sent).length
      } failed; the new server served ${
        (firstOnThird.at + firstOnThird.ms - updatedAt).toFixed(0)
      } ms after the update; the first saw ${first.peers.size} connection(s)`,
    );
    assert.deepEqual(failures(sent), []);
    const settled = sent.filter((x) => x.at > updatedAt + 100);
    assert.deepEqual(settled.filter((x) => x.server === second), []);
    await untilPattern(client, first.address, third);
    assert.equal(first.peers.size, 1, `connections: ${[...first.peers]}`);
  } finally {
    client.close();
    await first.stop();
    await stopEchoServers(servers, { drainMs: 0, graceMs: 1000 });
  }
});

Deno.test("failure: an invalid service config after a good one is logged and the good one kept", async () => {
  const s = await setup(policyConfig(3));
  try {
    await untilSecondServes(s);
    const lines = await logged(async (lines) => {
      s.resolver.update({
        endpoints: [s.first, s.second],
        serviceConfig: policyConfig(-1),
      });
      await until("the error logged", () => lines.length > 0);
      await untilPattern(s.client, s.first, s.second);
    });
    assert.ok(
      lines.some((line) =>
        line.includes(
          "resolver: custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got -1",
        )
      ),
      lines.join("\n"),
    );
  } finally {
    await s.close();
  }
});

Deno.test("failure: an invalid service config at start puts the channel in TRANSIENT_FAILURE with the message", async () => {
  const message =
    "custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got -1";
  const s = await setup(policyConfig(-1));
  try {
    const lines = await logged(async () => {
      await assert.rejects(unary(s.client), {
        code: grpc.status.UNAVAILABLE,
        details: message,
      });
    });
    assert.equal(
      s.client.getChannel().getConnectivityState(false),
      grpc.connectivityState.TRANSIENT_FAILURE,
    );
    assert.deepEqual(lines, [`${s.resolver.scheme} resolver: ${message}`]);
  } finally {
    await s.close();
  }
});

Deno.test("failure: updates with 1 or 3 endpoints after a good one are logged and the good ones kept", async () => {
  const s = await setup(policyConfig(3));
  const third = await startEchoServer(ANY_PORT);
  try {
    await untilSecondServes(s);
    for (
      const endpoints of [[s.first], [s.first, s.second, third.address]]
    ) {
      const lines = await logged(async (lines) => {
        s.resolver.update({ endpoints, serviceConfig: policyConfig(3) });
        await until("the refusal logged", () => lines.length > 0);
        await untilPattern(s.client, s.first, s.second);
      });
      const count = endpoints.length;
      assert.ok(
        lines.some((line) =>
          line.includes(`expected exactly 2 endpoints, got ${count}`)
        ),
        lines.join("\n"),
      );
    }
  } finally {
    await s.close();
    await stopEchoServers([third], { drainMs: 0, graceMs: 1000 });
  }
});

Deno.test("failure: a 5 MB message gets RESOURCE_EXHAUSTED and the server keeps serving", async () => {
  const server = await startServerTask(["127.0.0.1:0"]);
  const client = new EchoClient(
    server.addresses[0],
    grpc.credentials.createInsecure(),
  );
  try {
    await assert.rejects(
      new Promise((resolve, reject) =>
        client.UnaryEcho(
          { message: "x".repeat(5 * 1024 * 1024) },
          { deadline: deadline() },
          (error, reply) => error ? reject(error) : resolve(reply),
        )
      ),
      { code: grpc.status.RESOURCE_EXHAUSTED },
    );
    assert.equal(await unary(client), server.addresses[0]);
  } finally {
    client.close();
    const stopped = await server.stop();
    assert.equal(stopped.code, 0, stopped.stderr.join("\n"));
  }
});

Deno.test("failure: garbage bytes and half-open connections neither crash a server nor delay other clients", async () => {
  const server = await startServerTask(["127.0.0.1:0"]);
  const [hostname, port] = server.addresses[0].split(":");
  const client = new EchoClient(
    server.addresses[0],
    grpc.credentials.createInsecure(),
  );
  const connections: Deno.TcpConn[] = [];
  try {
    const open = () => Deno.connect({ hostname, port: Number(port) });
    const garbage = await open();
    connections.push(garbage);
    await garbage.write(crypto.getRandomValues(new Uint8Array(4096)));
    // Opened and silent, mid-preface, and closed for writing.
    const silent = await open();
    const midPreface = await open();
    const halfClosed = await open();
    connections.push(silent, midPreface, halfClosed);
    await midPreface.write(new TextEncoder().encode("PRI * HTTP/2.0\r\n"));
    await halfClosed.closeWrite();
    const started = performance.now();
    assert.equal(await unary(client), server.addresses[0]);
    const ms = performance.now() - started;
    console.log(
      `garbage: the next client's RPC took ${ms.toFixed(1)} ms (bound: 1000)`,
    );
    assert.ok(ms < 1000, `the RPC took ${ms} ms`);
  } finally {
    for (const connection of connections) connection.close();
    client.close();
    const stopped = await server.stop();
    assert.equal(stopped.code, 0, "the server was still running");
    assert.deepEqual(stopped.stderr, []);
  }
});
