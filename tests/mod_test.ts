/**
 * The public entry point: exactly what a user of the policy needs.
 */
import assert from "node:assert/strict";
import * as mod from "../balancer/mod.ts";
import * as etcd from "../balancer/etcd.ts";

Deno.test("mod: exports the policy's registration and constants, the manual and etcd resolvers, xDS, the config check, the metrics and the building blocks, nothing else", () => {
  assert.deepEqual(Object.keys(mod).sort(), [
    "CUSTOM_ROUND_ROBIN",
    "DEFAULT_CHOICE_COUNT",
    "DEFAULT_CHOOSE_SECOND",
    "DEFAULT_MAX_RING_SIZE",
    "DEFAULT_MIN_RING_SIZE",
    "ETCD_ENDPOINTS",
    "EndpointSharding",
    "HealthCheckUnwrappingPicker",
    "HealthCheckingSubchannel",
    "LEAST_REQUEST",
    "MAX_CHOICE_COUNT",
    "MAX_CHOOSE_SECOND",
    "MAX_RING_SIZE",
    "METER_NAME",
    "METRICS_TARGET",
    "ManualResolver",
    "RING_HASH",
    "RING_SIZE_CAP",
    "callMetricsInterceptor",
    "checkServiceConfig",
    "definePolicy",
    "healthCheckingHelper",
    "metricsObserver",
    "registerCustomRoundRobin",
    "registerDnsHealthCheckConfig",
    "registerEtcdResolver",
    "registerLeastRequest",
    "registerRingHash",
    "registerXds",
    "serverCallMetricsInterceptor",
  ]);
  assert.equal(mod.CUSTOM_ROUND_ROBIN, "custom_round_robin");
  assert.equal(mod.DEFAULT_CHOOSE_SECOND, 3);
  assert.equal(mod.MAX_CHOOSE_SECOND, 2 ** 32 - 1);
});

Deno.test("mod: the etcd entry holds what a program that writes backends to etcd needs, and the main entry none of it", () => {
  const writing = [
    "DEFAULT_ETCD_ENDPOINTS",
    "connectEtcd",
    "etcdEndpointsUseTls",
    "etcdKeyPrefix",
    "etcdRefusal",
    "parseEtcdEndpoints",
  ];
  assert.deepEqual(Object.keys(etcd).sort(), writing);
  assert.deepEqual(writing.filter((name) => name in mod), []);
});

Deno.test("mod: library.md and npm/README.md name every export, so their lists stay true", async () => {
  for (const doc of ["docs/library.md", "npm/README.md"]) {
    const text = await Deno.readTextFile(new URL(`../${doc}`, import.meta.url));
    const missing = [...Object.keys(mod), ...Object.keys(etcd)].filter((
      name,
    ) => !text.includes(`\`${name}\``) && !text.includes(`\`${name}(`));
    assert.deepEqual(missing, [], `${doc} does not name these exports`);
  }
});
