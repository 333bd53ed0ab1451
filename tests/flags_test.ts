/**
 * The programs' number flags at their edges and past them, read by the flag
 * readers themselves: whole numbers given fractions, `Infinity`, `NaN`,
 * nothing, out of range; and flags that need a partner.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { DEFAULT_ETCD_ENDPOINTS } from "../balancer/etcd.ts";
import { DRAIN_MS, ECHO_SERVICE_NAME } from "../echo/mod.ts";
import { CLIENT_USAGE, readClientFlags } from "../cli/client_flags.ts";
import { readServerFlags, SERVER_USAGE } from "../cli/server_flags.ts";
import { DEFAULT_ETCD_TTL_SECONDS } from "../cli/etcd_registration.ts";
import { readFlagFile, UsageError } from "../cli/flags.ts";

/** A flag, values it refuses, and a value it takes, as `[flag, refused, taken]`. */
type Edge = [string, string[], string];

/** What any number flag refuses. */
const NOT_NUMBERS = ["", " ", "abc", "NaN", "Infinity", "1e400", "0x10"];

const CLIENT: Edge[] = [
  ["--timeout", [...NOT_NUMBERS, "0", "-1"], "0.5"],
  ["--count", [...NOT_NUMBERS, "0", "1.5", "-1"], "1"],
];
const COUNTED: Edge[] = [
  ["--concurrency", [...NOT_NUMBERS, "0", "2.5"], "1"],
  ["--rate", [...NOT_NUMBERS, "0", "0.5"], "1"],
];
const SERVER: Edge[] = [
  ["--drain-ms", [...NOT_NUMBERS, "-1", "1.5"], "0"],
  ["--fail-percent", [...NOT_NUMBERS, "-1", "100.5", "101"], "100"],
  ["--delay-ms", [...NOT_NUMBERS, "-1", "2.5", "1,"], "0"],
];

/** Asserts that `read(args)` refuses with `--flag must be …, got "value"`. */
function assertRefused(
  read: (args: string[]) => unknown,
  args: string[],
  flag: string,
  value: string,
): void {
  assert.throws(
    () => read(args),
    (error: Error) =>
      error instanceof UsageError &&
      error.message.startsWith(`${flag} must be `) &&
      error.message.endsWith(`, got "${value.split(",").at(-1)}"`),
    `${flag} ${JSON.stringify(value)}`,
  );
}

Deno.test("flags: every client number flag refuses non-numbers, Infinity, fractions where whole, and values out of range, naming itself and the value", () => {
  for (const [flag, refused, taken] of CLIENT) {
    for (const value of refused) {
      assertRefused(readClientFlags, [flag, value], flag, value);
    }
    assert.ok(readClientFlags([flag, taken]), `${flag} ${taken}`);
  }
  for (const [flag, refused, taken] of COUNTED) {
    for (const value of refused) {
      assertRefused(
        readClientFlags,
        ["--count", "1", flag, value],
        flag,
        value,
      );
    }
    assert.ok(readClientFlags(["--count", "1", flag, taken]));
  }
});

Deno.test("flags: every server number flag refuses the same, --delay-ms in each of its values", () => {
  for (const [flag, refused, taken] of SERVER) {
    for (const value of refused) {
      assertRefused(readServerFlags, [flag, value], flag, value);
    }
    assert.ok(readServerFlags([flag, taken]), `${flag} ${taken}`);
  }
  assert.deepEqual(
    readServerFlags(["--addrs", "localhost:0,localhost:0", "--delay-ms", "3"])
      ?.delaysMs,
    [3, 3],
  );
  assert.deepEqual(
    readServerFlags([
      "--addrs",
      "localhost:0,localhost:0",
      "--delay-ms",
      "3, 4",
    ])
      ?.delaysMs,
    [3, 4],
  );
});

Deno.test("flags: a flag that needs a partner is refused without it, naming the partner", () => {
  const cases: [(args: string[]) => unknown, string[], RegExp][] = [
    [
      readClientFlags,
      ["--concurrency", "2"],
      /--concurrency works with --count only/,
    ],
    [readClientFlags, ["--rate", "2"], /--rate works with --count only/],
    [readClientFlags, ["--policy", "least_request"], /works with --count only/],
    [
      readClientFlags,
      ["--policy", "ring_hash"],
      /--policy ring_hash works with --keys only$/,
    ],
    [
      readClientFlags,
      ["--keys", "3"],
      /--keys works with --policy ring_hash only$/,
    ],
    [
      readClientFlags,
      ["--hash-header", "x-user"],
      /--hash-header works with --policy ring_hash only$/,
    ],
    [
      readClientFlags,
      ["--etcd-ca", "ca.pem"],
      /--etcd-ca works with an etcd: --target only/,
    ],
    [
      readServerFlags,
      ["--etcd-ttl", "5"],
      /--etcd-ttl works with --register only/,
    ],
    [
      readServerFlags,
      ["--etcd-endpoints", "http://127.0.0.1:2379"],
      /--etcd-endpoints works with --register only/,
    ],
  ];
  for (const [read, args, message] of cases) {
    assert.throws(() => read(args), message, args.join(" "));
  }
});

