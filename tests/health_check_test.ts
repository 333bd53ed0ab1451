/**
 * Client-side health checking (gRFC A17) against real servers.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import {
  HEALTH_CHECK_SERVICE_NAME,
  HealthCheckingSubchannel,
  healthCheckServiceFromConfig,
  healthCheckServiceFromOptions,
} from "../balancer/health_check.ts";
import { parseServiceConfig } from "../balancer/service_config.ts";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
} from "../cli/client_config.ts";
import {
  ECHO_SERVICE_NAME,
  EchoClient,
  type EchoServer,
  setServing,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { failures, startLoad } from "../testing/steady_load.ts";
import { listen } from "../testing/ports.ts";
import { logged, sleep, until } from "../testing/wait.ts";
import { policyConfig, setup } from "../testing/channels.ts";
import {
  repeated,
  sequence,
  unary,
  untilPattern,
  untilSecondServes,
  untilServes,
} from "../testing/rpcs.ts";
import { FakeSubchannel, tick } from "../testing/fakes.ts";
import { LEAVES_PICK_FIRST_TIMER } from "../testing/sanitizers.ts";

const { READY, CONNECTING, IDLE } = grpc.connectivityState;

const withHealth = (chooseSecond = 3) =>
  clientServiceConfig(chooseSecond, ECHO_SERVICE_NAME);

/** How a counting Health service answers each Watch. */
type Answer = "serving" | "silent" | "fail";

/**
 * Gives `server` a Health service that counts the Watch calls it gets, and
 * keeps the service each asks for, and answers each SERVING, never, or by
 * failing it with UNAVAILABLE.
 */
function countWatches(
  server: EchoServer,
  answer: Answer = "serving",
): { watches: number; services: string[] } {
  const counter = { watches: 0, services: [] as string[] };
  server.server.addService(healthService, {
    Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
      callback(null, { status: "SERVING" }),
    Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
      counter.watches++;
      counter.services.push(call.request.service);
      if (answer === "serving") call.write({ status: "SERVING" });
      if (answer === "fail") {
        call.emit("error", {
          code: grpc.status.UNAVAILABLE,
          details: "health is down",
        });
      }
    },
    List: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
      callback(null, { statuses: {} }),
  });
  return counter;
}

Deno.test("health: NOT_SERVING on the second moves every RPC to the first within 200 ms, none fails; SERVING brings 1:2 back", async () => {
  const s = await setup(withHealth(), { channel: CLIENT_CHANNEL_OPTIONS });
  try {
    await untilSecondServes(s);
    const load = startLoad(s.client, 8);
    await until("load running", () => load.sent.length > 100);
    const notServingAt = performance.now();
    setServing(s.servers[1], false);
    await until(
      "RPCs sent while the second is away",
      () => load.sent.filter((x) => x.at > notServingAt + 200).length > 200,
    );
    const servingAt = performance.now();
    setServing(s.servers[1], true);
    await until(
      "second serving again",
      () => load.sent.some((x) => x.at > servingAt && x.server === s.second),
    );
    const sent = await load.stop();
    assert.deepEqual(failures(sent), []);
    const lastOnSecond = sent.filter((x) =>
      x.server === s.second && x.at < servingAt
    ).at(-1)!;
    const backOnSecond = sent.find((x) =>
      x.server === s.second && x.at > servingAt
    )!;
    console.log(
      `the second's last RPC was sent at ${
        (lastOnSecond.at - notServingAt).toFixed(1)
      } ms from NOT_SERVING, its next ${
        (backOnSecond.at - servingAt).toFixed(1)
      } ms after SERVING; ${sent.length} RPCs, 0 failed`,
    );
    const away = sent.filter((x) =>
      x.at > notServingAt + 200 && x.at < servingAt
    );
    assert.ok(away.length > 50, `only ${away.length} RPCs while away`);
    assert.deepEqual(
      away.filter((x) => x.server !== s.first),
      [],
      "RPCs sent 200 ms after NOT_SERVING went to the second",
    );
    await untilPattern(s.client, s.first, s.second);
  } finally {
    await s.close();
  }
});

