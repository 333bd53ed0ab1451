import assert from "node:assert/strict";
import { registerCustomRoundRobin } from "../balancer/mod.ts";
import { parseServiceConfig } from "../balancer/service_config.ts";

registerCustomRoundRobin();

Deno.test("service config: a valid config parses, from an object or JSON text", () => {
  const json = {
    loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 2 } }],
  };
  for (const input of [json, JSON.stringify(json)]) {
    const { config } = parseServiceConfig(input);
    assert.deepEqual(config.loadBalancingConfig, json.loadBalancingConfig);
    assert.deepEqual(config.methodConfig, []);
  }
});

Deno.test("service config: the first registered policy is the one used", () => {
  const { config } = parseServiceConfig({
    loadBalancingConfig: [
      { not_registered_here: {} },
      { custom_round_robin: { chooseSecond: 5 } },
      { round_robin: {} },
    ],
  });
  assert.deepEqual(config.loadBalancingConfig, [
    { custom_round_robin: { chooseSecond: 5 } },
  ]);
});

Deno.test("service config: without loadBalancingConfig it is left to grpc-js's default", () => {
  assert.deepEqual(parseServiceConfig({}).config.loadBalancingConfig, []);
});

Deno.test("service config: errors are one line saying what is wrong", () => {
  const cases: [unknown, string][] = [
    ["{", "invalid service config: "],
    [[], "invalid service config: expected a JSON object, got []"],
    [null, "invalid service config: expected a JSON object, got null"],
    [
      { loadBalancingConfig: {} },
      "invalid service config: Invalid service config: invalid loadBalancingConfig",
    ],
    [
      { methodConfig: {} },
      "invalid service config: Invalid service config: methodConfig must be an array",
    ],
    [
      { methodConfig: [{ name: [{ service: "a" }], timeout: "soon" }] },
      "invalid service config: Invalid method config: invalid timeout",
    ],
    [
      { loadBalancingConfig: [{ a: {}, b: {} }] },
      "invalid service config: Invalid loadBalancingConfig: unexpected multiple keys a,b",
    ],
    [
      { loadBalancingConfig: [{ custom_round_robn: {} }] },
      "invalid service config: no load-balancing policy in loadBalancingConfig is registered: custom_round_robn",
    ],
    [
      { loadBalancingConfig: [{ custom_round_robin: { chooseSecond: -1 } }] },
      "custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got -1",
    ],
    [
      { loadBalancingConfig: [{ custom_round_robin: { chooseSecond: null } }] },
      "custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got null",
    ],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => parseServiceConfig(input), (error: Error) => {
      assert.ok(error.message.startsWith(message), error.message);
      assert.ok(!error.message.includes("\n"), "one line");
      return true;
    });
  }
});

Deno.test("service config: a method timeout in JSON form becomes grpc-js's seconds and nanos", () => {
  const { config } = parseServiceConfig({
    methodConfig: [
      { name: [{ service: "a" }], timeout: "1.5s" },
      { name: [{ service: "b" }], timeout: "2s" },
      { name: [{ service: "c" }], timeout: "1.25s" },
      { name: [{ service: "d" }], timeout: "0.001s" },
    ],
  });
  assert.deepEqual(config.methodConfig.map((method) => method.timeout), [
    { seconds: 1, nanos: 500_000_000 },
    { seconds: 2, nanos: 0 },
    { seconds: 1, nanos: 250_000_000 },
    { seconds: 0, nanos: 1_000_000 },
  ]);
});

/** A config with outlier_detection over `child`, with `knobs`. */
function outlierDetection(
  knobs: Record<string, unknown>,
  child: unknown = [{ custom_round_robin: { chooseSecond: 3 } }],
) {
  return {
    loadBalancingConfig: [{
      outlier_detection: { ...knobs, child_policy: child },
    }],
  };
}

