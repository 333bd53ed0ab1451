/**
 * The policy with real grpc-js servers and channels on loopback.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { parseServiceConfig } from "../balancer/service_config.ts";
import {
  type EchoClient,
  type EchoResponse,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { runClient } from "../client.ts";
import {
  assertOneInThree,
  servedBy as servedByTag,
} from "../testing/windows.ts";
import {
  deadline,
  repeated,
  sequence,
  servedBy,
  unary,
  untilPattern,
  untilSecondServes,
  untilServes,
} from "../testing/rpcs.ts";
import { failures, startLoad, untilSent } from "../testing/steady_load.ts";
import { logged, sleep } from "../testing/wait.ts";
import { policyConfig, setup } from "../testing/channels.ts";
import { ANY_PORT } from "../testing/ports.ts";

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

Deno.test("integration: chooseSecond 0 sends every RPC to the first server once it is ready", async () => {
  const s = await setup(policyConfig(0));
  try {
    // Until then the second may serve, if its connection is ready first.
    await untilServes(s.client, s.first);
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

Deno.test("integration: an unregistered policy is refused, not replaced by pick_first", async () => {
  const config = { loadBalancingConfig: [{ custom_round_robn: {} }] };
  const message =
    "invalid service config: no load-balancing policy in loadBalancingConfig is registered: custom_round_robn";
  assert.throws(() => parseServiceConfig(config), { message });
  const s = await setup(config);
  try {
    const lines = await logged(() =>
      assert.rejects(unary(s.client), {
        code: grpc.status.UNAVAILABLE,
        details: message,
      })
    );
    assert.deepEqual(lines, [`${s.resolver.scheme} resolver: ${message}`]);
  } finally {
    await s.close();
  }
});

Deno.test("integration: the client refuses an invalid chooseSecond with the policy's message, and never dials a backend", async () => {
  // A plain listener stands for both backends and counts who dials it.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address = `127.0.0.1:${listener.addr.port}`;
  let dialled = 0;
  const accepting = (async () => {
    for await (const connection of listener) {
      dialled++;
      connection.close();
    }
  })();
  try {
    for (
      const [value, shown] of [["-1", "-1"], ["1.5", "1.5"], ["abc", '"abc"']]
    ) {
      await assert.rejects(
        runClient([
          "--choose-second",
          value,
          "--addrs",
          `${address},${address}`,
        ]),
        {
          name: "Error",
          message:
            `custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got ${shown}`,
        },
      );
    }
    await sleep(200);
    assert.equal(dialled, 0);
  } finally {
    listener.close();
    await accepting;
  }
});

Deno.test("integration: the client proves the ratio against real servers", async () => {
  const servers = [
    await startEchoServer(ANY_PORT),
    await startEchoServer(ANY_PORT),
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
  const third = await startEchoServer(ANY_PORT);
  try {
    await untilSecondServes(s);
    s.resolver.update({
      endpoints: [s.first, third.address],
      serviceConfig: policyConfig(3),
    });
    await untilPattern(s.client, s.first, third.address);
  } finally {
    await s.close();
    await stopEchoServers([third], { drainMs: 0, graceMs: 1000 });
  }
});

Deno.test("integration: a rolling update's answer of three under load keeps the previous two, 0 failed; the next answer of two moves the second", async () => {
  const s = await setup(policyConfig(3));
  const third = await startEchoServer(ANY_PORT);
  try {
    await untilSecondServes(s);
    const load = startLoad(s.client, 4);
    // The new backend joins the answer before the old one leaves it.
    const lines = await logged(async () => {
      s.resolver.update({
        endpoints: [s.first, s.second, third.address],
        serviceConfig: policyConfig(3),
      });
      await untilSent(load, 1000);
    });
    const during = [...load.sent];
    s.resolver.update({
      endpoints: [s.first, third.address],
      serviceConfig: policyConfig(3),
    });
    await untilServes(s.client, third.address);
    const sent = await load.stop();
    console.log(
      `rolling update: ${sent.length} RPCs, ${failures(sent).length} failed; ${
        during.filter((rpc) => rpc.server === third.address).length
      } reached the new backend while the answer held three`,
    );
    assert.deepEqual(failures(sent), []);
    assert.ok(during.length > 100, `${during.length} RPCs`);
    assert.ok(during.every((rpc) => rpc.server !== third.address));
    assert.ok(
      lines.some((line) =>
        /expected exactly 2 endpoints, got 3: .*; still using the previous endpoints/
          .test(line)
      ),
      lines.join("\n"),
    );
    await untilPattern(s.client, s.first, third.address);
  } finally {
    await s.close();
    await stopEchoServers([third], { drainMs: 0, graceMs: 1000 });
  }
});

Deno.test("integration: 3 endpoints at start fail RPCs at once with UNAVAILABLE and the reason", async () => {
  const s = await setup(policyConfig(3));
  const third = await startEchoServer(ANY_PORT);
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
        /^custom_round_robin: no endpoints were resolved: expected exactly 2 endpoints, got 3: /,
      );
      return true;
    });
    assert.ok(Date.now() - started < 4000, "failed before the deadline");
  } finally {
    await s.close();
    await stopEchoServers([third], { drainMs: 0, graceMs: 1000 });
  }
});
