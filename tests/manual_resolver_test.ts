/**
 * The manual resolver, driven through grpc-js's own `createResolver` as a
 * channel drives it: its answers, their rate limit, and bad input.
 */
import assert from "node:assert/strict";
import { lookup } from "node:dns/promises";
import { experimental } from "@grpc/grpc-js";
import {
  ManualResolver,
  MIN_RERESOLUTION_INTERVAL_MS,
  type ResolverState,
} from "../balancer/discovery/manual_resolver.ts";
import { EndpointSharding } from "../balancer/endpoint_sharding.ts";
import { SERVER_NAMES } from "../balancer/discovery/server_names.ts";
import { HEALTH_CHECK_SERVICE_NAME } from "../balancer/health_check.ts";
import { registerCustomRoundRobin } from "../balancer/mod.ts";
import { logged, until } from "../testing/wait.ts";
import { FakeClock, tick } from "../testing/fakes.ts";

registerCustomRoundRobin();

/** One answer a channel got. */
interface Answer {
  readonly at: number;
  readonly endpoints: experimental.StatusOr<experimental.Endpoint[]>;
  readonly attributes: { [key: string]: unknown };
  readonly serviceConfig: experimental.StatusOr<unknown> | null;
}

let schemes = 0;

/**
 * A registered resolver and one channel's resolver of it, on a clock the
 * test moves.
 */
function resolve(state: ResolverState) {
  const scheme = `manual-resolver-test-${++schemes}`;
  const clock = new FakeClock();
  const owner = new ManualResolver(scheme, state, clock);
  owner.register();
  const answers: Answer[] = [];
  const channel = experimental.createResolver(
    { scheme, path: "echo" },
    (endpoints, attributes, serviceConfig) => {
      answers.push({
        at: clock.now(),
        endpoints,
        attributes,
        serviceConfig,
      });
      return true;
    },
    {},
  );
  return { owner, channel, answers, clock };
}

const CONFIG = {
  loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 2 } }],
};

/** The `host:port` of each address of each endpoint in `answer`. */
function addresses(answer: Answer): string[][] {
  assert.ok(answer.endpoints.ok, "endpoints resolved");
  return answer.endpoints.value.map((endpoint) =>
    endpoint.addresses.map(experimental.subchannelAddressToString)
  );
}

