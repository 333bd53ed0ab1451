/**
 * The `dns` resolver wrapper's reading of a TXT service config, how its
 * answer ranks against the channel's default config, and the wrapper itself
 * over a stub resolver and a stub TXT lookup. Against a real DNS server, see
 * dns_test.ts.
 */
import assert from "node:assert/strict";
import { experimental } from "@grpc/grpc-js";
import {
  healthCheckFromTxt,
  TxtHealthCheckResolver,
} from "../balancer/discovery/_txt_health_check.ts";
import { tick } from "../testing/fakes.ts";
import {
  HEALTH_CHECK_SERVICE_NAME,
  healthCheckServiceFromOptions,
} from "../balancer/health_check.ts";

/** A TXT record holding `choices`, split as DNS splits long strings. */
function txt(choices: unknown): string[][] {
  const text = `grpc_config=${JSON.stringify(choices)}`;
  return [["v=spf1 -all"], [text.slice(0, 20), text.slice(20)]];
}

const WITH_HEALTH = {
  loadBalancingConfig: [{ custom_round_robin: {} }],
  healthCheckConfig: { serviceName: "grpc.examples.echo.Echo" },
};

Deno.test("dns resolver: a TXT service config's healthCheckConfig names the service", () => {
  assert.equal(
    healthCheckFromTxt(txt([{ serviceConfig: WITH_HEALTH }]), 50),
    "grpc.examples.echo.Echo",
  );
});

Deno.test("dns resolver: a TXT service config without healthCheckConfig turns it off; no TXT config leaves the default", () => {
  assert.equal(
    healthCheckFromTxt(txt([{ serviceConfig: { methodConfig: [] } }]), 50),
    null,
  );
  assert.equal(healthCheckFromTxt([["v=spf1 -all"]], 50), undefined);
  assert.equal(healthCheckFromTxt([], 50), undefined);
});

Deno.test("dns resolver: the choice is grpc-js's: first match of language and percentage", () => {
  const choices = [
    {
      clientLanguage: ["go"],
      serviceConfig: { healthCheckConfig: { serviceName: "go" } },
    },
    {
      percentage: 10,
      serviceConfig: { healthCheckConfig: { serviceName: "canary" } },
    },
    { clientLanguage: ["go", "node"], serviceConfig: WITH_HEALTH },
  ];
  assert.equal(healthCheckFromTxt(txt(choices), 5), "canary");
  assert.equal(healthCheckFromTxt(txt(choices), 50), "grpc.examples.echo.Echo");
  assert.equal(healthCheckFromTxt(txt(choices.slice(0, 1)), 50), undefined);
});

Deno.test("dns resolver: a TXT record that is not a choice list is an error", () => {
  assert.throws(() => healthCheckFromTxt([["grpc_config={"]], 50), SyntaxError);
  assert.throws(
    () => healthCheckFromTxt(txt({ serviceConfig: {} }), 50),
    /grpc_config is not a list/,
  );
});

Deno.test("health check service: a resolver's answer, even null, ranks above the channel's default config", () => {
  const defaultConfig = {
    "grpc.service_config": JSON.stringify({
      healthCheckConfig: { serviceName: "from.Default" },
    }),
  };
  assert.equal(healthCheckServiceFromOptions(defaultConfig), "from.Default");
  assert.equal(
    healthCheckServiceFromOptions({
      ...defaultConfig,
      [HEALTH_CHECK_SERVICE_NAME]: "from.Resolver",
    }),
    "from.Resolver",
  );
  assert.equal(
    healthCheckServiceFromOptions({
      ...defaultConfig,
      [HEALTH_CHECK_SERVICE_NAME]: null,
    }),
    null,
  );
});

/**
 * The wrapper over a stub resolver whose resolutions the test makes, and a
 * stub TXT lookup answering `records` (or failing, for `null`).
 */
function wrapperOver(records: string[][] | null) {
  const handedOn: Record<string, unknown>[] = [];
  let resolve: (() => void) | null = null;
  let lookups = 0;
  const resolver = new TxtHealthCheckResolver(
    (_endpoints, attributes) => {
      handedOn.push(attributes);
      return true;
    },
    (listener) => {
      resolve = () =>
        listener(
          experimental.statusOrFromValue([]),
          { inner: true },
          null,
          "",
        );
      return { updateResolution() {}, destroy() {} };
    },
    () => {
      lookups++;
      return records === null
        ? Promise.reject(new Error("NXDOMAIN"))
        : Promise.resolve(records);
    },
  );
  return {
    handedOn,
    get lookups() {
      return lookups;
    },
    /** One resolution of the inner resolver, and the lookup it sets off. */
    async resolution() {
      resolve!();
      await tick();
    },
    resolver,
  };
}

