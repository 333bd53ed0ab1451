/**
 * `deno task server` and `deno task client` as separate processes, the way a
 * user runs them.
 *
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);

/**
 * `deno run` arguments for `program`, a program of this project, with the
 * programs' permissions (deno.json's `program` set) but network to `hosts`
 * (comma-separated) alone. Run them from the project's folder.
 */
export function denoRunArgs(program: string, hosts: string): string[] {
  return ["run", "-q", "-P=program", `--allow-net=${hosts}`, program];
}

/** How a process ended and what it printed. */
export interface Finished {
  readonly code: number;
  readonly stdout: string[];
  /** stderr without `deno task`'s own "Task …" line. */
  readonly stderr: string[];
}

function lines(text: string): string[] {
  return text.split("\n").filter((line) => line !== "");
}

function withoutTaskLine(text: string): string[] {
  return lines(text).filter((line) => !line.startsWith("Task "));
}

/**
 * `deno task <args>` with piped output, not started; `env` adds variables,
 * as an etcd user's.
 */
export function task(
  args: string[],
  env: Record<string, string> = {},
): Deno.Command {
  return new Deno.Command("deno", {
    args: ["task", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * The command line of task `name` from deno.json, with `args` added, to be
 * run without `deno task` in between: then a signal such as SIGKILL reaches
 * the program itself.
 */
function taskCommand(
  name: string,
  args: readonly string[],
  env: Record<string, string>,
): Deno.Command {
  const config = JSON.parse(
    Deno.readTextFileSync(new URL("deno.json", ROOT)),
  );
  const command: string = config.tasks[name].command;
  const words = command.split(" ").map((word) => word.replaceAll("'", ""));
  assert.equal(words[0], "deno");
  return new Deno.Command("deno", {
    args: [...words.slice(1), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Sends `signal` to `child` unless it has ended already, in which case its
 * exit status tells how.
 */
export function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch (error) {
    // Deno throws a TypeError for a process that has already terminated.
    if (!(error instanceof TypeError)) throw error;
  }
}

/** The lines of `stream` as they arrive, without their line ends. */
export async function* lineReader(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (buffered + chunk).split("\n");
    buffered = parts.pop()!;
    yield* parts;
  }
  if (buffered !== "") yield buffered;
}

/** Asserts that a quiet client run proved the ratio: exit 0, one line. */
export function assertRatioProved(client: Finished): void {
  assert.equal(client.code, 0, client.stderr.join("\n"));
  assert.deepEqual(client.stdout, [
    "Successful multiple iterations of 1:2 ratio",
  ]);
}

/**
 * How long a program run by {@linkcode runTask} may take: the longest run of
 * the suite, 6,000 RPCs at 400 a second (15 s), with room for a slow
 * machine. A program that should have exited and serves on instead fails
 * its test in this time, not at CI's limit.
 */
const EXIT_LIMIT_MS = 60_000;

/**
 * Runs `deno task <args>` to its end; fails if it has not ended within
 * {@linkcode EXIT_LIMIT_MS}, after stopping it with SIGTERM, which `deno task`
 * passes on to the program.
 */
export async function runTask(
  args: string[],
  env: Record<string, string> = {},
): Promise<Finished> {
  const child = task(args, env).spawn();
  let overdue = false;
  const timer = setTimeout(() => {
    overdue = true;
    kill(child, "SIGTERM");
  }, EXIT_LIMIT_MS);
  const { code, stdout, stderr } = await child.output().finally(() =>
    clearTimeout(timer)
  );
  assert.ok(
    !overdue,
    `deno task ${args.join(" ")} had not exited after ${EXIT_LIMIT_MS} ms`,
  );
  const decoder = new TextDecoder();
  return {
    code,
    stdout: lines(decoder.decode(stdout)),
    stderr: withoutTaskLine(decoder.decode(stderr)),
  };
}

/**
 * A running server process.
 *
 * On Deno 2.9.4 to 2.9.6, node:http2 can abort a server on the GOAWAY that
 * a busy channel's close sends (denoland/deno#36788; docs/known_issues.md);
 * the pinned 2.9.3 does not.
 */
export interface ServerTask {
  /** The addresses it printed, real ports included. */
  readonly addresses: string[];
  /** Sends `signal` and waits for the process to end. */
  stop(signal?: Deno.Signal): Promise<Finished>;
  /** Resolves when the process ends, with its exit code. */
  readonly exited: Promise<number>;
}

/**
 * Starts task `server` with `--addrs <addresses> <args>`, and waits until it
 * has printed a line starting with `ready` for each address: where it
 * serves, or, with `"registered "`, that it registered in etcd.
 */
export async function startServerTask(
  addresses: readonly string[] = ["localhost:0", "localhost:0"],
  args: readonly string[] = [],
  ready = "serving on ",
  env: Record<string, string> = {},
): Promise<ServerTask> {
  const child = taskCommand("server", [
    "--addrs",
    addresses.join(","),
    ...args,
  ], env).spawn();
  const stdout = lineReader(child.stdout);
  const stderr = new Response(child.stderr).text();
  const seen: string[] = [];
  while (
    seen.filter((l) => l.startsWith(ready)).length < addresses.length
  ) {
    const { value, done } = await stdout.next();
    if (done) {
      await child.status;
      assert.fail(`server exited early: ${seen} ${await stderr}`);
    }
    seen.push(value);
  }
  return {
    addresses: seen.filter((line) => line.startsWith("serving on "))
      .map((line) => line.replace("serving on ", "")),
    exited: child.status.then(({ code }) => code),
    async stop(signal: Deno.Signal = "SIGTERM"): Promise<Finished> {
      kill(child, signal);
      for await (const line of stdout) seen.push(line);
      const { code } = await child.status;
      return {
        code,
        stdout: seen.filter((line) => line !== ""),
        stderr: withoutTaskLine(await stderr),
      };
    },
  };
}
