/**
 * A steady load of RPCs, each sent as the client program sends it, and what
 * became of each.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { EchoClient } from "../echo/mod.ts";
import { unaryEcho, withResend } from "../cli/load.ts";
import { deadline } from "./rpcs.ts";
import { until } from "./wait.ts";
import { servedBy as servedByTag } from "./windows.ts";

/** One RPC of a {@linkcode Load}: when it started and how it ended. */
export interface Sent {
  /** `performance.now()` when the RPC was sent. */
  readonly at: number;
  /** How long it took, in milliseconds. */
  readonly ms: number;
  /** The server that answered, or `null` if the RPC failed. */
  readonly server: string | null;
  /** The failure, as `CODE: details`, or `null`. */
  readonly error: string | null;
}

/** RPCs sent without pause by `concurrency` workers until stopped. */
export interface Load {
  /** Every RPC finished so far, in the order they finished. */
  readonly sent: readonly Sent[];
  /** Stops sending; resolves once the RPCs in flight have finished. */
  stop(): Promise<readonly Sent[]>;
}

/**
 * Starts a steady load of UnaryEcho RPCs on `client`, each sent as the
 * client program sends it.
 */
export function startLoad(client: EchoClient, concurrency = 4): Load {
  const send = withResend((deadline) => unaryEcho(client, deadline));
  const sent: Sent[] = [];
  let running = true;
  const worker = async () => {
    while (running) {
      const at = performance.now();
      try {
        const { reply } = await send(deadline());
        const server = servedByTag(reply);
        sent.push({ at, ms: performance.now() - at, server, error: null });
      } catch (error) {
        const { code, details } = error as grpc.ServiceError;
        const ms = performance.now() - at;
        const failure = `${grpc.status[code]}: ${details}`;
        sent.push({ at, ms, server: null, error: failure });
      }
    }
  };
  const workers = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    sent,
    async stop() {
      running = false;
      await workers;
      return sent;
    },
  };
}

/**
 * Waits until `load` has finished `n` more RPCs than it had: a stretch of
 * load measured in RPCs, not in time.
 */
export function untilSent(load: Load, n: number, ms = 10_000): Promise<void> {
  const from = load.sent.length;
  return until(`${n} RPCs sent`, () => load.sent.length >= from + n, ms);
}

/** The failures among `sent`, for an assertion message. */
export function failures(sent: readonly Sent[]): string[] {
  return sent.flatMap(({ error }) => error === null ? [] : [error]);
}

/**
 * Waits until `rpcs` RPCs of `load` in a row have succeeded since one
 * failed (none counts until one fails): until a failing backend is left
 * out, as when outlier detection ejects it.
 */
export function untilFailuresEnd(
  load: Load,
  rpcs: number,
  ms: number,
): Promise<void> {
  const succeededSince = () => {
    const last = load.sent.findLastIndex((rpc) => rpc.error !== null);
    return last < 0 ? 0 : load.sent.length - 1 - last;
  };
  return until(
    `${rpcs} RPCs in a row after failures`,
    () => succeededSince() >= rpcs,
    ms,
  );
}
