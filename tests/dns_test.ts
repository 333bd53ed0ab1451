/**
 * Backends on hosts of their own, found through a real DNS server: each
 * backend is a test host (test_hosts.ts), and dnsmasq (dns_server.ts)
 * answers `backends.test` with their addresses and, in a TXT record, a
 * service config. The client runs as a user runs it, in a process of its
 * own with GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true, so that grpc-js asks
 * that DNS server and no other.
 *
 * Needs root, iproute2 and dnsmasq; without them the test is skipped, saying
 * why.
 */
import assert from "node:assert/strict";
import { clientServiceConfig } from "../cli/client_config.ts";
import { ECHO_SERVICE_NAME } from "../echo/mod.ts";
import { sleep } from "../testing/wait.ts";
import { servedBy } from "../testing/windows.ts";
import { makeCerts, opensslUnavailable } from "../testing/certs.ts";
import {
  type DnsServer,
  dnsServerUnavailable,
  grpcConfig,
  withDnsServer,
} from "../testing/dns_server.ts";
import {
  assertRatioProved,
  denoRunArgs,
  runTask,
} from "../testing/processes.ts";
import {
  hostAddress,
  type TestHost,
  testHostsUnavailable,
  withTestHosts,
} from "../testing/test_hosts.ts";

const PORT = 50051;
const NAME = "backends.test";
const ROOT = new URL("..", import.meta.url);

const reason = (await testHostsUnavailable()) ?? (await dnsServerUnavailable());
if (reason !== null) console.log(`DNS test skipped: ${reason}`);

/** The `dns:` target of `backends.test` at `dns`. */
function target(dns: DnsServer): string {
  return `dns://${dns.address}/${NAME}:${PORT}`;
}

/** The address of test host `host`, without the port. */
function addressOf(host: TestHost): string {
  return host.target.split(":")[0];
}

/** One RPC of testing/programs/dns_load.ts, `at` in epoch milliseconds. */
interface Rpc {
  readonly at: number;
  readonly ms: number;
  readonly server: string | null;
  readonly error: string | null;
}

/**
 * Sends load through the client's channel to `backends.test` for `ms`, in a
 * process of its own, while `during` runs; resolves to every RPC. With
 * `healthService` `""` the client's own config has no health checking.
 */
async function load(
  dns: DnsServer,
  ms: number,
  healthService: string,
  during: () => Promise<void>,
): Promise<Rpc[]> {
  const child = new Deno.Command("deno", {
    args: [
      ...denoRunArgs(
        "testing/programs/dns_load.ts",
        `127.0.0.1,${[1, 2, 3].map(hostAddress).join(",")}`,
      ),
      ...[target(dns), String(ms), "8", healthService],
    ],
    env: { GRPC_NODE_USE_ALTERNATIVE_RESOLVER: "true" },
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  await during();
  const { code, stdout, stderr } = await output;
  const decoder = new TextDecoder();
  assert.equal(code, 0, decoder.decode(stderr));
  return decoder.decode(stdout).trim().split("\n").map((line) =>
    JSON.parse(line)
  );
}

const failures = (rpcs: readonly Rpc[]) =>
  rpcs.flatMap(({ error }) => error === null ? [] : [error]);

/** RPCs started after `at`. */
const after = (rpcs: readonly Rpc[], at: number) =>
  rpcs.filter((x) => x.at > at);

/** The test hosts: the first two named in DNS at first, the third spare. */
type Hosts = readonly [TestHost, TestHost, TestHost];

async function discovery(dns: DnsServer) {
  const client = await runTask([
    "client:dns",
    "--target",
    target(dns),
    "--quiet",
  ]);
  assert.equal(client.code, 0, client.stderr.join("\n"));
  assert.deepEqual(client.stderr, []);
  assert.deepEqual(client.stdout, [
    "Successful multiple iterations of 1:2 ratio",
  ]);
}

/**
 * Backends off the machine by address: the client's permissions refuse them
 * before it dials, naming the task whose permissions reach them.
 */
async function remoteBackends([h1, h2]: Hosts) {
  const addrs = ["--addrs", `${h1.target},${h2.target}`];
  const refused = await runTask(["client", ...addrs]);
  assert.equal(refused.code, 2);
  assert.deepEqual(refused.stderr, [
    `client: may not reach backend ${h1.target}: the client's permissions allow loopback only; deno task client:remote reaches any host (docs/flags_and_permissions.md)`,
  ]);
  assertRatioProved(await runTask(["client:remote", "--quiet", ...addrs]));
}

/** The service config the later steps publish: the policy, health checked. */
const HEALTH_CHECKED = grpcConfig({
  loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 3 } }],
  healthCheckConfig: { serviceName: ECHO_SERVICE_NAME },
});

