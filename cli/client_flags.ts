/**
 * The client's command line: its usage message and its flags, read and
 * checked before anything starts.
 *
 * @module
 */
import {
  CUSTOM_ROUND_ROBIN,
  DEFAULT_CHOOSE_SECOND,
  LEAST_REQUEST,
  MAX_CHOOSE_SECOND,
  RING_HASH,
} from "../balancer/mod.ts";
import {
  DEFAULT_ETCD_ENDPOINTS,
  parseEtcdEndpoints,
} from "../balancer/etcd.ts";
import { ECHO_SERVICE_NAME } from "../echo/mod.ts";
import {
  METRICS_OPTIONS,
  type MetricsFlags,
  type ParsedFlags,
  parseFlags,
  readAddresses,
  readFlag,
  readMetricsFlags,
  readNumber,
  UsageError,
} from "./flags.ts";
import { assertNamedForTls, type TlsFiles } from "./tls.ts";
import {
  ETCD_TLS_FLAGS,
  ETCD_TLS_OPTIONS,
  type EtcdSettings,
  readEtcdSettings,
} from "./etcd_access.ts";

/** The header `--hash-header` names when left out. */
const DEFAULT_HASH_HEADER = "x-user";

/** The client's usage message: its flags and what it does. */
export const CLIENT_USAGE = `usage: client.ts [--addrs A,B | --target URI]
                 [--choose-second N | --policy least_request |
                  --policy ring_hash --keys N [--hash-header NAME]]
                 [--etcd-endpoints URLS [--etcd-ca FILE]
                  [--etcd-cert FILE --etcd-key FILE]]
                 [--health-service NAME] [--outlier-detection]
                 [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
                 [--timeout SECONDS]
                 [--count N [--concurrency C] [--rate R]] [--quiet]
                 [--metrics-port PORT [--metrics-host HOST]]

Sends UnaryEcho RPCs through the ${CUSTOM_ROUND_ROBIN} policy.

  --addrs HOST:PORT,HOST:PORT  the first and second backend
                               (default localhost:50050,localhost:50051);
                               any number of them for least_request and
                               ring_hash
  --target URI                 any grpc-js target instead of --addrs,
                               e.g. dns:///backends.internal:50051, or
                               etcd:///PREFIX for the backends registered
                               in etcd under PREFIX/ (docs/etcd.md), or
                               xds:///NAME, its bootstrap in
                               GRPC_XDS_BOOTSTRAP(_CONFIG) (docs/xds.md)
  --etcd-endpoints URLS        with an etcd: target, the etcd cluster's
                               client URLs, comma-separated
                               (default ${DEFAULT_ETCD_ENDPOINTS})
  --etcd-ca FILE               with https:// etcd URLs, the CA etcd's
                               certificate is verified against
                               (default: the system's CAs)
  --etcd-cert FILE, --etcd-key FILE
                               a client certificate for an etcd that asks
                               for one (--client-cert-auth)
  --choose-second N            every N-th RPC goes to the second backend;
                               0 means never (default ${DEFAULT_CHOOSE_SECOND})
  --policy NAME                ${CUSTOM_ROUND_ROBIN} (the default), or
                               least_request: each RPC to the backend with the
                               fewest RPCs in flight of two picked at random
                               (${LEAST_REQUEST}, docs/least_request.md);
                               it takes --count; or ring_hash: the RPCs of
                               one key to one backend (${RING_HASH},
                               docs/ring_hash.md); it takes --keys
  --keys N                     with ring_hash, send the RPCs of N keys
                               (key-0 …), three rounds, the first as the
                               channel starts; print each backend's keys,
                               exit 0 only if no key reached two backends
  --hash-header NAME           with ring_hash, the request header that
                               carries the key (default ${DEFAULT_HASH_HEADER})
  --health-service NAME        watch each backend's health for this service
                               and skip unhealthy ones; "" turns health
                               checking off (default ${ECHO_SERVICE_NAME})
  --outlier-detection          put the policy under grpc-js's
                               outlier_detection: a backend failing more than
                               half its RPCs is ejected for 30 s
                               (docs/composing.md)
  --tls-ca FILE                speak TLS, trusting this CA (PEM); each backend
                               of --addrs or of an etcd: target is verified
                               by its own host name, another --target by the
                               target's
  --tls-cert FILE, --tls-key FILE
                               present this client certificate (mutual TLS)
  --timeout SECONDS            give up after this long (default 10)
  --count N                    send N RPCs instead of the ratio check, then
                               print RPCs per backend and how many failed
  --concurrency C              RPCs in flight at once, with --count (default 1)
  --rate R                     at most R RPCs per second, with --count
  --quiet                      no line per RPC
  --metrics-port PORT          serve the metrics in Prometheus's text format at
                               http://HOST:PORT/metrics while the client runs
                               (docs/metrics.md); 0 picks a free port
  --metrics-host HOST          the host they listen on (default localhost)
  --help                       show this help

Without --count, RPCs go out in windows of N; three windows in a row with
exactly one RPC on the second backend each prove the ratio (exit 0).
With an etcd: target and ETCD_USERNAME and ETCD_PASSWORD set, the client
reads etcd as that user, who needs read permission on PREFIX/.`;