Deno.test("health: a server without the Health service counts as healthy, logged once per address", async () => {
  const s = await setup(withHealth(), {
    server: { health: false },
    channel: CLIENT_CHANNEL_OPTIONS,
  });
  const again = new EchoClient(
    `${s.resolver.scheme}:///echo`,
    grpc.credentials.createInsecure(),
    CLIENT_CHANNEL_OPTIONS,
  );
  try {
    const lines = await logged(async () => {
      await untilPattern(s.client, s.first, s.second);
      await untilServes(again, s.second);
    });
    const notice = lines.filter((line) =>
      line.includes("does not implement grpc.health.v1.Health")
    );
    assert.equal(notice.length, 2, lines.join("\n"));
    assert.match(
      notice[0],
      /health_check: 127\.0\.0\.1:\d+ does not implement/,
    );
  } finally {
    again.close();
    await s.close();
  }
});

Deno.test("health: the health stream comes back after a server restart and is followed again", async () => {
  const s = await setup(withHealth(), { channel: CLIENT_CHANNEL_OPTIONS });
  let restarted: EchoServer | null = null;
  try {
    await untilSecondServes(s);
    await stopEchoServers([s.servers[1]], { drainMs: 0, graceMs: 0 });
    restarted = await startEchoServer(s.second);
    await untilPattern(s.client, s.first, s.second);
    setServing(restarted, false);
    await until(
      "the new stream's NOT_SERVING followed",
      async () =>
        (await sequence(6, () => unary(s.client))).every((server) =>
          server === s.first
        ),
    );
    assert.deepEqual(
      await sequence(6, () => unary(s.client)),
      repeated([s.first], 6),
      "the new stream reported NOT_SERVING",
    );
  } finally {
    await s.close();
    if (restarted) {
      await stopEchoServers([restarted], { drainMs: 0, graceMs: 1000 });
    }
  }
});

Deno.test("health: both servers NOT_SERVING fails RPCs with UNAVAILABLE naming both", async () => {
  const s = await setup(withHealth(), { channel: CLIENT_CHANNEL_OPTIONS });
  try {
    await untilSecondServes(s);
    for (const server of s.servers) setServing(server, false);
    await until(
      "both NOT_SERVING followed",
      () => unary(s.client).then(() => false, () => true),
    );
    await assert.rejects(unary(s.client), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.UNAVAILABLE);
      assert.match(error.details, /unhealthy.*; second .*unhealthy/);
      return true;
    });
  } finally {
    await s.close();
  }
});

Deno.test("health: one Watch per server with healthCheckConfig, none without", async () => {
  for (
    const [config, expected] of [[withHealth(), 1], [
      policyConfig(3),
      0,
    ]] as const
  ) {
    const s = await setup(config, { server: { health: false } });
    const counters = s.servers.map((server) => countWatches(server));
    try {
      await untilSecondServes(s);
      await sequence(9, () => unary(s.client));
      assert.deepEqual(counters.map((c) => c.watches), [expected, expected]);
    } finally {
      await s.close();
    }
  }
});

Deno.test("health: the Watch asks for the configured service, and resolver updates keep each server's one stream", async () => {
  const s = await setup(withHealth(), { server: { health: false } });
  const counters = s.servers.map((server) => countWatches(server));
  try {
    await untilSecondServes(s);
    const endpoints = [s.first, s.second];
    // The same endpoints, in order and reversed, with the config kept: the
    // children stay, and so do their connections and health streams.
    for (const order of [endpoints, [...endpoints].reverse(), endpoints]) {
      s.resolver.update({ endpoints: order });
      await sequence(9, () => unary(s.client));
    }
    assert.deepEqual(counters.map((c) => c.watches), [1, 1]);
    assert.deepEqual(counters.map((c) => c.services), [
      [ECHO_SERVICE_NAME],
      [ECHO_SERVICE_NAME],
    ]);
  } finally {
    await s.close();
  }
});

