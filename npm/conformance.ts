/**
 * The conformance check: the balancer, as a user installs it, on Deno, Node
 * and Bun, against this project's echo servers on free ports.
 *
 * It packs the npm package (`npm/build.ts`), installs the tarball into a
 * temporary npm project for Node and Bun, and maps the package's name to
 * `balancer/mod.ts` in a temporary Deno project. Then, on each runtime, the
 * same client (`npm/conformance_client.mjs`) proves: the 1:2 pattern;
 * `chooseSecond: 0` sending all to the first; an invalid config failing with
 * the one-line error; a NOT_SERVING backend getting no RPC and its share
 * back on SERVING; under `outlier_detection` with health checking, a backend
 * that fails every RPC ejected; both backends down failing with UNAVAILABLE
 * naming both; the 1:2 pattern through an `xds:///` target, a test fixture
 * ADS server choosing the policy; and, where etcd is installed, the 1:2
 * pattern through an `etcd:///` target, the backends registered in a
 * one-member etcd.
 * Last, it runs README's module as written against servers on
 * localhost:50050 and :50051.
 *
 * Prints one line per runtime and check, with the runtime's version and, for
 * a failure, what failed; exits 1 if anything failed.
 *
 * ```sh
 * deno task conformance
 * ```
 *
 * @module
 */
