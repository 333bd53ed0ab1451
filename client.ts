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
import * as grpc from "@grpc/grpc-js";
import {
  checkServiceConfig,
  CUSTOM_ROUND_ROBIN,
  DEFAULT_CHOOSE_SECOND,
  ManualResolver,
  registerCustomRoundRobin,
} from "./balancer/mod.ts";
import { ECHO_SERVICE_NAME, EchoClient } from "./proto/echo.ts";
import { parseFlags, runMain, UsageError } from "./cli.ts";

/** The client's usage message. */
export const CLIENT_USAGE =
  `usage: client.ts [--addrs A,B | --target URI] [--choose-second N]
                 [--health-service NAME] [--timeout SECONDS]
                 [--count N [--concurrency C] [--rate R]] [--quiet]

Sends UnaryEcho RPCs through the ${CUSTOM_ROUND_ROBIN} policy.

  --addrs HOST:PORT,HOST:PORT  the first and second backend
                               (default localhost:50050,localhost:50051)
  --target URI                 any grpc-js target instead of --addrs,
                               e.g. dns:///backends.internal:50051
  --choose-second N            every N-th RPC goes to the second backend;
                               0 means never (default ${DEFAULT_CHOOSE_SECOND})
  --health-service NAME        watch each backend's health for this service
                               and skip unhealthy ones; "" turns health
                               checking off (default ${ECHO_SERVICE_NAME})
  --timeout SECONDS            give up after this long (default 10)
  --count N                    send N RPCs instead of the ratio check, then
                               print RPCs per backend and how many failed
  --concurrency C              RPCs in flight at once, with --count (default 1)
  --rate R                     at most R RPCs per second, with --count
  --quiet                      no line per RPC
  --help                       show this help

Without --count, RPCs go out in windows of N; three windows in a row with
exactly one RPC on the second backend each prove the ratio (exit 0).`;

const MESSAGE = "this is examples/customloadbalancing";
const SCHEME = "example";

/**
 * The channel options the client uses, tuned for a demo on one machine:
 *
 * - reconnect backoff from 100 ms up to 1 s (grpc-js: 1 s up to 120 s), so a
 *   restarted backend is back in use within about a second;
 * - a keepalive ping every second, answered within a second, so a backend
 *   behind a dead link is noticed in about two seconds, not when TCP gives
 *   up minutes later.
 */
export const CLIENT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
  "grpc.keepalive_time_ms": 1_000,
  "grpc.keepalive_timeout_ms": 1_000,
  "grpc.keepalive_permit_without_calls": 1,
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

/** The result of one UnaryEcho: the reply and the peer that served it. */
export interface Echoed {
  readonly reply: string;
  readonly peer: string;
}

/**
 * One UnaryEcho, as the client sends it.
 *
 * The service config's retry policy covers calls that fail with UNAVAILABLE
 * before a reply starts. A connection lost mid-call can end a call in ways
 * that escape it (see {@linkcode connectionLost}); as Echo is idempotent,
 * such a call is sent once more.
 */
export function unaryEcho(
  client: EchoClient,
  deadline: Date,
): Promise<Echoed> {
  const once = () =>
    new Promise<Echoed>((resolve, reject) => {
      let answered = false;
      const call = client.UnaryEcho(
        { message: MESSAGE },
        { deadline },
        (error, response) => {
          if (error) reject(Object.assign(error, { answered }));
          else resolve({ reply: response!.message, peer: call.getPeer() });
        },
      );
      call.on("metadata", () => answered = true);
    });
  return once().catch((error: grpc.ServiceError & { answered: boolean }) => {
    if (connectionLost(error)) return once();
    throw error;
  });
}

/**
 * The socket errors that grpc-js reports as INTERNAL with the message of the
 * error that ended the connection: it maps only ECONNRESET and ETIMEDOUT to
 * UNAVAILABLE. Both of these are EPIPE, from a backend that went away:
 *
 * - writing the request after the peer's socket closed;
 * - a write on a socket the peer has already ended (Node's and Deno's
 *   message for EPIPE on a half-closed socket).
 */
const LOST_SOCKET_ERRORS = [
  "write EPIPE",
  "This socket has been ended by the other party",
];