async function roundRobinFromTxt(dns: DnsServer, [h1, h2]: Hosts) {
  // A TXT config takes the place of the client's own: the channel runs
  // round_robin, and the client's check must see that it is not 1:2. It
  // keeps the client's retry policy: without one, a connection dropped
  // mid-call (seen once in CI, "UNAVAILABLE: Connection dropped") failed
  // the run, and this step is about the policy.
  await dns.setTxt(
    NAME,
    grpcConfig({
      ...clientServiceConfig(3, null),
      loadBalancingConfig: [{ round_robin: {} }],
    }),
  );
  const client = await runTask([
    "client:dns",
    "--target",
    target(dns),
    "--timeout",
    "3",
  ]);
  assert.equal(client.code, 1);
  assert.match(client.stderr.join("\n"), /^client: no 1:2 ratio from /);
  // It was served, by both hosts in turn: round_robin, not a dead channel.
  const served = client.stdout.map(servedBy);
  const count = (host: TestHost) =>
    served.filter((server) => server === host.target).length;
  console.log(
    `round_robin from TXT: ${count(h1)} and ${
      count(h2)
    } RPCs on the two hosts, no 1:2 ratio`,
  );
  // About half each (1:2 would give one a third).
  for (const host of [h1, h2]) {
    assert.ok(
      count(host) > 0.45 * served.length,
      `${count(host)} of ${served.length}`,
    );
  }
}

async function blueGreen(dns: DnsServer, [h1, h2, h3]: Hosts) {
  await dns.setTxt(NAME, HEALTH_CHECKED);
  let changedAt = 0;
  let exitedAt = 0;
  const rpcs = await load(dns, 6000, ECHO_SERVICE_NAME, async () => {
    await sleep(2000);
    // The new host is up already; DNS names it instead of the old one, and
    // the old one drains: NOT_SERVING, 1 s, GOAWAY, exit.
    await dns.setHosts(NAME, [addressOf(h1), addressOf(h3)]);
    changedAt = Date.now();
    assert.equal(await h2.terminate(), 0);
    exitedAt = Date.now();
  });
  assert.deepEqual(failures(rpcs), []);
  const firstOnNew = Math.min(
    ...rpcs.filter((x) => x.server === h3.target).map((x) => x.at + x.ms),
  );
  const takesShareMs = firstOnNew - changedAt;
  // The old host's NOT_SERVING makes its child leave READY, which asks for
  // a new DNS answer at once (the last is 2 s old, more than the client's
  // 1 s minimum); then the new host's connection and first health answer.
  assert.ok(takesShareMs < 3000, `new host served after ${takesShareMs} ms`);
  const late = after(rpcs, exitedAt);
  assert.ok(late.length > 100, `${late.length} RPCs after the old host left`);
  assert.deepEqual(late.filter((x) => x.server === h2.target), []);
  // One third, or two if DNS now lists it first: the order is DNS's.
  const share = late.filter((x) => x.server === h3.target).length /
    late.length;
  assert.ok(share > 0.2 && share < 0.8, `the new host's share: ${share}`);
  console.log(
    `blue/green: ${rpcs.length} RPCs, 0 failed; the new host served ` +
      `${takesShareMs} ms after the DNS change; the old one drained and ` +
      `exited in ${exitedAt - changedAt} ms; the new host's share after: ` +
      `${(share * 100).toFixed(0)}%`,
  );
}

async function healthFromTxt(dns: DnsServer, [, , h3]: Hosts) {
  let stoppingAt = 0;
  // The client's own config has no health checking: only the TXT record's
  // can turn it on.
  const rpcs = await load(dns, 4000, "", async () => {
    await sleep(1500);
    stoppingAt = Date.now();
    assert.equal(await h3.terminate(), 0);
  });
  assert.deepEqual(failures(rpcs), []);
  const before = rpcs.filter((x) => x.at < stoppingAt);
  assert.ok(before.some((x) => x.server === h3.target), "it served");
  // It still serves for its 1 s drain, but says NOT_SERVING.
  const draining = rpcs.filter((x) =>
    x.at > stoppingAt + 200 && x.at < stoppingAt + 900
  );
  assert.ok(draining.length > 50, `${draining.length} RPCs`);
  assert.deepEqual(draining.filter((x) => x.server === h3.target), []);
  console.log(
    `health from TXT: ${rpcs.length} RPCs, 0 failed; none of the ` +
      `${draining.length} sent 0.2–0.9 s into its drain reached the NOT_SERVING host`,
  );
}

