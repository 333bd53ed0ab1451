/**
 * The `dns` resolver wrapper's reading of a TXT service config, and how its
 * answer ranks against the channel's default config. Against a real DNS
 * server, see dns_test.ts.
 */
import assert from "node:assert/strict";
import { healthCheckFromTxt } from "../balancer/dns_resolver.ts";
import {
  HEALTH_CHECK_SERVICE_NAME,
  healthCheckServiceNameOf,
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
  assert.equal(healthCheckServiceNameOf(defaultConfig), "from.Default");
  assert.equal(
    healthCheckServiceNameOf({
      ...defaultConfig,
      [HEALTH_CHECK_SERVICE_NAME]: "from.Resolver",
    }),
    "from.Resolver",
  );
  assert.equal(
    healthCheckServiceNameOf({
      ...defaultConfig,
      [HEALTH_CHECK_SERVICE_NAME]: null,
    }),
    null,
  );
});