Deno.test("dns resolver wrapper: a TXT config's service name is handed on with the inner resolution, again once it is known", async () => {
  const t = wrapperOver(txt([{ serviceConfig: WITH_HEALTH }]));
  await t.resolution();
  assert.equal(t.lookups, 1);
  // First as the inner resolver gave it; then, the TXT answer in, again.
  assert.deepEqual(t.handedOn, [
    { inner: true },
    { inner: true, [HEALTH_CHECK_SERVICE_NAME]: "grpc.examples.echo.Echo" },
  ]);
  await t.resolution();
  assert.equal(t.handedOn.length, 3, "no second hand-on for the same name");
  assert.equal(
    t.handedOn.at(-1)![HEALTH_CHECK_SERVICE_NAME],
    "grpc.examples.echo.Echo",
  );
  t.resolver.destroy();
});

Deno.test("dns resolver wrapper: a TXT config without healthCheckConfig hands on null, turning health checking off over the channel's default", async () => {
  const t = wrapperOver(txt([{ serviceConfig: { methodConfig: [] } }]));
  await t.resolution();
  const attributes = t.handedOn.at(-1)!;
  assert.equal(attributes[HEALTH_CHECK_SERVICE_NAME], null);
  const channelDefault = JSON.stringify({
    healthCheckConfig: WITH_HEALTH.healthCheckConfig,
  });
  assert.equal(
    healthCheckServiceFromOptions({
      ...attributes,
      "grpc.service_config": channelDefault,
    }),
    null,
  );
  t.resolver.destroy();
});

Deno.test("dns resolver wrapper: no TXT record leaves the resolution as it is", async () => {
  for (const records of [null, [["v=spf1 -all"]]]) {
    const t = wrapperOver(records);
    await t.resolution();
    assert.deepEqual(t.handedOn, [{ inner: true }]);
    t.resolver.destroy();
  }
});

Deno.test("dns resolver wrapper: resolving again and destroying reach the inner resolver; one lookup at a time; none handed on after destroy", async () => {
  const calls: string[] = [];
  let answer: ((records: string[][]) => void) | null = null;
  let lookups = 0;
  const handedOn: unknown[] = [];
  let inner:
    | ((...args: Parameters<experimental.ResolverListener>) => boolean)
    | null = null;
  const resolver = new TxtHealthCheckResolver(
    (_endpoints, attributes) => {
      handedOn.push(attributes);
      return true;
    },
    (listener) => {
      inner = listener;
      return {
        updateResolution: () => calls.push("updateResolution"),
        destroy: () => calls.push("destroy"),
      };
    },
    () => {
      lookups++;
      return new Promise((resolve) => answer = resolve);
    },
  );
  const resolution = () =>
    inner!(experimental.statusOrFromValue([]), {}, null, "");
  resolver.updateResolution();
  resolution();
  resolution();
  assert.equal(lookups, 1, "a second lookup waits for the first");
  answer!(txt([{ serviceConfig: WITH_HEALTH }]));
  await tick();
  assert.equal(handedOn.length, 3, "two resolutions, then the name found");
  resolution();
  assert.equal(lookups, 2, "the first has ended");
  resolver.destroy();
  answer!(txt([{ serviceConfig: { methodConfig: [] } }]));
  await tick();
  assert.equal(handedOn.length, 4, "nothing handed on after destroy");
  assert.deepEqual(calls, ["updateResolution", "destroy"]);
});

Deno.test("dns resolver: a choice for 10 percent takes a draw of exactly 10, not above; a host name list must hold this host", () => {
  const canary = [{
    percentage: 10,
    serviceConfig: { healthCheckConfig: { serviceName: "canary" } },
  }];
  assert.equal(healthCheckFromTxt(txt(canary), 10), "canary");
  assert.equal(healthCheckFromTxt(txt(canary), 10.01), undefined);
  const elsewhere = [{
    clientHostname: ["no-such-host.invalid"],
    serviceConfig: WITH_HEALTH,
  }];
  assert.equal(healthCheckFromTxt(txt(elsewhere), 50), undefined);
});

Deno.test("dns resolver wrapper: its percentage is a draw from 0 to 100, made once: at a draw of 90 a 50 percent choice is not taken", async () => {
  const random = Math.random;
  Math.random = () => 0.9;
  const t = (() => {
    try {
      return wrapperOver(
        txt([{ percentage: 50, serviceConfig: WITH_HEALTH }]),
      );
    } finally {
      Math.random = random;
    }
  })();
  await t.resolution();
  assert.deepEqual(t.handedOn, [{ inner: true }]);
  t.resolver.destroy();
});

Deno.test("dns resolver: a TXT record with no strings is passed over", () => {
  assert.equal(
    healthCheckFromTxt([[], ...txt([{ serviceConfig: WITH_HEALTH }])], 0),
    "grpc.examples.echo.Echo",
  );
});
