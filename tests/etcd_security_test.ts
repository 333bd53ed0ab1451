/**
 * etcd as production runs it: TLS only, a client certificate asked of every
 * client (`--client-cert-auth`), auth enabled with a reader and a writer
 * user on `services/` (testing/etcd_cluster.ts). The programs run as the
 * user does: `deno task server --register` as the writer, `deno task client`
 * as the reader, each user from ETCD_USERNAME and ETCD_PASSWORD.
 *
 * Needs etcd, etcdctl and openssl; without them the tests are skipped,
 * saying why.
 */
import assert from "node:assert/strict";
import { type Certs, opensslUnavailable, withCerts } from "../testing/certs.ts";
import {
  type EtcdCluster,
  etcdUnavailable,
  type EtcdUser,
  withEtcdCluster,
} from "../testing/etcd_cluster.ts";
import {
  assertRatioProved,
  type Finished,
  runTask,
  type ServerTask,
  startServerTask,
} from "../testing/processes.ts";
import { sleep } from "../testing/wait.ts";

const reason = await etcdUnavailable() ?? await opensslUnavailable();
if (reason !== null) console.log(`etcd security tests skipped: ${reason}`);

/** The client's --timeout in the failure tests, in seconds. */
const TIMEOUT_S = 5;

/** The environment that makes a program the etcd user `user`. */
function as(user: EtcdUser): Record<string, string> {
  return { ETCD_USERNAME: user.name, ETCD_PASSWORD: user.password };
}

/** Runs `body` with fresh certificates, removed afterwards. */
function secureTest(name: string, body: (certs: Certs) => Promise<void>) {
  Deno.test({
    name: `etcd security: ${name}`,
    ignore: reason !== null,
    fn: () => withCerts(body),
  });
}

/** A server process registered under `prefix` as `user`. */
function registerAs(
  cluster: EtcdCluster,
  prefix: string,
  user: EtcdUser,
  args: readonly string[] = [],
): Promise<ServerTask> {
  return startServerTask(
    ["localhost:0"],
    ["--register", prefix, ...cluster.flags, "--drain-ms", "300", ...args],
    "registered ",
    as(user),
  );
}

/** A `--count` summary's line of RPCs that `server` served. */
function servedBy(server: ServerTask): RegExp {
  const port = server.addresses[0].split(":").at(-1);
  return new RegExp(`^127\\.0\\.0\\.1:${port}: [1-9]\\d* RPCs$`, "m");
}

/**
 * Asserts that `run` failed as the issue asks: exit 1, one line on stderr
 * matching `line`, within the client's --timeout.
 */
function assertOneLineFailure(run: Finished & { ms: number }, line: RegExp) {
  assert.equal(run.code, 1, run.stderr.join("\n"));
  assert.equal(run.stderr.length, 1, run.stderr.join("\n"));
  assert.match(run.stderr[0], line);
  assert.ok(run.ms < TIMEOUT_S * 1000, `took ${run.ms} ms`);
}

/** Runs the client against `etcd:///${prefix}` with `flags`, timed. */
async function clientRun(
  prefix: string,
  flags: readonly string[],
  env: Record<string, string>,
): Promise<Finished & { ms: number }> {
  const start = performance.now();
  const run = await runTask([
    "client",
    "--target",
    `etcd:///${prefix}`,
    "--timeout",
    String(TIMEOUT_S),
    "--quiet",
    ...flags,
  ], env);
  return { ...run, ms: performance.now() - start };
}

/** `flags` with the value of `--flag` replaced by `value`, or dropped. */
function withFlag(
  flags: readonly string[],
  flag: string,
  value: string | null,
): string[] {
  const i = flags.indexOf(flag);
  const rest = [...flags.slice(0, i), ...flags.slice(i + 2)];
  return value === null ? rest : [...rest, flag, value];
}

