/**
 * `custom_round_robin`: its config, its picker, and the policy driven by a
 * fake helper and fake subchannels.
 */
import assert from "node:assert/strict";
import {
  Channel,
  connectivityState as ConnectivityState,
  credentials,
  experimental,
  setLogger,
  status,
} from "@grpc/grpc-js";
import {
  customRoundRobin,
  CustomRoundRobinPicker,
  MAX_CHOOSE_SECOND,
} from "../balancer/custom_round_robin.ts";
import { HEALTH_CHECK_SERVICE_NAME } from "../balancer/health_check.ts";
import { startEchoServer, stopEchoServers } from "../echo/mod.ts";
import { until } from "../testing/wait.ts";
import {
  endpoint,
  FakeHelper,
  pickMany,
  pickOne,
  tick,
} from "../testing/fakes.ts";
import { LEAVES_PICK_FIRST_TIMER } from "../testing/sanitizers.ts";

type PickResult = experimental.PickResult;
const { READY, CONNECTING, IDLE, TRANSIENT_FAILURE } = ConnectivityState;

Deno.test("config: valid chooseSecond values parse and keep their value", () => {
  for (const chooseSecond of [0, 1, 2, 3, 7, 1000, MAX_CHOOSE_SECOND]) {
    const config = customRoundRobin.Config.createFromJson({ chooseSecond });
    assert.equal(config.settings.chooseSecond, chooseSecond);
    assert.equal(config.getLoadBalancerName(), "custom_round_robin");
  }
});

Deno.test("config: chooseSecond defaults to 3", () => {
  assert.equal(
    customRoundRobin.Config.createFromJson({}).settings.chooseSecond,
    3,
  );
});

Deno.test("config: unknown fields are ignored", () => {
  const config = customRoundRobin.Config.createFromJson({
    chooseSecond: 5,
    futureField: { anything: true },
  });
  assert.deepEqual(config.toJsonObject(), {
    custom_round_robin: { chooseSecond: 5 },
  });
});

Deno.test("config: invalid chooseSecond values are errors naming field and value (grpc-js adds the policy)", () => {
  const cases: [unknown, string][] = [
    [-1, "-1"],
    [1.5, "1.5"],
    ["abc", '"abc"'],
    ["3", '"3"'],
    [null, "null"],
    [MAX_CHOOSE_SECOND + 1, "4294967296"],
    [Number.NaN, "NaN"],
    [Infinity, "Infinity"],
    [true, "true"],
    [[3], "[3]"],
    [{ value: 3 }, '{"value":3}'],
  ];
  for (const [chooseSecond, shown] of cases) {
    assert.throws(
      () => customRoundRobin.Config.createFromJson({ chooseSecond }),
      {
        message:
          `chooseSecond must be an integer from 0 to 4294967295, got ${shown}`,
      },
      `chooseSecond ${shown}`,
    );
  }
});

Deno.test("config: a config that is not an object is an error", () => {
  for (const json of [null, 3, "x", [1]]) {
    assert.throws(
      () => customRoundRobin.Config.createFromJson(json),
      /^Error: config must be a JSON object, got /,
    );
  }
});

Deno.test("config: JSON round trip gives the same JSON", () => {
  for (
    const json of [{ chooseSecond: 0 }, { chooseSecond: 3 }, {
      chooseSecond: MAX_CHOOSE_SECOND,
    }]
  ) {
    const first = customRoundRobin.Config.createFromJson(json).toJsonObject();
    assert.deepEqual(first, { custom_round_robin: json });
    const text = JSON.stringify(first);
    const again = customRoundRobin.Config.createFromJson(
      JSON.parse(text).custom_round_robin,
    );
    assert.equal(JSON.stringify(again.toJsonObject()), text);
  }
});

/** A child picker whose result names it. */
function namedPicker(name: "first" | "second"): experimental.Picker {
  const result = {
    pickResultType: experimental.PickResultType.COMPLETE,
    subchannel: { getAddress: () => name },
    status: null,
    onCallStarted: null,
    onCallEnded: null,
  } as unknown as PickResult;
  return { pick: () => result };
}

/** The spec's sequence: pick number i (from 1) goes second iff i % c == 0. */
function expected(chooseSecond: number, from: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const pick = from + i;
    return chooseSecond !== 0 && pick % chooseSecond === 0 ? "second" : "first";
  });
}

for (const chooseSecond of [0, 1, 2, 3, 7]) {
  Deno.test(`picker: chooseSecond ${chooseSecond} gives the spec's sequence over 10000 picks`, () => {
    const picker = new CustomRoundRobinPicker(
      chooseSecond,
      namedPicker("first"),
      namedPicker("second"),
    );
    assert.deepEqual(
      pickMany(picker, 10_000),
      expected(chooseSecond, 1, 10_000),
    );
  });
}