/**
 * Whether a call failed because its connection was lost, in one of the ways
 * the retry policy does not cover:
 *
 * - UNAVAILABLE after the reply's headers arrived (a backend killed or cut
 *   off mid-reply): grpc-js has committed the call, so it is not retried;
 * - INTERNAL from a socket error in {@linkcode LOST_SOCKET_ERRORS}, which
 *   grpc-js reports as `Received RST_STREAM with code 2 triggered by
 *   internal client error: <message>`, or as the bare message.
 */
function connectionLost(
  { code, details, answered }: grpc.ServiceError & { answered: boolean },
): boolean {
  return (code === grpc.status.UNAVAILABLE && answered) ||
    (code === grpc.status.INTERNAL &&
      LOST_SOCKET_ERRORS.some((message) => details.endsWith(message)));
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
 * Sends windows of RPCs until three in a row hold the ratio, or the time is
 * up. `isSecond` tells whether a peer is the second backend; when it is not
 * known (`--target`), a window holds if exactly one RPC went to a backend of
 * its own, or, for a ratio of 0 or 1, all went to one backend.
 */
async function checkRatio(
  client: EchoClient,
  chooseSecond: number,
  timeoutSeconds: number,
  quiet: boolean,
  isSecond: ((peer: string) => boolean) | null,
): Promise<number> {
  const size = Math.max(chooseSecond, 1);
  const expected = chooseSecond === 0 ? 0 : 1;
  const ratio = `${expected}:${size - expected}`;
  const deadline = new Date(Date.now() + timeoutSeconds * 1000);
  let streak = 0;
  while (streak < 3) {
    const peers: string[] = [];
    for (let i = 0; i < size; i++) {
      let echoed: Echoed;
      try {
        echoed = await unaryEcho(client, deadline);
      } catch (error) {
        const { code, details } = error as grpc.ServiceError;
        if (code === grpc.status.DEADLINE_EXCEEDED) {
          throw new Error(
            `no ${ratio} ratio within ${timeoutSeconds} s (--timeout)`,
          );
        }
        throw new Error(
          `UnaryEcho failed: ${grpc.status[code]}: ${details}`,
        );
      }
      if (!quiet) console.log(echoed.reply);
      peers.push(echoed.peer);
    }
    const holds = isSecond
      ? peers.filter(isSecond).length === expected
      : windowHasShape(peers, expected, size);
    streak = holds ? streak + 1 : 0;
  }
  console.log(`Successful multiple iterations of ${ratio} ratio`);
  return 0;
}

function windowHasShape(
  peers: readonly string[],
  expected: number,
  size: number,
): boolean {
  const counts = new Map<string, number>();
  for (const peer of peers) counts.set(peer, (counts.get(peer) ?? 0) + 1);
  if (expected === 0 || size === 1) return counts.size === 1;
  return counts.size === 2 && [...counts.values()].includes(1);
}

/** How {@linkcode sendCount} sends. */
interface CountOptions {
  readonly count: number;
  readonly concurrency: number;
  /** At most this many RPCs per second, or `null` for no limit. */
  readonly rate: number | null;
  readonly timeoutSeconds: number;
  readonly quiet: boolean;
  readonly label: (peer: string) => string;
}

/** Sends `count` RPCs, `concurrency` at a time; prints a per-backend summary. */
async function sendCount(
  client: EchoClient,
  { count, concurrency, rate, timeoutSeconds, quiet, label }: CountOptions,
): Promise<number> {
  const perPeer = new Map<string, number>();
  let started = 0;
  let failed = 0;
  const start = performance.now();
  const worker = async () => {
    while (started < count) {
      const due = rate === null ? 0 : start + (started * 1000) / rate;
      started++;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      try {
        const { reply, peer } = await unaryEcho(
          client,
          new Date(Date.now() + timeoutSeconds * 1000),
        );
        perPeer.set(peer, (perPeer.get(peer) ?? 0) + 1);
        if (!quiet) console.log(reply);
      } catch (error) {
        failed++;
        const { code, details } = error as grpc.ServiceError;
        if (!quiet) console.error(`failed: ${grpc.status[code]}: ${details}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const summary = [...perPeer].map(([peer, n]) => `${label(peer)}: ${n} RPCs`);
  for (const line of summary.sort()) console.log(line);
  console.log(`failed: ${failed} of ${count} RPCs`);
  return failed === 0 ? 0 : 1;
}

/**
 * Runs the client with command-line `args`; resolves to the exit code.
 *
 * @throws {UsageError} for a bad flag; {@linkcode Error} when the ratio
 *   check fails or an RPC of it fails.
 */
export async function runClient(args: readonly string[]): Promise<number> {
  const flags = parseFlags(args, {
    addrs: { type: "string" },
    target: { type: "string" },
    "choose-second": { type: "string", default: String(DEFAULT_CHOOSE_SECOND) },
    timeout: { type: "string", default: "10" },
    count: { type: "string" },
    concurrency: { type: "string" },
    rate: { type: "string" },
    "health-service": { type: "string", default: ECHO_SERVICE_NAME },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (flags.help) {
    console.log(CLIENT_USAGE);
    return 0;
  }
  if (flags.addrs !== undefined && flags.target !== undefined) {
    throw new UsageError("--addrs and --target cannot be used together");
  }
  const addrs = (flags.addrs ?? "localhost:50050,localhost:50051").split(",");
  if (addrs.length !== 2 || addrs.some((addr) => addr.trim() === "")) {
    throw new UsageError(
      `--addrs needs exactly 2 comma-separated HOST:PORT, got "${flags.addrs}"`,
    );
  }
  const timeout = Number(flags.timeout);
  if (!(timeout > 0) || !Number.isFinite(timeout)) {
    throw new UsageError(
      `--timeout must be a positive number of seconds, got "${flags.timeout}"`,
    );
  }
  const count = flags.count === undefined
    ? undefined
    : wholeNumber("count", flags.count, 1);
  for (const flag of ["concurrency", "rate"] as const) {
    if (flags[flag] !== undefined && count === undefined) {
      throw new UsageError(`--${flag} works with --count only`);
    }
  }
  const concurrency = wholeNumber("concurrency", flags.concurrency ?? "1", 1);
  const rate = flags.rate === undefined
    ? null
    : wholeNumber("rate", flags.rate, 1);
  const healthService = flags["health-service"] === ""
    ? null
    : flags["health-service"];

  registerCustomRoundRobin();
  const serviceConfig = clientServiceConfig(
    chooseSecondValue(flags["choose-second"]),
    healthService,
  );
  try {
    checkServiceConfig(serviceConfig);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const chooseSecond = Number(flags["choose-second"]);

  let client: EchoClient;
  let resolver: ManualResolver | null = null;
  const credentials = grpc.credentials.createInsecure();
  if (flags.target !== undefined) {
    client = new EchoClient(flags.target, credentials, {
      ...CLIENT_CHANNEL_OPTIONS,
      "grpc.service_config": JSON.stringify(serviceConfig),
    });
  } else {
    resolver = new ManualResolver(SCHEME, { endpoints: addrs, serviceConfig });
    resolver.register();
    client = new EchoClient(
      `${SCHEME}:///echo`,
      credentials,
      CLIENT_CHANNEL_OPTIONS,
    );
  }
  const endpointOf = (peer: string): number | undefined => {
    const index = resolver?.lastAddresses.findIndex((addresses) =>
      addresses.includes(peer)
    );
    return index === undefined || index < 0 ? undefined : index;
  };
  try {
    if (count !== undefined) {
      const names = ["first", "second"];
      const label = (peer: string) => {
        const index = endpointOf(peer);
        return index === undefined ? peer : `${names[index]} (${peer})`;
      };
      return await sendCount(client, {
        count,
        concurrency,
        rate,
        timeoutSeconds: timeout,
        quiet: flags.quiet,
        label,
      });
    }
    return await checkRatio(
      client,
      chooseSecond,
      timeout,
      flags.quiet,
      resolver ? (peer) => endpointOf(peer) === 1 : null,
    );
  } finally {
    client.close();
  }
}

if (import.meta.main) {
  await runMain("client", CLIENT_USAGE, () => runClient(Deno.args));
}