Deno.test("manual resolver: answers with the endpoints in order and the checked config; update() pushes a new answer", async () => {
  const { owner, channel, answers } = resolve({
    endpoints: ["127.0.0.1:1001", "[::1]:1002"],
    serviceConfig: CONFIG,
  });
  try {
    channel.updateResolution();
    await until("first answer", () => answers.length === 1);
    assert.deepEqual(addresses(answers[0]), [["127.0.0.1:1001"], [
      "[::1]:1002",
    ]]);
    assert.deepEqual(owner.lastAddresses, addresses(answers[0]));
    assert.ok(answers[0].serviceConfig?.ok);
    // Its config has no healthCheckConfig: that turns health checking off,
    // whatever the channel's default config says.
    assert.deepEqual(answers[0].attributes, {
      [HEALTH_CHECK_SERVICE_NAME]: null,
      [SERVER_NAMES]: {},
    });

    // An update that leaves the config out keeps it: no silent fall back to
    // the channel's default, pick_first.
    owner.update({ endpoints: ["127.0.0.1:1001", "127.0.0.1:1003"] });
    await until("second answer", () => answers.length === 2);
    assert.deepEqual(addresses(answers[1]), [["127.0.0.1:1001"], [
      "127.0.0.1:1003",
    ]]);
    assert.deepEqual(answers[1].serviceConfig, answers[0].serviceConfig);
    assert.deepEqual(answers[1].attributes, answers[0].attributes);

    owner.update({ endpoints: ["127.0.0.1:1001"], serviceConfig: null });
    await until("third answer", () => answers.length === 3);
    assert.equal(answers[2].serviceConfig, null, "null: none handed on");
    assert.deepEqual(
      answers[2].attributes,
      { [SERVER_NAMES]: {} },
      "the default config applies",
    );
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: a policy registered after the resolver is made, before the channel, is used: the config is checked at the first resolution", async () => {
  const name = "registered_after_the_resolver";
  const { channel, answers } = resolve({
    endpoints: ["127.0.0.1:1001", "127.0.0.1:1002"],
    serviceConfig: { loadBalancingConfig: [{ [name]: {} }] },
  });
  experimental.registerLoadBalancerType(
    name,
    class extends EndpointSharding {
      constructor(helper: experimental.ChannelControlHelper) {
        super(helper, { name, combine: (state) => ({ state }) });
      }
    },
    class {
      getLoadBalancerName = () => name;
      toJsonObject = () => ({ [name]: {} });
      static createFromJson = () => new this();
    },
  );
  try {
    channel.updateResolution();
    await until("first answer", () => answers.length === 1);
    const config = answers[0].serviceConfig;
    assert.ok(config?.ok, config?.ok === false ? config.error.details : "");
    assert.deepEqual(
      (config.value as { loadBalancingConfig: unknown }).loadBalancingConfig,
      [{ [name]: {} }],
    );
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: a channel's re-resolution requests are answered at most once per interval", async () => {
  const { channel, answers, clock } = resolve({
    endpoints: ["127.0.0.1:1001"],
  });
  try {
    channel.updateResolution();
    await until("first answer", () => answers.length === 1);
    // Requests from the channel (a backend lost, say) wait for their turn.
    channel.updateResolution();
    channel.updateResolution();
    assert.equal(clock.pending, 1, "the two requests wait as one");
    clock.advance(MIN_RERESOLUTION_INTERVAL_MS - 1);
    await tick();
    assert.equal(answers.length, 1, "not before the interval is over");
    clock.advance(1);
    await until("second answer", () => answers.length === 2);
    assert.equal(answers[1].at - answers[0].at, MIN_RERESOLUTION_INTERVAL_MS);
    clock.advance(10 * MIN_RERESOLUTION_INTERVAL_MS);
    await tick();
    assert.equal(answers.length, 2, "the two requests made one answer");
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: re-resolution does no config work: 1,000 of them read the config 0 times, so make no Channel", async () => {
  // Checking a config makes a Channel of its JSON text: a read of the
  // config comes before each.
  let reads = 0;
  const serviceConfig = {
    get loadBalancingConfig() {
      reads++;
      return CONFIG.loadBalancingConfig;
    },
  };
  const { channel, answers, clock } = resolve({
    endpoints: ["127.0.0.1:1001", "127.0.0.1:1002"],
    serviceConfig,
  });
  assert.equal(reads, 0, "not checked before a channel asks");
  try {
    channel.updateResolution();
    await until("first answer", () => answers.length === 1);
    const whenGiven = reads;
    assert.ok(whenGiven > 0, "checked at the first resolution");
    for (let i = 2; i <= 1001; i++) {
      channel.updateResolution();
      clock.advance(MIN_RERESOLUTION_INTERVAL_MS);
      // The answer is a few promise turns away: no timer, no real wait.
      for (let turns = 0; answers.length < i; turns++) {
        assert.ok(turns < 100, `no answer ${i}`);
        await Promise.resolve();
      }
    }
    assert.ok(answers.every((answer) => answer.serviceConfig?.ok));
    console.log(
      `1,000 re-resolutions: the config read ${
        reads - whenGiven
      } times after the first resolution (each check reads it, then makes a Channel)`,
    );
    assert.equal(reads, whenGiven);
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: healthCheckConfig reaches the balancer as an attribute", async () => {
  const { channel, answers } = resolve({
    endpoints: ["127.0.0.1:1001"],
    serviceConfig: { ...CONFIG, healthCheckConfig: { serviceName: "x.Y" } },
  });
  try {
    channel.updateResolution();
    await until("an answer", () => answers.length === 1);
    assert.deepEqual(answers[0].attributes, {
      [HEALTH_CHECK_SERVICE_NAME]: "x.Y",
      [SERVER_NAMES]: {},
    });
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: each address of an endpoint given by name is named for TLS; an IP address is not", async () => {
  const { channel, answers } = resolve({
    endpoints: ["localhost:1001", "127.0.0.1:1002"],
  });
  try {
    channel.updateResolution();
    await until("an answer", () => answers.length === 1);
    const [byName] = addresses(answers[0]);
    assert.ok(byName.includes("127.0.0.1:1001"), String(byName));
    assert.deepEqual(
      answers[0].attributes[SERVER_NAMES],
      Object.fromEntries(byName.map((address) => [address, "localhost"])),
    );
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: an invalid service config is logged and handed on as an error", async () => {
  const { channel, answers } = resolve({
    endpoints: ["127.0.0.1:1001"],
    serviceConfig: {
      loadBalancingConfig: [{ custom_round_robin: { chooseSecond: -1 } }],
    },
  });
  try {
    const lines = await logged(async () => {
      channel.updateResolution();
      await until("an answer", () => answers.length === 1);
    });
    const config = answers[0].serviceConfig;
    assert.ok(config !== null && !config.ok);
    assert.match(config.error.details, /chooseSecond must be an integer/);
    assert.ok(answers[0].endpoints.ok, "the endpoints still resolve");
    assert.ok(
      lines.some((line) =>
        /resolver: custom_round_robin: chooseSecond/.test(line)
      ),
      lines.join("\n"),
    );
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: an endpoint that is not host:port fails resolution with its name", async () => {
  const { channel, answers } = resolve({
    endpoints: ["127.0.0.1:1001", "no-port-here"],
  });
  try {
    channel.updateResolution();
    await until("an answer", () => answers.length === 1);
    const { endpoints } = answers[0];
    assert.ok(!endpoints.ok);
    assert.match(
      endpoints.error.details,
      /^manual-resolver-test-\d+ resolver: endpoint must be host:port, got "no-port-here"$/,
    );
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: a destroyed channel's resolver gets no more answers", async () => {
  const { owner, channel, answers } = resolve({
    endpoints: ["127.0.0.1:1001"],
  });
  channel.updateResolution();
  await until("an answer", () => answers.length === 1);
  channel.destroy();
  owner.update({ endpoints: ["127.0.0.1:1002"] });
  await tick();
  assert.equal(answers.length, 1);
});

Deno.test("manual resolver: destroyed with a request waiting, or with an answer on its way, a channel's resolver gets neither", async () => {
  const { channel, answers, clock } = resolve({
    endpoints: ["127.0.0.1:1001"],
  });
  channel.updateResolution();
  await until("an answer", () => answers.length === 1);
  channel.updateResolution();
  assert.equal(clock.pending, 1, "a request waits for its turn");
  channel.destroy();
  assert.equal(clock.pending, 0, "destroy drops the waiting request");
  clock.advance(MIN_RERESOLUTION_INTERVAL_MS);
  await tick();
  assert.equal(answers.length, 1);

  // An answer whose name lookup is still running when the channel goes.
  const named = resolve({ endpoints: ["localhost:1001"] });
  const control = resolve({ endpoints: ["localhost:1001"] });
  named.channel.updateResolution();
  control.channel.updateResolution();
  named.channel.destroy();
  // Once the same lookup has answered the control, it has ended for both.
  await until("the control's answer", () => control.answers.length === 1);
  control.channel.destroy();
  await tick();
  assert.deepEqual(named.answers, []);
});

Deno.test("manual resolver: a request exactly one interval after the last answer is answered at once", async () => {
  const { channel, answers, clock, owner } = resolve({
    endpoints: ["127.0.0.1:1001"],
  });
  assert.deepEqual(owner.lastAddresses, [], "nothing resolved yet");
  try {
    channel.updateResolution();
    await until("first answer", () => answers.length === 1);
    clock.advance(MIN_RERESOLUTION_INTERVAL_MS);
    channel.updateResolution();
    assert.equal(clock.pending, 0);
    await until("second answer", () => answers.length === 2);
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: an endpoint given with a hash key is handed on with it (gRFC A76), its TLS name by its address", async () => {
  const { channel, answers } = resolve({
    endpoints: [
      { address: "localhost:1001", hashKey: "echo-0" },
      "127.0.0.1:1002",
    ],
  });
  try {
    channel.updateResolution();
    await until("first answer", () => answers.length === 1);
    const { endpoints, attributes } = answers[0];
    assert.ok(endpoints.ok);
    assert.deepEqual(
      endpoints.value.map((endpoint) =>
        (endpoint as { hashKey?: string }).hashKey
      ),
      ["echo-0", undefined],
    );
    assert.equal(
      (attributes[SERVER_NAMES] as Record<string, string>)["127.0.0.1:1001"],
      "localhost",
    );
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: no service config given is none too", async () => {
  const { channel, answers } = resolve({ endpoints: ["127.0.0.1:1001"] });
  try {
    channel.updateResolution();
    await until("an answer", () => answers.length === 1);
    assert.equal(answers[0].serviceConfig, null);
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: a null service config is none, so the channel takes its default; update() with null drops the last config, without it keeps it", async () => {
  const { owner, channel, answers, clock } = resolve({
    endpoints: ["127.0.0.1:1001"],
    serviceConfig: null,
  });
  try {
    channel.updateResolution();
    await until("an answer", () => answers.length === 1);
    assert.equal(answers[0].serviceConfig, null);
    assert.deepEqual(addresses(answers[0]), [["127.0.0.1:1001"]]);
    owner.update({ endpoints: ["127.0.0.1:1002"], serviceConfig: CONFIG });
    await until("a second answer", () => answers.length === 2);
    assert.ok(answers[1].serviceConfig?.ok, "the config given");
    clock.advance(MIN_RERESOLUTION_INTERVAL_MS);
    owner.update({ endpoints: ["127.0.0.1:1003"] });
    await until("a third answer", () => answers.length === 3);
    assert.ok(answers[2].serviceConfig?.ok, "the config kept");
    clock.advance(MIN_RERESOLUTION_INTERVAL_MS);
    owner.update({ endpoints: ["127.0.0.1:1004"], serviceConfig: null });
    await until("a fourth answer", () => answers.length === 4);
    assert.equal(answers[3].serviceConfig, null);
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: answers that resolve out of order: an earlier update's answer, its name looked up, does not follow a later one's", async () => {
  const { owner, channel, answers } = resolve({
    endpoints: ["127.0.0.1:1000"],
  });
  try {
    channel.updateResolution();
    await until("an answer", () => answers.length === 1);
    owner.update({ endpoints: ["localhost:1001"] }); // a name: looked up
    owner.update({ endpoints: ["127.0.0.1:1002"] }); // an address: at once
    await until("the later update's answer", () => answers.length >= 2);
    // A lookup made after the earlier update's has ended: so, most likely,
    // has that one, whose answer a stale resolver would hand on now.
    await lookup("localhost", { all: true });
    await tick();
    assert.deepEqual(answers.slice(1).map(addresses), [[["127.0.0.1:1002"]]]);
  } finally {
    channel.destroy();
  }
});

Deno.test("manual resolver: on the real clock, a request within the interval is answered when it has passed, not before; one still waiting when its channel goes is dropped with its timer", async () => {
  const scheme = `manual-resolver-test-${++schemes}`;
  new ManualResolver(scheme, { endpoints: ["127.0.0.1:1001"] }).register();
  const answered: number[] = [];
  const channel = experimental.createResolver(
    { scheme, path: "echo" },
    () => {
      answered.push(performance.now());
      return true;
    },
    {},
  );
  try {
    const start = performance.now();
    channel.updateResolution();
    await until("the first answer", () => answered.length === 1);
    channel.updateResolution();
    await until("the second answer", () => answered.length === 2, 5_000);
    assert.ok(
      answered[1] - start >= MIN_RERESOLUTION_INTERVAL_MS - 1,
      `answered after ${answered[1] - start} ms`,
    );
    channel.updateResolution(); // waits for the interval, then is dropped
  } finally {
    channel.destroy();
  }
  assert.equal(answered.length, 2);
});
