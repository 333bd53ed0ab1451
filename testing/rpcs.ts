/**
 * Single RPCs and sequences of them, and waiting for a pattern of servers.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import type { EchoClient, EchoResponse } from "../echo/mod.ts";
import type { Setup } from "./channels.ts";
import { servedBy as servedByTag } from "./windows.ts";

/** The server that answered a reply. */
export function servedBy(reply: EchoResponse): string {
  return servedByTag(reply.message);
}

/** A deadline `seconds` from now. */
export function deadline(seconds = 5): Date {
  return new Date(Date.now() + seconds * 1000);
}

/** One UnaryEcho; resolves to the server that answered. */
export function unary(client: EchoClient): Promise<string> {
  return new Promise((resolve, reject) =>
    client.UnaryEcho(
      { message: "hi" },
      { deadline: deadline() },
      (error, reply) => error ? reject(error) : resolve(servedBy(reply!)),
    )
  );
}

/** Sends RPCs until one reaches `server`; fails the test after `ms`. */
export async function untilServes(
  client: EchoClient,
  server: string,
  ms = 5000,
) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await unary(client) === server) return;
  }
  assert.fail(`${server} served no RPC within ${ms} ms`);
}

/**
 * Sends RPCs until one reaches the second server: both children are READY
 * then, and the custom picker has just made a pick of the second.
 */
export function untilSecondServes(setup: Setup): Promise<void> {
  return untilServes(setup.client, setup.second);
}

/**
 * Sends RPCs until nine in a row go first, first, second, and resolves to
 * how long that took. Each new picker starts its count afresh, so while
 * children still report changes the pattern may restart; this waits past
 * that. Fails the test after `ms`.
 */
export async function untilPattern(
  client: EchoClient,
  first: string,
  second: string,
  ms = 5000,
): Promise<number> {
  const start = performance.now();
  const expected = repeated([first, first, second], 9);
  let last: string[] = [];
  while (performance.now() - start < ms) {
    await untilServes(client, second, ms);
    last = await sequence(9, () => unary(client));
    if (expected.every((server, i) => last[i] === server)) {
      return performance.now() - start;
    }
  }
  assert.fail(`no first, first, second pattern within ${ms} ms: ${last}`);
}

/** The servers of `n` RPCs sent one after another by `send`. */
export async function sequence(
  n: number,
  send: (i: number) => Promise<string>,
): Promise<string[]> {
  const served: string[] = [];
  for (let i = 0; i < n; i++) served.push(await send(i));
  return served;
}

/** `pattern` repeated to `n` entries. */
export function repeated(pattern: readonly string[], n: number): string[] {
  return Array.from({ length: n }, (_, i) => pattern[i % pattern.length]);
}

/** Keys for ring_hash, taken in turn by {@linkcode keyedUnary}. */
let keys = 0;

/**
 * One UnaryEcho of `message` whose `x-user` header holds a key, the next of
 * 1,000 taken in turn, so that ring_hash spreads a run's RPCs as any policy
 * does, and every policy's RPCs carry the same header.
 */
export function keyedUnary(client: EchoClient, message: string): Promise<void> {
  const metadata = new grpc.Metadata();
  metadata.set("x-user", `user-${keys++ % 1000}`);
  return new Promise((resolve, reject) =>
    client.UnaryEcho(
      { message },
      metadata,
      {},
      (error) => error ? reject(error) : resolve(),
    )
  );
}