/** The policies `--policy` names. */
const POLICIES = ["custom_round_robin", "least_request", "ring_hash"] as const;

/** The client's command line, checked. */
export interface ClientFlags {
  /** The policy: `custom_round_robin` unless `--policy` says otherwise. */
  readonly policy: typeof POLICIES[number];
  /** The backends, trimmed (ignored with `target`): two but for least_request. */
  readonly addrs: readonly string[];
  readonly target: string | undefined;
  /** The etcd cluster of an `etcd:` target. */
  readonly etcdEndpoints: string[];
  /** TLS and the user for etcd, with an `etcd:` target; else `null`. */
  readonly etcd: EtcdSettings | null;
  readonly chooseSecond: number;
  readonly healthService: string | null;
  readonly outlierDetection: boolean;
  /** The TLS flags' files, or `null` for plaintext. */
  readonly tls: TlsFiles | null;
  readonly timeout: number;
  /** `--count` and the flags that go with it, or `null` for the ratio check. */
  readonly count: CountFlags | null;
  readonly quiet: boolean;
  /** Where to serve the metrics, or `null` for none. */
  readonly metrics: MetricsFlags | null;
  /** With ring_hash, `--keys` and `--hash-header`; else `null`. */
  readonly keys: KeyFlags | null;
}

/** `--keys` and `--hash-header`. */
export interface KeyFlags {
  readonly keys: number;
  readonly header: string;
}

/** `--count`, `--concurrency` and `--rate`. */
export interface CountFlags {
  readonly count: number;
  readonly concurrency: number;
  /** At most this many RPCs per second, or `null` for no limit. */
  readonly rate: number | null;
}

const OPTIONS = {
  addrs: { type: "string" },
  target: { type: "string" },
  "etcd-endpoints": { type: "string" },
  ...ETCD_TLS_OPTIONS,
  "choose-second": { type: "string", default: String(DEFAULT_CHOOSE_SECOND) },
  policy: { type: "string", default: "custom_round_robin" },
  timeout: { type: "string", default: "10" },
  count: { type: "string" },
  concurrency: { type: "string" },
  rate: { type: "string" },
  keys: { type: "string" },
  "hash-header": { type: "string" },
  "health-service": { type: "string", default: ECHO_SERVICE_NAME },
  "outlier-detection": { type: "boolean", default: false },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  quiet: { type: "boolean", default: false },
  ...METRICS_OPTIONS,
  help: { type: "boolean", default: false },
} as const;

type Parsed = ParsedFlags<typeof OPTIONS>;

/**
 * Reads the client's command line; `null` for `--help`.
 *
 * @throws {UsageError} naming the first bad flag.
 */
export function readClientFlags(args: readonly string[]): ClientFlags | null {
  const flags = parseFlags(args, OPTIONS);
  if (flags.help) return null;
  if (flags.addrs !== undefined && flags.target !== undefined) {
    throw new UsageError("--addrs and --target cannot be used together");
  }
  const policy = readPolicy(flags);
  const addrs = policy !== "custom_round_robin" && flags.addrs !== undefined
    ? readAddresses("addrs", flags.addrs)
    : readTwoAddresses(flags.addrs);
  const tls = readTls(flags);
  if (tls !== null && flags.target === undefined) assertNamedForTls(addrs);
  const etcdEndpoints = readEtcdEndpoints(flags);
  return {
    policy,
    addrs,
    target: flags.target,
    etcdEndpoints,
    etcd: flags.target?.startsWith("etcd:")
      ? readEtcdSettings(flags, etcdEndpoints)
      : null,
    chooseSecond: readChooseSecond(flags["choose-second"]),
    healthService: flags["health-service"] === ""
      ? null
      : flags["health-service"],
    outlierDetection: flags["outlier-detection"],
    tls,
    timeout: readNumber("timeout", flags.timeout, {
      unit: "seconds",
      above: 0,
    }),
    count: readCount(flags),
    quiet: flags.quiet,
    metrics: readMetricsFlags(flags),
    keys: readKeys(flags, policy),
  };
}

