/**
 * The client's proof of a ratio: windows of RPCs sent until three in a row
 * put the expected share on the second backend, judged by the backends that
 * served them.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { Echoed, Send } from "./load.ts";

/**
 * What one window of RPCs shows: that it does not hold, that it holds with
 * the second backend known (`--addrs`), or that it holds with the second
 * backend unknown (`--target`), set apart by one backend.
 */
export type Judgement =
  | { readonly kind: "broken" }
  | { readonly kind: "held" }
  | { readonly kind: "setApart"; readonly by: string };

const BROKEN: Judgement = { kind: "broken" };
const HELD: Judgement = { kind: "held" };

/**
 * Judges one window of `chooseSecond` RPCs by the peers that served them.
 *
 * When it is known which peer is the second backend (`isSecond`), the window
 * holds if exactly `expected` RPCs went there. When it is not (`--target`),
 * the window holds if exactly one RPC went to a backend of its own and the
 * rest to one other, or, for a ratio of 0 or 1, all went to one backend;
 * that backend sets the window apart. A ratio is proved only by windows all
 * set apart by the same backend: round_robin's A B A, B A B has a lone RPC
 * in each window, but on a different backend each time.
 */
export function judgeWindow(
  peers: readonly string[],
  expected: number,
  isSecond: ((peer: string) => boolean) | null,
): Judgement {
  if (isSecond) {
    return peers.filter(isSecond).length === expected ? HELD : BROKEN;
  }
  const counts = new Map<string, number>();
  for (const peer of peers) counts.set(peer, (counts.get(peer) ?? 0) + 1);
  if (expected === 0 || peers.length === 1) {
    return counts.size === 1 ? { kind: "setApart", by: peers[0] } : BROKEN;
  }
  if (counts.size !== 2) return BROKEN;
  const lone = [...counts].filter(([, n]) => n === 1);
  return lone.length === 1 ? { kind: "setApart", by: lone[0][0] } : BROKEN;
}

/**
 * The proof of a ratio: three windows in a row that hold, each set apart by
 * the same backend when the second is unknown (see {@linkcode judgeWindow}).
 */
export class RatioProof {
  readonly #expected: number;
  readonly #isSecond: ((peer: string) => boolean) | null;
  #streak = 0;
  #last: Judgement = BROKEN;

  /**
   * @param expected RPCs per window that go to the second backend: 0 or 1.
   * @param isSecond Tells the second backend's peer, when it is known.
   */
  constructor(
    expected: number,
    isSecond: ((peer: string) => boolean) | null,
  ) {
    this.#expected = expected;
    this.#isSecond = isSecond;
  }

  /** Adds a window's peers; true once the ratio is proved. */
  add(peers: readonly string[]): boolean {
    const judged = judgeWindow(peers, this.#expected, this.#isSecond);
    this.#streak = judged.kind === "broken"
      ? 0
      : sameJudgement(judged, this.#last)
      ? this.#streak + 1
      : 1;
    this.#last = judged;
    return this.#streak === 3;
  }
}

function sameJudgement(a: Judgement, b: Judgement): boolean {
  return a.kind === b.kind &&
    (a.kind !== "setApart" || a.by === (b as typeof a).by);
}

/** How {@linkcode checkRatio} checks. */
export interface RatioCheck {
  /** The backends, for messages. */
  readonly from: string;
  readonly chooseSecond: number;
  readonly timeoutSeconds: number;
  /** No line per RPC. */
  readonly quiet: boolean;
  /** Tells the second backend's peer, when it is known. */
  readonly isSecond: ((peer: string) => boolean) | null;
}

/**
 * Sends windows of `chooseSecond` RPCs by `send` until they prove the ratio (see
 * {@linkcode RatioProof}), and says so.
 *
 * @throws {Error} when the time is up first, or an RPC fails.
 */
export async function checkRatio(
  send: Send,
  { from, chooseSecond, timeoutSeconds, quiet, isSecond }: RatioCheck,
): Promise<void> {
  const size = Math.max(chooseSecond, 1);
  const expected = chooseSecond === 0 ? 0 : 1;
  const ratio = `${expected}:${size - expected}`;
  const deadline = new Date(Date.now() + timeoutSeconds * 1000);
  const proof = new RatioProof(expected, isSecond);
  for (let proved = false; !proved;) {
    const peers: string[] = [];
    for (let i = 0; i < size; i++) {
      let echoed: Echoed;
      try {
        echoed = await send(deadline);
      } catch (error) {
        const { code, details } = error as grpc.ServiceError;
        throw new Error(
          code === grpc.status.DEADLINE_EXCEEDED
            ? `no ${ratio} ratio from ${from} within ${timeoutSeconds} s (--timeout): ${details}`
            : `UnaryEcho failed: ${grpc.status[code]}: ${details}`,
          { cause: error },
        );
      }
      if (!quiet) console.log(echoed.reply);
      peers.push(echoed.peer);
    }
    proved = proof.add(peers);
  }
  console.log(`Successful multiple iterations of ${ratio} ratio`);
}
