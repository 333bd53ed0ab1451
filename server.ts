/**
 * Echo servers that answer with their own address, so a client can see which
 * backend served each RPC.
 *
 * ```sh
 * deno task server                                  # localhost:50050 and :50051
 * deno task server --addrs localhost:0,localhost:0  # two free ports
 * ```
 *
 * @module
 */
import { isIPv4 } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import {
  ECHO_SERVICE_NAME,
  type EchoHandlers,
  echoService,
} from "./proto/echo.ts";
import { parseFlags, readFlag, runMain, UsageError } from "./cli.ts";
import { serverCredentials } from "./tls.ts";
import { releaseWarning } from "./deno_release.ts";
import {
  DEFAULT_ETCD_ENDPOINTS,
  etcdKeyPrefix,
  parseEtcdEndpoints,
} from "./balancer/etcd_resolver.ts";
import {
  DEFAULT_ETCD_TTL_SECONDS,
  EtcdRegistration,
} from "./etcd_registration.ts";

/**
 * How long a stopping server keeps serving after it reports NOT_SERVING, so
 * that health-checking clients move away first.
 */
export const DRAIN_MS = 1_000;

/** How long a stopping server waits for RPCs in flight before cutting them. */
export const GRACE_MS = 5_000;

const USAGE =
  `usage: server.ts [--addrs HOST:PORT,...] [--listen-anywhere] [--drain-ms MS]
                 [--fail-percent P [--fail-code NAME]]
                 [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
                 [--register PREFIX [--etcd-endpoints URLS] [--etcd-ttl S]]
                 [--help]

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
  --help             show this help

Each server prints "serving on HOST:PORT", tags every reply
"(from HOST:PORT)" and serves grpc.health.v1.Health (SERVING for "" and
"${ECHO_SERVICE_NAME}"). SIGINT or SIGTERM reports NOT_SERVING, keeps serving
for --drain-ms, stops accepting connections, lets RPCs in flight finish (at
most ${GRACE_MS / 1000} s), then exits 0.`;

/** A running echo server and the address it serves on, real port included. */
export interface EchoServer {
  readonly address: string;
  readonly server: grpc.Server;
  /** Its health service, or `null` if started without one. */
  readonly health: HealthImplementation | null;
}

/** Injected UnaryEcho failures, for watching a client move away. */
export interface Failures {
  /** The share of UnaryEcho RPCs that fail, from 0 to 100. */
  readonly percent: number;
  /** Their status. */
  readonly code: grpc.status;
}

/** What {@linkcode startEchoServer} adds besides the Echo service. */
export interface EchoServerOptions {
  /** Serve `grpc.health.v1.Health` (default `true`). */
  readonly health?: boolean;
  /** Fail some UnaryEcho RPCs (default: none). */
  readonly failures?: Failures;
  /** How it serves, TLS or not (default: plaintext). */
  readonly credentials?: grpc.ServerCredentials;
}

/**
 * Sets the health status the server reports for the whole server (`""`) and
 * for the Echo service.
 */
export function setServing(server: EchoServer, serving: boolean): void {
  const status = serving ? "SERVING" : "NOT_SERVING";
  for (const name of ["", ECHO_SERVICE_NAME]) {
    server.health?.setStatus(name, status);
  }
}

/**
 * The Echo methods, every reply tagged `(from <address>)`. With `failures`,
 * exactly that share of UnaryEcho RPCs fails, spread evenly: at 25, every
 * fourth.
 */
export function echoHandlers(
  address: string,
  failures?: Failures,
): EchoHandlers {
  const tag = (message: string) => ({
    message: `${message} (from ${address})`,
  });
  let unary = 0;
  // Whether the n-th RPC (from 1) takes the running share past a whole one.
  const fails = (n: number) =>
    failures !== undefined &&
    Math.floor(n * failures.percent / 100) >
      Math.floor((n - 1) * failures.percent / 100);
  return {
    UnaryEcho(call, callback) {
      if (fails(++unary)) {
        callback({
          code: failures!.code,
          details: `${address} failed this RPC (--fail-percent ${
            failures!.percent
          })`,
        });
        return;
      }
      callback(null, tag(call.request.message));
    },
    ServerStreamingEcho(call) {
      for (const word of call.request.message.split(/\s+/).filter(Boolean)) {
        call.write(tag(word));
      }
      call.end();
    },
    ClientStreamingEcho(call, callback) {
      const messages: string[] = [];
      call.on("data", ({ message }) => messages.push(message));
      call.on("end", () => callback(null, tag(messages.join(" "))));
    },
    BidirectionalStreamingEcho(call) {
      call.on("data", ({ message }) => call.write(tag(message)));
      call.on("end", () => call.end());
    },
  };
}

