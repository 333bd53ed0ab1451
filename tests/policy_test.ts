import assert from "node:assert/strict";
import {
  connectivityState as ConnectivityState,
  experimental,
  setLogger,
  status,
} from "@grpc/grpc-js";
import {
  CustomRoundRobinConfig,
  CustomRoundRobinLoadBalancer,
} from "../balancer/custom_round_robin.ts";
import { endpoint, FakeHelper, pickMany, pickOne, tick } from "./fakes.ts";

const { READY, CONNECTING, IDLE, TRANSIENT_FAILURE } = ConnectivityState;
const FIRST = 1001;
const SECOND = 1002;
const A = "127.0.0.1:1001";
const B = "127.0.0.1:1002";

/** A policy with a fake helper, before any update. */
function newPolicy() {
  const helper = new FakeHelper();
  return { helper, policy: new CustomRoundRobinLoadBalancer(helper) };
}

/**
 * Hands `policy` a resolver result: endpoints `127.0.0.1:<port>`, or a
 * resolution error with these details.
 */
function update(
  policy: CustomRoundRobinLoadBalancer,
  result: number[] | string,
  chooseSecond = 3,
): boolean {
  return policy.updateAddressList(
    typeof result === "string"
      ? experimental.statusOrFromError({
        code: status.UNAVAILABLE,
        details: result,
      })
      : experimental.statusOrFromValue(result.map(endpoint)),
    new CustomRoundRobinConfig(chooseSecond),
    {},
    "",
  );
}

/** A policy given the two endpoints, with both children connecting. */
async function start(chooseSecond = 3) {
  const { helper, policy } = newPolicy();
  assert.equal(update(policy, [FIRST, SECOND], chooseSecond), true);
  await tick();
  return { helper, policy };
}

/** Sets both children's states, `first` then `second`. */
function set(
  helper: FakeHelper,
  first: ConnectivityState,
  second: ConnectivityState,
) {
  helper.subchannel(FIRST).setState(first, `first failed`);
  helper.subchannel(SECOND).setState(second, `second failed`);
}

// pick_first arms a 250 ms Happy Eyeballs timer (unref'd) while a child is
// connecting, and its destroy() does not clear it: those tests leave it.
const LEAVES_PICK_FIRST_TIMER = { sanitizeOps: false };

Deno.test(
  "policy: a new policy connects both children and queues picks",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, policy } = await start();
    assert.equal(helper.subchannel(FIRST).connectCalls, 1);
    assert.equal(helper.subchannel(SECOND).connectCalls, 1);
    assert.equal(helper.latest.state, CONNECTING);
    assert.deepEqual(pickMany(helper.latest.picker, 2), ["QUEUE", "QUEUE"]);
    policy.destroy();
  },
);

Deno.test("policy: both READY -> READY with the custom picker", async () => {
  const { helper, policy } = await start();
  set(helper, READY, READY);
  assert.equal(helper.latest.state, READY);
  assert.deepEqual(pickMany(helper.latest.picker, 6), [A, A, B, A, A, B]);
  policy.destroy();
});

Deno.test("policy: the config's chooseSecond reaches the picker", async () => {
  const { helper, policy } = await start(2);
  set(helper, READY, READY);
  assert.deepEqual(pickMany(helper.latest.picker, 4), [A, B, A, B]);
  policy.destroy();
});

Deno.test(
  "policy: only the first READY -> READY, every pick to the first",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, policy } = await start();
    set(helper, READY, CONNECTING);
    assert.equal(helper.latest.state, READY);
    assert.deepEqual(pickMany(helper.latest.picker, 6), [A, A, A, A, A, A]);
    policy.destroy();
  },
);

Deno.test("policy: only the second READY -> READY, every pick to the second", async () => {
  const { helper, policy } = await start();
  set(helper, TRANSIENT_FAILURE, READY);
  assert.equal(helper.latest.state, READY);
  assert.deepEqual(pickMany(helper.latest.picker, 6), [B, B, B, B, B, B]);
  policy.destroy();
});

