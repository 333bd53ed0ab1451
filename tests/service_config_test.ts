import assert from "node:assert/strict";
import { registerCustomRoundRobin } from "../balancer/mod.ts";
import { parseServiceConfig } from "../balancer/service_config.ts";

registerCustomRoundRobin();

Deno.test("service config: a valid config parses, from an object or JSON text", () => {
  const json = {
    loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 2 } }],
  };
  for (const input of [json, JSON.stringify(json)]) {
    const config = parseServiceConfig(input);
    assert.deepEqual(config.loadBalancingConfig, json.loadBalancingConfig);
    assert.deepEqual(config.methodConfig, []);
  }
});

Deno.test("service config: the first registered policy is the one used", () => {
  const config = parseServiceConfig({
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
  assert.deepEqual(parseServiceConfig({}).loadBalancingConfig, []);
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
  const config = parseServiceConfig({
    methodConfig: [
      { name: [{ service: "a" }], timeout: "1.5s" },
      { name: [{ service: "b" }], timeout: "2s" },
    ],
  });
  assert.deepEqual(config.methodConfig.map((method) => method.timeout), [
    { seconds: 1, nanos: 500_000_000 },
    { seconds: 2, nanos: 0 },
  ]);
});
