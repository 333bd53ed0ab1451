/**
 * `definePolicy`, on a fake helper: what it writes for every policy (the
 * config class, the registration, the load balancer and its state), and
 * the one rule every policy follows for resolver errors, refused lists and
 * empty lists.
 */
import assert from "node:assert/strict";
import {
  connectivityState as ConnectivityState,
  experimental,
  status,
} from "@grpc/grpc-js";
import { definePolicy } from "../balancer/define_policy.ts";
import { customRoundRobin } from "../balancer/custom_round_robin.ts";
import { leastRequest } from "../balancer/least_request.ts";
import { checkServiceConfig } from "../balancer/service_config.ts";
import { endpoint, FakeHelper, pickOne, tick } from "../testing/fakes.ts";
import { LEAVES_PICK_FIRST_TIMER } from "../testing/sanitizers.ts";

const { READY, TRANSIENT_FAILURE } = ConnectivityState;

/** A policy that hands `combine` its instance, to see whose it is. */
const instances: object[] = [];
const counted = definePolicy({
  name: "counted",
  parse: (json) => ({ most: (json.most as number | undefined) ?? 3 }),
  maxEndpoints: 3,
  instance: () => ({ combined: 0 }),
  childData: () => ({ made: true }),
  combine(state, children, _settings, instance) {
    instance.combined++;
    instances.push(instance);
    assert.ok(children.every((child) => child.data.made));
    return { state };
  },
});

Deno.test("definePolicy: a config class that parses and writes the settings back; registering twice is harmless", () => {
  assert.deepEqual(counted.Config.createFromJson({}).toJsonObject(), {
    counted: { most: 3 },
  });
  assert.equal(counted.Config.createFromJson({ most: 2 }).settings.most, 2);
  assert.throws(
    () => counted.Config.createFromJson([]),
    /config must be a JSON object, got \[\]/,
  );
  counted.register();
  counted.register();
  assert.ok(experimental.isLoadBalancerNameRegistered("counted"));
  assert.equal(
    experimental.parseLoadBalancingConfig({ counted: {} })
      .getLoadBalancerName(),
    "counted",
  );
});

Deno.test("definePolicy: checkServiceConfig knows a registered policy's most endpoints, under outlier_detection", () => {
  counted.register();
  const over = (minimumHosts: number) => ({
    loadBalancingConfig: [{
      outlier_detection: {
        failure_percentage_ejection: { minimum_hosts: minimumHosts },
        child_policy: [{ counted: {} }],
      },
    }],
  });
  checkServiceConfig(over(3));
  assert.throws(
    () => checkServiceConfig(over(4)),
    /^Error: invalid service config: outlier_detection\.failure_percentage_ejection\.minimum_hosts is 4, but counted has 3 endpoints, so no backend could ever be ejected: set it to 3$/,
  );
});

Deno.test(
  "definePolicy: each load balancer has an instance of its own, and each child its data",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    instances.length = 0;
    const config = counted.Config.createFromJson({});
    const policies = [1, 2].map(() =>
      new counted.LoadBalancer(new FakeHelper())
    );
    for (const policy of policies) {
      policy.updateAddressList(
        experimental.statusOrFromValue([endpoint(1), endpoint(2)]),
        config,
        {},
        "",
      );
    }
    await tick();
    assert.equal(instances.length, 2);
    assert.notEqual(instances[0], instances[1]);
    for (const policy of policies) policy.destroy();
  },
);

/** A resolution problem, as the channel hands it on. */
type Problem = "error" | "empty" | "refused";

/** Each policy and the problems it can meet, with a list it accepts. */
const POLICIES = [
  { policy: customRoundRobin, problems: ["error", "empty", "refused"] },
  { policy: leastRequest, problems: ["error", "empty"] },
] as const;

function updateWith(
  policy: experimental.LoadBalancer,
  config: experimental.TypedLoadBalancingConfig,
  what: Problem | "good",
  note: string,
): boolean {
  const list = what === "good"
    ? [endpoint(1), endpoint(2)]
    : what === "empty"
    ? []
    : [endpoint(1), endpoint(2), endpoint(3)];
  return policy.updateAddressList(
    what === "error"
      ? experimental.statusOrFromError({
        code: status.UNAVAILABLE,
        details: "the name is unknown",
      })
      : experimental.statusOrFromValue(list),
    config,
    {},
    note,
  );
}

const REASONS: Record<Problem, string> = {
  error: "the name is unknown",
  empty: "the resolver returned an empty list",
  refused: "expected exactly 2 endpoints, got 3",
};

for (const { policy, problems } of POLICIES) {
  for (const problem of problems) {
    Deno.test(
      `resolution problems: ${policy.name}, ${problem}: without children TRANSIENT_FAILURE saying no endpoints were resolved, with the note; with children it keeps serving; both ask for re-resolution`,
      LEAVES_PICK_FIRST_TIMER,
      async () => {
        const helper = new FakeHelper();
        const balancer = new policy.LoadBalancer(helper);
        const config = policy.Config.createFromJson({});
        assert.equal(updateWith(balancer, config, problem, "from DNS"), true);
        await tick();
        assert.equal(helper.reresolutions, 1);
        assert.equal(helper.latest.state, TRANSIENT_FAILURE);
        const message = helper.latest.errorMessage ?? "";
        assert.ok(
          message.startsWith(
            `${policy.name}: no endpoints were resolved: ${REASONS[problem]}`,
          ),
          message,
        );
        assert.ok(message.endsWith("; resolution note: from DNS"), message);
        assert.equal(pickOne(helper.latest.picker).status?.details, message);
        // Without a note, none is named.
        updateWith(balancer, config, problem, "");
        assert.ok(!helper.latest.errorMessage!.includes("note"));

        updateWith(balancer, config, "good", "");
        await tick();
        helper.subchannel(1).setState(ConnectivityState.CONNECTING);
        helper.subchannel(1).setState(READY);
        await tick();
        const reports = helper.reports.length;
        const before = helper.reresolutions;
        assert.equal(updateWith(balancer, config, problem, "again"), true);
        await tick();
        assert.equal(helper.reresolutions, before + 1);
        assert.equal(helper.reports.length, reports, "nothing new shown");
        assert.equal(helper.latest.state, READY);
        assert.equal(
          pickOne(helper.latest.picker).subchannel?.getAddress(),
          "127.0.0.1:1",
        );
        balancer.destroy();
      },
    );
  }
}