/** Reads `--keys` and `--hash-header`, which ring_hash alone takes. */
function readKeys(
  flags: Parsed,
  policy: typeof POLICIES[number],
): KeyFlags | null {
  if (policy !== "ring_hash") {
    for (const flag of ["keys", "hash-header"] as const) {
      if (flags[flag] !== undefined) {
        throw new UsageError(`--${flag} works with --policy ring_hash only`);
      }
    }
    return null;
  }
  if (flags.keys === undefined) {
    throw new UsageError("--policy ring_hash works with --keys only");
  }
  return {
    keys: readNumber("keys", flags.keys, { whole: true, min: 1 }),
    header: flags["hash-header"] ?? DEFAULT_HASH_HEADER,
  };
}

/**
 * Reads `--policy`: one of {@linkcode POLICIES}; least_request proves no
 * ratio, so it takes `--count`.
 */
function readPolicy(flags: Parsed): typeof POLICIES[number] {
  const policy = POLICIES.find((name) => name === flags.policy);
  if (policy === undefined) {
    throw new UsageError(
      `--policy must be ${POLICIES.slice(0, -1).join(", ")} or ${
        POLICIES.at(-1)
      }, got "${flags.policy}"`,
    );
  }
  if (policy === "least_request" && flags.count === undefined) {
    throw new UsageError("--policy least_request works with --count only");
  }
  return policy;
}

/** Reads `--addrs`: exactly two `HOST:PORT`, trimmed. */
function readTwoAddresses(given: string | undefined): string[] {
  const value = given ?? "localhost:50050,localhost:50051";
  const entries = value.split(",");
  if (entries.length !== 2 || entries.some((entry) => entry.trim() === "")) {
    throw new UsageError(
      `--addrs needs exactly 2 comma-separated HOST:PORT, got "${value}"`,
    );
  }
  return readAddresses("addrs", value);
}

/** Reads the TLS flags: their files, or `null` for plaintext. */
function readTls(flags: Parsed): TlsFiles | null {
  const tls = {
    ca: flags["tls-ca"],
    cert: flags["tls-cert"],
    key: flags["tls-key"],
  };
  return Object.values(tls).some((file) => file !== undefined) ? tls : null;
}

/**
 * Reads `--etcd-endpoints`, which only an `etcd:` target takes, as it takes
 * the other `--etcd-*` flags.
 */
function readEtcdEndpoints(flags: Parsed): string[] {
  const etcd = flags["etcd-endpoints"];
  if (!flags.target?.startsWith("etcd:")) {
    for (const flag of ["etcd-endpoints", ...ETCD_TLS_FLAGS] as const) {
      if (flags[flag] !== undefined) {
        throw new UsageError(`--${flag} works with an etcd: --target only`);
      }
    }
  }
  return readFlag(
    "etcd-endpoints",
    etcd ?? DEFAULT_ETCD_ENDPOINTS,
    parseEtcdEndpoints,
  );
}

/** Reads `--count` and the flags that go with it, or `null` without `--count`. */
function readCount(flags: Parsed): CountFlags | null {
  if (flags.count === undefined) {
    for (const flag of ["concurrency", "rate"] as const) {
      if (flags[flag] !== undefined) {
        throw new UsageError(`--${flag} works with --count only`);
      }
    }
    return null;
  }
  const atLeastOne = { whole: true, min: 1 };
  return {
    count: readNumber("count", flags.count, atLeastOne),
    concurrency: readNumber(
      "concurrency",
      flags.concurrency ?? "1",
      atLeastOne,
    ),
    rate: flags.rate === undefined
      ? null
      : readNumber("rate", flags.rate, atLeastOne),
  };
}

/**
 * Reads `--choose-second` as a number, read as JSON reads it; the policy's
 * check of the config judges its range. Anything else is refused in the
 * policy's words, as its check would refuse it in a config.
 */
function readChooseSecond(value: string): number {
  let parsed: unknown = value;
  try {
    parsed = JSON.parse(value);
  } catch {
    // Not JSON: shown as the text it is.
  }
  if (typeof parsed !== "number") {
    throw new UsageError(
      `${CUSTOM_ROUND_ROBIN}: chooseSecond must be an integer from 0 to ${MAX_CHOOSE_SECOND}, got ${
        JSON.stringify(parsed)
      }`,
    );
  }
  return parsed;
}
