import assert from "node:assert/strict";
import {
  CustomRoundRobinConfig,
  MAX_CHOOSE_SECOND,
} from "../balancer/custom_round_robin.ts";

Deno.test("config: valid chooseSecond values parse and keep their value", () => {
  for (const chooseSecond of [0, 1, 2, 3, 7, 1000, MAX_CHOOSE_SECOND]) {
    const config = CustomRoundRobinConfig.createFromJson({ chooseSecond });
    assert.equal(config.chooseSecond, chooseSecond);
    assert.equal(config.getLoadBalancerName(), "custom_round_robin");
  }
});

Deno.test("config: chooseSecond defaults to 3", () => {
  assert.equal(CustomRoundRobinConfig.createFromJson({}).chooseSecond, 3);
  assert.equal(new CustomRoundRobinConfig().chooseSecond, 3);
});

Deno.test("config: unknown fields are ignored", () => {
  const config = CustomRoundRobinConfig.createFromJson({
    chooseSecond: 5,
    futureField: { anything: true },
  });
  assert.deepEqual(config.toJsonObject(), {
    custom_round_robin: { chooseSecond: 5 },
  });
});

Deno.test("config: invalid chooseSecond values are errors naming policy, field and value", () => {
  const cases: [unknown, string][] = [
    [-1, "-1"],
    [1.5, "1.5"],
    ["abc", '"abc"'],
    ["3", '"3"'],
    [null, "null"],
    [MAX_CHOOSE_SECOND + 1, "4294967296"],
    [Number.NaN, "null"],
    [true, "true"],
    [[3], "[3]"],
    [{ value: 3 }, '{"value":3}'],
  ];
  for (const [chooseSecond, shown] of cases) {
    assert.throws(
      () => CustomRoundRobinConfig.createFromJson({ chooseSecond }),
      {
        message:
          `custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got ${shown}`,
      },
      `chooseSecond ${shown}`,
    );
  }
});

Deno.test("config: a config that is not an object is an error", () => {
  for (const json of [null, 3, "x", [1]]) {
    assert.throws(
      () => CustomRoundRobinConfig.createFromJson(json),
      /^Error: custom_round_robin: config must be a JSON object, got /,
    );
  }
});

Deno.test("config: JSON round trip gives the same JSON", () => {
  for (
    const json of [{ chooseSecond: 0 }, { chooseSecond: 3 }, {
      chooseSecond: MAX_CHOOSE_SECOND,
    }]
  ) {
    const first = CustomRoundRobinConfig.createFromJson(json).toJsonObject();
    assert.deepEqual(first, { custom_round_robin: json });
    const text = JSON.stringify(first);
    const again = CustomRoundRobinConfig.createFromJson(
      JSON.parse(text).custom_round_robin,
    );
    assert.equal(JSON.stringify(again.toJsonObject()), text);
  }
});