Deno.test(
  "policy: none READY, one CONNECTING -> CONNECTING, picks queue",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, policy } = await start();
    set(helper, TRANSIENT_FAILURE, CONNECTING);
    assert.equal(helper.latest.state, CONNECTING);
    assert.deepEqual(pickMany(helper.latest.picker, 3), [
      "QUEUE",
      "QUEUE",
      "QUEUE",
    ]);
    policy.destroy();
  },
);

Deno.test("policy: both TRANSIENT_FAILURE -> UNAVAILABLE naming both endpoints' errors", async () => {
  const { helper, policy } = await start();
  set(helper, TRANSIENT_FAILURE, TRANSIENT_FAILURE);
  assert.equal(helper.latest.state, TRANSIENT_FAILURE);
  const result = pickOne(helper.latest.picker);
  assert.equal(
    result.pickResultType,
    experimental.PickResultType.TRANSIENT_FAILURE,
  );
  assert.equal(result.status?.code, status.UNAVAILABLE);
  const details = result.status?.details ?? "";
  assert.match(details, /^custom_round_robin: both endpoints unreachable: /);
  assert.match(details, /first \[127\.0\.0\.1:1001\]: .*first failed/);
  assert.match(details, /second \[127\.0\.0\.1:1002\]: .*second failed/);
  assert.equal(helper.latest.errorMessage, details);
  policy.destroy();
});

Deno.test(
  "policy: a child that goes IDLE is told to exit idle at once",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, policy } = await start();
    set(helper, READY, READY);
    const before = helper.subchannel(SECOND).connectCalls;
    helper.subchannel(SECOND).setState(IDLE);
    await tick();
    assert.equal(helper.subchannel(SECOND).connectCalls, before + 1);
    assert.deepEqual(pickMany(helper.latest.picker, 3), [A, A, A]);
    policy.destroy();
  },
);

Deno.test(
  "policy: a child leaving READY asks for re-resolution",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, policy } = await start();
    set(helper, READY, READY);
    assert.equal(helper.reresolutions, 0);
    helper.subchannel(FIRST).setState(IDLE);
    assert.equal(helper.reresolutions, 1);
    assert.equal(helper.latest.state, READY);
    policy.destroy();
  },
);

for (const count of [1, 3]) {
  Deno.test(`policy: ${count} endpoints at start -> TRANSIENT_FAILURE with the reason, re-resolution`, () => {
    const { helper, policy } = newPolicy();
    const ports = [FIRST, SECOND, 1003].slice(0, count);
    const accepted = update(policy, ports);
    assert.equal(accepted, true, "accepted, so that RPCs fail with the reason");
    assert.equal(helper.reresolutions, 1);
    assert.equal(helper.latest.state, TRANSIENT_FAILURE);
    const list = ports.map(endpoint).map(experimental.endpointToString)
      .join(", ");
    const message =
      `custom_round_robin: expected exactly 2 endpoints, got ${count}: [${list}]`;
    assert.equal(helper.latest.errorMessage, message);
    assert.equal(pickOne(helper.latest.picker).status?.details, message);
    assert.equal(helper.subchannels.size, 0);
    policy.destroy();
  });
}

Deno.test("policy: the same endpoint twice is rejected", () => {
  const { helper, policy } = newPolicy();
  const accepted = update(policy, [FIRST, FIRST]);
  assert.equal(accepted, true);
  assert.equal(helper.latest.state, TRANSIENT_FAILURE);
  assert.match(
    helper.latest.errorMessage ?? "",
    /expected 2 different endpoints/,
  );
});

