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
  MAX_CHOOSE_SECOND,
  parseEtcdEndpoints,
  registerCustomRoundRobin,
} from "./balancer/mod.ts";
import { ECHO_SERVICE_NAME, EchoClient } from "./proto/echo.ts";
import { parseFlags, readFlag, runMain, UsageError } from "./cli.ts";
import { RatioProof } from "./_ratio_proof.ts";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
  underOutlierDetection,
} from "./client_config.ts";
import { clientCredentials, diagnose, type TlsFiles } from "./tls.ts";
import {
  type Echoed,
  type Send,
  sendCount,
  unaryEcho,
  withResend,
} from "./load.ts";

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

/**
 * Reads `--choose-second` as a number, read as JSON reads it; the policy's
 * check of the config judges its range. Anything else is refused in the
 * policy's words, as its check would refuse it in a config.
 */
function chooseSecondFlag(value: string): number {
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

/** How {@linkcode checkRatio} checks. */
interface RatioCheck {
  /** The backends, for messages. */
  readonly from: string;
  readonly chooseSecond: number;
  readonly timeoutSeconds: number;
  /** No line per RPC. */
  readonly quiet: boolean;
  /** Tells the second backend's peer, when it is known. */
  readonly isSecond: ((peer: string) => boolean) | null;
}

/**
 * Sends windows of `chooseSecond` RPCs by `send` until they prove the ratio (see
 * {@linkcode RatioProof}), and says so.
 *
 * @throws {Error} when the time is up first, or an RPC fails.
 */
async function checkRatio(
  send: Send,
  { from, chooseSecond, timeoutSeconds, quiet, isSecond }: RatioCheck,
): Promise<void> {
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
        echoed = await send(deadline);
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
}

/** The client's command line, checked. */
interface ClientFlags {
  /** The two backends (ignored with `target`). */
  readonly addrs: readonly string[];
  readonly target: string | undefined;
  /** The etcd cluster of an `etcd:` target. */
  readonly etcdEndpoints: string[];
  readonly chooseSecond: number;
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
  const etcdEndpoints = readFlag(
    "etcd-endpoints",
    etcd ?? DEFAULT_ETCD_ENDPOINTS,
    parseEtcdEndpoints,
  );
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
    chooseSecond: chooseSecondFlag(flags["choose-second"]),
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

  // Echo is idempotent: a call whose connection was lost in a way the retry
  // policy does not cover is sent once more.
  const send = withResend((deadline) => unaryEcho(client, deadline));
  try {
    if (flags.count !== null) {
      const names = ["first", "second"];
      return await sendCount(send, {
        ...flags.count,
        timeoutSeconds: flags.timeout,
        quiet: flags.quiet,
        label: (peer) => {
          const index = endpointOf(peer);
          return index === undefined ? peer : `${names[index]} (${peer})`;
        },
      });
    }
    await checkRatio(send, {
      from: flags.target ?? flags.addrs.join(","),
      chooseSecond: flags.chooseSecond,
      timeoutSeconds: flags.timeout,
      quiet: flags.quiet,
      isSecond: resolver ? (peer) => endpointOf(peer) === 1 : null,
    }).catch(async (error: Error) => {
      throw await explained(error, flags);
    });
    return 0;
  } finally {
    client.close();
  }
}

if (import.meta.main) {
  await runMain("client", CLIENT_USAGE, () => runClient(Deno.args));
}