/** Asserts that `read(args)` throws a UsageError saying exactly `message`. */
function assertSays(
  read: (args: string[]) => unknown,
  args: string[],
  message: string,
): void {
  assert.throws(
    () => read(args),
    (error: Error) => error instanceof UsageError && error.message === message,
    `${args.join(" ")}: expected "${message}"`,
  );
}

Deno.test("flags: the client's defaults, and every flag given, read as the client uses them", () => {
  assert.equal(readClientFlags(["--help"]), null);
  assert.deepEqual(readClientFlags([]), {
    policy: "custom_round_robin",
    addrs: ["localhost:50050", "localhost:50051"],
    target: undefined,
    etcdEndpoints: [DEFAULT_ETCD_ENDPOINTS],
    etcd: null,
    chooseSecond: 3,
    healthService: ECHO_SERVICE_NAME,
    outlierDetection: false,
    tls: null,
    timeout: 10,
    count: null,
    quiet: false,
    metrics: null,
    keys: null,
  });
  assert.deepEqual(
    readClientFlags([
      "--addrs",
      " a:1 , b:2 ",
      "--choose-second",
      "0",
      "--health-service",
      "",
      "--outlier-detection",
      "--tls-ca",
      "certs/ca.pem",
      "--timeout",
      " 2.5 ",
      "--count",
      "+5",
      "--concurrency",
      "2",
      "--rate",
      "1e3",
      "--quiet",
      "--metrics-port",
      "65535",
      "--metrics-host",
      " 127.0.0.1 ",
    ]),
    {
      policy: "custom_round_robin",
      addrs: ["a:1", "b:2"],
      target: undefined,
      etcdEndpoints: [DEFAULT_ETCD_ENDPOINTS],
      etcd: null,
      chooseSecond: 0,
      healthService: null,
      outlierDetection: true,
      tls: { ca: "certs/ca.pem", cert: undefined, key: undefined },
      timeout: 2.5,
      count: { count: 5, concurrency: 2, rate: 1000 },
      quiet: true,
      metrics: { port: 65535, host: "127.0.0.1" },
      keys: null,
    },
  );
});

Deno.test("flags: a client target, least_request's endpoints and chooseSecond as JSON reads it", () => {
  const etcd = readClientFlags([
    "--target",
    "etcd:///services/echo",
    "--etcd-endpoints",
    "http://127.0.0.1:1, http://127.0.0.1:2",
  ])!;
  assert.equal(etcd.target, "etcd:///services/echo");
  assert.deepEqual(etcd.etcdEndpoints, [
    "http://127.0.0.1:1",
    "http://127.0.0.1:2",
  ]);
  assert.deepEqual(etcd.etcd, {
    access: { tls: undefined, user: undefined },
    tls: null,
  });
  assert.equal(readClientFlags(["--target", "dns:///x:1"])!.etcd, null);
  const leastRequest = readClientFlags([
    "--policy",
    "least_request",
    "--count",
    "1",
    "--addrs",
    "a:1,b:2,c:3",
  ])!;
  assert.equal(leastRequest.policy, "least_request");
  assert.deepEqual(leastRequest.addrs, ["a:1", "b:2", "c:3"]);
  assert.deepEqual(
    readClientFlags(["--policy", "least_request", "--count", "1"])!.addrs,
    ["localhost:50050", "localhost:50051"],
  );
  const ringHash = readClientFlags([
    "--policy",
    "ring_hash",
    "--keys",
    "7",
    "--addrs",
    "a:1,b:2,c:3",
  ])!;
  assert.deepEqual(ringHash.keys, { keys: 7, header: "x-user" });
  assert.deepEqual(ringHash.addrs, ["a:1", "b:2", "c:3"]);
  assert.deepEqual(
    readClientFlags([
      "--policy",
      "ring_hash",
      "--keys",
      "1",
      "--hash-header",
      "x-tenant",
    ])!.keys,
    { keys: 1, header: "x-tenant" },
  );
  assert.equal(readClientFlags(["--choose-second", "2.5"])!.chooseSecond, 2.5);
  assert.equal(readClientFlags(["--timeout", ".5"])!.timeout, 0.5);
  assert.equal(readClientFlags(["--timeout", "2."])!.timeout, 2);
});

