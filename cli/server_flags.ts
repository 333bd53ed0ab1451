/**
 * The server's command line: its usage message and its flags, read and
 * checked before any server starts.
 *
 * @module
 */
import { isIPv4 } from "node:net";
import * as grpc from "@grpc/grpc-js";
import {
  DEFAULT_ETCD_ENDPOINTS,
  etcdKeyPrefix,
  parseEtcdEndpoints,
} from "../balancer/etcd.ts";
import {
  DRAIN_MS,
  ECHO_SERVICE_NAME,
  type Failures,
  GRACE_MS,
} from "../echo/mod.ts";
import { DEFAULT_ETCD_TTL_SECONDS } from "./etcd_registration.ts";
import {
  METRICS_OPTIONS,
  METRICS_USAGE,
  type MetricsFlags,
  type ParsedFlags,
  parseFlags,
  readAddresses,
  readFlag,
  readMetricsFlags,
  readNumber,
  UsageError,
} from "./flags.ts";
import type { TlsFiles } from "./tls.ts";
import {
  ETCD_TLS_FLAGS,
  ETCD_TLS_OPTIONS,
  type EtcdSettings,
  readEtcdSettings,
} from "./etcd_access.ts";

/** The server's usage message: its flags and what it does. */
export const SERVER_USAGE =
  `usage: server.ts [--addrs HOST:PORT,...] [--listen-anywhere] [--drain-ms MS]
                 [--fail-percent P [--fail-code NAME]] [--delay-ms MS,...]
                 [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
                 [--register PREFIX [--etcd-endpoints URLS] [--etcd-ttl S]
                  [--etcd-ca FILE] [--etcd-cert FILE --etcd-key FILE]]
                 [--metrics-port PORT [--metrics-host HOST]] [--help]

Starts one echo server per address; port 0 picks a free port.

  --addrs            addresses to serve on
                     (default localhost:50050,localhost:50051)
  --listen-anywhere  allow addresses that are not loopback, as a backend on
                     its own host needs; without it they are refused
  --drain-ms         on SIGINT or SIGTERM, how long to keep serving after
                     reporting NOT_SERVING (default ${DRAIN_MS})
  --fail-percent     fail this share of UnaryEcho RPCs, 0 to 100 (default 0);
                     the Health service still reports SERVING, as a sick
                     backend's would
  --fail-code        the status of those failures, a gRPC code name in any
                     case (default UNAVAILABLE)
  --delay-ms         answer every UnaryEcho this many milliseconds late, as a
                     slow backend would: one value for every address, or one
                     per address (default 0)
  --tls-cert, --tls-key
                     serve TLS with this certificate (PEM, chain first) and
                     its key; the Health service too
  --tls-client-ca    with TLS, serve only clients whose certificate this CA
                     signed (mutual TLS)
  --register         register each address in etcd as PREFIX/HOST:PORT, for
                     clients of etcd:///PREFIX (docs/etcd.md); on SIGINT or
                     SIGTERM the keys are deleted first
  --etcd-endpoints   the etcd cluster's client URLs, comma-separated
                     (default ${DEFAULT_ETCD_ENDPOINTS})
  --etcd-ttl         the registration lease's time to live: a server killed
                     without deregistering stays registered this long
                     (default ${DEFAULT_ETCD_TTL_SECONDS} s)
  --etcd-ca          with https:// etcd URLs, the CA etcd's certificate is
                     verified against (default: the system's CAs)
  --etcd-cert, --etcd-key
                     a client certificate for an etcd that asks for one
                     (--client-cert-auth)
${METRICS_USAGE}
  --help             show this help

Each server prints "serving on HOST:PORT", tags every reply
"(from HOST:PORT)" and serves grpc.health.v1.Health (SERVING for "" and
"${ECHO_SERVICE_NAME}"). SIGINT or SIGTERM reports NOT_SERVING, keeps serving
for --drain-ms, stops accepting connections, lets RPCs in flight finish (at
most ${GRACE_MS / 1000} s), then exits 0. With ETCD_USERNAME and
ETCD_PASSWORD set, it registers as that etcd user, who needs readwrite on
PREFIX/.`;

/** The server's command line, checked. */
export interface ServerFlags {
  /** The addresses to serve on, trimmed. */
  readonly addresses: readonly string[];
  readonly drainMs: number;
  /** The UnaryEcho failures to inject, or `null` for none. */
  readonly failures: Failures | null;
  /** How late each address's server answers UnaryEcho, in milliseconds. */
  readonly delaysMs: readonly number[];
  /** The TLS flags' files (`ca` is `--tls-client-ca`). */
  readonly tls: TlsFiles;
  /** Where to register in etcd, or `null` for no registration. */
  readonly etcd: EtcdFlags | null;
  /** Where to serve the metrics, or `null` for none. */
  readonly metrics: MetricsFlags | null;
}

/** `--register` and the flags that go with it. */
export interface EtcdFlags {
  readonly prefix: string;
  readonly endpoints: string[];
  readonly ttlSeconds: number;
  /** TLS and the user, from the `--etcd-*` flags and the environment. */
  readonly settings: EtcdSettings;
}