Deno.test("policy: a bad endpoint count after a good update keeps serving and logs why", async () => {
  const { helper, policy } = await start();
  set(helper, READY, READY);
  const reports = helper.reports.length;
  const logged: string[] = [];
  setLogger({ error: (...args: unknown[]) => logged.push(args.join(" ")) });
  let accepted: boolean;
  try {
    accepted = update(policy, [FIRST, SECOND, 1003]);
  } finally {
    setLogger(console);
  }
  assert.equal(accepted, false);
  assert.deepEqual(logged, [
    "custom_round_robin: expected exactly 2 endpoints, got 3: " +
    "[[127.0.0.1:1001], [127.0.0.1:1002], [127.0.0.1:1003]]; " +
    "still using the previous endpoints",
  ]);
  assert.equal(helper.reports.length, reports);
  assert.equal(helper.subchannels.size, 2);
  assert.deepEqual(pickMany(helper.latest.picker, 3), [A, A, B]);
  policy.destroy();
});

Deno.test("policy: an update with the same endpoints keeps the children connected", async () => {
  const { helper, policy } = await start();
  set(helper, READY, READY);
  const connects = [FIRST, SECOND].map((port) =>
    helper.subchannel(port).connectCalls
  );
  update(policy, [FIRST, SECOND]);
  await tick();
  assert.equal(helper.subchannels.size, 2);
  assert.deepEqual(
    [FIRST, SECOND].map((port) => helper.subchannel(port).connectCalls),
    connects,
  );
  for (const port of [FIRST, SECOND]) {
    assert.ok(helper.subchannel(port).refs > 0, `${port} still referenced`);
  }
  assert.equal(helper.latest.state, READY);
  assert.deepEqual(pickMany(helper.latest.picker, 3), [A, A, B]);
  policy.destroy();
});

Deno.test("policy: an update replacing the second endpoint keeps the first child", async () => {
  const { helper, policy } = await start();
  set(helper, READY, READY);
  const firstConnects = helper.subchannel(FIRST).connectCalls;
  update(policy, [FIRST, 1003]);
  await tick();
  assert.equal(helper.subchannel(FIRST).connectCalls, firstConnects);
  assert.equal(helper.subchannel(SECOND).refs, 0, "removed child released");
  assert.equal(helper.subchannel(1003).connectCalls, 1);
  assert.deepEqual(pickMany(helper.latest.picker, 3), [A, A, A]);
  helper.subchannel(1003).setState(READY);
  assert.deepEqual(pickMany(helper.latest.picker, 3), [A, A, "127.0.0.1:1003"]);
  policy.destroy();
});

Deno.test("policy: a resolver error without children -> TRANSIENT_FAILURE with it", () => {
  const { helper, policy } = newPolicy();
  update(policy, "no such host");
  assert.equal(helper.latest.state, TRANSIENT_FAILURE);
  assert.equal(pickOne(helper.latest.picker).status?.details, "no such host");
});

Deno.test("policy: a resolver error with children keeps serving", async () => {
  const { helper, policy } = await start();
  set(helper, READY, READY);
  const reports = helper.reports.length;
  update(policy, "x");
  assert.equal(helper.reports.length, reports);
  assert.equal(helper.latest.state, READY);
  policy.destroy();
});

Deno.test("policy: exitIdle, resetBackoff and destroy reach every child", async () => {
  const { helper, policy } = await start();
  set(helper, READY, READY);
  policy.resetBackoff();
  assert.deepEqual(
    [FIRST, SECOND].map((port) => helper.subchannel(port).backoffResets),
    [1, 1],
  );
  // A child never stays IDLE (it is told to exit idle at once), so count the
  // calls that reach the children instead.
  const prototype = experimental.LeafLoadBalancer.prototype;
  const exitIdle = prototype.exitIdle;
  let exitIdleCalls = 0;
  prototype.exitIdle = function () {
    exitIdleCalls++;
    exitIdle.call(this);
  };
  try {
    policy.exitIdle();
  } finally {
    prototype.exitIdle = exitIdle;
  }
  assert.equal(exitIdleCalls, 2);
  policy.destroy();
  assert.deepEqual(
    [FIRST, SECOND].map((port) => helper.subchannel(port).refs),
    [0, 0],
  );
});
