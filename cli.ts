/**
 * Flag parsing shared by `server.ts` and `client.ts`: strict flags, and a
 * usage message with exit code 2 for anything that is not one.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A bad command line; the message names the flag. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses `args` strictly against `options`.
 *
 * A negative number after a flag, as in `--choose-second -1`, is taken as
 * the flag's value: node's parseArgs would refuse it as ambiguous, and no
 * flag of these programs looks like a number.
 *
 * @throws {UsageError} for an unknown flag, a missing value or a positional.
 */
export function parseFlags<T extends Options>(
  args: readonly string[],
  options: T,
): ReturnType<typeof parseArgs<{ options: T; strict: true }>>["values"] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : "";
    const next = args[i + 1];
    if (
      options[name]?.type === "string" && next !== undefined &&
      /^-\d|^-\./.test(next)
    ) {
      joined.push(`${args[i]}=${next}`);
      i++;
    } else {
      joined.push(args[i]);
    }
  }
  try {
    return parseArgs({ args: joined, options, strict: true }).values;
  } catch (error) {
    throw new UsageError((error as Error).message.split("\n")[0]);
  }
}

/**
 * `read(value)`, for the value of `--flag`: an error it throws becomes a
 * {@linkcode UsageError} naming the flag.
 */
export function readFlag<T>(
  flag: string,
  value: string,
  read: (value: string) => T,
): T {
  try {
    return read(value);
  } catch (error) {
    throw new UsageError(`--${flag}: ${(error as Error).message}`);
  }
}

/**
 * Reads the file that `flag` names.
 *
 * @throws {Error} in one line naming the flag, the file and why.
 */
export function readFlagFile(flag: string, path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.NotCapable
      ? "not readable with this task's permissions (put it in certs/)"
      : (error as Error).message;
    throw new Error(`--${flag}: cannot read ${path}: ${reason}`);
  }
}

/**
 * Runs `main`, turning errors into one line on stderr and an exit code:
 * 2 with the usage for a {@linkcode UsageError}, 1 for anything else.
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
    Deno.exit(1);
  }
}