/**
 * Starts an echo server on `address` (`host:port`; port 0 picks one).
 *
 * @throws {Error} for an address that is not `host:port`, or naming the
 *   address if it cannot be listened on.
 */
export function startEchoServer(
  address: string,
  options: EchoServerOptions = {},
): Promise<EchoServer> {
  const hostPort = grpc.experimental.splitHostPort(address);
  if (hostPort === null || hostPort.port === undefined) {
    return Promise.reject(
      new Error(`expected HOST:PORT, got "${address}"`),
    );
  }
  const host = hostPort.host.includes(":")
    ? `[${hostPort.host}]`
    : hostPort.host;
  const server = new grpc.Server();
  return new Promise((resolve, reject) => {
    server.bindAsync(
      address,
      options.credentials ?? grpc.ServerCredentials.createInsecure(),
      (error, port) => {
        if (error) {
          server.forceShutdown();
          const reason = error.message.includes("EADDRINUSE")
            ? "address already in use"
            : error.message;
          reject(new Error(`cannot listen on ${address}: ${reason}`));
          return;
        }
        const bound = `${host}:${port}`;
        server.addService(echoService, echoHandlers(bound, options.failures));
        const health = options.health === false
          ? null
          : new HealthImplementation({
            "": "SERVING",
            [ECHO_SERVICE_NAME]: "SERVING",
          });
        health?.addToServer(server);
        resolve({ address: bound, server, health });
      },
    );
  });
}

function isLoopback(address: string): boolean {
  const host = grpc.experimental.splitHostPort(address)?.host;
  return host === "localhost" || host === "::1" ||
    (host !== undefined && isIPv4(host) && host.startsWith("127."));
}

/**
 * Starts one echo server per address and prints `serving on HOST:PORT` for
 * each once all are up. If one cannot start, none is left running.
 *
 * @throws {Error} naming the first address that cannot be listened on.
 */
export async function startEchoServers(
  addresses: readonly string[],
  options: EchoServerOptions = {},
): Promise<EchoServer[]> {
  const servers: EchoServer[] = [];
  try {
    for (const address of addresses) {
      servers.push(await startEchoServer(address, options));
    }
  } catch (error) {
    for (const { server } of servers) server.forceShutdown();
    throw error;
  }
  for (const { address } of servers) console.log(`serving on ${address}`);
  return servers;
}

/** How {@linkcode stopEchoServers} stops. */
export interface StopOptions {
  /** Serving time after NOT_SERVING is reported (default {@linkcode DRAIN_MS}). */
  readonly drainMs?: number;
  /** Bound on RPCs in flight after that (default {@linkcode GRACE_MS}). */
  readonly graceMs?: number;
}

/**
 * Stops servers gracefully: they report NOT_SERVING and keep serving for
 * `drainMs`, so health-checking clients move away; then they accept no new
 * connections, RPCs in flight may finish for up to `graceMs`, and whatever
 * is left is cut.
 */
export async function stopEchoServers(
  servers: readonly EchoServer[],
  { drainMs = DRAIN_MS, graceMs = GRACE_MS }: StopOptions = {},
): Promise<void> {
  for (const server of servers) setServing(server, false);
  if (drainMs > 0) {
    await new Promise((resolve) => setTimeout(resolve, drainMs));
  }
  await Promise.all(
    servers.map(({ server }) =>
      new Promise<void>((resolve) => {
        const deadline = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(deadline);
          resolve();
        });
      })
    ),
  );
}

