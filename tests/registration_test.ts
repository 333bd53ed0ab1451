/**
 * Registering the policy registers the policy, nothing else: grpc-js's own
 * `dns` resolver stays, and `etcd:` stays unknown, until their own register
 * functions are called; calling every one twice is calling it once. Seen in
 * a fresh process, as grpc-js's registries are global.
 */
import assert from "node:assert/strict";

Deno.test("registration: registerCustomRoundRobin() alone leaves dns: and etcd: as grpc-js has them; every register function called twice is as once, and dns: still resolves", async () => {
  const { code, stdout, stderr } = await new Deno.Command("deno", {
    args: [
      "run",
      "-q",
      "-P=program",
      "testing/programs/registrations.ts",
    ],
    cwd: new URL("..", import.meta.url),
  }).output();
  const text = new TextDecoder();
  assert.equal(code, 0, text.decode(stderr));
  const { before, policyAlone, all, twice, localhost } = JSON.parse(
    text.decode(stdout),
  );
  assert.equal(before.policy, false);
  assert.equal(policyAlone.policy, true);
  assert.equal(policyAlone.dns, before.dns, "grpc-js's own dns resolver");
  assert.equal(policyAlone.dns, "DnsResolver");
  assert.match(
    policyAlone.etcd,
    /^error: No resolver could be created for target etcd:localhost/,
  );
  // Each register function changes what it says, which the checks above
  // would see.
  assert.equal(all.dns, "HealthCheckingDnsResolver");
  assert.notEqual(all.etcd, policyAlone.etcd);
  assert.doesNotMatch(all.etcd, /^error/);
  assert.equal(all.leastRequest, true);
  assert.equal(all.ringHash, true);
  assert.doesNotMatch(all.xds, /^error/);
  assert.deepEqual(twice, all);
  // A second registerDnsHealthCheckConfig() that wrapped its own resolver
  // would never reach grpc-js's, and resolve nothing.
  assert.ok(
    Array.isArray(localhost) && localhost.length > 0,
    JSON.stringify(localhost),
  );
});
