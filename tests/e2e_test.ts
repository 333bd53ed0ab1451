/**
 * `deno task server` and `deno task client` as a user runs them: separate
 * processes, checked by their output and exit codes.
 */
import assert from "node:assert/strict";
import {
  type EchoServer,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { ANY_PORT, freePort } from "../testing/ports.ts";
import { assertOneInThree, servedBy } from "../testing/windows.ts";
import {
  type Finished,
  runTask,
  startServerTask,
} from "../testing/processes.ts";

/** Runs `deno task client` against a fresh `deno task server`, then stops it. */
async function clientAgainstServers(args: (addresses: string[]) => string[]) {
  const server = await startServerTask();
  let client: Finished | undefined;
  try {
    client = await runTask(["client", ...args(server.addresses)]);
  } finally {
    const stopped = await server.stop();
    assert.equal(stopped.code, 0, `server stderr: ${stopped.stderr}`);
    assert.deepEqual(stopped.stderr, []);
  }
  return { client, addresses: server.addresses };
}

Deno.test("e2e: the client proves 1:2 against the servers; SIGTERM stops them with 0", async () => {
  const { client, addresses } = await clientAgainstServers((addresses) => [
    "--addrs",
    addresses.join(","),
  ]);
  assert.equal(addresses.length, 2);
  for (const address of addresses) {
    assert.match(address, /^localhost:[1-9]\d*$/);
  }
  assert.equal(client.code, 0, client.stderr.join("\n"));
  assert.deepEqual(client.stderr, [], "nothing but replies and the result");
  assert.equal(
    client.stdout.at(-1),
    "Successful multiple iterations of 1:2 ratio",
  );
  const replies = client.stdout.slice(0, -1);
  for (const reply of replies) {
    assert.match(
      reply,
      /^this is examples\/customloadbalancing \(from localhost:\d+\)$/,
    );
  }
  const [first, second] = addresses;
  assertOneInThree(replies.slice(-9).map(servedBy), first, second);
});

Deno.test('e2e: --addrs entries are trimmed where they are read: "A, B" reaches both', async () => {
  const { client } = await clientAgainstServers((addresses) => [
    "--addrs",
    addresses.join(", "),
    "--quiet",
  ]);
  assert.equal(client.code, 0, client.stderr.join("\n"));
  assert.deepEqual(client.stderr, []);
  assert.deepEqual(client.stdout, [
    "Successful multiple iterations of 1:2 ratio",
  ]);
});

Deno.test("e2e: --choose-second 0 proves 0:1 with RPCs on the first server only", async () => {
  const { client, addresses } = await clientAgainstServers((addresses) => [
    "--addrs",
    addresses.join(","),
    "--choose-second",
    "0",
  ]);
  assert.equal(client.code, 0, client.stderr.join("\n"));
  assert.equal(
    client.stdout.at(-1),
    "Successful multiple iterations of 0:1 ratio",
  );
  // The three windows of one RPC that proved it. Before them, while the
  // first server's connection was not ready yet, the second may have served.
  assert.deepEqual(
    client.stdout.slice(-4, -1).map(servedBy),
    [addresses[0], addresses[0], addresses[0]],
  );
});

Deno.test("e2e: --count prints a per-backend summary and no failures", async () => {
  const { client } = await clientAgainstServers((addresses) => [
    "--addrs",
    addresses.join(","),
    "--count",
    "300",
    "--concurrency",
    "4",
    "--quiet",
  ]);
  assert.equal(client.code, 0, client.stderr.join("\n"));
  assert.equal(client.stdout.length, 3, client.stdout.join("\n"));
  assert.match(client.stdout[0], /^first \(127\.0\.0\.1:\d+\): \d+ RPCs$/);
  assert.match(client.stdout[1], /^second \(127\.0\.0\.1:\d+\): \d+ RPCs$/);
  assert.equal(client.stdout[2], "failed: 0 of 300 RPCs");
});

Deno.test("e2e: --target takes any grpc-js target and still proves the ratio", async () => {
  const { client } = await clientAgainstServers((addresses) => {
    const [a, b] = addresses.map((address) => address.split(":")[1]);
    return ["--target", `ipv4:127.0.0.1:${a},127.0.0.1:${b}`, "--quiet"];
  });
  assert.equal(client.code, 0, client.stderr.join("\n"));
  assert.deepEqual(client.stdout, [
    "Successful multiple iterations of 1:2 ratio",
  ]);
});

Deno.test("e2e: with both servers down the client fails fast, naming both", async () => {
  const server = await startServerTask();
  const addresses = server.addresses;
  await server.stop();
  const started = Date.now();
  const client = await runTask(["client", "--addrs", addresses.join(",")]);
  assert.ok(Date.now() - started < 8000, "no wait for the timeout");
  assert.equal(client.code, 1);
  assert.equal(client.stderr.length, 1, client.stderr.join("\n"));
  assert.match(
    client.stderr[0],
    /^client: UnaryEcho failed: UNAVAILABLE: custom_round_robin: both endpoints unreachable: first \[127\.0\.0\.1:\d+\]: .*ECONNREFUSED.*; second \[127\.0\.0\.1:\d+\]: .*ECONNREFUSED/,
  );
});

for (const [value, shown] of [["-1", "-1"], ["1.5", "1.5"], ["abc", '"abc"']]) {
  Deno.test(`e2e: --choose-second ${value} exits 2 with the policy's message`, async () => {
    const client = await runTask(["client", "--choose-second", value]);
    assert.equal(client.code, 2);
    assert.equal(
      client.stderr[0],
      `client: custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got ${shown}`,
    );
    assert.match(client.stderr[1], /^usage: client\.ts /);
    assert.deepEqual(client.stdout, []);
  });
}

const BAD_FLAGS: [string, string[], RegExp][] = [
  ["client", ["--bogus"], /^client: Unknown option '--bogus'/],
  [
    "client",
    ["--count", "abc"],
    /^client: --count must be a whole number, at least 1, got "abc"$/,
  ],
  ["client", ["--count"], /^client: Option '--count <value>' argument missing/],
  ["client", ["--addrs", "localhost:1"], /^client: --addrs needs exactly 2/],
  [
    "client",
    ["--addrs", "localhost:1,localhost"],
    /^client: --addrs: expected HOST:PORT, got "localhost"$/,
  ],
  [
    "client",
    ["--timeout", "0"],
    /^client: --timeout must be a number of seconds, above 0, got "0"$/,
  ],
  [
    "client",
    ["--concurrency", "2"],
    /^client: --concurrency works with --count only/,
  ],
  ["client", ["--rate", "5"], /^client: --rate works with --count only/],
  [
    "client",
    ["--count", "5", "--rate", "0"],
    /^client: --rate must be a whole number, at least 1, got "0"$/,
  ],
  ...["--tls-cert", "--tls-key"].map((flag): [string, string[], RegExp] => [
    "client",
    [flag, "certs/x.pem"],
    /^client: --tls-cert and --tls-key go together$/,
  ]),
  [
    "client",
    ["--etcd-endpoints", "http://127.0.0.1:2379"],
    /^client: --etcd-endpoints works with an etcd: --target only$/,
  ],
  [
    "client",
    ["--target", "etcd:///echo", "--etcd-endpoints", "127.0.0.1:2379"],
    /^client: --etcd-endpoints: etcd endpoints must be http:\/\/HOST:PORT or https:\/\/HOST:PORT URLs, got "127\.0\.0\.1:2379"$/,
  ],
  [
    "client",
    ["--target", "etcd:///echo", "--etcd-ca", "certs/ca.pem"],
    /^client: --etcd-ca, --etcd-cert and --etcd-key need https:\/\/ --etcd-endpoints$/,
  ],
  [
    "client",
    [
      ...["--target", "etcd:///echo", "--etcd-endpoints"],
      ...["https://localhost:2379", "--etcd-cert", "certs/client.pem"],
    ],
    /^client: --etcd-cert and --etcd-key go together$/,
  ],
  [
    "client",
    [
      ...["--target", "etcd:///echo", "--etcd-endpoints"],
      "https://localhost:2379,http://localhost:2380",
    ],
    /^client: --etcd-endpoints: etcd endpoints mix http:\/\/ and https:\/\/ URLs \(https:\/\/localhost:2379,http:\/\/localhost:2380\): give one scheme for all$/,
  ],
  ...["https://127.0.0.1:2379", "https://[::1]:2379"].map((
    url,
  ): [string, string[], RegExp] => [
    "client",
    ["--target", "etcd:///echo", "--etcd-endpoints", url],
    new RegExp(
      `^client: --etcd-endpoints: etcd endpoint ${
        url.replace(/[.[\]]/g, "\\$&")
      }: over TLS grpc-js sends the host it is given by as the TLS server name, and Deno's node:tls refuses an IP address there: give a name its certificate holds \\(Node takes an IP address\\)$`,
    ),
  ]),
  [
    "client",
    ["--etcd-ca", "certs/ca.pem"],
    /^client: --etcd-ca works with an etcd: --target only$/,
  ],
  [
    "server",
    ["--etcd-key", "certs/client.key"],
    /^server: --etcd-key works with --register only$/,
  ],
  [
    "client",
    ["--policy", "round_robin", "--count", "5"],
    /^client: --policy must be custom_round_robin, least_request or ring_hash, got "round_robin"$/,
  ],
  [
    "client",
    ["--policy", "least_request"],
    /^client: --policy least_request works with --count only$/,
  ],
  [
    "client",
    ["--addrs", "localhost:1,localhost:2,localhost:3", "--count", "5"],
    /^client: --addrs needs exactly 2 comma-separated HOST:PORT/,
  ],
  [
    "server",
    ["--delay-ms", "1.5"],
    /^server: --delay-ms must be a whole number of milliseconds, at least 0, got "1.5"$/,
  ],
  [
    "server",
    ["--delay-ms", "-1"],
    /^server: --delay-ms must be a whole number of milliseconds, at least 0, got "-1"$/,
  ],
  [
    "server",
    ["--delay-ms", "1,2,3"],
    /^server: --delay-ms needs one value, or one per address \(2\), got "1,2,3"$/,
  ],
  ["server", ["--bogus"], /^server: Unknown option '--bogus'/],
  [
    "server",
    ["--etcd-ttl", "5"],
    /^server: --etcd-ttl works with --register only$/,
  ],
  [
    "server",
    ["--register", "/"],
    /^server: --register needs a key prefix such as services\/echo, got "\/"$/,
  ],
  [
    "server",
    ["--register", "echo", "--etcd-ttl", "0"],
    /^server: --etcd-ttl must be a whole number of seconds, at least 1, got "0"$/,
  ],
  [
    "server",
    ["--register", "echo", "--etcd-endpoints", "http://10.0.0.1:2379"],
    /^server: --register: localhost:50050 is a loopback address, which hosts other than this one cannot dial, and etcd at http:\/\/10\.0\.0\.1:2379 serves other hosts; /,
  ],
  [
    "server",
    ["--drain-ms", "-5"],
    /^server: --drain-ms must be a whole number of milliseconds, at least 0, got "-5"$/,
  ],
  [
    "server",
    ["--addrs", "localhost"],
    /^server: --addrs: expected HOST:PORT, got "localhost"/,
  ],
  [
    "server",
    ["--addrs", "10.0.0.1:1"],
    /^server: --addrs: 10\.0\.0\.1:1 is not a loopback address/,
  ],
  ...["-1", "100.5", "x", ""].map((value): [string, string[], RegExp] => [
    "server",
    ["--fail-percent", value],
    new RegExp(
      `^server: --fail-percent must be a number, from 0 to 100, got "${value}"$`,
    ),
  ]),
  ...["OK", "ok", "nope", "14"].map((value): [string, string[], RegExp] => [
    "server",
    ["--fail-code", value],
    new RegExp(
      `^server: --fail-code must name a gRPC status other than OK, .*, got "${value}"$`,
    ),
  ]),
];

for (const [program, args, message] of BAD_FLAGS) {
  Deno.test(`e2e: ${program} ${args.join(" ")} exits 2 with a usage line`, async () => {
    const finished = await runTask([program, ...args]);
    assert.equal(finished.code, 2, finished.stderr.join("\n"));
    assert.equal(finished.stderr.length, 2, finished.stderr.join("\n"));
    assert.match(finished.stderr[0], message);
    assert.match(finished.stderr[1], new RegExp(`^usage: ${program}\\.ts `));
  });
}

Deno.test("e2e: an address already in use makes the server exit 1 with one line", async () => {
  const busy: EchoServer = await startEchoServer(ANY_PORT);
  try {
    const finished = await runTask([
      "server",
      "--addrs",
      `localhost:0,${busy.address}`,
    ]);
    assert.equal(finished.code, 1);
    assert.deepEqual(finished.stderr, [
      `server: cannot listen on ${busy.address}: address already in use`,
    ]);
    assert.deepEqual(finished.stdout, []);
  } finally {
    await stopEchoServers([busy], { drainMs: 0, graceMs: 1000 });
  }
});

// Hosts off this machine that the client must refuse before dialling: the
// test-host range, which no test here dials.
const REMOTE_CASES: [string, string[], Record<string, string>, string][] = [
  [
    "backend",
    ["--addrs", "localhost:50050,10.99.0.2:50051"],
    {},
    "10.99.0.2:50051",
  ],
  [
    "backend",
    ["--addrs", "[fd00::1]:50050,localhost:50051"],
    {},
    "[fd00::1]:50050",
  ],
  [
    "etcd endpoint",
    ["--target", "etcd:///echo", "--etcd-endpoints", "http://10.99.0.1:2379"],
    {},
    "10.99.0.1:2379",
  ],
  [
    "xDS server",
    ["--target", "xds:///echo"],
    {
      GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify({
        xds_servers: [{ server_uri: "dns:///xds.test:18000" }],
        node: { id: "echo-client" },
      }),
    },
    "xds.test:18000",
  ],
];

for (const [what, args, env, host] of REMOTE_CASES) {
  Deno.test(`e2e: client ${args.join(" ")} exits 2 before dialling, naming the ${what} and the task that may reach it`, async () => {
    const finished = await runTask(["client", ...args], env);
    assert.equal(finished.code, 2, finished.stderr.join("\n"));
    assert.deepEqual(finished.stderr, [
      `client: may not reach ${what} ${host}: the client's permissions allow loopback only; deno task client:remote reaches any host (docs/flags_and_permissions.md)`,
    ]);
    assert.deepEqual(finished.stdout, []);
  });
}

Deno.test("e2e: the programs', tests' and benchmarks' tasks take their permissions from deno.json's permission sets, so they cannot drift apart", () => {
  const config = JSON.parse(
    Deno.readTextFileSync(new URL("../deno.json", import.meta.url)),
  );
  const sets: Record<string, string> = {
    server: "program",
    client: "program",
    demo: "program",
    "test:doc": "program",
    soak: "bench",
    "soak:idle": "bench",
    bench: "bench",
    "bench:rpc": "bench",
    "bench:scale": "bench",
    "chart:metrics": "bench",
    conformance: "package",
    "bench:runtimes": "package",
  };
  for (const [task, set] of Object.entries(sets)) {
    const command: string = config.tasks[task].command;
    assert.match(command, new RegExp(` -P=${set} `), task);
    assert.doesNotMatch(command, /--allow-/, task);
    assert.ok(config.permissions[set], set);
  }
  // The mutation set is in Stryker's own config (tests/mutation/deno.json).
  assert.match(
    config.tasks.mutation.command,
    / -c tests\/mutation\/deno\.json -P=mutation /,
  );
  const mutation = JSON.parse(
    Deno.readTextFileSync(
      new URL("../tests/mutation/deno.json", import.meta.url),
    ),
  );
  assert.ok(mutation.permissions.mutation);
  // client:dns and client:remote: the program set, with any host.
  for (const task of ["client:dns", "client:remote"]) {
    assert.match(config.tasks[task].command, / -P=program --allow-net /, task);
  }
  assert.equal(
    config.tasks.test.command,
    "DENO_NO_UPDATE_CHECK=1 deno test -P tests/",
  );
});

Deno.test("e2e: plain `deno test` stops at once and says to add -P", async () => {
  const { code, stderr } = await new Deno.Command("deno", {
    args: ["test"],
    cwd: new URL("..", import.meta.url),
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.notEqual(code, 0);
  assert.match(
    new TextDecoder().decode(stderr).split("\n")[0],
    /^error: Test permissions were found in the config file\. Did you mean to run with `-P`/,
  );
});

for (const [percent, failed] of [[25, 50], [100, 200]]) {
  Deno.test(`e2e: server --fail-percent ${percent} --fail-code internal fails exactly ${failed} of 200 UnaryEcho, evenly, and its Health still says SERVING`, async () => {
    const server = await startServerTask(["localhost:0"], [
      "--fail-percent",
      String(percent),
      "--fail-code",
      "internal",
    ]);
    let client: Finished | undefined;
    try {
      // chooseSecond 0: every RPC to the one server; health checking (the
      // client's default) lets none through unless it answers SERVING.
      client = await runTask([
        "client",
        "--addrs",
        `${server.addresses[0]},localhost:1`,
        "--choose-second",
        "0",
        "--count",
        "200",
      ]);
    } finally {
      await server.stop();
    }
    assert.equal(client.code, 1);
    assert.equal(client.stdout.at(-1), `failed: ${failed} of 200 RPCs`);
    assert.equal(client.stderr.length, failed, client.stderr.join("\n"));
    for (const line of client.stderr) {
      assert.equal(
        line,
        `failed: INTERNAL: ${
          server.addresses[0]
        } failed this RPC (--fail-percent ${percent})`,
      );
    }
  });
}

Deno.test("e2e: with etcd unreachable, the client and a registering server each exit 1 with one line naming etcd", async () => {
  const etcd = `http://127.0.0.1:${freePort()}`;
  const [client, server] = await Promise.all([
    runTask([
      "client",
      "--target",
      "etcd:///echo",
      "--etcd-endpoints",
      etcd,
      "--timeout",
      "3",
    ]),
    runTask([
      "server",
      "--addrs",
      "localhost:0",
      "--register",
      "echo",
      "--etcd-endpoints",
      etcd,
    ]),
  ]);
  assert.equal(client.code, 1);
  assert.equal(client.stderr.length, 1, client.stderr.join("\n"));
  assert.match(
    client.stderr[0],
    new RegExp(
      `^client: UnaryEcho failed: UNAVAILABLE: custom_round_robin: no endpoints were resolved: etcd resolver: cannot read echo/ from etcd at ${etcd}: `,
    ),
  );
  assert.equal(server.code, 1);
  assert.equal(server.stderr.length, 1, server.stderr.join("\n"));
  assert.match(
    server.stderr[0],
    new RegExp(`^server: cannot register in etcd at ${etcd}: `),
  );
});

Deno.test("e2e: an etcd user name without its password exits 2 naming both variables", async () => {
  for (const program of ["client", "server"]) {
    const args = program === "client"
      ? ["--target", "etcd:///echo"]
      : ["--addrs", "localhost:0", "--register", "echo"];
    const finished = await runTask([program, ...args], {
      ETCD_USERNAME: "reader",
    });
    assert.equal(finished.code, 2, finished.stderr.join("\n"));
    assert.equal(
      finished.stderr[0],
      `${program}: ETCD_USERNAME and ETCD_PASSWORD go together`,
    );
  }
});

Deno.test("e2e: server --delay-ms makes one of three backends 10 times slower; client --policy least_request --count sends it the fewest RPCs, and prints each backend's count", async () => {
  const server = await startServerTask(
    ["localhost:0", "localhost:0", "localhost:0"],
    ["--delay-ms", "2,2,20"],
  );
  let client: Finished | undefined;
  try {
    client = await runTask([
      "client",
      "--policy",
      "least_request",
      "--addrs",
      server.addresses.join(","),
      "--count",
      "300",
      "--concurrency",
      "16",
      "--quiet",
    ]);
  } finally {
    await server.stop();
  }
  assert.equal(client.code, 0, client.stderr.join("\n"));
  assert.equal(client.stdout.at(-1), "failed: 0 of 300 RPCs");
  // One line per backend, by the address it connected to.
  const counts = server.addresses.map((address) => {
    const port = address.split(":").at(-1);
    const line = client!.stdout.find((l) => l.includes(`:${port}: `));
    assert.ok(line, `a line for ${address} in ${client!.stdout}`);
    return Number(line.match(/: (\d+) RPCs$/)?.[1]);
  });
  console.log(`RPCs per backend, the third the slow one: ${counts.join(", ")}`);
  assert.equal(counts.reduce((a, b) => a + b), 300);
  assert.ok(counts[2] < Math.min(counts[0], counts[1]), `${counts}`);
});

Deno.test("e2e: client --health-service asks for that service: one the servers do not know is unhealthy on both, so RPCs fail at once saying so", async () => {
  const server = await startServerTask();
  let client: Finished | undefined;
  try {
    client = await runTask([
      "client",
      "--addrs",
      server.addresses.join(","),
      "--health-service",
      "no.such.Service",
    ]);
  } finally {
    await server.stop();
  }
  assert.equal(client.code, 1);
  assert.equal(client.stderr.length, 1, client.stderr.join("\n"));
  assert.match(
    client.stderr[0],
    /^client: UnaryEcho failed: UNAVAILABLE: custom_round_robin: both endpoints unreachable: first \[127\.0\.0\.1:\d+\]: .*is unhealthy; second \[127\.0\.0\.1:\d+\]: .*is unhealthy$/,
  );
});