Deno.test("flags: each client mistake is refused in its own words", () => {
  const choose = (got: string) =>
    `custom_round_robin: chooseSecond must be an integer from 0 to 4294967295, got ${got}`;
  const cases: [string[], string][] = [
    [
      ["--addrs", "a:1,b:2", "--target", "x"],
      "--addrs and --target cannot be used together",
    ],
    [
      ["--policy", "pick_first"],
      '--policy must be custom_round_robin, least_request or ring_hash, got "pick_first"',
    ],
    [
      ["--addrs", "a:1"],
      '--addrs needs exactly 2 comma-separated HOST:PORT, got "a:1"',
    ],
    [
      ["--addrs", "a:1, "],
      '--addrs needs exactly 2 comma-separated HOST:PORT, got "a:1, "',
    ],
    [
      ["--addrs", "a:1,b:2,c:3"],
      '--addrs needs exactly 2 comma-separated HOST:PORT, got "a:1,b:2,c:3"',
    ],
    [["--addrs", "a:1,b"], '--addrs: expected HOST:PORT, got "b"'],
    [["--choose-second", "abc"], choose('"abc"')],
    [["--choose-second", '"3"'], choose('"3"')],
    [["--choose-second", "null"], choose("null")],
    [
      ["--etcd-endpoints", "http://127.0.0.1:1"],
      "--etcd-endpoints works with an etcd: --target only",
    ],
    [["--etcd-key", "k"], "--etcd-key works with an etcd: --target only"],
    [
      ["--metrics-host", "localhost"],
      "--metrics-host works with --metrics-port only",
    ],
    [
      ["--metrics-port", "1", "--metrics-host", " "],
      "--metrics-host needs a host name or address",
    ],
    [
      ["--metrics-port", "65536"],
      '--metrics-port must be a whole number, from 0 to 65535, got "65536"',
    ],
    [
      ["--metrics-port", "-1"],
      '--metrics-port must be a whole number, from 0 to 65535, got "-1"',
    ],
    [
      ["--timeout", "0"],
      '--timeout must be a number of seconds, above 0, got "0"',
    ],
    [
      ["--timeout", "-.5"],
      '--timeout must be a number of seconds, above 0, got "-.5"',
    ],
    [["--count", "0"], '--count must be a whole number, at least 1, got "0"'],
    [["--count", "1e"], '--count must be a whole number, at least 1, got "1e"'],
    [
      ["--addrs", "10.0.0.1:1,10.0.0.2:1", "--tls-ca", "ca.pem"],
      "--addrs: 10.0.0.1:1 is an IP address; over TLS each backend is verified by the host name it is given by, and Deno cannot verify an IP address: give a name its certificate holds, such as localhost",
    ],
  ];
  for (const [args, message] of cases) {
    assertSays(readClientFlags, args, message);
  }
  assert.throws(
    () => readClientFlags(["--bogus"]),
    (error: Error) =>
      error instanceof UsageError && error.message.includes("'--bogus'") &&
      !error.message.includes("\n"),
  );
});

Deno.test("flags: the server's defaults, and every flag given, read as the server uses them", () => {
  assert.equal(readServerFlags(["--help"]), null);
  assert.deepEqual(readServerFlags([]), {
    addresses: ["localhost:50050", "localhost:50051"],
    drainMs: DRAIN_MS,
    failures: null,
    delaysMs: [0, 0],
    tls: { ca: undefined, cert: undefined, key: undefined },
    etcd: null,
    metrics: null,
  });
  assert.deepEqual(
    readServerFlags([
      "--addrs",
      "127.1.2.3:0, [::1]:0",
      "--drain-ms",
      "5",
      "--fail-percent",
      "0.5",
      "--fail-code",
      "internal",
      "--delay-ms",
      "1,2",
      "--tls-cert",
      "c.pem",
      "--tls-key",
      "k.pem",
      "--tls-client-ca",
      "ca.pem",
      "--metrics-port",
      "0",
    ]),
    {
      addresses: ["127.1.2.3:0", "[::1]:0"],
      drainMs: 5,
      failures: { percent: 0.5, code: grpc.status.INTERNAL },
      delaysMs: [1, 2],
      tls: { ca: "ca.pem", cert: "c.pem", key: "k.pem" },
      etcd: null,
      metrics: { port: 0, host: "localhost" },
    },
  );
  assert.equal(
    readServerFlags(["--fail-percent", "0", "--fail-code", "internal"])!
      .failures,
    null,
  );
  assert.deepEqual(
    readServerFlags(["--addrs", "10.0.0.1:1", "--listen-anywhere"])!.addresses,
    ["10.0.0.1:1"],
  );
});

