/**
 * TLS and mutual TLS between the client and the servers, with certificates
 * made at test time: what works in plaintext works over TLS, each backend
 * is verified by its own name, and each kind of failure is one line.
 */
import assert from "node:assert/strict";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
} from "../cli/client_config.ts";
import { clientCredentials } from "../cli/tls.ts";
import { type Certs, opensslUnavailable, withCerts } from "../testing/certs.ts";
import { etcdUnavailable, withEtcdCluster } from "../testing/etcd_cluster.ts";
import { connect } from "../testing/channels.ts";
import { failures, startLoad, untilSent } from "../testing/steady_load.ts";
import { untilPattern, untilServes } from "../testing/rpcs.ts";
import {
  assertRatioProved,
  runTask,
  type ServerTask,
  startServerTask,
} from "../testing/processes.ts";
import { LEAVES_RECONNECT_TIMERS } from "../testing/sanitizers.ts";

const reason = await opensslUnavailable();
if (reason !== null) console.log(`TLS tests skipped: ${reason}`);

/** Server flags serving `pair` over TLS, with a client CA for mutual TLS. */
function tlsFlags(pair: { cert: string; key: string }, clientCa?: string) {
  return [
    "--tls-cert",
    pair.cert,
    "--tls-key",
    pair.key,
    ...(clientCa ? ["--tls-client-ca", clientCa] : []),
  ];
}

/** Two server processes on localhost, each with `flags`. */
async function twoServers(flags: string[]): Promise<ServerTask[]> {
  return [
    await startServerTask(["localhost:0"], flags),
    await startServerTask(["localhost:0"], flags),
  ];
}

/**
 * Runs `body` with fresh certificates, removing them after; skipped without
 * openssl. `sanitizers` turns sanitizers off, as `testing/sanitizers.ts` says.
 */
function tlsTest(
  name: string,
  body: (certs: Certs) => Promise<void>,
  sanitizers: Partial<typeof LEAVES_RECONNECT_TIMERS> = {},
) {
  Deno.test({
    name: `tls: ${name}`,
    ignore: reason !== null,
    ...sanitizers,
    fn: () => withCerts(body),
  });
}

/**
 * Two servers started with `serverFlags`, and the client task with
 * `clientFlags` proving 1:2 through them.
 */
