/**
 * The public entry point: exactly what a user of the policy needs.
 */
import assert from "node:assert/strict";
import * as mod from "../balancer/mod.ts";

Deno.test("mod: exports the policy's registration and constants, the manual and etcd resolvers, xDS, the config check, the metrics and the building blocks, nothing else", () => {
  assert.deepEqual(Object.keys(mod).sort(), [
    "CUSTOM_ROUND_ROBIN",
    "DEFAULT_CHOICE_COUNT",
    "DEFAULT_CHOOSE_SECOND",
    "DEFAULT_ETCD_ENDPOINTS",
    "ETCD_ENDPOINTS",
    "EndpointSharding",
    "HealthCheckUnwrappingPicker",
    "HealthCheckingSubchannel",
    "LEAST_REQUEST",
    "MAX_CHOICE_COUNT",
    "MAX_CHOOSE_SECOND",
    "METER_NAME",
    "METRICS_TARGET",
    "ManualResolver",
    "callMetricsInterceptor",
    "checkServiceConfig",
    "connectEtcd",
    "etcdEndpointsUseTls",
    "etcdKeyPrefix",
    "etcdRefusal",
    "healthCheckServiceFromOptions",
    "parseEtcdEndpoints",
    "registerCustomRoundRobin",
    "registerDnsHealthCheckConfig",
    "registerEtcdResolver",
    "registerLeastRequest",
    "registerXds",
    "serverCallMetricsInterceptor",
  ]);
  assert.equal(mod.CUSTOM_ROUND_ROBIN, "custom_round_robin");
  assert.equal(mod.DEFAULT_CHOOSE_SECOND, 3);
  assert.equal(mod.MAX_CHOOSE_SECOND, 2 ** 32 - 1);
});

Deno.test("mod: library.md and npm/README.md name every export, so their lists stay true", async () => {
  for (const doc of ["docs/library.md", "npm/README.md"]) {
    const text = await Deno.readTextFile(new URL(`../${doc}`, import.meta.url));
    const missing = Object.keys(mod).filter((name) =>
      !text.includes(`\`${name}\``) && !text.includes(`\`${name}(`)
    );
    assert.deepEqual(missing, [], `${doc} does not name these exports`);
  }
});