Deno.test("flags: the server's registration in etcd, and each server mistake in its own words", () => {
  assert.deepEqual(readServerFlags(["--register", "/services/echo/"])!.etcd, {
    prefix: "/services/echo/",
    endpoints: [DEFAULT_ETCD_ENDPOINTS],
    ttlSeconds: DEFAULT_ETCD_TTL_SECONDS,
    settings: { access: { tls: undefined, user: undefined }, tls: null },
  });
  assert.deepEqual(
    readServerFlags([
      "--addrs",
      "10.0.0.2:1",
      "--listen-anywhere",
      "--register",
      "svc",
      "--etcd-endpoints",
      "http://10.0.0.1:2379",
      "--etcd-ttl",
      "1",
    ])!.etcd?.ttlSeconds,
    1,
  );
  const cases: [string[], string][] = [
    [
      ["--addrs", "10.0.0.1:1"],
      "--addrs: 10.0.0.1:1 is not a loopback address; the servers listen on loopback only unless --listen-anywhere",
    ],
    [
      ["--addrs", "128.0.0.1:1"],
      "--addrs: 128.0.0.1:1 is not a loopback address; the servers listen on loopback only unless --listen-anywhere",
    ],
    [
      ["--fail-code", "ok"],
      '--fail-code must name a gRPC status other than OK, such as UNAVAILABLE or internal, got "ok"',
    ],
    [
      ["--fail-code", "nonsense"],
      '--fail-code must name a gRPC status other than OK, such as UNAVAILABLE or internal, got "nonsense"',
    ],
    [
      ["--fail-percent", "101"],
      '--fail-percent must be a number, from 0 to 100, got "101"',
    ],
    [
      ["--drain-ms", "-1"],
      '--drain-ms must be a whole number of milliseconds, at least 0, got "-1"',
    ],
    [
      ["--delay-ms", "1,2,3"],
      '--delay-ms needs one value, or one per address (2), got "1,2,3"',
    ],
    [
      ["--register", "//"],
      '--register needs a key prefix such as services/echo, got "//"',
    ],
    [
      ["--register", "svc", "--etcd-ttl", "0"],
      '--etcd-ttl must be a whole number of seconds, at least 1, got "0"',
    ],
    [
      ["--register", "svc", "--etcd-endpoints", "http://10.0.0.1:2379"],
      "--register: localhost:50050 is a loopback address, which hosts other than this one cannot dial, and etcd at http://10.0.0.1:2379 serves other hosts; serve on an address they can reach (--listen-anywhere)",
    ],
    [
      ["--register", "svc", "--etcd-endpoints", "ftp://x:1"],
      '--etcd-endpoints: etcd endpoints must be http://HOST:PORT or https://HOST:PORT URLs, got "ftp://x:1"',
    ],
    [["--etcd-ca", "ca.pem"], "--etcd-ca works with --register only"],
    [
      ["--metrics-host", "localhost"],
      "--metrics-host works with --metrics-port only",
    ],
  ];
  for (const [args, message] of cases) {
    assertSays(readServerFlags, args, message);
  }
});

Deno.test("flags: each program's usage names every flag it reads", () => {
  const client = [
    "addrs",
    "target",
    "etcd-endpoints",
    "etcd-ca",
    "etcd-cert",
    "etcd-key",
    "choose-second",
    "policy",
    "timeout",
    "count",
    "concurrency",
    "rate",
    "health-service",
    "outlier-detection",
    "tls-ca",
    "tls-cert",
    "tls-key",
    "quiet",
    "metrics-port",
    "metrics-host",
    "help",
  ];
  const server = [
    "addrs",
    "drain-ms",
    "listen-anywhere",
    "fail-percent",
    "fail-code",
    "delay-ms",
    "tls-cert",
    "tls-key",
    "tls-client-ca",
    "register",
    "etcd-endpoints",
    "etcd-ttl",
    "etcd-ca",
    "etcd-cert",
    "etcd-key",
    "metrics-port",
    "metrics-host",
    "help",
  ];
  for (
    const [usage, flags] of [[CLIENT_USAGE, client], [
      SERVER_USAGE,
      server,
    ]] as const
  ) {
    for (const flag of flags) {
      assert.match(usage, new RegExp(`(\\n  |, )--${flag}[ ,\\n]`), flag);
    }
  }
  assert.match(CLIENT_USAGE, /\(default localhost:50050,localhost:50051\)/);
  assert.match(SERVER_USAGE, new RegExp(`\\(default ${DRAIN_MS}\\)`));
});