const OPTIONS = {
  addrs: { type: "string", default: "localhost:50050,localhost:50051" },
  "drain-ms": { type: "string", default: String(DRAIN_MS) },
  "listen-anywhere": { type: "boolean", default: false },
  "fail-percent": { type: "string", default: "0" },
  "fail-code": { type: "string", default: "UNAVAILABLE" },
  "delay-ms": { type: "string", default: "0" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-client-ca": { type: "string" },
  register: { type: "string" },
  "etcd-endpoints": { type: "string" },
  "etcd-ttl": { type: "string" },
  ...ETCD_TLS_OPTIONS,
  ...METRICS_OPTIONS,
  help: { type: "boolean", default: false },
} as const;

type Parsed = ParsedFlags<typeof OPTIONS>;

/**
 * Reads the server's command line; `null` for `--help`.
 *
 * @throws {UsageError} naming the first bad flag.
 */
export function readServerFlags(args: readonly string[]): ServerFlags | null {
  const flags = parseFlags(args, OPTIONS);
  if (flags.help) return null;
  const drainMs = readNumber("drain-ms", flags["drain-ms"], {
    whole: true,
    unit: "milliseconds",
    min: 0,
  });
  const addresses = readAddresses("addrs", flags.addrs);
  const outside = addresses.find((address) => !isLoopback(address));
  if (outside !== undefined && !flags["listen-anywhere"]) {
    throw new UsageError(
      `--addrs: ${outside} is not a loopback address; the servers listen on loopback only unless --listen-anywhere`,
    );
  }
  const percent = failPercent(flags["fail-percent"]);
  const code = failCode(flags["fail-code"]);
  return {
    addresses,
    drainMs,
    failures: percent > 0 ? { percent, code } : null,
    delaysMs: readDelays(flags["delay-ms"], addresses.length),
    tls: {
      ca: flags["tls-client-ca"],
      cert: flags["tls-cert"],
      key: flags["tls-key"],
    },
    etcd: readEtcd(flags, addresses),
    metrics: readMetricsFlags(flags),
  };
}

function isLoopback(address: string): boolean {
  const host = grpc.experimental.splitHostPort(address)?.host;
  return host === "localhost" || host === "::1" ||
    (host !== undefined && isIPv4(host) && host.startsWith("127."));
}

/**
 * Reads `--register` and the flags that go with it: where to register, or `null` for
 * no registration.
 */
function readEtcd(
  flags: Parsed,
  addresses: readonly string[],
): EtcdFlags | null {
  if (flags.register === undefined) {
    for (
      const flag of ["etcd-endpoints", "etcd-ttl", ...ETCD_TLS_FLAGS] as const
    ) {
      if (flags[flag] !== undefined) {
        throw new UsageError(`--${flag} works with --register only`);
      }
    }
    return null;
  }
  const prefix = flags.register;
  if (etcdKeyPrefix(prefix) === "/") {
    throw new UsageError(
      `--register needs a key prefix such as services/echo, got "${flags.register}"`,
    );
  }
  const endpoints = readFlag(
    "etcd-endpoints",
    flags["etcd-endpoints"] ?? DEFAULT_ETCD_ENDPOINTS,
    parseEtcdEndpoints,
  );
  const ttlSeconds = readNumber(
    "etcd-ttl",
    flags["etcd-ttl"] ?? String(DEFAULT_ETCD_TTL_SECONDS),
    { whole: true, unit: "seconds", min: 1 },
  );
  // Other hosts would find an address they cannot dial.
  const remote = endpoints.find((url) => !isLoopback(new URL(url).host));
  const local = addresses.find(isLoopback);
  if (remote !== undefined && local !== undefined) {
    throw new UsageError(
      `--register: ${local} is a loopback address, which hosts other than this one cannot dial, and etcd at ${remote} serves other hosts; serve on an address they can reach (--listen-anywhere)`,
    );
  }
  const settings = readEtcdSettings(flags, endpoints);
  return { prefix, endpoints, ttlSeconds, settings };
}

/**
 * Reads `--delay-ms`: whole milliseconds, one for every address or one per
 * address; the delay of each address, in order.
 */
function readDelays(value: string, addresses: number): number[] {
  const delays = value.split(",").map((entry) =>
    readNumber("delay-ms", entry, {
      whole: true,
      unit: "milliseconds",
      min: 0,
    })
  );
  if (delays.length === 1) return Array(addresses).fill(delays[0]);
  if (delays.length !== addresses) {
    throw new UsageError(
      `--delay-ms needs one value, or one per address (${addresses}), got "${value}"`,
    );
  }
  return delays;
}

/** Reads `--fail-percent`: a number from 0 to 100. */
function failPercent(value: string): number {
  return readNumber("fail-percent", value, { min: 0, max: 100 });
}

/** Reads `--fail-code`: a gRPC status name other than OK, in any case. */
function failCode(value: string): grpc.status {
  const code = (grpc.status as Record<string, unknown>)[value.toUpperCase()];
  if (typeof code !== "number" || code === grpc.status.OK) {
    throw new UsageError(
      `--fail-code must name a gRPC status other than OK, such as UNAVAILABLE or internal, got "${value}"`,
    );
  }
  return code;
}
