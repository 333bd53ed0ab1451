/**
 * Idle clients while their servers restart: two client processes, this
 * project's client and a plain grpc-js one, each send one RPC, sit idle, and
 * send the next, while the server process is restarted (SIGTERM:
 * NOT_SERVING, GOAWAY, exit) in the middle of every idle period. The restart
 * test and `deno task soak:idle` run it.
 *
 * @module
 */
import { denoRunArgs, lineReader, startServerTask } from "./processes.ts";

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
        ...denoRunArgs("testing/programs/idle_client.ts", "127.0.0.1"),
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
