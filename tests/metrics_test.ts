/**
 * The metrics (`balancer/metrics.ts` and its internal
 * `_subchannel_meter.ts`), read from an in-memory reader of a real
 * OpenTelemetry SDK: the policy on a fake helper and fake subchannels, the
 * health watch on a fake wrapper, the interceptors on real calls.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import type { ObservableCounter } from "@opentelemetry/api";
import { HealthCheckingSubchannel } from "../balancer/health_check.ts";
import {
  callMetricsInterceptor,
  METRICS_TARGET,
  serverCallMetricsInterceptor,
} from "../balancer/mod.ts";
import { instruments, targetOf } from "../balancer/metrics.ts";
import { SubchannelMeter } from "../balancer/_subchannel_meter.ts";
import {
  customRoundRobin,
  registerCustomRoundRobin,
} from "../balancer/custom_round_robin.ts";
import { EchoClient, startEchoServer, stopEchoServers } from "../echo/mod.ts";
import {
  endpoint,
  FakeHelper,
  FakeSubchannel,
  pickMany,
  tick,
} from "../testing/fakes.ts";
import { ANY_PORT } from "../testing/ports.ts";
import { LEAVES_PICK_FIRST_TIMER } from "../testing/sanitizers.ts";
import { valueOf, withSdk } from "../testing/sdk.ts";

const { IDLE, CONNECTING, READY, TRANSIENT_FAILURE } = grpc.connectivityState;

registerCustomRoundRobin();

/** A custom_round_robin policy over ports 1 and 2, both READY. */
async function readyPolicy(options: grpc.ChannelOptions) {
  const helper = new FakeHelper();
  const policy = new customRoundRobin.LoadBalancer(helper);
  policy.updateAddressList(
    grpc.experimental.statusOrFromValue([endpoint(1), endpoint(2)]),
    grpc.experimental.parseLoadBalancingConfig({
      custom_round_robin: { chooseSecond: 3 },
    }),
    options,
    "",
  );
  await tick();
  for (const port of [1, 2]) {
    helper.subchannel(port).setState(CONNECTING);
    helper.subchannel(port).setState(READY);
  }
  await tick();
  return { helper, policy };
}

Deno.test("metrics: no instruments without an SDK; made once per provider; a channel without METRICS_TARGET is unknown", async () => {
  assert.equal(instruments(), null);
  await withSdk(() => {
    const made = instruments();
    assert.notEqual(made, null);
    assert.equal(instruments(), made);
    return Promise.resolve();
  });
  assert.equal(instruments(), null);
  assert.equal(targetOf({}), "unknown");
  assert.equal(targetOf({ [METRICS_TARGET]: 7 }), "unknown");
  assert.equal(targetOf({ [METRICS_TARGET]: "dns:///x" }), "dns:///x");
});

/**
 * The callbacks `instrument` has now: the SDK keeps reporting an
 * observable's last values, so a callback left behind shows only here.
 */
function watchCallbacks(instrument: ObservableCounter): Set<unknown> {
  const live = new Set<unknown>();
  const add = instrument.addCallback.bind(instrument);
  const remove = instrument.removeCallback.bind(instrument);
  instrument.addCallback = (callback) => {
    live.add(callback);
    add(callback);
  };
  instrument.removeCallback = (callback) => {
    live.delete(callback);
    remove(callback);
  };
  return live;
}

