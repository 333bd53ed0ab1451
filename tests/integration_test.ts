/**
 * The policy with real grpc-js servers and channels on loopback.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  ManualResolver,
  parseServiceConfig,
  registerCustomRoundRobin,
} from "../balancer/mod.ts";
import { EchoClient, type EchoResponse } from "../proto/echo.ts";
import {
  type EchoServer,
  startEchoServer,
  stopEchoServers,
} from "../server.ts";
import { runClient } from "../client.ts";
import { assertOneInThree, servedBy as servedByTag } from "./windows.ts";

registerCustomRoundRobin();

let schemes = 0;

interface Setup {
  readonly servers: EchoServer[];
  readonly resolver: ManualResolver;
  readonly client: EchoClient;
  readonly first: string;
  readonly second: string;
  close(): Promise<void>;
}

/** Two echo servers on free ports and a client reaching them by `config`. */
async function setup(serviceConfig: unknown): Promise<Setup> {
  const servers = [
    await startEchoServer("localhost:0"),
    await startEchoServer("localhost:0"),
  ];
  const scheme = `integration-${++schemes}`;
  const resolver = new ManualResolver(scheme, {
    endpoints: servers.map(({ address }) => address),
    serviceConfig,
  });
  resolver.register();
  const client = new EchoClient(
    `${scheme}:///echo`,
    grpc.credentials.createInsecure(),
  );
  return {
    servers,
    resolver,
    client,
    first: servers[0].address,
    second: servers[1].address,
    async close() {
      client.close();
      await stopEchoServers(servers, { drainMs: 0, graceMs: 1000 });
    },
  };
}

function policyConfig(chooseSecond: number) {
  return {
    loadBalancingConfig: [{ custom_round_robin: { chooseSecond } }],
  };
}

function servedBy(reply: EchoResponse): string {
  return servedByTag(reply.message);
}

function deadline(seconds = 5): Date {
  return new Date(Date.now() + seconds * 1000);
}

function unary(client: EchoClient): Promise<string> {
  return new Promise((resolve, reject) =>
    client.UnaryEcho(
      { message: "hi" },
      { deadline: deadline() },
      (error, reply) => error ? reject(error) : resolve(servedBy(reply!)),
    )
  );
}

function serverStreaming(client: EchoClient): Promise<string> {
  return new Promise((resolve, reject) => {
    const servedBys = new Set<string>();
    const call = client.ServerStreamingEcho({ message: "one two three" }, {
      deadline: deadline(),
    });
    call.on("data", (reply: EchoResponse) => servedBys.add(servedBy(reply)));
    call.on("error", reject);
    call.on("end", () => {
      assert.equal(servedBys.size, 1, "one stream, one server");
      resolve([...servedBys][0]);
    });
  });
}

function clientStreaming(client: EchoClient): Promise<string> {
  return new Promise((resolve, reject) => {
    const call = client.ClientStreamingEcho(
      { deadline: deadline() },
      (error, reply) => error ? reject(error) : resolve(servedBy(reply!)),
    );
    call.write({ message: "one" });
    call.write({ message: "two" });
    call.end();
  });
}

function bidiStreaming(client: EchoClient): Promise<string> {
  return new Promise((resolve, reject) => {
    const servedBys = new Set<string>();
    const call = client.BidirectionalStreamingEcho({ deadline: deadline() });
    call.on("data", (reply: EchoResponse) => servedBys.add(servedBy(reply)));
    call.on("error", reject);
    call.on("end", () => {
      assert.equal(servedBys.size, 1, "one stream, one server");
      resolve([...servedBys][0]);
    });
    call.write({ message: "one" });
    call.write({ message: "two" });
    call.end();
  });
}

/** Sends RPCs until one reaches `server`; fails the test after 200. */
async function untilServes(client: EchoClient, server: string) {
  for (let i = 0; i < 200; i++) {
    if (await unary(client) === server) return;
  }
  assert.fail(`${server} never served an RPC`);
}

/**
 * Sends RPCs until one reaches the second server: both children are READY
 * then, and the custom picker has just made a pick of the second.
 */
function untilSecondServes(setup: Setup): Promise<void> {
  return untilServes(setup.client, setup.second);
}

/** The servers of `n` RPCs sent one after another by `send`. */
async function sequence(
  n: number,
  send: (i: number) => Promise<string>,
): Promise<string[]> {
  const served: string[] = [];
  for (let i = 0; i < n; i++) served.push(await send(i));
  return served;
}

/** `pattern` repeated to `n` entries. */
function repeated(pattern: readonly string[], n: number): string[] {
  return Array.from({ length: n }, (_, i) => pattern[i % pattern.length]);
}

Deno.test("integration: once both are ready, 30 RPCs follow first, first, second", async () => {
  const s = await setup(policyConfig(3));
  try {
    await untilSecondServes(s);
    assert.deepEqual(
      await sequence(30, () => unary(s.client)),
      repeated([s.first, s.first, s.second], 30),
    );
  } finally {
    await s.close();
  }
});

