/**
 * grpc-js's `outlier_detection` above the policy, against real servers: a
 * backend that fails every RPC is ejected, and comes back once healthy,
 * with health checking on and off. The figures are printed:
 * `deno task test --filter outlier`.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  checkServiceConfig,
  registerCustomRoundRobin,
} from "../balancer/mod.ts";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
  OUTLIER_DETECTION,
  underOutlierDetection,
} from "../cli/client_config.ts";
import {
  ECHO_SERVICE_NAME,
  type EchoServer,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { connect } from "../testing/channels.ts";
import {
  type Sent,
  startLoad,
  untilFailuresEnd,
} from "../testing/steady_load.ts";
import { until } from "../testing/wait.ts";
import { untilPattern } from "../testing/rpcs.ts";
import {
  endpoint,
  FakeHelper,
  PICK_ARGS,
  pickMany,
  tick,
} from "../testing/fakes.ts";
import { ANY_PORT } from "../testing/ports.ts";

const INTERVAL_MS = 1_000;
const BASE_EJECTION_MS = 2_000;
const REQUEST_VOLUME = OUTLIER_DETECTION.failure_percentage_ejection
  .request_volume;
/** The longest reconnect backoff of the client's channel options. */
const MAX_BACKOFF_MS = CLIENT_CHANNEL_OPTIONS[
  "grpc.max_reconnect_backoff_ms"
] as number;
/** Room for a noisy machine's late timers and slow RPCs. */
const SLACK_MS = 750;

/**
 * The client's service config without its retry policy, so that every
 * failure shows, under outlier detection with a short ejection.
 */
function config(health: boolean) {
  const { methodConfig: _retry, ...policy } = clientServiceConfig(
    3,
    health ? ECHO_SERVICE_NAME : null,
  );
  return underOutlierDetection(policy, {
    ...OUTLIER_DETECTION,
    interval: { seconds: INTERVAL_MS / 1000, nanos: 0 },
    base_ejection_time: { seconds: BASE_EJECTION_MS / 1000, nanos: 0 },
  });
}

/** The time an RPC ended. */
const end = (rpc: Sent) => rpc.at + rpc.ms;

for (const health of [true, false]) {
  const name = health ? "with" : "without";
  Deno.test(`outlier detection ${name} health checking: a failing backend is ejected, then 0 RPCs fail; healthy again, it takes its 1 in 3 after base_ejection_time`, async () => {
    const first = await startEchoServer(ANY_PORT);
    let second: EchoServer = await startEchoServer(ANY_PORT, {
      failures: { percent: 100, code: grpc.status.INTERNAL },
    });
    const { client } = connect(
      [first.address, second.address],
      config(health),
      CLIENT_CHANNEL_OPTIONS,
    );
    const load = startLoad(client, 4);
    try {
      // Ejected: 300 RPCs in a row after the last failure, all to the first.
      await untilFailuresEnd(load, 300, 10_000);
      const failed = load.sent.filter((rpc) => rpc.error !== null);
      assert.ok(failed.length >= REQUEST_VOLUME, `${failed.length} failed`);
      assert.match(failed[0].error!, /^INTERNAL: .* \(--fail-percent 100\)$/);
      const firstFailure = failed[0].at;
      const ejectedBy = end(failed.at(-1)!);
      const volumeTook = end(failed[REQUEST_VOLUME - 1]) - firstFailure;
      const ejectionMs = ejectedBy - firstFailure;
      console.log(
        `${name} health checking: ${failed.length} of ${
          load.sent.findLastIndex((rpc) => rpc.error !== null) + 1
        } RPCs failed before the ejection, ${
          ejectionMs.toFixed(0)
        } ms after the first failure (${REQUEST_VOLUME} failures took ${
          volumeTook.toFixed(0)
        } ms)`,
      );
      // The next interval's evaluation ejects it, once its RPCs are counted.
      assert.ok(
        ejectionMs <= INTERVAL_MS + volumeTook + SLACK_MS,
        `ejected ${ejectionMs} ms after the first failure`,
      );

      // Restarted healthy: back once base_ejection_time has passed, at the
      // next evaluation, over a connection made within one backoff.
      const address = second.address;
      const servedAgain = (rpc: Sent) =>
        rpc.server === address && rpc.at > ejectedBy;
      await stopEchoServers([second], { drainMs: 0, graceMs: 0 });
      second = await startEchoServer(address);
      await until(
        "the second back",
        () => load.sent.some(servedAgain),
        BASE_EJECTION_MS + INTERVAL_MS + MAX_BACKOFF_MS + SLACK_MS + 5_000,
      );
      const back = load.sent.find(servedAgain)!;
      const backMs = end(back) - ejectedBy;
      console.log(
        `${name} health checking: back ${
          backMs.toFixed(0)
        } ms after the ejection (base_ejection_time ${BASE_EJECTION_MS} ms)`,
      );
      assert.ok(backMs >= BASE_EJECTION_MS - SLACK_MS, `back after ${backMs}`);
      assert.ok(
        backMs <= BASE_EJECTION_MS + INTERVAL_MS + MAX_BACKOFF_MS + SLACK_MS,
        `back after ${backMs} ms`,
      );
      const sent = await load.stop();
      assert.deepEqual(
        sent.filter((rpc) => rpc.at > ejectedBy && rpc.error !== null),
        [],
        "no RPC failed after the ejection",
      );
      await untilPattern(client, first.address, address);
    } finally {
      await load.stop();
      client.close();
      await stopEchoServers([first, second], { drainMs: 0, graceMs: 1000 });
    }
  });
}