Deno.test(
  "metrics: the policy's picks per endpoint, endpoints per state, and each connection's attempts and end",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    await withSdk(async (collect) => {
      const callbacks = watchCallbacks(instruments()!.picks);
      const labels = { "grpc.target": "t:///x" };
      const { helper, policy } = await readyPolicy({
        [METRICS_TARGET]: "t:///x",
      });
      assert.equal(callbacks.size, 1);
      pickMany(helper.latest.picker, 30);
      let collected = await collect();
      const picks = (port: number) =>
        valueOf(collected, "customlb.picks", {
          ...labels,
          "customlb.policy": "custom_round_robin",
          "customlb.endpoint": `127.0.0.1:${port}`,
        });
      assert.deepEqual([picks(1), picks(2)], [20, 10]);
      // A state no child was ever in has no point.
      const endpoints = (state: string) =>
        valueOf(collected, "customlb.endpoints", {
          ...labels,
          "customlb.policy": "custom_round_robin",
          "customlb.state": state,
        }) ?? 0;
      assert.deepEqual(
        ["IDLE", "CONNECTING", "READY"].map(endpoints),
        [0, 0, 2],
      );
      const value = (name: string, more: Record<string, string> = {}) =>
        valueOf(collected, `grpc.subchannel.${name}`, { ...labels, ...more });
      assert.equal(value("connection_attempts_succeeded"), 2);
      assert.equal(value("open_connections"), 2);
      assert.equal(value("disconnections"), undefined);

      helper.subchannel(2).setState(IDLE);
      helper.subchannel(2).setState(CONNECTING);
      helper.subchannel(2).setState(TRANSIENT_FAILURE);
      await tick();
      collected = await collect();
      assert.equal(value("open_connections"), 1);
      assert.equal(
        value("disconnections", { "grpc.disconnect_error": "unknown" }),
        1,
      );
      assert.equal(value("connection_attempts_failed"), 1);
      assert.equal(value("connection_attempts_succeeded"), 2);
      assert.deepEqual(
        ["READY", "TRANSIENT_FAILURE"].map(endpoints),
        [1, 1],
      );

      policy.destroy();
      collected = await collect();
      assert.equal(value("open_connections"), 0);
      assert.equal(
        value("disconnections", {
          "grpc.disconnect_error": "subchannel shutdown",
        }),
        1,
      );
      assert.deepEqual(
        ["READY", "TRANSIENT_FAILURE"].map(endpoints),
        [0, 0],
      );
      assert.equal(callbacks.size, 0, "its picks callback removed");
    });
  },
);

Deno.test(
  "metrics: a resolver update keeps each connection's one watch",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    await withSdk(async (collect) => {
      const { helper, policy } = await readyPolicy({});
      policy.updateAddressList(
        grpc.experimental.statusOrFromValue([endpoint(1), endpoint(2)]),
        grpc.experimental.parseLoadBalancingConfig({ custom_round_robin: {} }),
        {},
        "",
      );
      await tick();
      helper.subchannel(1).setState(IDLE);
      const collected = await collect();
      const labels = { "grpc.target": "unknown" };
      assert.equal(
        valueOf(collected, "grpc.subchannel.disconnections", labels),
        1,
      );
      assert.equal(
        valueOf(collected, "grpc.subchannel.open_connections", labels),
        1,
      );
      policy.destroy();
    });
  },
);

/** A health-checking wrapper whose health the test sets. */
class HealthFake extends HealthCheckingSubchannel {
  watchers = 0;

  constructor(made: FakeSubchannel) {
    super(made, "");
  }
  set(healthy: boolean): void {
    this.setHealthy(healthy);
  }
  override addHealthStateWatcher(watcher: (healthy: boolean) => void): void {
    this.watchers++;
    super.addHealthStateWatcher(watcher);
  }
  override removeHealthStateWatcher(
    watcher: (healthy: boolean) => void,
  ): void {
    this.watchers--;
    super.removeHealthStateWatcher(watcher);
  }
}

Deno.test("metrics: each health change of an address, and the addresses kept out of the picks", async () => {
  await withSdk(async (collect) => {
    const meter = new SubchannelMeter(instruments()!, {
      "grpc.target": "t:///x",
    });
    const made = new FakeSubchannel("127.0.0.1:1");
    const seen = new HealthFake(made);
    meter.watch(seen);
    meter.watch(seen); // pick_first asking again
    assert.equal(seen.watchers, 1);
    const labels = {
      "grpc.target": "t:///x",
      "customlb.address": "127.0.0.1:1",
    };
    const changes = async (healthy: string) =>
      valueOf(await collect(), "customlb.health.changes", {
        ...labels,
        "customlb.healthy": healthy,
      });
    const unhealthy = async () =>
      valueOf(await collect(), "customlb.health.unhealthy", labels);
    seen.set(false);
    seen.set(false);
    assert.equal(await changes("false"), 1);
    assert.equal(await unhealthy(), 1);
    seen.set(true);
    assert.equal(await changes("true"), 1);
    assert.equal(await unhealthy(), 0);

    // A new wrapper of the same connection: the old one's watch ends.
    const next = new HealthFake(made);
    next.set(false);
    meter.watch(next);
    assert.equal(seen.watchers, 0);
    assert.equal(await unhealthy(), 1);
    meter.close();
    assert.equal(next.watchers, 0);
    assert.equal(await unhealthy(), 0);
  });
});