import { status } from "@grpc/grpc-js";
import {
  type LineClient,
  removeProjects,
  type Runtime,
  runtimeProjects,
  startLineClient,
} from "./projects.ts";
import {
  type EchoServer,
  setServing,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { etcdEndpointValue } from "../cli/etcd_registration.ts";
import { AdsServer } from "../testing/ads_server.ts";
import { type Certs, makeCerts, opensslUnavailable } from "../testing/certs.ts";
import * as xds from "../testing/xds_resources.ts";
import { withoutGrpcLog } from "../cli/main.ts";
import {
  type EtcdCluster,
  etcdUnavailable,
  withEtcdCluster,
} from "../testing/etcd_cluster.ts";

const ROOT = new URL("..", import.meta.url);
const decoder = new TextDecoder();

/** One check: resolves to `null` if it held, else what went wrong. */
type Check = (
  client: LineClient,
  servers: EchoServer[],
) => Promise<string | null>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CHECKS: [string, Check][] = [
  ["1:2 pattern", async (client, [a, b]) => {
    const { servers } = await client.ask("pattern 3 9");
    const expected = [a, a, b, a, a, b, a, a, b].map((s) => s.address);
    return JSON.stringify(servers) === JSON.stringify(expected)
      ? null
      : `got ${JSON.stringify(servers)}`;
  }],
  ["chooseSecond 0: all to the first", async (client, [a]) => {
    const { servers } = await client.ask("pattern 0 9");
    return (servers as string[]).every((s) => s === a.address)
      ? null
      : `got ${JSON.stringify(servers)}`;
  }],
  ["invalid config: one-line error", async (client) => {
    const { error } = await client.ask(
      'config {"loadBalancingConfig":[{"custom_round_robin":{"chooseSecond":-1}}]}',
    );
    const expected =
      "custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got -1";
    return error === expected ? null : `got ${JSON.stringify(error)}`;
  }],
  ["NOT_SERVING: no RPC; SERVING: share back", async (client, [a, b]) => {
    const opened = await client.ask("open");
    if (!opened.ok) return String(opened.error);
    setServing(b, false);
    await sleep(500);
    const away = (await client.ask("send 30")).servers as string[];
    if (away.some((s) => s !== a.address)) {
      return `while NOT_SERVING: ${JSON.stringify(away)}`;
    }
    setServing(b, true);
    const end = performance.now() + 5000;
    while (performance.now() < end) {
      const back = (await client.ask("send 3")).servers as string[];
      if (back.includes(b.address)) return null;
    }
    return "no RPC reached it within 5 s of SERVING";
  }],
  ["outlier_detection over health checking: failing backend ejected", async (
    client,
    [a],
  ) => {
    const { failed, last, error } = await client.ask("eject") as {
      failed: number;
      last: string[];
      error?: string;
    };
    if (error) return error;
    return failed > 0 && last.length === 50 &&
        last.every((s) => s === a.address)
      ? null
      : `${failed} failed, then ${JSON.stringify(last)}`;
  }],
  ["ring_hash: each key's RPCs to one backend", async (client, [a, b]) => {
    const { keys } = await client.ask("ring 20") as {
      keys: Record<string, string[]>;
    };
    const homes = Object.values(keys).map((servers) => new Set(servers));
    const used = new Set(homes.flatMap((home) => [...home]));
    return homes.length === 20 && homes.every((home) => home.size === 1) &&
        used.size === 2 && used.has(a.address) && used.has(b.address)
      ? null
      : `got ${JSON.stringify(keys)}`;
  }],
  ["both down: UNAVAILABLE naming both", async (client, servers) => {
    await stopEchoServers(servers, { drainMs: 0, graceMs: 500 });
    const { code, details } = await client.ask("fail");
    const named = servers.every(({ address }) =>
      String(details).includes(address)
    );
    return code === 14 && named ? null : `got ${code}: ${details}`;
  }],
];

/**
 * The 1:2 pattern through `etcd:///conformance`, with both servers
 * registered in `etcd`: first and second in key order.
 */
async function etcdPattern(
  client: LineClient,
  servers: EchoServer[],
  etcd: EtcdCluster,
): Promise<string | null> {
  const [a, b] = servers.map(({ address }) => address).sort();
  const prefix = `conformance-${crypto.randomUUID()}`;
  for (const address of [a, b]) {
    await etcd.put(`${prefix}/${address}`, etcdEndpointValue(address));
  }
  const { servers: got, error } = await client.ask(
    `etcd ${prefix} ${etcd.endpoints[0]} ${b} 9`,
  );
  if (error) return String(error);
  const expected = [a, a, b, a, a, b, a, a, b];
  return JSON.stringify(got) === JSON.stringify(expected)
    ? null
    : `got ${JSON.stringify(got)}`;
}

/** A secure etcd cluster, and the certificates it was made with. */
interface SecureEtcd {
  readonly etcd: EtcdCluster;
  readonly certs: Certs;
}

/**
 * etcd over TLS by IP address, `https://127.0.0.1:PORT`, its certificate
 * holding the address, as a reader with a client certificate: on Node the
 * 1:2 pattern; on Deno and Bun, whose `node:tls` refuses an IP address as
 * the server name, RPCs that fail saying so.
 */
async function etcdTlsByIp(
  client: LineClient,
  servers: EchoServer[],
  { etcd, certs }: SecureEtcd,
  runtime: Runtime,
): Promise<string | null> {
  const [a, b] = servers.map(({ address }) => address).sort();
  const prefix = `services/conformance-${crypto.randomUUID()}`;
  for (const address of [a, b]) {
    await etcd.put(`${prefix}/${address}`, etcdEndpointValue(address));
  }
  const read = (path: string) => Deno.readTextFile(new URL(path, ROOT));
  const access = btoa(JSON.stringify({
    ca: await read(certs.ca),
    cert: await read(certs.client.cert),
    key: await read(certs.client.key),
    user: etcd.users.reader,
  }));
  const url = etcd.endpoints[0].replace("//localhost:", "//127.0.0.1:");
  const { servers: got, error } = await client.ask(
    `etcd ${prefix} ${url} ${b} 9 ${access}`,
  );
  if (runtime.name !== "node") {
    return /node:tls refuses an IP address there/.test(String(error))
      ? null
      : `expected the refusal, got ${JSON.stringify(got ?? error)}`;
  }
  if (error) return String(error);
  const expected = [a, a, b, a, a, b, a, a, b];
  return JSON.stringify(got) === JSON.stringify(expected)
    ? null
    : `got ${JSON.stringify(got)}`;
}

/**
 * The 1:2 pattern through `xds:///echo`, a control plane (the test fixture
 * ADS server) choosing custom_round_robin for a cluster of both servers.
 */
async function xdsPattern(
  client: LineClient,
  servers: EchoServer[],
): Promise<string | null> {
  const [a, b] = servers.map(({ address }) => address);
  const ads = new AdsServer();
  await ads.start();
  try {
    ads.set("echo", xds.listener("echo", "echo-cluster"));
    ads.set(
      "echo-cluster",
      xds.cluster("echo-cluster", [xds.customRoundRobin(3)]),
    );
    ads.set("echo-cluster", xds.endpoints("echo-cluster", [[a, b]]));
    const { servers: got, error } = await client.ask(
      `xds ${ads.bootstrap()} ${b} 9`,
    );
    if (error) return String(error);
    const expected = [a, a, b, a, a, b, a, a, b];
    return JSON.stringify(got) === JSON.stringify(expected)
      ? null
      : `got ${JSON.stringify(got)}`;
  } finally {
    ads.stop();
  }
}

/**
 * An echo server on README's fixed `address`, once it is free: the port is
 * in the range the kernel hands out to outgoing connections, and one of the
 * checks' may hold it for a while after it closed (TIME_WAIT, 60 s).
 */
async function startWhenFree(address: string): Promise<EchoServer> {
  const end = performance.now() + 70_000;
  for (;;) {
    try {
      // A bind that fails is expected here, and grpc-js would log it.
      return await withoutGrpcLog(() => startEchoServer(address));
    } catch (error) {
      const busy = (error as Error).message.endsWith("address already in use");
      if (!busy || performance.now() > end) throw error;
      await sleep(1000);
    }
  }
}

/** The module of README `path`, as written. */
async function readmeModule(path: string): Promise<string> {
  const readme = await Deno.readTextFile(new URL(path, ROOT));
  const match = readme.match(
    /<!-- conformance: deno, node, bun -->\s*```js\n([\s\S]*?)```/,
  );
  if (!match) throw new Error(`${path} has no module marked for conformance`);
  return match[1];
}

const { runtimes, grpcJs } = await runtimeProjects();
const snippet = await readmeModule("README.md");
// The package's README shows the same module, so this check covers it too.
if (await readmeModule("npm/README.md") !== snippet) {
  throw new Error("npm/README.md's module differs from README.md's");
}
let failed = 0;
let checks = 0;
const report = (runtime: Runtime, check: string, problem: string | null) => {
  checks++;
  if (problem !== null) failed++;
  console.log(
    `${runtime.name} ${runtime.version}: ${check}: ${
      problem === null ? "ok" : `FAILED: ${problem}`
    }`,
  );
};

/** README's module as written, on `runtime`, against README's servers. */
async function readmeCheck(runtime: Runtime): Promise<void> {
  const readmeServers = [
    await startWhenFree("localhost:50050"),
    await startWhenFree("localhost:50051"),
  ];
  try {
    const module = `${runtime.project}/readme.mjs`;
    await Deno.writeTextFile(module, snippet);
    const { code, stdout, stderr } = await runtime.command(
      module,
      [],
      "null",
    ).output();
    const out = decoder.decode(stdout).trim();
    report(
      runtime,
      "README's module as written",
      code === 0 && out === "ready"
        ? null
        : `exit ${code}: ${out} ${decoder.decode(stderr).trim()}`,
    );
  } finally {
    await stopEchoServers(readmeServers, { drainMs: 0, graceMs: 500 });
  }
}

/**
 * Every check on every runtime; the etcd ones only with `etcd`, and the
 * one over TLS only with `secure`.
 */
async function runChecks(
  etcd: EtcdCluster | null,
  secure: SecureEtcd | null,
): Promise<void> {
  for (const runtime of runtimes) {
    const servers = [
      await startEchoServer("127.0.0.1:0"),
      await startEchoServer("127.0.0.1:0"),
    ];
    const failing = await startEchoServer("127.0.0.1:0", {
      failures: { percent: 100, code: status.INTERNAL },
    });
    const client = await startLineClient(
      runtime,
      new URL("conformance_client.mjs", import.meta.url),
      [...servers, failing].map(({ address }) => address),
    );
    try {
      if (etcd !== null) {
        report(
          runtime,
          "etcd:/// target: 1:2 in key order",
          await etcdPattern(client, servers, etcd).catch(String),
        );
      }
      if (secure !== null) {
        report(
          runtime,
          "etcd:/// over TLS at https://127.0.0.1: 1:2 on Node, refused on Deno and Bun",
          await etcdTlsByIp(client, servers, secure, runtime).catch(String),
        );
      }
      report(
        runtime,
        "xds:/// target: the control plane's custom_round_robin, 1:2",
        await xdsPattern(client, servers).catch(String),
      );
      for (const [name, check] of CHECKS) {
        report(runtime, name, await check(client, servers).catch(String));
      }
    } finally {
      await client.close();
      await stopEchoServers([...servers, failing], {
        drainMs: 0,
        graceMs: 500,
      });
    }

    await readmeCheck(runtime);
  }
}

const etcdReason = await etcdUnavailable() ?? await opensslUnavailable();
if (etcdReason === null) {
  const certs = await makeCerts(["127.0.0.1"]);
  try {
    await withEtcdCluster(1, (etcd) =>
      withEtcdCluster(
        1,
        (secure) => runChecks(etcd, { etcd: secure, certs }),
        { certs },
      ));
  } finally {
    await certs.remove();
  }
} else {
  console.log(`conformance: the etcd checks skipped: ${etcdReason}`);
  await runChecks(null, null);
}
await removeProjects(runtimes);
console.log(
  failed === 0
    ? `conformance: ${checks} checks passed on ${
      runtimes.map((r) => r.name).join(", ")
    } with @grpc/grpc-js ${grpcJs}`
    : `conformance: ${failed} checks failed`,
);
Deno.exit(failed === 0 ? 0 : 1);
