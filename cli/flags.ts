/**
 * Flag reading shared by `server.ts` and `client.ts`: strict flags, one
 * reader for numbers, one for address lists, and a {@linkcode UsageError}
 * naming the flag for anything wrong.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { experimental } from "@grpc/grpc-js";

/** A bad command line; the message names the flag. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** What {@linkcode parseFlags} reads from `options`' flags. */
export type ParsedFlags<T extends Options> = ReturnType<
  typeof parseArgs<{ options: T; strict: true }>
>["values"];

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
): ParsedFlags<T> {
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
    throw new UsageError((error as Error).message.split("\n")[0], {
      cause: error,
    });
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
    throw new UsageError(`--${flag}: ${(error as Error).message}`, {
      cause: error,
    });
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
    throw new Error(`--${flag}: cannot read ${path}: ${reason}`, {
      cause: error,
    });
  }
}

/** What {@linkcode readNumber} accepts. */
export interface NumberRule {
  /** Whole numbers only. */
  readonly whole?: boolean;
  /** What it counts, as "seconds", for the message. */
  readonly unit?: string;
  /** The least value taken. */
  readonly min?: number;
  /** A bound the value must be above. */
  readonly above?: number;
  /** The greatest value taken. */
  readonly max?: number;
}

/** A decimal number, spaces around it allowed, as a person writes one. */
const DECIMAL = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?\s*$/i;

/**
 * Reads the value of `--flag` as a number that `rule` takes.
 *
 * @throws {UsageError} in one style for every number flag:
 *   `--timeout must be a number of seconds, above 0, got "x"`.
 */
export function readNumber(
  flag: string,
  value: string,
  rule: NumberRule,
): number {
  const { whole = false, unit, min, above, max } = rule;
  // Decimal only: `Number` would also take "0x10", "0b1" and "0o7".
  const number = DECIMAL.test(value) ? Number(value) : NaN;
  const taken = Number.isFinite(number) &&
    (!whole || Number.isInteger(number)) &&
    (min === undefined || number >= min) &&
    (above === undefined || number > above) &&
    (max === undefined || number <= max);
  if (taken) return number;
  const kind = `${whole ? "a whole number" : "a number"}${
    unit === undefined ? "" : ` of ${unit}`
  }`;
  const range = max !== undefined
    ? `from ${min ?? above} to ${max}`
    : above !== undefined
    ? `above ${above}`
    : `at least ${min}`;
  throw new UsageError(`--${flag} must be ${kind}, ${range}, got "${value}"`);
}

/**
 * Reads the value of `--flag` as comma-separated `HOST:PORT` addresses,
 * each trimmed: `"a:1, b:2"` is `["a:1", "b:2"]`.
 *
 * @throws {UsageError} naming the first entry that is not `HOST:PORT`.
 */
export function readAddresses(flag: string, value: string): string[] {
  const addresses = value.split(",").map((address) => address.trim());
  const malformed = addresses.find((address) =>
    experimental.splitHostPort(address)?.port === undefined
  );
  if (malformed !== undefined) {
    throw new UsageError(`--${flag}: expected HOST:PORT, got "${malformed}"`);
  }
  return addresses;
}

/** `--metrics-port` and `--metrics-host`, for a program's parseArgs options. */
export const METRICS_OPTIONS = {
  "metrics-port": { type: "string" },
  "metrics-host": { type: "string" },
} as const;

/** The usage lines of {@linkcode METRICS_OPTIONS}. */
export const METRICS_USAGE =
  `  --metrics-port     serve the metrics in Prometheus's text format at
                     http://HOST:PORT/metrics (docs/metrics.md); 0 picks a
                     free port
  --metrics-host     the host the metrics listen on (default localhost; any
                     other needs its network permission)`;

/** Where a program serves its metrics. */
export interface MetricsFlags {
  readonly port: number;
  readonly host: string;
}

/**
 * Reads `--metrics-port` and `--metrics-host`; `null` without a port.
 *
 * @throws {UsageError} for a port that is not one, an empty host, or a
 *   host without a port.
 */
export function readMetricsFlags(
  flags: { "metrics-port"?: string; "metrics-host"?: string },
): MetricsFlags | null {
  const port = flags["metrics-port"];
  const host = flags["metrics-host"];
  if (port === undefined) {
    if (host !== undefined) {
      throw new UsageError("--metrics-host works with --metrics-port only");
    }
    return null;
  }
  if (host?.trim() === "") {
    throw new UsageError("--metrics-host needs a host name or address");
  }
  return {
    port: readNumber("metrics-port", port, { whole: true, min: 0, max: 65535 }),
    host: host?.trim() ?? "localhost",
  };
}