/** An echo server and a client, each with its call-metrics interceptor. */
async function intercepted() {
  const server = await startEchoServer(ANY_PORT, {
    interceptors: [serverCallMetricsInterceptor()],
  });
  const target = `ipv4:${server.address}`;
  const client = new EchoClient(target, grpc.credentials.createInsecure(), {
    interceptors: [callMetricsInterceptor(target)],
  });
  return {
    client,
    target,
    async close() {
      client.close();
      await stopEchoServers([server], { drainMs: 0 });
    },
  };
}

Deno.test("metrics: the interceptors time each call, labelled with method, status and target", async () => {
  await withSdk(async (collect) => {
    const { client, target, close } = await intercepted();
    try {
      const startedAt = performance.now();
      await new Promise((resolve, reject) =>
        client.UnaryEcho(
          { message: "x" },
          {},
          (error: Error | null) => error ? reject(error) : resolve(null),
        )
      );
      await new Promise((resolve) =>
        client.UnaryEcho(
          { message: "x" },
          { deadline: Date.now() - 1 },
          resolve,
        )
      );
      const collected = await collect();
      const method = "grpc.examples.echo.Echo/UnaryEcho";
      const client_ = (status: string) =>
        valueOf(collected, "grpc.client.call.duration", {
          "grpc.method": method,
          "grpc.target": target,
          "grpc.status": status,
        }) as { count: number; sum: number } | undefined;
      // Both calls took no longer than the test waited for them.
      const waited = (performance.now() - startedAt) / 1000;
      assert.equal(client_("OK")?.count, 1);
      assert.ok(client_("OK")!.sum > 0 && client_("OK")!.sum <= waited);
      assert.equal(client_("DEADLINE_EXCEEDED")?.count, 1);
      const served = valueOf(collected, "grpc.server.call.duration", {
        "grpc.method": method,
        "grpc.status": "OK",
      }) as { count: number } | undefined;
      assert.equal(served?.count, 1);
      const servedSum = (served as { sum?: number } | undefined)?.sum ?? -1;
      assert.ok(servedSum > 0 && servedSum <= waited, `server: ${servedSum} s`);
    } finally {
      await close();
    }
  });
});

Deno.test("metrics: without an SDK the interceptors pass every call on untouched", async () => {
  assert.equal(instruments(), null);
  const { client, close } = await intercepted();
  try {
    const reply = await new Promise<{ message: string }>((resolve, reject) =>
      client.UnaryEcho(
        { message: "untouched" },
        {},
        (error: Error | null, reply?: { message: string }) =>
          error ? reject(error) : resolve(reply!),
      )
    );
    assert.match(reply.message, /^untouched/);
  } finally {
    await close();
  }
});