secureTest(
  "a writer registers, a reader proves 1:2; a reader cannot register",
  async (certs) => {
    await withEtcdCluster(1, async (cluster) => {
      const { reader, writer } = cluster.users;
      const servers = [
        await registerAs(cluster, "services/proof", writer),
        await registerAs(cluster, "services/proof", writer),
      ];
      try {
        assertRatioProved(
          await clientRun("services/proof", cluster.flags, as(reader)),
        );
        const refused = await runTask([
          "server",
          ...["--addrs", "localhost:0", "--register", "services/proof"],
          ...cluster.flags,
        ], as(reader));
        assert.equal(refused.code, 1, refused.stderr.join("\n"));
        assert.equal(refused.stderr.length, 1, refused.stderr.join("\n"));
        assert.match(
          refused.stderr[0],
          /^server: cannot register in etcd at https:\/\/localhost:\d+: etcd user "reader" may not write services\/proof\/localhost:\d+$/,
        );
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
    }, { certs });
  },
);

secureTest(
  "each way of being refused is one line, exit 1, within --timeout",
  async (certs) => {
    await withEtcdCluster(1, async (cluster) => {
      const { reader } = cluster.users;
      const url = cluster.endpoints[0];
      const cases: [
        string,
        readonly string[],
        Record<string, string>,
        RegExp,
      ][] = [
        [
          "a wrong password",
          cluster.flags,
          as({ ...reader, password: "wrong" }),
          /etcd resolver: cannot read services\/echo\/ from etcd at https:\/\/localhost:\d+: etcd refused user "reader": wrong user name or password$/,
        ],
        [
          "a user without read permission on the prefix",
          cluster.flags,
          as(reader),
          /etcd user "reader" may not read other\/echo\/$/,
        ],
        [
          "the wrong CA",
          withFlag(cluster.flags, "--etcd-ca", certs.otherCa),
          as(reader),
          /^client: etcd at https:\/\/localhost:\d+: its certificate is not signed by the CA of --etcd-ca \(its issuer: CN=ca\)$/,
        ],
        [
          "no client certificate",
          withFlag(
            withFlag(cluster.flags, "--etcd-cert", null),
            "--etcd-key",
            null,
          ),
          as(reader),
          /^client: etcd at https:\/\/localhost:\d+: its certificate is fine, but it refused this client: it may want a client certificate \(mutual TLS: --etcd-cert, --etcd-key\)$/,
        ],
        [
          "an http:// URL to an etcd that serves TLS",
          ["--etcd-endpoints", url.replace("https:", "http:")],
          as(reader),
          /^client: etcd at http:\/\/localhost:\d+: it speaks TLS, and this client does not: give https:\/\/ URLs$/,
        ],
        [
          "a missing file",
          withFlag(cluster.flags, "--etcd-ca", `${certs.dir}/missing.pem`),
          as(reader),
          /^client: --etcd-ca: cannot read certs\/.*\/missing\.pem: no such file$/,
        ],
      ];
      for (const [name, flags, env, line] of cases) {
        const prefix = name.startsWith("a user without")
          ? "other/echo"
          : "services/echo";
        await assertFailsAs(name, () => clientRun(prefix, flags, env), line);
      }
    }, { certs });
  },
);

/** Asserts {@linkcode assertOneLineFailure} of `run`, naming the case. */
async function assertFailsAs(
  name: string,
  run: () => Promise<Finished & { ms: number }>,
  line: RegExp,
): Promise<void> {
  try {
    assertOneLineFailure(await run(), line);
  } catch (error) {
    throw new Error(`${name}: ${(error as Error).message}`, { cause: error });
  }
}

secureTest(
  "an expired etcd certificate, and an https:// URL to an etcd without TLS, are one line each",
  async (certs) => {
    await withEtcdCluster(1, async (cluster) => {
      await assertFailsAs(
        "an expired certificate",
        () =>
          clientRun("services/echo", cluster.flags, as(cluster.users.reader)),
        /^client: etcd at https:\/\/localhost:\d+: its certificate expired on /,
      );
    }, { certs, serverCert: certs.expired });
    await withEtcdCluster(1, async (cluster) => {
      const https = cluster.endpoints[0].replace(
        "http://127.0.0.1",
        "https://localhost",
      );
      await assertFailsAs(
        "https:// to plaintext",
        () =>
          clientRun("services/echo", [
            "--etcd-endpoints",
            https,
            "--etcd-ca",
            certs.ca,
          ], {}),
        /^client: etcd at https:\/\/localhost:\d+: it closed the connection at the TLS handshake, as a server that does not speak TLS does: give http:\/\/ URLs, or serve TLS \(etcd's --cert-file, --key-file\)$/,
      );
    });
  },
);

secureTest(
  "under load, TLS everywhere: backends replaced and an etcd member restarted, 0 failed",
  async (certs) => {
    await withEtcdCluster(3, async (cluster) => {
      const { reader, writer } = cluster.users;
      const tls = [
        "--tls-cert",
        certs.server.cert,
        "--tls-key",
        certs.server.key,
      ];
      const servers: ServerTask[] = [
        await registerAs(cluster, "services/load", writer, tls),
        await registerAs(cluster, "services/load", writer, tls),
      ];
      try {
        const run = clientRun("services/load", [
          ...cluster.flags,
          ...["--tls-ca", certs.ca, "--timeout", "10"],
          ...["--count", "6000", "--concurrency", "8", "--rate", "400"],
        ], as(reader));
        await sleep(2000);
        servers.push(await registerAs(cluster, "services/load", writer, tls));
        await servers[1].stop();
        const follower = ((await cluster.leader()) + 1) % 3;
        await cluster.kill(follower);
        await sleep(1000);
        await cluster.start(follower);
        servers.push(await registerAs(cluster, "services/load", writer, tls));
        await servers[0].stop();
        const client = await run;
        assert.equal(client.code, 0, client.stderr.join("\n"));
        assert.equal(client.stdout.at(-1), "failed: 0 of 6000 RPCs");
        for (const server of servers.slice(2)) {
          assert.match(client.stdout.join("\n"), servedBy(server));
        }
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
    }, { certs });
  },
);

secureTest(
  "tokens that expire, and an etcd restart that forgets them, under load: renewed, 0 failed, the watch goes on",
  async (certs) => {
    await withEtcdCluster(1, async (cluster) => {
      const { reader, writer } = cluster.users;
      const servers: ServerTask[] = [
        await registerAs(cluster, "services/token", writer),
        await registerAs(cluster, "services/token", writer),
      ];
      try {
        const run = clientRun("services/token", [
          ...cluster.flags,
          ...["--timeout", "10"],
          ...["--count", "4000", "--concurrency", "4", "--rate", "400"],
        ], as(reader));
        // Every token is 2 s old, unused since: expired.
        await sleep(3000);
        // Deregistering revokes the lease: a call with an expired token.
        const key = `services/token/${servers[1].addresses[0]}`;
        const stopped = await servers[1].stop();
        assert.deepEqual(stopped.stderr, []);
        assert.ok(!(await cluster.keys("services/token")).includes(key));
        // A restarted etcd knows no token: the client's watch reconnects
        // with one it must renew.
        await cluster.kill(0);
        await cluster.start(0);
        servers.push(await registerAs(cluster, "services/token", writer));
        const client = await run;
        assert.equal(client.code, 0, client.stderr.join("\n"));
        assert.equal(client.stdout.at(-1), "failed: 0 of 4000 RPCs");
        assert.match(client.stdout.join("\n"), servedBy(servers[2]));
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
    }, { certs, tokenTtlSeconds: 2 });
  },
);