Deno.test("flags: a number is read in every decimal form, and only those", () => {
  const timeout = (value: string) =>
    readClientFlags(["--timeout", value])!.timeout;
  const forms: [string, number][] = [
    ["0.25", 0.25],
    [".55", 0.55],
    ["+2", 2],
    [" 3 ", 3],
    ["1e+1", 10],
    ["1E-1", 0.1],
    ["2e10", 2e10],
  ];
  for (const [value, read] of forms) assert.equal(timeout(value), read, value);
  for (const value of ["1e", "e1", ".", "1.2.3", "1e+", "1 2"]) {
    assertRefused(readClientFlags, ["--timeout", value], "--timeout", value);
  }
});

Deno.test("flags: a flag's file that cannot be read is one line naming the flag, the path and why", () => {
  const cases: [string, string][] = [
    ["certs/no-such-file.pem", "no such file"],
    [
      "/etc/hostname",
      "not readable with this task's permissions (put it in certs/)",
    ],
  ];
  for (const [path, why] of cases) {
    assert.throws(
      () => readFlagFile("tls-ca", path),
      (error: Error) =>
        error.message === `--tls-ca: cannot read ${path}: ${why}` &&
        error.cause !== undefined,
      path,
    );
  }
  assert.throws(
    () => readFlagFile("tls-ca", "certs"),
    (error: Error) => error.message.startsWith("--tls-ca: cannot read certs: "),
  );
});

Deno.test("flags: what each reader is given, and the errors it keeps, at the edges the mutation run found", () => {
  // A flag's value that looks like a flag is not taken as its value.
  assertSays(
    readClientFlags,
    ["--health-service", "--quiet"],
    "Option '--health-service' argument is ambiguous.",
  );
  assert.throws(
    () => readClientFlags(["--quiet", "-1"]),
    (error: Error) =>
      error instanceof UsageError && error.message.includes("'-1'") &&
      error.cause instanceof Error,
  );
  assert.throws(
    () => readClientFlags(["--target", "etcd:///x", "--etcd-endpoints", "x"]),
    (error: Error) =>
      error.message.startsWith("--etcd-endpoints: ") &&
      error.cause instanceof Error,
  );
  // IP addresses are fine without TLS; a target other than etcd: takes no
  // etcd flag.
  assert.deepEqual(
    readClientFlags(["--addrs", "127.0.0.1:1,127.0.0.1:2"])!.addrs,
    ["127.0.0.1:1", "127.0.0.1:2"],
  );
  assertSays(
    readClientFlags,
    ["--target", "dns:///x", "--etcd-endpoints", "http://127.0.0.1:1"],
    "--etcd-endpoints works with an etcd: --target only",
  );
  assert.deepEqual(
    readClientFlags(["--tls-cert", "c.pem", "--tls-key", "k.pem"])!.tls,
    { ca: undefined, cert: "c.pem", key: "k.pem" },
  );
  for (const address of ["[::1", ":", "[::1]x"]) {
    assertSays(
      readClientFlags,
      [
        "--policy",
        "least_request",
        "--count",
        "1",
        "--addrs",
        `a:1,${address}`,
      ],
      `--addrs: expected HOST:PORT, got "${address}"`,
    );
    assertSays(
      readServerFlags,
      ["--addrs", address],
      `--addrs: expected HOST:PORT, got "${address}"`,
    );
  }
  assert.match(SERVER_USAGE, /\(at\s+most 5 s\), then exits 0/);
  // A name that starts as a loopback address does is not one.
  assertSays(
    readServerFlags,
    ["--addrs", "127.0.0.1.nip.test:1"],
    "--addrs: 127.0.0.1.nip.test:1 is not a loopback address; the servers listen on loopback only unless --listen-anywhere",
  );
  assertSays(
    readServerFlags,
    ["--delay-ms", "x"],
    '--delay-ms must be a whole number of milliseconds, at least 0, got "x"',
  );
});

Deno.test("flags: --keys takes a whole number of at least 1, named in its refusal", () => {
  for (const value of ["0", "1.5", "x"]) {
    assert.throws(
      () => readClientFlags(["--policy", "ring_hash", "--keys", value]),
      (error: Error) => error.message.startsWith("--keys "),
      value,
    );
  }
  assert.equal(
    readClientFlags(["--policy", "ring_hash", "--keys", "1"])!.keys?.keys,
    1,
  );
});
