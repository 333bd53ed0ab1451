/**
 * Echo servers that answer with their own address and serve the standard
 * Health service: started on an address each, stopped gracefully.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { ECHO_SERVICE_NAME, echoService } from "./proto.ts";
import { echoHandlers, type Failures } from "./handlers.ts";

/**
 * How long a stopping server keeps serving after it reports NOT_SERVING, so
 * that health-checking clients move away first.
 */
export const DRAIN_MS = 1_000;

/** How long a stopping server waits for RPCs in flight before cutting them. */
export const GRACE_MS = 5_000;

/** A running echo server and the address it serves on, real port included. */
export interface EchoServer {
  readonly address: string;
  readonly server: grpc.Server;
  /** Its health service, or `null` if started without one. */
  readonly health: HealthImplementation | null;
}

/** What {@linkcode startEchoServer} adds besides the Echo service. */
export interface EchoServerOptions {
  /** Serve `grpc.health.v1.Health` (default `true`). */
  readonly health?: boolean;
  /** Fail some UnaryEcho RPCs (default: none). */
  readonly failures?: Failures;
  /** Answer every UnaryEcho this many milliseconds late (default 0). */
  readonly delayMs?: number;
  /** How it serves, TLS or not (default: plaintext). */
  readonly credentials?: grpc.ServerCredentials;
  /** Server interceptors, such as the call-metrics one (default: none). */
  readonly interceptors?: grpc.ServerInterceptor[];
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
  const server = new grpc.Server({ interceptors: options.interceptors ?? [] });
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
          reject(
            new Error(`cannot listen on ${address}: ${reason}`, {
              cause: error,
            }),
          );
          return;
        }
        const bound = `${host}:${port}`;
        server.addService(
          echoService,
          echoHandlers(bound, options.failures, options.delayMs),
        );
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

/**
 * Starts one echo server per address, each with `options`, or with
 * `options(i)` for the `i`-th; prints nothing, which is the program's to do.
 * If one cannot start, none is left running.
 *
 * @throws {Error} naming the first address that cannot be listened on.
 */
export async function startEchoServers(
  addresses: readonly string[],
  options: EchoServerOptions | ((index: number) => EchoServerOptions) = {},
): Promise<EchoServer[]> {
  const servers: EchoServer[] = [];
  try {
    for (const [i, address] of addresses.entries()) {
      servers.push(
        await startEchoServer(
          address,
          typeof options === "function" ? options(i) : options,
        ),
      );
    }
  } catch (error) {
    for (const { server } of servers) server.forceShutdown();
    throw error;
  }
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