/**
 * Two servers whose Health services answer SERVING and `second`: once the
 * second's Watch has come in, checks that 30 RPCs all go to the first, then
 * runs `more` with the second's Watch counter.
 */
async function secondShunned(
  second: Answer,
  more: (counter: { watches: number }) => Promise<void> = async () => {},
) {
  const s = await setup(withHealth(), { server: { health: false } });
  countWatches(s.servers[0]);
  const counter = countWatches(s.servers[1], second);
  try {
    assert.equal(await unary(s.client), s.first);
    await until("second watched", () => counter.watches === 1);
    assert.deepEqual(
      await sequence(30, () => unary(s.client)),
      repeated([s.first], 30),
    );
    await more(counter);
  } finally {
    await s.close();
  }
}

Deno.test(
  "health: a connected server that has not answered its Watch gets no RPC",
  LEAVES_PICK_FIRST_TIMER, // the second's child connects and never turns READY
  async () => {
    await secondShunned("silent");
  },
);

Deno.test("health: a failing health stream is retried with backoff, and its server gets no RPC", async () => {
  await secondShunned("fail", async (failing) => {
    // Backoff from 1 s, times 1.6, with 20% jitter: retries at 0.8-1.2 s
    // and 2.1-3.1 s after the first failure.
    await sleep(2000);
    assert.ok(
      failing.watches === 2 || failing.watches === 3,
      `${failing.watches} Watch calls in 2 s`,
    );
  });
});

Deno.test("health: the service a balancer sees: the resolver's attribute first, else the channel's default config, else none", () => {
  const config = (serviceName: unknown) =>
    JSON.stringify({ healthCheckConfig: { serviceName } });
  const cases: [grpc.ChannelOptions, string | null][] = [
    [{}, null],
    [{ [HEALTH_CHECK_SERVICE_NAME]: "a" }, "a"],
    // A resolver's config without health checking wins over the default.
    [
      { [HEALTH_CHECK_SERVICE_NAME]: null, "grpc.service_config": config("b") },
      null,
    ],
    [{ [HEALTH_CHECK_SERVICE_NAME]: 7 }, null],
    [{ "grpc.service_config": config("b") }, "b"],
    [{ "grpc.service_config": config(7) }, null],
    [{ "grpc.service_config": "{not json" }, null],
  ];
  for (const [options, expected] of cases) {
    assert.equal(
      healthCheckServiceFromOptions(options),
      expected,
      JSON.stringify(options),
    );
  }
  for (const bad of [null, [], "x"]) {
    assert.throws(
      () => healthCheckServiceFromConfig({ healthCheckConfig: bad }),
      {
        message: `healthCheckConfig must be an object, got ${
          JSON.stringify(bad)
        }`,
      },
    );
  }
  assert.equal(healthCheckServiceFromConfig(null), null);
});

Deno.test("health: healthCheckConfig is checked with the service config", () => {
  assert.equal(
    healthCheckServiceFromConfig({ healthCheckConfig: { serviceName: "" } }),
    "",
  );
  assert.equal(healthCheckServiceFromConfig({ healthCheckConfig: {} }), null);
  assert.equal(healthCheckServiceFromConfig({}), null);
  assert.throws(
    () => parseServiceConfig({ ...policyConfig(3), healthCheckConfig: 3 }),
    {
      message:
        "invalid service config: healthCheckConfig must be an object, got 3",
    },
  );
  assert.throws(
    () =>
      parseServiceConfig({
        ...policyConfig(3),
        healthCheckConfig: { serviceName: 7 },
      }),
    {
      message:
        "invalid service config: healthCheckConfig.serviceName must be a string, got 7",
    },
  );
});

/**
 * A Health service whose Watch calls the test answers by hand, on a real
 * server, and a health-checking wrapper over a fake subchannel whose stream
 * runs on a real channel to it.
 */
