/**
 * Reaches two echo servers through `custom_round_robin` and proves the
 * distribution: one RPC in every `chooseSecond` goes to the second server.
 *
 * ```sh
 * deno task client                      # check the 1:2 ratio, exit 0 if it holds
 * deno task client --count 1000 --quiet # send 1000 RPCs, print a summary
 * ```
 *
 * @module
 */
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import {
  checkServiceConfig,
  CUSTOM_ROUND_ROBIN,
  DEFAULT_CHOOSE_SECOND,
  DEFAULT_ETCD_ENDPOINTS,
  ETCD_ENDPOINTS,
  ManualResolver,
  parseEtcdEndpoints,
  registerCustomRoundRobin,
} from "./balancer/mod.ts";
import { ECHO_SERVICE_NAME, EchoClient } from "./proto/echo.ts";
import { parseFlags, runMain, UsageError } from "./cli.ts";
import { clientCredentials, diagnose, type TlsFiles } from "./tls.ts";
import { type Echoed, sendCount, unaryEcho } from "./load.ts";

/** The client's usage message. */
export const CLIENT_USAGE =
  `usage: client.ts [--addrs A,B | --target URI] [--choose-second N]
                 [--etcd-endpoints URLS]
                 [--health-service NAME] [--outlier-detection]
                 [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
                 [--timeout SECONDS]
                 [--count N [--concurrency C] [--rate R]] [--quiet]

Sends UnaryEcho RPCs through the ${CUSTOM_ROUND_ROBIN} policy.

  --addrs HOST:PORT,HOST:PORT  the first and second backend
                               (default localhost:50050,localhost:50051)
  --target URI                 any grpc-js target instead of --addrs,
                               e.g. dns:///backends.internal:50051, or
                               etcd:///PREFIX for the backends registered
                               in etcd under PREFIX/ (docs/etcd.md)
  --etcd-endpoints URLS        with an etcd: target, the etcd cluster's
                               client URLs, comma-separated
                               (default ${DEFAULT_ETCD_ENDPOINTS})
  --choose-second N            every N-th RPC goes to the second backend;
                               0 means never (default ${DEFAULT_CHOOSE_SECOND})
  --health-service NAME        watch each backend's health for this service
                               and skip unhealthy ones; "" turns health
                               checking off (default ${ECHO_SERVICE_NAME})
  --outlier-detection          put the policy under grpc-js's
                               outlier_detection: a backend failing half its
                               RPCs is ejected for 30 s (docs/composing.md)
  --tls-ca FILE                speak TLS, trusting this CA (PEM); each backend
                               of --addrs is verified by its own host name,
                               a --target by the target's
  --tls-cert FILE, --tls-key FILE
                               present this client certificate (mutual TLS)
  --timeout SECONDS            give up after this long (default 10)
  --count N                    send N RPCs instead of the ratio check, then
                               print RPCs per backend and how many failed
  --concurrency C              RPCs in flight at once, with --count (default 1)
  --rate R                     at most R RPCs per second, with --count
  --quiet                      no line per RPC
  --help                       show this help

Without --count, RPCs go out in windows of N; three windows in a row with
exactly one RPC on the second backend each prove the ratio (exit 0).`;

const SCHEME = "example";

/**
 * The channel options the client uses, tuned for a demo on one machine:
 *
 * - reconnect backoff from 100 ms up to 1 s (grpc-js: 1 s up to 120 s), so a
 *   restarted backend is back in use within about a second;
 * - a keepalive ping every second, answered within a second, so a backend
 *   behind a dead link is noticed in about two seconds, not when TCP gives
 *   up minutes later;
 * - with a `dns:` target, a new DNS answer at most a second after the
 *   policy asks for one (grpc-js: 30 s), so a replaced backend is found
 *   when the old one goes, not half a minute later.
 */
export const CLIENT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
  "grpc.keepalive_time_ms": 1_000,
  "grpc.keepalive_timeout_ms": 1_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.dns_min_time_between_resolutions_ms": 1_000,
};

/**
 * The client's service config: the policy, a retry policy that retries an
 * Echo RPC that failed with UNAVAILABLE on a connection that was lost (up to
 * 4 attempts, backoff 50 ms to 0.5 s), and, unless `healthService` is
 * `null`, health checking of that service.
 */