Deno.test("metrics: each instrument's name, unit and description, and A66's latency buckets", async () => {
  await withSdk(async (_collect, reader) => {
    const made = instruments()!;
    made.picks.addCallback((result) => result.observe(1));
    made.endpoints.add(1);
    made.attemptsSucceeded.add(1);
    made.attemptsFailed.add(1);
    made.disconnections.add(1);
    made.openConnections.add(1);
    made.healthChanges.add(1);
    made.unhealthy.add(1);
    made.callDuration.record(0.0002);
    made.serverCallDuration.record(0.0002);
    const { resourceMetrics } = await reader.collect();
    const described = resourceMetrics.scopeMetrics.flatMap((scope) =>
      scope.metrics.map(({ descriptor }) =>
        `${descriptor.name} [${descriptor.unit}] ${descriptor.description}`
      )
    );
    assert.deepEqual(described.sort(), [
      "customlb.endpoints [{endpoint}] Endpoints of a policy on the block, per state",
      "customlb.health.changes [{change}] Health changes of an endpoint's address (gRFC A17)",
      "customlb.health.unhealthy [{address}] Addresses that health checking keeps out of picks",
      "customlb.picks [{pick}] Picks the policy delegated to each endpoint's child",
      "grpc.client.call.duration [s] A call's time on the client, to its status (gRFC A66)",
      "grpc.server.call.duration [s] A call's time on the server, to its status (gRFC A66)",
      "grpc.subchannel.connection_attempts_failed [{attempt}] Connection attempts that failed (gRFC A94)",
      "grpc.subchannel.connection_attempts_succeeded [{attempt}] Connection attempts that succeeded (gRFC A94)",
      "grpc.subchannel.disconnections [{disconnection}] READY connections that closed (gRFC A94)",
      "grpc.subchannel.open_connections [{connection}] Connections that are READY (gRFC A94)",
    ]);
    const histogram = resourceMetrics.scopeMetrics[0].metrics.find((metric) =>
      metric.descriptor.name === "grpc.client.call.duration"
    )!;
    const value = histogram.dataPoints[0].value as {
      buckets: { boundaries: number[]; counts: number[] };
    };
    // gRFC A66's boundaries, in seconds.
    assert.deepEqual(value.buckets.boundaries, [
      0,
      0.00001,
      0.00005,
      0.0001,
      0.0003,
      0.0006,
      0.0008,
      0.001,
      0.002,
      0.003,
      0.004,
      0.005,
      0.006,
      0.008,
      0.01,
      0.013,
      0.016,
      0.02,
      0.025,
      0.03,
      0.04,
      0.05,
      0.065,
      0.08,
      0.1,
      0.13,
      0.16,
      0.2,
      0.25,
      0.3,
      0.4,
      0.5,
      0.65,
      0.8,
      1,
      2,
      5,
      10,
      20,
      50,
      100,
    ]);
    assert.equal(value.buckets.counts[4], 1, "0.0002 s in (0.0001, 0.0003]");
    assert.deepEqual(
      resourceMetrics.scopeMetrics.map(({ scope }) => scope.name),
      ["@customlb/custom-round-robin"],
    );
    assert.equal(METRICS_TARGET, "customlb.metrics_target");
  });
});

Deno.test("metrics: a connection held by two is counted once; each lets go once; after the last, its changes count no more", async () => {
  await withSdk(async (collect) => {
    const made = instruments()!;
    const target = { "grpc.target": "t:///x" };
    const one = new SubchannelMeter(made, target);
    const two = new SubchannelMeter(made, target);
    const real = new FakeSubchannel("127.0.0.1:1");
    const value = async (name: string) =>
      valueOf(await collect(), `grpc.subchannel.${name}`, target) ?? 0;
    one.watch(real);
    two.watch(real);
    real.setState(IDLE);
    real.setState(CONNECTING);
    assert.equal(await value("connection_attempts_succeeded"), 0);
    real.setState(TRANSIENT_FAILURE);
    assert.equal(await value("connection_attempts_failed"), 1, "once");
    real.setState(IDLE);
    real.setState(CONNECTING);
    real.setState(READY);
    assert.equal(await value("connection_attempts_succeeded"), 1);
    assert.equal(await value("open_connections"), 1);
    one.close();
    one.close();
    assert.equal(await value("open_connections"), 1, "still held by two");
    // A new subchannel for the address: the old one is let go.
    const next = new FakeSubchannel("127.0.0.1:1");
    two.watch(next);
    assert.equal(await value("open_connections"), 0);
    assert.equal(await value("disconnections"), 1);
    real.setState(IDLE);
    real.setState(CONNECTING);
    real.setState(READY);
    assert.equal(await value("connection_attempts_succeeded"), 1, "unheard");
    // Held again after its last holder let go: a fresh watch.
    one.watch(real);
    assert.equal(await value("open_connections"), 1);
    one.close();
    two.close();
    assert.equal(await value("open_connections"), 0);
  });
});