async function assertProvedOverTls(
  serverFlags: string[],
  clientFlags: string[],
): Promise<void> {
  const servers = await twoServers(serverFlags);
  try {
    assertRatioProved(
      await runTask([
        "client",
        "--addrs",
        servers.map((server) => server.addresses[0]).join(","),
        ...clientFlags,
        "--quiet",
      ]),
    );
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

tlsTest(
  "the client proves 1:2 over TLS, health checking on, each backend verified as localhost",
  (certs) =>
    assertProvedOverTls(tlsFlags(certs.server), ["--tls-ca", certs.ca]),
);

const etcdReason = await etcdUnavailable();

Deno.test({
  name:
    "tls: through etcd:///, each backend is verified by its registered Addr's host name, not the target's",
  ignore: reason !== null || etcdReason !== null,
}, () =>
  withCerts(async (certs) => {
    await withEtcdCluster(1, async (cluster) => {
      // Registered as localhost:PORT, which the certificates hold; the
      // target's authority, "echo", they do not.
      const flags = [
        ...tlsFlags(certs.server),
        ...["--register", "tls/echo", ...cluster.flags],
      ];
      const servers = [
        await startServerTask(["localhost:0"], flags, "registered "),
        await startServerTask(["localhost:0"], flags, "registered "),
      ];
      try {
        assertRatioProved(
          await runTask([
            "client",
            ...["--target", "etcd:///tls/echo", ...cluster.flags],
            ...["--tls-ca", certs.ca, "--quiet"],
          ]),
        );
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
    });
  }));

tlsTest(
  "mutual TLS: a client with a certificate the servers' CA signed proves 1:2",
  (certs) =>
    assertProvedOverTls(tlsFlags(certs.server, certs.ca), [
      ...["--tls-ca", certs.ca, "--tls-cert", certs.client.cert],
      ...["--tls-key", certs.client.key],
    ]),
);

tlsTest(
  "under load over TLS, a drain (NOT_SERVING) and a SIGKILL fail no RPC",
  async (certs) => {
    const servers: (ServerTask | null)[] = await twoServers(
      tlsFlags(certs.server),
    );
    const [first, second] = servers.map((server) => server!.addresses[0]);
    const { client } = connect(
      [first, second],
      clientServiceConfig(3),
      CLIENT_CHANNEL_OPTIONS,
      clientCredentials({ ca: certs.ca }),
    );
    try {
      await untilPattern(client, first, second);
      const load = startLoad(client, 8);
      await untilSent(load, 300);
      // SIGTERM: NOT_SERVING, a 1 s drain, then the server goes.
      const drained = servers[1]!.stop("SIGTERM");
      await untilSent(load, 300);
      const drainingFrom = load.sent.length;
      assert.equal((await drained).code, 0);
      servers[1] = await startServerTask([second], tlsFlags(certs.server));
      await untilServes(client, second);
      await servers[0]!.stop("SIGKILL");
      servers[0] = null;
      await untilSent(load, 500);
      const sent = await load.stop();
      console.log(
        `TLS: ${sent.length} RPCs through a drain and a SIGKILL, ${
          failures(sent).length
        } failed`,
      );
      assert.deepEqual(failures(sent), []);
      assert.ok(sent.length - drainingFrom > 100, "RPCs during the drain");
    } finally {
      await Promise.all(servers.map((server) => server?.stop("SIGKILL")));
      client.close();
    }
  },
  LEAVES_RECONNECT_TIMERS,
);

/** One failure: server flags, client flags, the line the client must print. */
const FAILURES: [
  string,
  (c: Certs) => string[],
  (c: Certs) => string[],
  RegExp,
][] = [
  [
    "a wrong CA",
    (c) => tlsFlags(c.server),
    (c) => ["--tls-ca", c.otherCa],
    /: its certificate is not signed by the CA of --tls-ca \(its issuer: CN=ca\)$/,
  ],
  [
    "an expired certificate",
    (c) => tlsFlags(c.expired),
    (c) => ["--tls-ca", c.ca],
    /: its certificate expired on .+ GMT$/,
  ],
  [
    "a certificate not yet valid",
    (c) => tlsFlags(c.notYetValid),
    (c) => ["--tls-ca", c.ca],
    /: its certificate is not valid before Jan {2}1 00:00:00 2099 GMT$/,
  ],
  [
    "a certificate for another name",
    (c) => tlsFlags(c.otherName),
    (c) => ["--tls-ca", c.ca],
    /: its certificate is for DNS:other\.test, not localhost$/,
  ],
  [
    "a plaintext client against TLS servers",
    (c) => tlsFlags(c.server),
    () => [],
    /: it speaks TLS, and this client does not: give --tls-ca$/,
  ],
  [
    "a TLS client against plaintext servers",
    () => [],
    (c) => ["--tls-ca", c.ca],
    /: it does not speak TLS: is it started with --tls-cert and --tls-key\?$/,
  ],
  [
    "mutual TLS, a client without a certificate",
    (c) => tlsFlags(c.server, c.ca),
    (c) => ["--tls-ca", c.ca],
    /: its certificate is fine, but it refused this client: it may want a client certificate \(mutual TLS: --tls-cert, --tls-key\)$/,
  ],
  [
    "a missing file",
    (c) => tlsFlags(c.server),
    (c) => ["--tls-ca", `${c.dir}/missing.pem`],
    /^client: --tls-ca: cannot read certs\/test-\w+\/missing\.pem: no such file$/,
  ],
];

for (const [name, serverFlags, clientFlags, line] of FAILURES) {
  tlsTest(
    `${name}: the client exits 1 within --timeout, in one line naming the backend`,
    async (certs) => {
      const servers = await twoServers(serverFlags(certs));
      try {
        const addrs = servers.map((server) => server.addresses[0]);
        const started = performance.now();
        const client = await runTask([
          "client",
          "--addrs",
          addrs.join(","),
          "--timeout",
          "5",
          "--quiet",
          ...clientFlags(certs),
        ]);
        const ms = performance.now() - started;
        assert.equal(client.code, 1, client.stderr.join("\n"));
        assert.equal(client.stderr.length, 1, client.stderr.join("\n"));
        assert.match(client.stderr[0], line);
        if (!line.source.startsWith("^")) {
          assert.ok(
            client.stderr[0].startsWith(`client: ${addrs[0]}: `),
            client.stderr[0],
          );
        }
        assert.ok(ms < 5000, `after ${ms} ms`);
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
    },
  );
}

Deno.test("tls: a backend given by IP address is refused over TLS, saying to give a name", async () => {
  const client = await runTask([
    "client",
    "--addrs",
    "127.0.0.1:1,localhost:2",
    "--tls-ca",
    "certs/ca.pem",
  ]);
  assert.equal(client.code, 2);
  assert.match(
    client.stderr[0],
    /^client: --addrs: 127\.0\.0\.1:1 is an IP address; over TLS each backend is verified by the host name it is given by, and Deno cannot verify an IP address: give a name its certificate holds, such as localhost$/,
  );
});
