/**
 * The Echo service's handlers: every reply tagged with the server's address,
 * and, on request, a share of UnaryEcho RPCs failed on purpose.
 *
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import type { EchoHandlers } from "./proto.ts";

/** Injected UnaryEcho failures, for watching a client move away. */
export interface Failures {
  /** The share of UnaryEcho RPCs that fail, from 0 to 100. */
  readonly percent: number;
  /** Their status. */
  readonly code: grpc.status;
}

/**
 * The Echo methods, every reply tagged `(from <address>)`. With `failures`,
 * exactly that share of UnaryEcho RPCs fails, spread evenly: at 25, every
 * fourth. With `delayMs`, every UnaryEcho answers that late, as a slow
 * backend's would.
 */
export function echoHandlers(
  address: string,
  failures?: Failures,
  delayMs = 0,
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
  const answer: EchoHandlers["UnaryEcho"] = (call, callback) => {
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
  };
  return {
    UnaryEcho: delayMs === 0
      ? answer
      : (call, callback) => setTimeout(() => answer(call, callback), delayMs),
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
