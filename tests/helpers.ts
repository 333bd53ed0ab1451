/**
 * Real servers and a real channel through the policy, and the RPC helpers
 * the integration tests share.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { ManualResolver, registerCustomRoundRobin } from "../balancer/mod.ts";
import { EchoClient, type EchoResponse } from "../proto/echo.ts";
import {
  type EchoServer,
  type EchoServerOptions,
  startEchoServer,
  stopEchoServers,
} from "../server.ts";
import { servedBy as servedByTag } from "./windows.ts";
import { unaryEcho, withResend } from "../load.ts";

registerCustomRoundRobin();

let schemes = 0;

/** Two servers and a client reaching them through a manual resolver. */
export interface Setup {
  readonly servers: EchoServer[];
  readonly resolver: ManualResolver;
  readonly client: EchoClient;
  readonly first: string;
  readonly second: string;
  close(): Promise<void>;
}

/** What {@linkcode setup} starts besides the defaults. */
export interface SetupOptions {
  /** Options of both servers. */
  readonly server?: EchoServerOptions;
  /** Channel options of the client. */
  readonly channel?: grpc.ChannelOptions;
}

/**
 * A client reaching `endpoints` through a manual resolver of its own that
 * hands the channel `serviceConfig`.
 */
export function connect(
  endpoints: readonly string[],
  serviceConfig: unknown,
  options?: grpc.ChannelOptions,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): { resolver: ManualResolver; client: EchoClient } {
  const scheme = `integration-${++schemes}`;
  const resolver = new ManualResolver(scheme, { endpoints, serviceConfig });
  resolver.register();
  const client = new EchoClient(`${scheme}:///echo`, credentials, options);
  return { resolver, client };
}

/** Two echo servers on free ports and a client reaching them by `config`. */
export async function setup(
  serviceConfig: unknown,
  options: SetupOptions = {},
): Promise<Setup> {
  const servers = [
    await startEchoServer("localhost:0", options.server),
    await startEchoServer("localhost:0", options.server),
  ];
  const { resolver, client } = connect(
    servers.map(({ address }) => address),
    serviceConfig,
    options.channel,
  );
  return {
    servers,
    resolver,
    client,
    first: servers[0].address,
    second: servers[1].address,
    async close() {
      client.close();
      await stopEchoServers(servers, { drainMs: 0, graceMs: 1000 });
    },
  };
}

/** A service config with only the policy. */
export function policyConfig(chooseSecond: number) {
  return {
    loadBalancingConfig: [{ custom_round_robin: { chooseSecond } }],
  };
}

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

/** Binds `server` to a free port on 127.0.0.1; resolves to its address. */
export function listen(server: grpc.Server): Promise<string> {
  return new Promise((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (error, port) => error ? reject(error) : resolve(`127.0.0.1:${port}`),
    )
  );
}

/**
 * A loopback port that is free now, for a server that must be told its port
 * before it starts (one that cannot take port 0).
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * `missing` if `command` is not installed, else `null`: why a test that
 * runs it is skipped.
 */
export async function notInstalled(
  command: string,
  args: readonly string[],
  missing: string,
): Promise<string | null> {
  try {
    await new Deno.Command(command, {
      args: [...args],
      stdout: "null",
      stderr: "null",
    }).output();
    return null;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return missing;
    throw error;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `check()` holds, polling; fails after `ms`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 5000,
): Promise<void> {
  const end = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > end) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

/** The failures among `sent`, for an assertion message. */
export function failures(sent: readonly Sent[]): string[] {
  return sent.flatMap(({ error }) => error === null ? [] : [error]);
}

/**
 * Collects what grpc-js logs while `body` runs; `body` sees the lines so
 * far, to wait for one.
 */
export async function logged(
  body: (lines: readonly string[]) => Promise<void>,
): Promise<string[]> {
  const lines: string[] = [];
  grpc.setLogger({ error: (...args: unknown[]) => lines.push(args.join(" ")) });
  try {
    await body(lines);
  } finally {
    grpc.setLogger(console);
  }
  return lines;
}
