/**
 * Idle clients while their servers restart: two client processes, this
 * project's client and a plain grpc-js one, each send one RPC, sit idle for
 * IDLE_MS, and send the next, while the server process is restarted
 * (SIGTERM: NOT_SERVING, GOAWAY, exit) in the middle of every idle period.
 * Both must stay alive and every RPC must succeed. Deno's issue #36788 also
 * reports clients that die when a server sends GOAWAY after an idle period.
 *
 * ```sh
 * deno task soak:idle            # 4 rounds, 2 minutes idle between them
 * deno task soak:idle 30000 6    # 6 rounds, 30 s idle
 * ```
 *
 * @module
 */
import {
  denoRunArgs,
  lineReader,
  startServerTask,
} from "../tests/processes.ts";

/** How one client process ended. */
export interface IdleClientRun {
  readonly mode: "project" | "plain";
  readonly code: number;
  readonly signal: Deno.Signal | null;
  /** Its `round N: ...` lines. */
  readonly rounds: string[];
}

/**
 * Runs both idle clients for `rounds` RPCs `idleMs` apart against a server
 * process restarted halfway through every idle period.
 */
export async function idleRestarts(
  idleMs: number,
  rounds: number,
): Promise<{ runs: IdleClientRun[]; restarts: number }> {
  let server = await startServerTask(["127.0.0.1:0", "127.0.0.1:0"]);
  const addresses = server.addresses;
  const clients = (["project", "plain"] as const).map((mode) => ({
    mode,
    child: new Deno.Command("deno", {
      args: [
        ...denoRunArgs("tests/programs/idle_client.ts", "127.0.0.1"),
        mode,
        addresses.join(","),
        String(idleMs),
        String(rounds),
      ],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "inherit",
    }).spawn(),
  }));
  let restarts = 0;
  try {
    const runs = clients.map(
      async ({ mode, child }): Promise<IdleClientRun> => {
        const lines: string[] = [];
        for await (const line of lineReader(child.stdout)) {
          lines.push(line);
          // Restart halfway through each of the project client's idle periods.
          if (mode === "project" && lines.length < rounds) {
            await new Promise((r) => setTimeout(r, idleMs / 2));
            await server.stop("SIGTERM");
            server = await startServerTask(addresses, ["--drain-ms", "0"]);
            restarts++;
          }
        }
        const { code, signal } = await child.status;
        return { mode, code, signal, rounds: lines };
      },
    );
    return { runs: await Promise.all(runs), restarts };
  } finally {
    await server.stop("SIGKILL");
  }
}

if (import.meta.main) {
  const idleMs = Number(Deno.args[0] ?? 120_000);
  const rounds = Number(Deno.args[1] ?? 4);
  const { runs, restarts } = await idleRestarts(idleMs, rounds);
  console.log(`${restarts} server restarts, ${idleMs} ms idle between RPCs`);
  for (const run of runs) {
    const ok = run.rounds.filter((line) => line.endsWith(": ok")).length;
    const end = run.signal ?? `exit ${run.code}`;
    console.log(`${run.mode} client: ${ok} of ${rounds} RPCs ok, ${end}`);
  }
  Deno.exit(runs.every((run) => run.code === 0) ? 0 : 1);
}
