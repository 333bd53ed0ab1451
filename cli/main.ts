/**
 * How the programs run: errors turned into one line and an exit code, and
 * grpc-js's own log kept quiet while servers start.
 *
 * @module
 */
import process from "node:process";
import * as grpc from "@grpc/grpc-js";
import type { EchoServer } from "../echo/mod.ts";
import { UsageError } from "./flags.ts";

/**
 * An error for which a program refuses to start, such as a host its
 * permissions do not reach: one line and exit code 2, with no usage line.
 */
export class RefusedError extends Error {}

/**
 * Runs `main`, turning errors into one line on stderr and an exit code:
 * 2 with the usage for a {@linkcode UsageError}, 2 for a
 * {@linkcode RefusedError}, 1 for anything else.
 */
export async function runMain(
  program: string,
  usage: string,
  main: () => Promise<number>,
): Promise<never> {
  try {
    Deno.exit(await main());
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`${program}: ${message}`);
    if (error instanceof UsageError) {
      console.error(usage.split("\n")[0]);
      Deno.exit(2);
    }
    Deno.exit(error instanceof RefusedError ? 2 : 1);
  }
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

/**
 * Runs `body`, a load of npm packages, without Node's deprecation warnings:
 * `@grpc/grpc-js-xds` loads node-fetch 2 (through google-auth-library),
 * whose URL parser requires Node's deprecated `punycode`, and Deno prints
 * DEP0040 for it. That is no concern of the program's user.
 */
export async function withoutDeprecationWarnings<T>(
  body: () => Promise<T>,
): Promise<T> {
  const before = process.noDeprecation;
  process.noDeprecation = true;
  try {
    return await body();
  } finally {
    process.noDeprecation = before;
  }
}

/** Prints `serving on HOST:PORT` for each of a program's servers. */
export function printServing(servers: readonly EchoServer[]): void {
  for (const { address } of servers) console.log(`serving on ${address}`);
}
