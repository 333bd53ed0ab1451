/**
 * Load generation for the client: UnaryEcho, the resend of a call whose
 * connection was lost mid-call that the client opts into, and `--count`
 * runs.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { EchoClient } from "../echo/mod.ts";

const MESSAGE = "this is examples/customloadbalancing";

/** The result of one UnaryEcho: the reply and the peer that served it. */
export interface Echoed {
  readonly reply: string;
  readonly peer: string;
}

/** Sends one UnaryEcho that must end by `deadline`. */
export type Send = (
  deadline: Date,
  metadata?: grpc.Metadata,
) => Promise<Echoed>;

/**
 * The errors of calls whose reply had started (its headers had arrived),
 * kept beside them: the error is grpc-js's, and stays as grpc-js made it.
 */
const answeredCalls = new WeakSet<grpc.ServiceError>();

/** One UnaryEcho on `client`; a failure is grpc-js's error. */
export function unaryEcho(
  client: EchoClient,
  deadline: Date,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<Echoed> {
  return new Promise<Echoed>((resolve, reject) => {
    let answered = false;
    const call = client.UnaryEcho(
      { message: MESSAGE },
      metadata,
      { deadline },
      (error, response) => {
        if (error) {
          if (answered) answeredCalls.add(error);
          reject(error);
        } else {
          resolve({ reply: response!.message, peer: call.getPeer() });
        }
      },
    );
    call.on("metadata", () => answered = true);
  });
}

/**
 * `send`, and once more when a call failed because its connection was lost
 * in a way the service config's retry policy does not cover (see
 * {@linkcode connectionLost}). The retry policy covers calls that fail with
 * UNAVAILABLE before a reply starts. Opt-in, and only for idempotent
 * methods such as Echo: the first call may have been served.
 */
export function withResend(send: Send): Send {
  return (deadline, metadata) =>
    send(deadline, metadata).catch((error: grpc.ServiceError) => {
      const { code, details } = error;
      const answered = answeredCalls.has(error);
      if (connectionLost({ code, details, answered })) {
        return send(deadline, metadata);
      }
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
 *
 * The second is matched by its text: grpc-js keeps only the socket error's
 * message in `details`, and its public error has no field for the error's
 * code (EPIPE) or the stream's reset code.
 */
export function connectionLost(
  { code, details, answered }: Pick<grpc.ServiceError, "code" | "details"> & {
    /** Whether the reply's headers had arrived. */
    answered: boolean;
  },
): boolean {
  return (code === grpc.status.UNAVAILABLE && answered) ||
    (code === grpc.status.INTERNAL &&
      LOST_SOCKET_ERRORS.some((message) => details.endsWith(message)));
}

/** How {@linkcode sendCount} sends. */
export interface CountOptions {
  readonly count: number;
  readonly concurrency: number;
  /** At most this many RPCs per second, or `null` for no limit. */
  readonly rate: number | null;
  readonly timeoutSeconds: number;
  readonly quiet: boolean;
  readonly label: (peer: string) => string;
}

/**
 * Sends `count` RPCs by `send`, `concurrency` at a time; prints a
 * per-backend summary.
 * Resolves to the exit code: 0 if no RPC failed, else 1.
 */
export async function sendCount(
  send: Send,
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
        const { reply, peer } = await send(
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