export function clientServiceConfig(
  chooseSecond: unknown,
  healthService: string | null = ECHO_SERVICE_NAME,
): Record<string, unknown> {
  return {
    loadBalancingConfig: [{ [CUSTOM_ROUND_ROBIN]: { chooseSecond } }],
    methodConfig: [{
      name: [{ service: ECHO_SERVICE_NAME }],
      retryPolicy: {
        maxAttempts: 4,
        initialBackoff: "0.05s",
        maxBackoff: "0.5s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    }],
    ...(healthService === null
      ? {}
      : { healthCheckConfig: { serviceName: healthService } }),
  };
}

/**
 * The client's `outlier_detection` knobs, for two backends: every second,
 * a backend that failed at least half of its last second's RPCs (10 at
 * least) is ejected for 30 s, and longer each time again; at most one of the
 * two is ejected at once.
 */
export const OUTLIER_DETECTION = {
  interval: { seconds: 1, nanos: 0 },
  base_ejection_time: { seconds: 30, nanos: 0 },
  max_ejection_time: { seconds: 300, nanos: 0 },
  max_ejection_percent: 50,
  failure_percentage_ejection: {
    threshold: 50,
    enforcement_percentage: 100,
    minimum_hosts: 2,
    request_volume: 10,
  },
} as const;

/**
 * `serviceConfig` with its load-balancing policy under grpc-js's
 * `outlier_detection`, set by `knobs`.
 */
export function underOutlierDetection(
  serviceConfig: Record<string, unknown>,
  knobs: Record<string, unknown> = OUTLIER_DETECTION,
): Record<string, unknown> {
  return {
    ...serviceConfig,
    loadBalancingConfig: [{
      outlier_detection: {
        ...knobs,
        child_policy: serviceConfig.loadBalancingConfig,
      },
    }],
  };
}

/** Reads a flag as a whole number of at least `min`. */
function wholeNumber(flag: string, value: string, min: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < min) {
    throw new UsageError(
      `--${flag} must be a whole number of at least ${min}, got "${value}"`,
    );
  }
  return number;
}

/** Reads `--choose-second` as JSON would carry it, so the policy judges it. */
function chooseSecondValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/**
 * Judges one window of `chooseSecond` RPCs by the peers that served them.
 *
 * When it is known which peer is the second backend (`isSecond`), the window
 * holds if exactly `expected` RPCs went there. When it is not (`--target`),
 * the window holds if exactly one RPC went to a backend of its own and the
 * rest to one other, or, for a ratio of 0 or 1, all went to one backend.
 *
 * @returns the backend that sets the window apart (the one that took the
 *   lone RPC, or the only one), `"held"` when `isSecond` is given and the
 *   window holds, or `null` if it does not hold. A
 *   ratio is proved only by windows that all return the same backend:
 *   round_robin's A B A, B A B has a lone RPC in each window, but on a
 *   different backend each time.
 */
export function judgeWindow(
  peers: readonly string[],
  expected: number,
  isSecond: ((peer: string) => boolean) | null,
): string | null {
  if (isSecond) {
    return peers.filter(isSecond).length === expected ? "held" : null;
  }
  const counts = new Map<string, number>();
  for (const peer of peers) counts.set(peer, (counts.get(peer) ?? 0) + 1);
  if (expected === 0 || peers.length === 1) {
    return counts.size === 1 ? peers[0] : null;
  }
  if (counts.size !== 2) return null;
  const lone = [...counts].filter(([, n]) => n === 1);
  return lone.length === 1 ? lone[0][0] : null;
}

/**
 * The proof of a ratio: three windows in a row that hold, each set apart by
 * the same backend (see {@linkcode judgeWindow}).
 */
export class RatioProof {
  readonly #expected: number;
  readonly #isSecond: ((peer: string) => boolean) | null;
  #streak = 0;
  #last: string | null = null;

  /**
   * @param expected RPCs per window that go to the second backend: 0 or 1.
   * @param isSecond Tells the second backend's peer, when it is known.
   */
  constructor(
    expected: number,
    isSecond: ((peer: string) => boolean) | null,
  ) {
    this.#expected = expected;
    this.#isSecond = isSecond;
  }

  /** Adds a window's peers; true once the ratio is proved. */
  add(peers: readonly string[]): boolean {
    const judged = judgeWindow(peers, this.#expected, this.#isSecond);
    this.#streak = judged === null
      ? 0
      : judged === this.#last
      ? this.#streak + 1
      : 1;
    this.#last = judged;
    return this.#streak === 3;
  }
}

/**
 * Sends windows of `chooseSecond` RPCs until they prove the ratio (see
 * {@linkcode RatioProof}), or the time is up. `from` names the backends in
 * messages.
 */
async function checkRatio(
  client: EchoClient,
  from: string,
  chooseSecond: number,
  timeoutSeconds: number,
  quiet: boolean,
  isSecond: ((peer: string) => boolean) | null,
): Promise<number> {
  const size = Math.max(chooseSecond, 1);
  const expected = chooseSecond === 0 ? 0 : 1;
  const ratio = `${expected}:${size - expected}`;
  const deadline = new Date(Date.now() + timeoutSeconds * 1000);
  const proof = new RatioProof(expected, isSecond);
  for (let proved = false; !proved;) {
    const peers: string[] = [];
    for (let i = 0; i < size; i++) {
      let echoed: Echoed;
      try {
        echoed = await unaryEcho(client, deadline);
      } catch (error) {
        const { code, details } = error as grpc.ServiceError;
        if (code === grpc.status.DEADLINE_EXCEEDED) {
          throw new Error(
            `no ${ratio} ratio from ${from} within ${timeoutSeconds} s (--timeout): ${details}`,
          );
        }
        throw new Error(
          `UnaryEcho failed: ${grpc.status[code]}: ${details}`,
        );
      }
      if (!quiet) console.log(echoed.reply);
      peers.push(echoed.peer);
    }
    proved = proof.add(peers);
  }
  console.log(`Successful multiple iterations of ${ratio} ratio`);
  return 0;
}

/** The client's command line, checked. */
interface ClientFlags {
  /** The two backends (ignored with `target`). */
  readonly addrs: readonly string[];
  readonly target: string | undefined;
  /** The etcd cluster of an `etcd:` target. */
  readonly etcdEndpoints: string[];
  /** As given, for the policy's own check. */
  readonly chooseSecond: unknown;
  readonly healthService: string | null;
  readonly outlierDetection: boolean;
  /** The TLS flags' files, or `null` for plaintext. */
  readonly tls: TlsFiles | null;
  readonly timeout: number;
  /** `--count` and its company, or `null` for the ratio check. */
  readonly count:
    | { count: number; concurrency: number; rate: number | null }
    | null;
  readonly quiet: boolean;
}

/**
 * Reads the command line; `null` for `--help`.
 *
 * @throws {UsageError} naming the first bad flag.
 */
function readFlags(args: readonly string[]): ClientFlags | null {
  const flags = parseFlags(args, {
    addrs: { type: "string" },
    target: { type: "string" },
    "etcd-endpoints": { type: "string" },
    "choose-second": { type: "string", default: String(DEFAULT_CHOOSE_SECOND) },
    timeout: { type: "string", default: "10" },
    count: { type: "string" },
    concurrency: { type: "string" },
    rate: { type: "string" },
    "health-service": { type: "string", default: ECHO_SERVICE_NAME },
    "outlier-detection": { type: "boolean", default: false },
    "tls-ca": { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (flags.help) return null;
  if (flags.addrs !== undefined && flags.target !== undefined) {
    throw new UsageError("--addrs and --target cannot be used together");
  }
  const addrs = (flags.addrs ?? "localhost:50050,localhost:50051").split(",");
  if (addrs.length !== 2 || addrs.some((addr) => addr.trim() === "")) {
    throw new UsageError(
      `--addrs needs exactly 2 comma-separated HOST:PORT, got "${flags.addrs}"`,
    );
  }
  const tls = {
    ca: flags["tls-ca"],
    cert: flags["tls-cert"],
    key: flags["tls-key"],
  };
  const tlsGiven = Object.values(tls).some((file) => file !== undefined);
  const byIp = addrs.find((addr) =>
    isIP(grpc.experimental.splitHostPort(addr.trim())?.host ?? "") !== 0
  );
  if (tlsGiven && flags.target === undefined && byIp !== undefined) {
    throw new UsageError(
      `--addrs: ${byIp.trim()} is an IP address; over TLS each backend is verified by the host name it is given by, and Deno cannot verify an IP address: give a name its certificate holds, such as localhost`,
    );
  }
  const etcd = flags["etcd-endpoints"];
  if (etcd !== undefined && !flags.target?.startsWith("etcd:")) {
    throw new UsageError("--etcd-endpoints works with an etcd: --target only");
  }
  let etcdEndpoints: string[];
  try {
    etcdEndpoints = parseEtcdEndpoints(etcd ?? DEFAULT_ETCD_ENDPOINTS);
  } catch (error) {
    throw new UsageError(`--etcd-endpoints: ${(error as Error).message}`);
  }
  const timeout = Number(flags.timeout);
  if (!(timeout > 0) || !Number.isFinite(timeout)) {
    throw new UsageError(
      `--timeout must be a positive number of seconds, got "${flags.timeout}"`,
    );
  }
  if (flags.count === undefined) {
    for (const flag of ["concurrency", "rate"] as const) {
      if (flags[flag] !== undefined) {
        throw new UsageError(`--${flag} works with --count only`);
      }
    }
  }
  return {
    addrs,
    target: flags.target,
    etcdEndpoints,
    chooseSecond: chooseSecondValue(flags["choose-second"]),
    healthService: flags["health-service"] === ""
      ? null
      : flags["health-service"],
    outlierDetection: flags["outlier-detection"],
    tls: tlsGiven ? tls : null,
    timeout,
    count: flags.count === undefined ? null : {
      count: wholeNumber("count", flags.count, 1),
      concurrency: wholeNumber("concurrency", flags.concurrency ?? "1", 1),
      rate: flags.rate === undefined
        ? null
        : wholeNumber("rate", flags.rate, 1),
    },
    quiet: flags.quiet,
  };
}

/**
 * `error` of a failed ratio check, or, if no connection could be made and a
 * handshake of the client's own finds why, that reason, naming the backend.
 */
async function explained(error: Error, flags: ClientFlags): Promise<Error> {
  if (!error.message.includes("No connection established")) return error;
  // With --target, the target's own host:port, when it names one: an etcd
  // target names none, and its connection errors are etcd's.
  const backends = flags.target === undefined
    ? flags.addrs.map((addr) => addr.trim())
    : flags.target.startsWith("etcd:")
    ? []
    : [flags.target.replace(/^[a-z0-9+.-]+:(\/\/[^/]*\/)?/i, "")];
  for (const backend of backends) {
    const { host, port } = grpc.experimental.splitHostPort(backend) ?? {};
    if (host === undefined || port === undefined) continue;
    const problem = await diagnose(backend, host, flags.tls);
    if (problem !== null) return new Error(`${backend}: ${problem}`);
  }
  return error;
}

/**
 * Runs the client with command-line `args`; resolves to the exit code.
 *
 * @throws {UsageError} for a bad flag; {@linkcode Error} when the ratio
 *   check fails or an RPC of it fails.
 */
export async function runClient(args: readonly string[]): Promise<number> {
  const flags = readFlags(args);
  if (flags === null) {
    console.log(CLIENT_USAGE);
    return 0;
  }

  // The policy is registered, and the service config checked, before any
  // channel exists: grpc-js would quietly fall back to pick_first otherwise.
  registerCustomRoundRobin();
  const policy = clientServiceConfig(flags.chooseSecond, flags.healthService);
  const serviceConfig = flags.outlierDetection
    ? underOutlierDetection(policy)
    : policy;
  try {
    checkServiceConfig(serviceConfig);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }

  // The manual resolver hands the channel both endpoints, in order, and the
  // service config. Any other target takes the config as a channel option.
  const credentials = flags.tls === null
    ? grpc.credentials.createInsecure()
    : clientCredentials(flags.tls);
  let resolver: ManualResolver | null = null;
  let client: EchoClient;
  if (flags.target === undefined) {
    resolver = new ManualResolver(SCHEME, {
      endpoints: flags.addrs,
      serviceConfig,
    });
    resolver.register();
    client = new EchoClient(
      `${SCHEME}:///echo`,
      credentials,
      CLIENT_CHANNEL_OPTIONS,
    );
  } else {
    client = new EchoClient(flags.target, credentials, {
      ...CLIENT_CHANNEL_OPTIONS,
      "grpc.service_config": JSON.stringify(serviceConfig),
      [ETCD_ENDPOINTS]: flags.etcdEndpoints.join(","),
    });
  }
  /** Which endpoint (0: first, 1: second) a peer belongs to, if known. */
  const endpointOf = (peer: string): number | undefined => {
    const index = resolver?.lastAddresses.findIndex((addresses) =>
      addresses.includes(peer)
    );
    return index === undefined || index < 0 ? undefined : index;
  };

  try {
    if (flags.count !== null) {
      const names = ["first", "second"];
      return await sendCount(client, {
        ...flags.count,
        timeoutSeconds: flags.timeout,
        quiet: flags.quiet,
        label: (peer) => {
          const index = endpointOf(peer);
          return index === undefined ? peer : `${names[index]} (${peer})`;
        },
      });
    }
    return await checkRatio(
      client,
      flags.target ?? flags.addrs.join(","),
      Number(flags.chooseSecond),
      flags.timeout,
      flags.quiet,
      resolver ? (peer) => endpointOf(peer) === 1 : null,
    ).catch(async (error: Error) => {
      throw await explained(error, flags);
    });
  } finally {
    client.close();
  }
}

if (import.meta.main) {
  await runMain("client", CLIENT_USAGE, () => runClient(Deno.args));
}
