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
import { idleRestarts } from "../testing/idle_restarts.ts";

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
