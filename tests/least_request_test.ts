/**
 * `least_request_experimental` (gRFC A48) on fake subchannels: its config's
 * bounds, the choice among `choiceCount` sampled READY endpoints, the
 * outstanding counts under every way a call ends, an endpoint that leaves
 * and comes back, and the policy's states; then on real servers, a slow
 * backend's share beside round_robin's.
 */
import assert from "node:assert/strict";
import {
  connectivityState as ConnectivityState,
  experimental,
  Metadata,
  status,
} from "@grpc/grpc-js";
import {
  LEAST_REQUEST,
  leastRequest,
  LeastRequestPicker,
  MAX_CHOICE_COUNT,
  type Outstanding,
  registerLeastRequest,
} from "../balancer/least_request.ts";
import { checkServiceConfig } from "../balancer/service_config.ts";
import { endpoint, FakeHelper, pickOne, tick } from "../testing/fakes.ts";
import { startEchoServer, stopEchoServers } from "../echo/mod.ts";
import { connect } from "../testing/channels.ts";
import {
  CLIENT_CHANNEL_OPTIONS,
  OUTLIER_DETECTION,
  underOutlierDetection,
} from "../cli/client_config.ts";
import { ANY_PORT } from "../testing/ports.ts";
import {
  type Sent,
  startLoad,
  untilFailuresEnd,
} from "../testing/steady_load.ts";
import { until } from "../testing/wait.ts";
import { LEAVES_PICK_FIRST_TIMER } from "../testing/sanitizers.ts";

const { READY, CONNECTING, TRANSIENT_FAILURE } = ConnectivityState;
const [A, B, C] = [3001, 3002, 3003];

registerLeastRequest();

Deno.test("least_request config: default 2, above 10 taken as 10, under 2 or not a whole number refused in one line", () => {
  assert.equal(
    leastRequest.Config.createFromJson({}).settings.choiceCount,
    2,
  );
  for (const [given, used] of [[2, 2], [3, 3], [10, 10], [11, 10], [1e9, 10]]) {
    const config = leastRequest.Config.createFromJson({ choiceCount: given });
    assert.equal(config.settings.choiceCount, used, `${given}`);
    assert.deepEqual(config.toJsonObject(), {
      [LEAST_REQUEST]: { choiceCount: used },
    });
  }
  assert.equal(MAX_CHOICE_COUNT, 10);
  const refused: [unknown, string][] = [
    [1, "1"],
    [0, "0"],
    [-2, "-2"],
    [2.5, "2.5"],
    ["2", '"2"'],
    [null, "null"],
    [Infinity, "Infinity"],
    [NaN, "NaN"],
  ];
  for (const [choiceCount, shown] of refused) {
    assert.throws(
      () => leastRequest.Config.createFromJson({ choiceCount }),
      new Error(`choiceCount must be an integer of at least 2, got ${shown}`),
    );
  }
  assert.throws(
    () =>
      checkServiceConfig({
        loadBalancingConfig: [{ [LEAST_REQUEST]: { choiceCount: 1 } }],
      }),
    /^Error: .*least_request_experimental.*choiceCount must be an integer of at least 2, got 1$/,
  );
  checkServiceConfig({ loadBalancingConfig: [{ [LEAST_REQUEST]: {} }] });
});

/** A child picker that always completes with the subchannel named `name`. */
function childPicker(name: string): experimental.Picker {
  const subchannel = { getAddress: () => name } as never;
  return {
    pick: () => ({
      pickResultType: experimental.PickResultType.COMPLETE,
      subchannel,
      status: null,
      onCallStarted: null,
      onCallEnded: null,
    }),
  };
}

