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
import { type EchoHandlers, echoService } from "./proto/echo.ts";
import { parseFlags, runMain, UsageError } from "./cli.ts";

/** How long a stopping server waits for RPCs in flight before cutting them. */
export const DRAIN_MS = 5_000;

const USAGE = `usage: server.ts [--addrs HOST:PORT,...] [--help]

Starts one echo server per address; port 0 picks a free port.

  --addrs   addresses to serve on (default localhost:50050,localhost:50051)
  --help    show this help

Each server prints "serving on HOST:PORT" and tags every reply
"(from HOST:PORT)". SIGINT or SIGTERM stops accepting connections, lets
RPCs in flight finish (at most ${DRAIN_MS / 1000} s), then exits 0.`;

/** A running echo server and the address it serves on, real port included. */
export interface EchoServer {
  readonly address: string;
  readonly server: grpc.Server;
}

/** The Echo methods, every reply tagged `(from <address>)`. */
export function echoHandlers(address: string): EchoHandlers {
  const tag = (message: string) => ({
    message: `${message} (from ${address})`,
  });
  return {
    UnaryEcho(call, callback) {
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
 * @throws {Error} naming the address if it cannot be listened on.
 */
export function startEchoServer(address: string): Promise<EchoServer> {
  const hostPort = grpc.experimental.splitHostPort(address);
  if (hostPort === null || hostPort.port === undefined) {
    return Promise.reject(
      new UsageError(`--addrs: expected HOST:PORT, got "${address}"`),
    );
  }
  if (!isLoopback(hostPort.host)) {
    return Promise.reject(
      new UsageError(
        `--addrs: ${address} is not a loopback address; the servers listen on loopback only`,
      ),
    );
  }
  const host = hostPort.host.includes(":")
    ? `[${hostPort.host}]`
    : hostPort.host;
  const server = new grpc.Server();
  return new Promise((resolve, reject) => {
    server.bindAsync(
      address,
      grpc.ServerCredentials.createInsecure(),
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
        server.addService(echoService, echoHandlers(bound));
        resolve({ address: bound, server });
      },
    );
  });
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" ||
    (isIPv4(host) && host.startsWith("127."));
}

/**
 * Starts one echo server per address and prints `serving on HOST:PORT` for
 * each once all are up. If one cannot start, none is left running.
 *
 * @throws {Error} naming the first address that cannot be listened on.
 */
export async function startEchoServers(
  addresses: readonly string[],
): Promise<EchoServer[]> {
  const quiet = quietGrpcLog();
  const servers: EchoServer[] = [];
  try {
    for (const address of addresses) {
      servers.push(await startEchoServer(address));
    }
  } catch (error) {
    for (const { server } of servers) server.forceShutdown();
    throw error;
  } finally {
    quiet.restore();
  }
  for (const { address } of servers) console.log(`serving on ${address}`);
  return servers;
}

/**
 * Stops servers gracefully: no new connections, RPCs in flight may finish
 * for up to `drainMs`, then whatever is left is cut.
 */
export function stopEchoServers(
  servers: readonly EchoServer[],
  drainMs: number = DRAIN_MS,
): Promise<void> {
  return Promise.all(
    servers.map(({ server }) =>
      new Promise<void>((resolve) => {
        const deadline = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, drainMs);
        server.tryShutdown(() => {
          clearTimeout(deadline);
          resolve();
        });
      })
    ),
  ).then(() => {});
}

async function main(): Promise<number> {
  const flags = parseFlags(Deno.args, {
    addrs: { type: "string", default: "localhost:50050,localhost:50051" },
    help: { type: "boolean", default: false },
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const servers = await startEchoServers(
    flags.addrs.split(",").map((address) => address.trim()),
  );
  await new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGINT", resolve);
    Deno.addSignalListener("SIGTERM", resolve);
  });
  await stopEchoServers(servers);
  return 0;
}

/**
 * grpc-js logs a failed bind at ERROR on its own; the server says it in one
 * line instead. Unless the user chose a verbosity, grpc-js is silenced while
 * binding and set back to its default after.
 */
function quietGrpcLog(): { restore(): void } {
  const chosen = Deno.env.get("GRPC_NODE_VERBOSITY") ??
    Deno.env.get("GRPC_VERBOSITY");
  if (chosen !== undefined) return { restore() {} };
  grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  return { restore: () => grpc.setLogVerbosity(grpc.logVerbosity.ERROR) };
}

if (import.meta.main) {
  await runMain("server", USAGE, main);
}