Deno.test("integration: streaming RPCs are balanced the same way", async () => {
  const s = await setup(policyConfig(3));
  try {
    await untilSecondServes(s);
    const methods = [serverStreaming, clientStreaming, bidiStreaming, unary];
    assert.deepEqual(
      await sequence(30, (i) => methods[i % 4](s.client)),
      repeated([s.first, s.first, s.second], 30),
    );
  } finally {
    await s.close();
  }
});

Deno.test("integration: chooseSecond 0 sends every RPC to the first server", async () => {
  const s = await setup(policyConfig(0));
  try {
    assert.deepEqual(
      await sequence(30, () => unary(s.client)),
      repeated([s.first], 30),
    );
  } finally {
    await s.close();
  }
});

Deno.test("integration: chooseSecond 1 sends every RPC to the second server once it is ready", async () => {
  const s = await setup(policyConfig(1));
  try {
    await untilSecondServes(s);
    assert.deepEqual(
      await sequence(30, () => unary(s.client)),
      repeated([s.second], 30),
    );
  } finally {
    await s.close();
  }
});

Deno.test("integration: an invalid config from the resolver fails RPCs with UNAVAILABLE and the reason", async () => {
  const s = await setup(policyConfig(-1));
  try {
    await assert.rejects(unary(s.client), {
      code: grpc.status.UNAVAILABLE,
      details:
        "custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got -1",
    });
  } finally {
    await s.close();
  }
});

Deno.test("integration: an unregistered policy is refused, not replaced by pick_first", async () => {
  const config = { loadBalancingConfig: [{ custom_round_robn: {} }] };
  const message =
    "invalid service config: no load-balancing policy in loadBalancingConfig is registered: custom_round_robn";
  assert.throws(() => parseServiceConfig(config), { message });
  const s = await setup(config);
  try {
    await assert.rejects(unary(s.client), {
      code: grpc.status.UNAVAILABLE,
      details: message,
    });
  } finally {
    await s.close();
  }
});

Deno.test("integration: the client refuses an invalid chooseSecond before making a channel", async () => {
  for (
    const [value, shown] of [["-1", "-1"], ["1.5", "1.5"], ["abc", '"abc"']]
  ) {
    await assert.rejects(
      runClient([
        "--choose-second",
        value,
        "--addrs",
        "localhost:1,localhost:2",
      ]),
      {
        name: "Error",
        message:
          `custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got ${shown}`,
      },
    );
  }
});

Deno.test("integration: the client proves the ratio against real servers", async () => {
  const servers = [
    await startEchoServer("localhost:0"),
    await startEchoServer("localhost:0"),
  ];
  const output: string[] = [];
  const log = console.log;
  console.log = (line: string) => output.push(line);
  try {
    const code = await runClient([
      "--addrs",
      servers.map(({ address }) => address).join(","),
    ]);
    assert.equal(code, 0);
  } finally {
    console.log = log;
    await stopEchoServers(servers, { drainMs: 0, graceMs: 1000 });
  }
  assert.equal(output.at(-1), "Successful multiple iterations of 1:2 ratio");
  // The three windows that proved it: each one RPC on the second server.
  const [first, second] = servers.map(({ address }) => address);
  assertOneInThree(output.slice(-10, -1).map(servedByTag), first, second);
});

Deno.test("integration: a resolver update swapping the second endpoint moves the pattern", async () => {
  const s = await setup(policyConfig(3));
  const third = await startEchoServer("localhost:0");
  try {
    await untilSecondServes(s);
    s.resolver.update({
      endpoints: [s.first, third.address],
      serviceConfig: policyConfig(3),
    });
    await untilServes(s.client, third.address);
    assert.deepEqual(
      await sequence(9, () => unary(s.client)),
      repeated([s.first, s.first, third.address], 9),
    );
  } finally {
    await s.close();
    await stopEchoServers([third], { drainMs: 0, graceMs: 1000 });
  }
});

Deno.test("integration: 3 endpoints at start fail RPCs at once with UNAVAILABLE and the reason", async () => {
  const s = await setup(policyConfig(3));
  const third = await startEchoServer("localhost:0");
  s.resolver.update({
    endpoints: [s.first, s.second, third.address],
    serviceConfig: policyConfig(3),
  });
  try {
    const started = Date.now();
    await assert.rejects(unary(s.client), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.UNAVAILABLE);
      assert.match(
        error.details,
        /^custom_round_robin: expected exactly 2 endpoints, got 3: /,
      );
      return true;
    });
    assert.ok(Date.now() - started < 4000, "failed before the deadline");
  } finally {
    await s.close();
    await stopEchoServers([third], { drainMs: 0, graceMs: 1000 });
  }
});