async function wrapperOverFake(
  channelOf: (channel: grpc.Channel) => grpc.ChannelInterface = (c) => c,
) {
  const server = new grpc.Server();
  const watches: grpc.ServerWritableStream<unknown, unknown>[] = [];
  const cancelled: number[] = [];
  server.addService(healthService, {
    Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
      callback(null, { status: "SERVING" }),
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      const index = watches.push(call) - 1;
      call.on("cancelled", () => cancelled.push(index));
    },
    List: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
      callback(null, { statuses: {} }),
  });
  const address = await listen(server);
  const channel = new grpc.Channel(
    address,
    grpc.credentials.createInsecure(),
    {},
  );
  const fake = new FakeSubchannel(address, channelOf(channel));
  const wrapper = new HealthCheckingSubchannel(fake, ECHO_SERVICE_NAME);
  return {
    fake,
    wrapper,
    watches,
    cancelled,
    answer: (index: number, status: string) => watches[index].write({ status }),
    /** Fails Watch call `index` with UNAVAILABLE. */
    fail: (index: number) =>
      watches[index].emit("error", {
        code: grpc.status.UNAVAILABLE,
        details: "health is down",
      }),
    /** Makes the connection READY and the wrapper referenced; waits for a Watch. */
    async watching() {
      fake.setState(READY);
      wrapper.ref();
      await until("a Watch call", () => watches.length === 1);
    },
    async close() {
      for (const call of watches) call.end();
      channel.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}

Deno.test("health wrapper: a READY connection shows CONNECTING until the first answer, then follows each status", async () => {
  const t = await wrapperOverFake();
  try {
    t.fake.setState(READY);
    t.wrapper.ref();
    assert.equal(t.wrapper.getConnectivityState(), CONNECTING);
    await until("a Watch call", () => t.watches.length === 1);
    await tick();
    assert.equal(t.wrapper.getConnectivityState(), CONNECTING, "no answer yet");
    const expected: [string, boolean][] = [
      ["SERVING", true],
      ["NOT_SERVING", false],
      ["SERVING", true],
      ["SERVICE_UNKNOWN", false],
    ];
    for (const [status, healthy] of expected) {
      t.answer(0, status);
      await until(status, () =>
        t.wrapper.getConnectivityState() === READY &&
        t.wrapper.isHealthy() === healthy);
    }
  } finally {
    t.wrapper.unref();
    await t.close();
  }
});

Deno.test("health wrapper: its service; each state told once, to the listeners still added; none after the last reference goes", async () => {
  const t = await wrapperOverFake();
  try {
    assert.equal(t.wrapper.serviceName, ECHO_SERVICE_NAME);
    const heard: [grpc.connectivityState, number][] = [];
    const removed: grpc.connectivityState[] = [];
    t.wrapper.addConnectivityStateListener((_s, _p, state, keepalive) =>
      heard.push([state, keepalive])
    );
    const other: grpc.experimental.ConnectivityStateListener = (
      _s,
      _p,
      state,
    ) => removed.push(state);
    t.wrapper.addConnectivityStateListener(other);
    t.wrapper.removeConnectivityStateListener(other);
    await t.watching();
    for (const status of ["SERVING", "SERVING", "NOT_SERVING"]) {
      t.answer(0, status);
    }
    await until("unhealthy", () => !t.wrapper.isHealthy());
    // -1: no keepalive change, as grpc-js's own wrappers say.
    assert.deepEqual(heard, [[CONNECTING, -1], [READY, -1]]);
    assert.deepEqual(removed, []);
    t.wrapper.unref();
    t.fake.setState(IDLE);
    t.fake.setState(READY);
    await tick();
    assert.equal(
      heard.length,
      2,
      "released: the connection's changes are not its",
    );
    assert.equal(t.watches.length, 1, "released: no new Watch");
  } finally {
    await t.close();
  }
});

Deno.test("health wrapper: a stream the server ends is a broken one: unhealthy, and reopened at once", async () => {
  const t = await wrapperOverFake();
  try {
    await t.watching();
    t.answer(0, "SERVING");
    await until("healthy", () => t.wrapper.isHealthy());
    t.watches[0].end();
    await until("unhealthy", () => !t.wrapper.isHealthy());
    await until("a second Watch", () => t.watches.length === 2, 500);
  } finally {
    t.wrapper.unref();
    await t.close();
  }
});

Deno.test("health wrapper: a broken stream that had answered is unhealthy and reopened at once", async () => {
  const t = await wrapperOverFake();
  try {
    await t.watching();
    t.answer(0, "SERVING");
    await until("healthy", () => t.wrapper.isHealthy());
    const brokenAt = performance.now();
    t.fail(0);
    await until("unhealthy", () => !t.wrapper.isHealthy());
    await until("a second Watch", () => t.watches.length === 2);
    const ms = performance.now() - brokenAt;
    // At once: well under the 1 s a backoff would wait.
    assert.ok(ms < 500, `reopened after ${ms} ms`);
  } finally {
    t.wrapper.unref();
    await t.close();
  }
});

Deno.test("health wrapper: a stream that fails before any answer is reopened after a backoff", async () => {
  const t = await wrapperOverFake();
  try {
    await t.watching();
    const failedAt = performance.now();
    t.fail(0);
    await until("a second Watch", () => t.watches.length === 2, 3000);
    const ms = performance.now() - failedAt;
    // grpc-js's BackoffTimeout: 1 s, with 20% jitter either way.
    assert.ok(ms >= 750, `reopened after ${ms} ms`);
    assert.equal(t.wrapper.getConnectivityState(), READY);
    assert.equal(t.wrapper.isHealthy(), false);
  } finally {
    t.wrapper.unref();
    await t.close();
  }
});

/**
 * `channel`, whose first call fails to start as a grpc-js subchannel's
 * channel fails one on a connection that went down before grpc-js saw it go:
 * its async `start` rejects with the error `session.request` threw.
 */
function firstStartRejects(channel: grpc.Channel): grpc.ChannelInterface {
  let calls = 0;
  return Object.assign(Object.create(channel), {
    createCall(...args: Parameters<grpc.Channel["createCall"]>) {
      const call = channel.createCall(...args);
      if (calls++ === 0) {
        call.start = (async () => {
          await Promise.resolve();
          throw new Error("The session has been destroyed");
        }) as typeof call.start;
      }
      return call;
    },
  });
}

Deno.test("health wrapper: a Watch that fails to start, on a connection gone before grpc-js saw it, fails as UNAVAILABLE and is retried, with nothing left unhandled", async () => {
  const t = await wrapperOverFake(firstStartRejects);
  try {
    t.fake.setState(READY);
    t.wrapper.ref();
    // The first Watch never reaches the server; the retry after the
    // backoff (1 s, 20% jitter) does.
    await until("the retried Watch", () => t.watches.length === 1, 3000);
    assert.equal(t.wrapper.isHealthy(), false);
    t.answer(0, "SERVING");
    await until("healthy", () => t.wrapper.isHealthy());
  } finally {
    t.wrapper.unref();
    await t.close();
  }
});

Deno.test("health wrapper: the stream closes when the connection goes, and when the last reference is released", async () => {
  const t = await wrapperOverFake();
  try {
    await t.watching();
    t.answer(0, "SERVING");
    await until("READY", () => t.wrapper.getConnectivityState() === READY);
    t.fake.setState(IDLE);
    assert.equal(t.wrapper.getConnectivityState(), IDLE);
    await until("the first stream cancelled", () => t.cancelled.includes(0));
    t.fake.setState(READY);
    assert.equal(t.wrapper.getConnectivityState(), CONNECTING);
    await until("a second Watch", () => t.watches.length === 2);
    t.wrapper.unref();
    assert.equal(t.wrapper.released, true);
    await until("the second stream cancelled", () => t.cancelled.includes(1));
  } finally {
    await t.close();
  }
});

Deno.test("health check service: the attribute's key is one grpc-js leaves out of its subchannel pool's key", () => {
  assert.ok(
    HEALTH_CHECK_SERVICE_NAME.startsWith(
      `${grpc.experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.`,
    ),
    HEALTH_CHECK_SERVICE_NAME,
  );
});