Deno.test("picker: chooseSecond 3 starts first, first, second", () => {
  const picker = new CustomRoundRobinPicker(
    3,
    namedPicker("first"),
    namedPicker("second"),
  );
  assert.deepEqual(pickMany(picker, 6), [
    "first",
    "first",
    "second",
    "first",
    "first",
    "second",
  ]);
});

Deno.test("picker: the count goes past 2^32 picks without a skipped or doubled pick", () => {
  const twoTo32 = 2 ** 32;
  for (const chooseSecond of [2, 3, 7, 1000, MAX_CHOOSE_SECOND]) {
    // Start as a picker that has already made 2^32 - 10 picks.
    const made = twoTo32 - 10;
    const picker = new CustomRoundRobinPicker(
      chooseSecond,
      namedPicker("first"),
      namedPicker("second"),
      made % chooseSecond,
    );
    assert.deepEqual(
      pickMany(picker, 20),
      expected(chooseSecond, made + 1, 20),
      `chooseSecond ${chooseSecond}`,
    );
  }
});

Deno.test("picker: chooseSecond 2^32 - 1 sends exactly the last pick of its cycle second", () => {
  const picker = new CustomRoundRobinPicker(
    MAX_CHOOSE_SECOND,
    namedPicker("first"),
    namedPicker("second"),
    MAX_CHOOSE_SECOND - 3,
  );
  assert.deepEqual(pickMany(picker, 5), [
    "first",
    "first",
    "second",
    "first",
    "first",
  ]);
});

const FIRST = 1001;
const SECOND = 1002;
const A = "127.0.0.1:1001";
const B = "127.0.0.1:1002";

/** A policy with a fake helper, before any update. */
function newPolicy() {
  const helper = new FakeHelper();
  return { helper, policy: new customRoundRobin.LoadBalancer(helper) };
}

/**
 * Hands `policy` a resolver result: endpoints `127.0.0.1:<port>`, or a
 * resolution error with these details.
 */
function update(
  policy: InstanceType<typeof customRoundRobin.LoadBalancer>,
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
    new customRoundRobin.Config({ chooseSecond: chooseSecond }),
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

/**
 * Sets both children's states, `first` then `second`; resolves once the
 * policy has heard of both.
 */
async function set(
  helper: FakeHelper,
  first: ConnectivityState,
  second: ConnectivityState,
) {
  helper.subchannel(FIRST).setState(first, `first failed`);
  helper.subchannel(SECOND).setState(second, `second failed`);
  await tick();
}

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
  await set(helper, READY, READY);
  assert.equal(helper.latest.state, READY);
  assert.deepEqual(pickMany(helper.latest.picker, 6), [A, A, B, A, A, B]);
  policy.destroy();
});

Deno.test("policy: the config's chooseSecond reaches the picker", async () => {
  const { helper, policy } = await start(2);
  await set(helper, READY, READY);
  assert.deepEqual(pickMany(helper.latest.picker, 4), [A, B, A, B]);
  policy.destroy();
});

Deno.test(
  "policy: only the first READY -> READY, every pick to the first",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, policy } = await start();
    await set(helper, READY, CONNECTING);
    assert.equal(helper.latest.state, READY);
    assert.deepEqual(pickMany(helper.latest.picker, 6), [A, A, A, A, A, A]);
    policy.destroy();
  },
);

Deno.test("policy: only the second READY -> READY, every pick to the second", async () => {
  const { helper, policy } = await start();
  await set(helper, TRANSIENT_FAILURE, READY);
  assert.equal(helper.latest.state, READY);
  assert.deepEqual(pickMany(helper.latest.picker, 6), [B, B, B, B, B, B]);
  policy.destroy();
});

Deno.test(
  "policy: none READY, one CONNECTING -> CONNECTING, picks queue",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, policy } = await start();
    await set(helper, TRANSIENT_FAILURE, CONNECTING);
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
  await set(helper, TRANSIENT_FAILURE, TRANSIENT_FAILURE);
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
    await set(helper, READY, READY);
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
    await set(helper, READY, READY);
    assert.equal(helper.reresolutions, 0);
    helper.subchannel(FIRST).setState(IDLE);
    assert.equal(helper.reresolutions, 1);
    await tick();
    assert.equal(helper.latest.state, READY);
    policy.destroy();
  },
);