/**
 * The client's outlier detection over the policy on two fake endpoints, both
 * READY, the second of which has failed `failures` of its 20 RPCs, all
 * counted at once, well inside the first interval.
 */
async function judgedOnce(failures: number) {
  const helper = new FakeHelper();
  const handler = new grpc.experimental.ChildLoadBalancerHandler(helper);
  const [config] = underOutlierDetection({
    loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 3 } }],
  }).loadBalancingConfig as Record<string, object>[];
  handler.updateAddressList(
    grpc.experimental.statusOrFromValue([endpoint(1), endpoint(2)]),
    grpc.experimental.parseLoadBalancingConfig(config),
    {},
    "",
  );
  await tick();
  for (const port of [1, 2]) {
    helper.subchannel(port).setState(grpc.connectivityState.CONNECTING);
    helper.subchannel(port).setState(grpc.connectivityState.READY);
  }
  await tick();
  let failed = 0;
  for (let i = 0; i < 60; i++) {
    const pick = helper.latest.picker.pick(PICK_ARGS);
    const second = pick.subchannel?.getAddress() === "127.0.0.1:2";
    const fails = second && failed++ < failures;
    pick.onCallEnded?.(
      fails ? grpc.status.UNAVAILABLE : grpc.status.OK,
      "",
      new grpc.Metadata(),
    );
  }
  return { helper, handler };
}

Deno.test("outlier detection: a backend that failed exactly half its RPCs is not ejected; one more failure ejects it (grpc-js ejects above the threshold)", async () => {
  registerCustomRoundRobin();
  assert.equal(OUTLIER_DETECTION.failure_percentage_ejection.threshold, 50);
  // Made first, so its interval's judgement comes first.
  const half = await judgedOnce(10);
  const moreThanHalf = await judgedOnce(11);
  try {
    await until(
      "the one failing more than half ejected",
      () =>
        pickMany(moreThanHalf.helper.latest.picker, 3).every((address) =>
          address === "127.0.0.1:1"
        ),
      INTERVAL_MS + SLACK_MS + 5_000,
    );
    assert.deepEqual(pickMany(half.helper.latest.picker, 6), [
      "127.0.0.1:1",
      "127.0.0.1:1",
      "127.0.0.1:2",
      "127.0.0.1:1",
      "127.0.0.1:1",
      "127.0.0.1:2",
    ]);
  } finally {
    half.handler.destroy();
    moreThanHalf.handler.destroy();
  }
});

Deno.test("composing: docs/composing.md's config is the client's with --outlier-detection, and checkServiceConfig accepts it", async () => {
  const doc = await Deno.readTextFile(
    new URL("../docs/composing.md", import.meta.url),
  );
  const json = doc.match(
    /<!-- composing: the client's config -->\s*```json\n([\s\S]*?)```/,
  )?.[1];
  assert.ok(json, "the config in docs/composing.md");
  const config = JSON.parse(json);
  assert.deepEqual(
    config,
    underOutlierDetection(clientServiceConfig(3, ECHO_SERVICE_NAME)),
  );
  registerCustomRoundRobin();
  checkServiceConfig(config);
});
