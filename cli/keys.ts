/**
 * The client's `--keys` run: the RPCs of many keys through ring_hash, and
 * the proof that each key stayed on one backend.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { KeyFlags } from "./client_flags.ts";
import type { Send } from "./load.ts";

/** Rounds of every key; the first goes out as the channel starts. */
const ROUNDS = 3;

/**
 * Sends an RPC for each key (`key-0` to `key-(N-1)`, in the `header`
 * metadata), all at once, {@linkcode ROUNDS} times; prints
 * each backend's keys. Resolves to the exit code: 0 if no RPC failed and no
 * key reached two backends, else 1.
 */
export async function sendKeys(
  send: Send,
  { keys, header }: KeyFlags,
  { timeout, quiet }: { readonly timeout: number; readonly quiet: boolean },
): Promise<number> {
  const backends = new Map<string, Set<string>>();
  let failed = 0;
  const one = (key: string) => {
    const metadata = new grpc.Metadata();
    metadata.set(header, key);
    const deadline = new Date(Date.now() + timeout * 1000);
    return send(deadline, metadata).then(({ reply, peer }) => {
      if (!backends.has(key)) backends.set(key, new Set());
      backends.get(key)!.add(peer);
      if (!quiet) console.log(`${key}: ${reply}`);
    }, (error: grpc.ServiceError) => {
      failed++;
      console.error(
        `${key} failed: ${grpc.status[error.code]}: ${error.details}`,
      );
    });
  };
  const names = Array.from({ length: keys }, (_, i) => `key-${i}`);
  for (let round = 0; round < ROUNDS; round++) {
    await Promise.all(names.map(one));
  }
  return report(names, backends, failed);
}

/** Prints each backend's keys and the keys on two; the exit code. */
function report(
  names: readonly string[],
  backends: ReadonlyMap<string, ReadonlySet<string>>,
  failed: number,
): number {
  const byBackend = new Map<string, string[]>();
  const split: string[] = [];
  for (const name of names) {
    const peers = [...backends.get(name) ?? []];
    if (peers.length > 1) split.push(`${name} reached ${peers.join(", ")}`);
    for (const peer of peers) {
      byBackend.set(peer, [...byBackend.get(peer) ?? [], name]);
    }
  }
  for (const [peer, keys] of [...byBackend].sort()) {
    console.log(`${peer}: ${keys.length} keys: ${keys.join(" ")}`);
  }
  for (const line of split) console.log(line);
  console.log(
    `${names.length} keys, ${split.length} on two backends; failed: ${failed} of ${
      names.length * ROUNDS
    } RPCs`,
  );
  return split.length === 0 && failed === 0 ? 0 : 1;
}