async function main(): Promise<number> {
  const flags = parseFlags(Deno.args, {
    addrs: { type: "string", default: "localhost:50050,localhost:50051" },
    "drain-ms": { type: "string", default: String(DRAIN_MS) },
    "listen-anywhere": { type: "boolean", default: false },
    "fail-percent": { type: "string", default: "0" },
    "fail-code": { type: "string", default: "UNAVAILABLE" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    "tls-client-ca": { type: "string" },
    register: { type: "string" },
    "etcd-endpoints": { type: "string" },
    "etcd-ttl": { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const drainMs = Number(flags["drain-ms"]);
  if (!Number.isInteger(drainMs) || drainMs < 0) {
    throw new UsageError(
      `--drain-ms must be a whole number of milliseconds, got "${
        flags["drain-ms"]
      }"`,
    );
  }
  const addresses = flags.addrs.split(",").map((address) => address.trim());
  const malformed = addresses.find((address) =>
    grpc.experimental.splitHostPort(address)?.port === undefined
  );
  if (malformed !== undefined) {
    throw new UsageError(`--addrs: expected HOST:PORT, got "${malformed}"`);
  }
  const outside = addresses.find((address) => !isLoopback(address));
  if (outside !== undefined && !flags["listen-anywhere"]) {
    throw new UsageError(
      `--addrs: ${outside} is not a loopback address; the servers listen on loopback only unless --listen-anywhere`,
    );
  }
  const failures = {
    percent: failPercent(flags["fail-percent"]),
    code: failCode(flags["fail-code"]),
  };
  const warning = releaseWarning(Deno.version.deno);
  if (warning !== null) console.error(warning);
  const credentials = serverCredentials({
    ca: flags["tls-client-ca"],
    cert: flags["tls-cert"],
    key: flags["tls-key"],
  });
  const etcd = etcdFlags(flags, addresses);
  const servers = await withoutGrpcLog(() =>
    startEchoServers(addresses, {
      ...(failures.percent > 0 ? { failures } : {}),
      credentials,
    })
  );
  let registration: EtcdRegistration | null = null;
  if (etcd !== null) {
    try {
      registration = await EtcdRegistration.start({
        ...etcd,
        addresses: servers.map(({ address }) => address),
      });
    } catch (error) {
      for (const { server } of servers) server.forceShutdown();
      throw error;
    }
    for (const key of registration.keys) console.log(`registered ${key}`);
  }
  await new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGINT", resolve);
    Deno.addSignalListener("SIGTERM", resolve);
  });
  // Deregistered first, so that clients drop this server on etcd's word
  // while it still serves.
  await registration?.stop();
  await stopEchoServers(servers, { drainMs });
  return 0;
}

/**
 * Reads `--register` and its company: where to register, or `null` for
 * no registration.
 */
function etcdFlags(
  flags: {
    register?: string;
    "etcd-endpoints"?: string;
    "etcd-ttl"?: string;
  },
  addresses: readonly string[],
): { prefix: string; endpoints: string[]; ttlSeconds: number } | null {
  if (flags.register === undefined) {
    for (const flag of ["etcd-endpoints", "etcd-ttl"] as const) {
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
  const ttl = flags["etcd-ttl"] ?? String(DEFAULT_ETCD_TTL_SECONDS);
  const ttlSeconds = Number(ttl);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new UsageError(
      `--etcd-ttl must be a whole number of seconds, at least 1, got "${ttl}"`,
    );
  }
  // Other hosts would find an address they cannot dial.
  const remote = endpoints.find((url) => !isLoopback(new URL(url).host));
  const local = addresses.find(isLoopback);
  if (remote !== undefined && local !== undefined) {
    throw new UsageError(
      `--register: ${local} is a loopback address, which hosts other than this one cannot dial, and etcd at ${remote} serves other hosts; serve on an address they can reach (--listen-anywhere)`,
    );
  }
  return { prefix, endpoints, ttlSeconds };
}

/** Reads `--fail-percent`: a number from 0 to 100. */
function failPercent(value: string): number {
  const percent = value.trim() === "" ? NaN : Number(value);
  if (!(percent >= 0 && percent <= 100)) {
    throw new UsageError(
      `--fail-percent must be a number from 0 to 100, got "${value}"`,
    );
  }
  return percent;
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

/**
 * Runs `body`, the start of a program's servers, with grpc-js's log off:
 * grpc-js logs a failed bind at ERROR on its own, and the program says it
 * in one line instead. A verbosity the user chose (`GRPC_NODE_VERBOSITY`
 * or `GRPC_VERBOSITY`) is left alone. grpc-js has no getter for its level,
 * so this sets back the one it starts at, ERROR: for a program that has
 * not set another, that is the level it had.
 */
export async function withoutGrpcLog<T>(body: () => Promise<T>): Promise<T> {
  const chosen = Deno.env.get("GRPC_NODE_VERBOSITY") ??
    Deno.env.get("GRPC_VERBOSITY");
  if (chosen !== undefined) return await body();
  grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  try {
    return await body();
  } finally {
    grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
  }
}

if (import.meta.main) {
  await runMain("server", USAGE, main);
}