async function nxdomainMidRun(dns: DnsServer) {
  let nxdomainAt = 0;
  // The third host is gone, so its child keeps asking for new answers.
  const rpcs = await load(dns, 4000, ECHO_SERVICE_NAME, async () => {
    await sleep(1000);
    await dns.setHosts(NAME, []);
    nxdomainAt = Date.now();
  });
  assert.deepEqual(failures(rpcs), []);
  const later = after(rpcs, nxdomainAt + 1000);
  assert.ok(later.length > 100, `${later.length} RPCs 1 s after NXDOMAIN`);
  console.log(`NXDOMAIN mid-run: ${rpcs.length} RPCs, 0 failed`);
}

async function refusedAtStart(dns: DnsServer) {
  await dns.refuse();
  const started = performance.now();
  const client = await runTask(["client:dns", "--target", target(dns)]);
  const ms = performance.now() - started;
  assert.equal(client.code, 1);
  assert.deepEqual(client.stderr, [
    `client: UnaryEcho failed: UNAVAILABLE: custom_round_robin: no endpoints were resolved: Name resolution failed for target ${
      target(dns)
    }`,
  ]);
  // Well before the client's 10 s timeout: the answer is final.
  assert.ok(ms < 5000, `after ${ms} ms`);
  console.log(
    `DNS refusing at start: ${client.stderr[0]} (${ms.toFixed(0)} ms)`,
  );
}

Deno.test({
  name: "dns: backends on hosts of their own, found through a real DNS server",
  ignore: reason !== null,
  async fn(t) {
    await withTestHosts(3, PORT, (hosts) =>
      withDnsServer(async (dns) => {
        const [h1, h2] = hosts;
        await dns.setHosts(NAME, [addressOf(h1), addressOf(h2)]);
        const steps: [string, () => Promise<void>][] = [
          [
            "discovery: client:dns finds both hosts and proves 1:2",
            () => discovery(dns),
          ],
          [
            "remote backends: client refuses them, naming client:remote, which proves 1:2",
            () => remoteBackends(hosts as unknown as Hosts),
          ],
          [
            "a TXT service config choosing round_robin: the client's check fails",
            () => roundRobinFromTxt(dns, hosts as unknown as Hosts),
          ],
          [
            "blue/green: the second host replaced under load, no RPC fails, the new one takes its share",
            () => blueGreen(dns, hosts as unknown as Hosts),
          ],
          [
            "a service config in TXT turns health checking on: a NOT_SERVING host gets no RPC",
            () => healthFromTxt(dns, hosts as unknown as Hosts),
          ],
          [
            "NXDOMAIN mid-run: the client keeps serving from the hosts it has",
            () => nxdomainMidRun(dns),
          ],
          [
            "DNS refusing at start: one line naming the name and the server, at once",
            () => refusedAtStart(dns),
          ],
        ];
        for (const [name, step] of steps) {
          if (!await t.step(name, step)) break;
        }
      }));
  },
});

const tlsReason = reason ?? await opensslUnavailable();
if (reason === null && tlsReason !== null) {
  console.log(`DNS over TLS test skipped: ${tlsReason}`);
}

Deno.test({
  name:
    "dns over TLS: hosts found through DNS are verified as the target's name, and prove 1:2",
  ignore: tlsReason !== null,
  async fn() {
    const certs = await makeCerts([NAME]);
    try {
      const flags = [
        "--tls-cert",
        certs.server.cert,
        "--tls-key",
        certs.server.key,
      ];
      await withTestHosts(2, PORT, (hosts) =>
        withDnsServer(async (dns) => {
          await dns.setHosts(NAME, hosts.map(addressOf));
          const client = await runTask([
            "client:dns",
            "--target",
            target(dns),
            "--tls-ca",
            certs.ca,
            "--quiet",
          ]);
          assertRatioProved(client);
        }), flags);
    } finally {
      await certs.remove();
    }
  },
});