for (const count of [1, 3]) {
  Deno.test(`policy: ${count} endpoints at start -> TRANSIENT_FAILURE with the reason, re-resolution`, async () => {
    const { helper, policy } = newPolicy();
    const ports = [FIRST, SECOND, 1003].slice(0, count);
    const accepted = update(policy, ports);
    await tick();
    assert.equal(accepted, true, "accepted, so that RPCs fail with the reason");
    assert.equal(helper.reresolutions, 1);
    assert.equal(helper.latest.state, TRANSIENT_FAILURE);
    const list = ports.map(endpoint).map(experimental.endpointToString)
      .join(", ");
    const message =
      `custom_round_robin: no endpoints were resolved: expected exactly 2 endpoints, got ${count}: [${list}]`;
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
  await set(helper, READY, READY);
  const reports = helper.reports.length;
  const logged: string[] = [];
  setLogger({ error: (...args: unknown[]) => logged.push(args.join(" ")) });
  let accepted: boolean;
  try {
    accepted = update(policy, [FIRST, SECOND, 1003]);
  } finally {
    setLogger(console);
  }
  assert.equal(accepted, true, "accepted: the resolver-error rule");
  await tick();
  assert.equal(helper.reresolutions, 1);
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
  await set(helper, READY, READY);
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
  await set(helper, READY, READY);
  const firstConnects = helper.subchannel(FIRST).connectCalls;
  update(policy, [FIRST, 1003]);
  await tick();
  assert.equal(helper.subchannel(FIRST).connectCalls, firstConnects);
  assert.equal(helper.subchannel(SECOND).refs, 0, "removed child released");
  assert.equal(helper.subchannel(1003).connectCalls, 1);
  assert.deepEqual(pickMany(helper.latest.picker, 3), [A, A, A]);
  helper.subchannel(1003).setState(READY);
  await tick();
  assert.deepEqual(pickMany(helper.latest.picker, 3), [A, A, "127.0.0.1:1003"]);
  policy.destroy();
});

Deno.test("policy: a resolver error without children -> TRANSIENT_FAILURE with it", () => {
  const { helper, policy } = newPolicy();
  update(policy, "no such host");
  assert.equal(helper.latest.state, TRANSIENT_FAILURE);
  assert.equal(
    pickOne(helper.latest.picker).status?.details,
    "custom_round_robin: no endpoints were resolved: no such host",
  );
});

Deno.test("policy: a resolver error with children keeps serving", async () => {
  const { helper, policy } = await start();
  await set(helper, READY, READY);
  const reports = helper.reports.length;
  update(policy, "x");
  assert.equal(helper.reports.length, reports);
  assert.equal(helper.latest.state, READY);
  policy.destroy();
});

Deno.test("policy: resetBackoff and destroy reach every child", async () => {
  const { helper, policy } = await start();
  await set(helper, READY, READY);
  policy.resetBackoff();
  assert.deepEqual(
    [FIRST, SECOND].map((port) => helper.subchannel(port).backoffResets),
    [1, 1],
  );
  policy.destroy();
  assert.deepEqual(
    [FIRST, SECOND].map((port) => helper.subchannel(port).refs),
    [0, 0],
  );
});

/** A parent policy's own subchannel wrapper, as outlier_detection makes. */
class ParentWrapper extends experimental.BaseSubchannelWrapper {}

Deno.test("policy: with health checking, each pick returns the subchannel the parent's helper made, not the health wrapper", async () => {
  // The health streams of both fake subchannels run to one real server.
  const server = await startEchoServer("127.0.0.1:0");
  const channel = new Channel(server.address, credentials.createInsecure(), {});
  const fakes = new FakeHelper(channel);
  const made: ParentWrapper[] = [];
  const helper: experimental.ChannelControlHelper = {
    createSubchannel: (address) => {
      const wrapper = new ParentWrapper(fakes.createSubchannel(address));
      made.push(wrapper);
      return wrapper;
    },
    updateState: (state, picker, error) =>
      fakes.updateState(state, picker, error),
    requestReresolution: () => fakes.requestReresolution(),
    addChannelzChild: () => {},
    removeChannelzChild: () => {},
  };
  const policy = new customRoundRobin.LoadBalancer(helper);
  try {
    policy.updateAddressList(
      experimental.statusOrFromValue([FIRST, SECOND].map(endpoint)),
      new customRoundRobin.Config({ chooseSecond: 3 }),
      { [HEALTH_CHECK_SERVICE_NAME]: "" },
      "",
    );
    await tick();
    set(fakes, READY, READY);
    await until(
      "READY after the health answers",
      () =>
        fakes.latest.state === READY &&
        fakes.latest.picker instanceof CustomRoundRobinPicker,
    );
    const picked = Array.from(
      { length: 6 },
      () => pickOne(fakes.latest.picker).subchannel,
    );
    for (const subchannel of picked) {
      assert.ok(
        made.includes(subchannel as ParentWrapper),
        `a pick returned a ${subchannel?.constructor.name}`,
      );
    }
    assert.deepEqual(
      picked.map((subchannel) => subchannel!.getAddress()),
      [A, A, B, A, A, B],
    );
  } finally {
    policy.destroy();
    channel.close();
    await stopEchoServers([server], { drainMs: 0 });
  }
});