Deno.test("service config: outlier_detection over the policy parses, and its child is checked, naming the field", () => {
  const good = outlierDetection({
    interval: { seconds: 1, nanos: 0 },
    failure_percentage_ejection: { minimum_hosts: 2 },
  });
  assert.deepEqual(
    parseServiceConfig(good).config.loadBalancingConfig,
    good.loadBalancingConfig,
  );
  const cases: [unknown, string][] = [
    [
      outlierDetection({}, [{ custom_round_robin: { chooseSecond: -1 } }]),
      "invalid service config: outlier_detection.child_policy: custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got -1",
    ],
    [
      outlierDetection({}, [{ custom_round_robn: {} }]),
      "invalid service config: no load-balancing policy in outlier_detection.child_policy is registered: custom_round_robn",
    ],
    [
      outlierDetection({ interval: "1s" }),
      'invalid service config: outlier_detection.interval: grpc-js wants a duration as {"seconds": N, "nanos": N}, got "1s"',
    ],
    [
      outlierDetection({ base_ejection_time: "30s" }),
      'invalid service config: outlier_detection.base_ejection_time: grpc-js wants a duration as {"seconds": N, "nanos": N}, got "30s"',
    ],
    [
      outlierDetection({ failure_percentage_ejection: { minimum_hosts: 3 } }),
      "invalid service config: outlier_detection.failure_percentage_ejection.minimum_hosts is 3, but custom_round_robin has 2 endpoints, so no backend could ever be ejected: set it to 2",
    ],
    [
      outlierDetection({ success_rate_ejection: {} }),
      "invalid service config: outlier_detection.success_rate_ejection.minimum_hosts is 5 (grpc-js's default), but custom_round_robin has 2 endpoints, so no backend could ever be ejected: set it to 2",
    ],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => parseServiceConfig(input), { message });
  }
  // Over a policy of any number of endpoints, minimum_hosts is the user's.
  parseServiceConfig(
    outlierDetection({ success_rate_ejection: {} }, [{ round_robin: {} }]),
  );
});

/** `outlier_detection` over `custom_round_robin`, with `knobs` added. */
function underOutlier(knobs: Record<string, unknown>) {
  return {
    loadBalancingConfig: [{
      outlier_detection: {
        ...knobs,
        child_policy: [{ custom_round_robin: {} }],
      },
    }],
  };
}

Deno.test("service config: the edges of each check, each in its own words", () => {
  const invalid = (config: unknown, message: string) =>
    assert.throws(
      () => parseServiceConfig(config),
      (error: Error) => error.message === `invalid service config: ${message}`,
      JSON.stringify(config),
    );
  for (const bad of [[], null, 3]) {
    invalid(bad, `expected a JSON object, got ${JSON.stringify(bad)}`);
  }
  assert.ok(
    (() => {
      try {
        parseServiceConfig("[]");
      } catch (error) {
        return (error as Error).cause instanceof Error;
      }
    })(),
    "the underlying error is kept",
  );
  invalid(
    { loadBalancingConfig: [{ no_such: {} }, { nor_this: {} }] },
    "no load-balancing policy in loadBalancingConfig is registered: no_such, nor_this",
  );
  for (const field of ["interval", "base_ejection_time", "max_ejection_time"]) {
    invalid(
      underOutlier({ [field]: "10s" }),
      `outlier_detection.${field}: grpc-js wants a duration as {"seconds": N, "nanos": N}, got "10s"`,
    );
  }
  // Only outlier_detection's durations are checked so.
  parseServiceConfig({
    loadBalancingConfig: [{ custom_round_robin: { interval: "10s" } }],
  });
  // No ejection method, or minimum_hosts 2: nothing refused.
  parseServiceConfig(underOutlier({}));
  parseServiceConfig(
    underOutlier({ success_rate_ejection: { minimum_hosts: 2 } }),
  );
  invalid(
    underOutlier({ failure_percentage_ejection: {} }),
    "outlier_detection.failure_percentage_ejection.minimum_hosts is 5 (grpc-js's default), but custom_round_robin has 2 endpoints, so no backend could ever be ejected: set it to 2",
  );
});

Deno.test("service config: a timeout's fraction of a second becomes nanoseconds, to the last digit", () => {
  const timeout = (text: string) =>
    (parseServiceConfig({
      methodConfig: [{ name: [{ service: "x" }], timeout: text }],
    }).config.methodConfig[0] as { timeout?: unknown }).timeout;
  assert.deepEqual(timeout("1.5s"), { seconds: 1, nanos: 500_000_000 });
  assert.deepEqual(timeout("2s"), { seconds: 2, nanos: 0 });
  assert.deepEqual(timeout("0.000000001s"), { seconds: 0, nanos: 1 });
});