/** `Math.random`-like answers from a list, in turn. */
function randoms(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

/** Where one pick went. */
function pickedBy(picker: experimental.Picker): string {
  return pickOne(picker).subchannel!.getAddress();
}

Deno.test("least_request picker: of choiceCount samples, the fewest outstanding wins; a tie keeps the first sampled; samples may repeat", () => {
  const counts: Outstanding[] = [{ count: 5 }, { count: 1 }, { count: 3 }];
  const ready = ["a", "b", "c"].map((name, i) => ({
    picker: childPicker(name),
    outstanding: counts[i],
  }));
  // Indices: floor(r * 3); 0.0 -> a, 0.4 -> b, 0.9 -> c.
  assert.equal(
    pickedBy(new LeastRequestPicker(ready, 2, randoms(0, 0.9))),
    "c",
  );
  assert.equal(
    pickedBy(new LeastRequestPicker(ready, 2, randoms(0.9, 0.4))),
    "b",
  );
  assert.equal(pickedBy(new LeastRequestPicker(ready, 2, randoms(0, 0))), "a");
  // Three samples reach the least loaded where two would not.
  assert.equal(
    pickedBy(new LeastRequestPicker(ready, 2, randoms(0, 0.9, 0.4))),
    "c",
  );
  assert.equal(
    pickedBy(new LeastRequestPicker(ready, 3, randoms(0, 0.9, 0.4))),
    "b",
  );
  counts[2].count = 1;
  assert.equal(
    pickedBy(new LeastRequestPicker(ready, 2, randoms(0.9, 0.4))),
    "c",
    "a tie keeps the first sampled",
  );
  // choiceCount samples, and no more, per pick.
  let draws = 0;
  new LeastRequestPicker(ready, 7, () => (draws++, 0.5)).pick(
    { metadata: new Metadata(), extraPickInfo: {} },
  );
  assert.equal(draws, 7);
});

Deno.test("least_request picker: with one READY endpoint, every pick goes to it", () => {
  const only = [{ picker: childPicker("a"), outstanding: { count: 9 } }];
  const picker = new LeastRequestPicker(only, 10);
  for (let i = 0; i < 100; i++) assert.equal(pickedBy(picker), "a");
});

Deno.test("least_request picker: an RPC is outstanding from its start to its end, however it ends; a pick never started counts nothing; a count never goes below 0", () => {
  const outstanding = { count: 0 };
  const calls: string[] = [];
  const ready = [{
    outstanding,
    picker: {
      pick: () => ({
        pickResultType: experimental.PickResultType.COMPLETE,
        subchannel: null,
        status: null,
        onCallStarted: () => calls.push("started"),
        onCallEnded: (code: status) => calls.push(`ended ${status[code]}`),
      }),
    },
  }];
  const picker = new LeastRequestPicker(ready, 2);
  const ends = [
    status.OK,
    status.INTERNAL,
    status.CANCELLED,
    status.DEADLINE_EXCEEDED,
    status.UNAVAILABLE,
  ];
  const started = ends.map(() => {
    const result = pickOne(picker);
    result.onCallStarted!();
    return result;
  });
  assert.equal(outstanding.count, ends.length);
  // Picked, never started (cancelled before grpc-js started it): nothing.
  pickOne(picker);
  assert.equal(outstanding.count, ends.length);
  started.forEach((result, i) => {
    result.onCallEnded!(ends[i], "", new Metadata());
    assert.equal(outstanding.count, ends.length - i - 1);
  });
  started[0].onCallEnded!(status.OK, "", new Metadata());
  assert.equal(outstanding.count, 0, "an extra end does not go below 0");
  assert.deepEqual(calls, [
    ...ends.map(() => "started"),
    ...ends.map((code) => `ended ${status[code]}`),
    "ended OK",
  ], "the child's own hooks still run");
});

Deno.test("least_request picker: a pick the child queues or drops is handed on as it is, counting nothing", () => {
  const outstanding = { count: 0 };
  const queued: experimental.PickResult = {
    pickResultType: experimental.PickResultType.QUEUE,
    subchannel: null,
    status: null,
    onCallStarted: null,
    onCallEnded: null,
  };
  const picker = new LeastRequestPicker(
    [{ outstanding, picker: { pick: () => queued } }],
    2,
  );
  assert.equal(pickOne(picker), queued);
  assert.equal(outstanding.count, 0);
});

/** The policy over a fake helper, with `Math.random` answering `random`. */
async function withPolicy(
  body: (
    helper: FakeHelper,
    update: (ports: number[]) => void,
  ) => Promise<void>,
  choiceCount = 2,
): Promise<void> {
  const helper = new FakeHelper();
  const policy = new leastRequest.LoadBalancer(helper);
  const config = new leastRequest.Config({ choiceCount: choiceCount });
  const update = (ports: number[]) =>
    assert.ok(policy.updateAddressList(
      experimental.statusOrFromValue(ports.map(endpoint)),
      config,
      {},
      "",
    ));
  try {
    await body(helper, update);
  } finally {
    policy.destroy();
  }
}

/** Runs `body` with `Math.random` answering from `values`, in turn. */
function withRandom<T>(values: number[], body: () => T): T {
  const random = Math.random;
  Math.random = randoms(...values);
  try {
    return body();
  } finally {
    Math.random = random;
  }
}

/** Starts `n` calls on the endpoint that `random` makes the picker choose. */
function startCalls(
  helper: FakeHelper,
  n: number,
  random: number[],
): experimental.PickResult[] {
  return Array.from({ length: n }, () => {
    const result = withRandom(random, () => pickOne(helper.latest.picker));
    result.onCallStarted!();
    return result;
  });
}

Deno.test(
  "least_request policy: READY while any child is; picks only READY children; counts carry over to the next picker",
  LEAVES_PICK_FIRST_TIMER,
  () =>
    withPolicy(async (helper, update) => {
      update([A, B, C]);
      await tick();
      assert.equal(helper.latest.state, CONNECTING);
      helper.subchannel(A).setState(READY);
      helper.subchannel(B).setState(READY);
      await tick();
      assert.equal(helper.latest.state, READY);
      // Two READY: floor(r * 2): 0 -> A, 0.9 -> B. C is never a choice.
      const onA = startCalls(helper, 2, [0, 0]);
      assert.equal(onA[0].subchannel!.getAddress(), `127.0.0.1:${A}`);
      assert.equal(
        withRandom([0, 0.9], () => pickOne(helper.latest.picker))
          .subchannel!.getAddress(),
        `127.0.0.1:${B}`,
        "A has 2 out, B none",
      );
      // A new picker (C connects) keeps the counts.
      helper.subchannel(C).setState(READY);
      await tick();
      // Three READY: 0 -> A, 0.5 -> B, 0.9 -> C.
      assert.equal(
        withRandom([0, 0.5], () => pickOne(helper.latest.picker))
          .subchannel!.getAddress(),
        `127.0.0.1:${B}`,
      );
      for (const call of onA) call.onCallEnded!(status.OK, "", new Metadata());
      assert.equal(
        withRandom([0, 0.5], () => pickOne(helper.latest.picker))
          .subchannel!.getAddress(),
        `127.0.0.1:${A}`,
        "a tie: the first sampled",
      );
    }),
);

Deno.test(
  "least_request policy: choiceCount reaches the picker: with 3, the third sample can win",
  LEAVES_PICK_FIRST_TIMER,
  () =>
    withPolicy(async (helper, update) => {
      update([A, B, C]);
      await tick();
      for (const port of [A, B, C]) helper.subchannel(port).setState(READY);
      await tick();
      startCalls(helper, 1, [0, 0, 0]);
      startCalls(helper, 1, [0.4, 0.4, 0.4]);
      // Samples A and B, one call out each, then C with none: two samples
      // would tie, and keep A.
      const [pick] = startCalls(helper, 1, [0, 0.4, 0.9]);
      assert.equal(pick.subchannel!.getAddress(), `127.0.0.1:${C}`);
    }, 3),
);

Deno.test(
  "least_request policy: an endpoint that leaves and comes back starts at 0, and its old calls end on the old count",
  LEAVES_PICK_FIRST_TIMER,
  () =>
    withPolicy(async (helper, update) => {
      update([A, B]);
      await tick();
      helper.subchannel(A).setState(READY);
      helper.subchannel(B).setState(READY);
      await tick();
      const onA = startCalls(helper, 3, [0, 0]);
      update([B]);
      await tick();
      update([A, B]);
      await tick();
      helper.subchannel(A).setState(READY);
      await tick();
      // B has nothing out; A, back, starts at 0: a tie keeps the first.
      const first = (random: number[]) =>
        withRandom(random, () => pickOne(helper.latest.picker))
          .subchannel!.getAddress();
      assert.equal(first([0, 0.9]), `127.0.0.1:${A}`);
      assert.equal(first([0.9, 0]), `127.0.0.1:${B}`);
      // The old calls end: A's new count stays 0, not -3.
      for (const call of onA) call.onCallEnded!(status.OK, "", new Metadata());
      const onB = startCalls(helper, 1, [0.9, 0.9]);
      assert.equal(onB[0].subchannel!.getAddress(), `127.0.0.1:${B}`);
      assert.equal(first([0.9, 0]), `127.0.0.1:${A}`, "A at 0, below B's 1");
    }),
);

Deno.test(
  "least_request policy: all down is TRANSIENT_FAILURE naming the endpoints' errors",
  LEAVES_PICK_FIRST_TIMER,
  () =>
    withPolicy(async (helper, update) => {
      update([A, B]);
      await tick();
      helper.subchannel(A).setState(TRANSIENT_FAILURE, "A refused");
      helper.subchannel(B).setState(TRANSIENT_FAILURE, "B refused");
      await tick();
      assert.equal(helper.latest.state, TRANSIENT_FAILURE);
      // pick_first's words, without the empty "Resolution note: " they end
      // with when there is none.
      assert.equal(
        helper.latest.errorMessage,
        `${LEAST_REQUEST}: no endpoint is reachable: ` +
          `[127.0.0.1:${A}]: No connection established. Last error: A refused; ` +
          `[127.0.0.1:${B}]: No connection established. Last error: B refused`,
      );
      const failed = pickOne(helper.latest.picker);
      assert.equal(
        failed.pickResultType,
        experimental.PickResultType.TRANSIENT_FAILURE,
      );
      assert.equal(failed.status?.code, status.UNAVAILABLE);
      assert.equal(failed.status?.details, helper.latest.errorMessage);
    }),
);

Deno.test(
  "least_request policy: all of five down names the first three endpoints' errors and counts the rest",
  LEAVES_PICK_FIRST_TIMER,
  () =>
    withPolicy(async (helper, update) => {
      const ports = [A, B, C, 3004, 3005];
      update(ports);
      await tick();
      for (const port of ports.slice(0, 2)) {
        helper.subchannel(port).setState(TRANSIENT_FAILURE, `${port} refused`);
      }
      for (const port of ports.slice(2)) {
        helper.subchannel(port).setState(TRANSIENT_FAILURE);
      }
      await tick();
      const at = (port: number) => `\\[127\\.0\\.0\\.1:${port}\\]: `;
      assert.match(
        helper.latest.errorMessage ?? "",
        new RegExp(
          `^${LEAST_REQUEST}: no endpoint is reachable: ${
            at(A)
          }[^;]*${A} refused[^;]*; ` +
            `${at(B)}[^;]*${B} refused[^;]*; ${at(C)}[^;]*; and 2 more$`,
        ),
      );
      update([A]);
      await tick();
      assert.match(
        helper.latest.errorMessage ?? "",
        new RegExp(
          `^${LEAST_REQUEST}: no endpoint is reachable: ${at(A)}[^;]*$`,
        ),
      );
    }),
);

/** How many RPCs each policy sends in the slow-backend test. */
const RPCS = 1000;

/** The share of `sent` that `server` answered, and how many failed. */
function shareOf(sent: readonly Sent[], server: string) {
  return {
    share: sent.filter((rpc) => rpc.server === server).length / sent.length,
    failed: sent.filter((rpc) => rpc.error !== null).length,
  };
}

/** `count` RPCs at concurrency 16 through a channel of `loadBalancingConfig`. */
async function underLoad(
  addresses: readonly string[],
  loadBalancingConfig: unknown[],
  count: number,
): Promise<readonly Sent[]> {
  const { client } = connect(addresses, {
    loadBalancingConfig,
    healthCheckConfig: { serviceName: "" },
  });
  try {
    const load = startLoad(client, 16);
    await until(`${count} RPCs`, () => load.sent.length >= count, 60_000);
    return await load.stop();
  } finally {
    client.close();
  }
}

Deno.test("least_request on real servers: one backend 10 times slower than two others gets a much smaller share than under round_robin, in the same run, 0 failed", async () => {
  const servers = [
    await startEchoServer(ANY_PORT, { delayMs: 2 }),
    await startEchoServer(ANY_PORT, { delayMs: 2 }),
    await startEchoServer(ANY_PORT, { delayMs: 20 }),
  ];
  const addresses = servers.map(({ address }) => address);
  const slow = addresses[2];
  try {
    const roundRobin = shareOf(
      await underLoad(addresses, [{ round_robin: {} }], RPCS),
      slow,
    );
    const leastRequest = shareOf(
      await underLoad(addresses, [{ [LEAST_REQUEST]: {} }], RPCS),
      slow,
    );
    console.log(
      `the slow backend's share of ${RPCS} RPCs at concurrency 16: round_robin ${
        roundRobin.share.toFixed(3)
      }, least_request ${leastRequest.share.toFixed(3)}; failed ${
        roundRobin.failed + leastRequest.failed
      }`,
    );
    assert.equal(roundRobin.failed, 0);
    assert.equal(leastRequest.failed, 0);
    // round_robin gives each backend a third, however slow.
    assert.ok(roundRobin.share > 0.3, `round_robin ${roundRobin.share}`);
    // Two choices sample the slow backend twice one pick in nine, and pick
    // it then; otherwise it loses to a fast one with fewer RPCs out, but for
    // picks in one burst, which see the same counts: grpc-js counts an RPC
    // only once it starts. So at most two thirds of round_robin's share,
    // and about half in practice (docs/least_request.md).
    assert.ok(
      leastRequest.share < roundRobin.share * 2 / 3,
      `least_request ${leastRequest.share}, round_robin ${roundRobin.share}`,
    );
  } finally {
    await stopEchoServers(servers, { drainMs: 0, graceMs: 1000 });
  }
});

Deno.test("least_request under outlier_detection, with health checking: a backend failing every RPC, which answers fastest and so draws RPCs, is ejected; then 0 fail", async () => {
  const healthy = await startEchoServer(ANY_PORT);
  const failing = await startEchoServer(ANY_PORT, {
    failures: { percent: 100, code: status.INTERNAL },
  });
  const serviceConfig = underOutlierDetection({
    loadBalancingConfig: [{ [LEAST_REQUEST]: {} }],
    healthCheckConfig: { serviceName: "" },
  }, { ...OUTLIER_DETECTION, interval: { seconds: 1, nanos: 0 } });
  checkServiceConfig(serviceConfig);
  const { client } = connect(
    [healthy.address, failing.address],
    serviceConfig,
    CLIENT_CHANNEL_OPTIONS,
  );
  const load = startLoad(client, 4);
  try {
    // The next evaluation after request_volume failures ejects it: within
    // the interval and the time those RPCs take, well inside 10 s.
    await untilFailuresEnd(load, 300, 10_000);
    const sent = await load.stop();
    const failed = sent.filter((rpc) => rpc.error !== null);
    assert.ok(
      failed.length >= OUTLIER_DETECTION.failure_percentage_ejection
        .request_volume,
      `${failed.length} failed`,
    );
    assert.ok(
      sent.slice(-300).every((rpc) => rpc.server === healthy.address),
      "after the ejection, every RPC to the healthy backend",
    );
  } finally {
    await load.stop();
    client.close();
    await stopEchoServers([healthy, failing], { drainMs: 0, graceMs: 1000 });
  }
});
