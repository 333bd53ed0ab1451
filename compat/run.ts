/**
 * Runs the balancer's unit and integration tests against each
 * `@grpc/grpc-js` version in `compat/grpc-js-<version>/` (each a Deno config
 * that maps `@grpc/grpc-js` to that exact version, with its own lock file):
 * the two ends of the range the npm package claims (npm/grpc_js_range.ts).
 *
 * ```sh
 * deno task test:compat
 * ```
 *
 * @module
 */
const ROOT = new URL("..", import.meta.url);

/** The tests of the policy itself: unit tests and real servers on loopback. */
const TESTS = [
  "custom_round_robin_test.ts",
  "endpoint_sharding_test.ts",
  "health_check_test.ts",
  "manual_resolver_test.ts",
  "service_config_test.ts",
  "dns_resolver_test.ts",
  "mod_test.ts",
  "integration_test.ts",
  "outlier_detection_test.ts",
  "client_test.ts",
  "define_policy_test.ts",
  "connection_metrics_test.ts",
].map((file) => `tests/${file}`);

const versions: string[] = [];
for await (const entry of Deno.readDir(new URL("compat", ROOT))) {
  const match = entry.name.match(/^grpc-js-(.+)$/);
  if (entry.isDirectory && match) versions.push(match[1]);
}
versions.sort();

let failed = 0;
for (const version of versions) {
  console.log(`@grpc/grpc-js ${version}`);
  const { code } = await new Deno.Command("deno", {
    args: [
      "test",
      "--config",
      `compat/grpc-js-${version}/deno.json`,
      "--frozen",
      "--allow-net=localhost,127.0.0.1,[::1]",
      "--allow-read=.",
      "--allow-sys=uid,gid,hostname",
      "--allow-env=GRPC_*,grpc_proxy,https_proxy,http_proxy,no_grpc_proxy,no_proxy",
      "--allow-run=deno,ss",
      ...TESTS,
    ],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) failed++;
}
console.log(
  failed === 0
    ? `test:compat: passed on @grpc/grpc-js ${versions.join(", ")}`
    : `test:compat: failed on ${failed} of ${versions.length} versions`,
);
Deno.exit(failed === 0 ? 0 : 1);
