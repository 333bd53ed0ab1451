/**
 * Reads `deno bench --json` of `picker_bench.ts` on stdin and prints each
 * contender's nanoseconds per pick in every round, the median, and the
 * median's distance from the floor; then custom_round_robin's distance from
 * the floor in each round, as a median.
 *
 * @module
 */
import { median, medianRatio } from "./stats.ts";

/** Picks per bench iteration of `picker_bench.ts`. */
export const PICKS = 10_000;

/** The least_request contenders' names: 10 and 10,000 READY endpoints. */
export const LEAST_REQUEST_10 = "least_request, 10";
export const LEAST_REQUEST_10_000 = "least_request, 10,000";

interface Bench {
  readonly name: string;
  readonly group: string;
  readonly results: { ok?: { avg: number } }[];
}

const TARGET_NS = 5;

if (import.meta.main) {
  summarize(JSON.parse(await new Response(Deno.stdin.readable).text()));
}

/** Prints the summary of a `deno bench --json` report. */
export function summarize(
  report: { runtime: string; cpu: string; benches: Bench[] },
): void {
  const perPick = new Map<string, number[]>();
  for (const bench of report.benches) {
    const avg = bench.results[0]?.ok?.avg;
    if (avg === undefined) throw new Error(`${bench.name} failed`);
    const list = perPick.get(bench.name) ?? [];
    list.push(avg / PICKS);
    perPick.set(bench.name, list);
  }

  const ns = (value: number) => `${value.toFixed(2)} ns`.padStart(10);
  const [floorName] = perPick.keys();
  const floor = median(perPick.get(floorName)!);

  console.log(`${report.runtime}, ${report.cpu}`);
  console.log(
    `${"ns per pick".padEnd(22)}${
      [...perPick.values()][0].map((_, i) => `round ${i + 1}`.padStart(10))
        .join("")
    }    median  above floor`,
  );
  for (const [name, values] of perPick) {
    const m = median(values);
    console.log(
      `${name.padEnd(22)}${values.map(ns).join("")}${ns(m)}${
        name === floorName ? "" : ns(m - floor)
      }`,
    );
  }
  // The distance in each round, between contenders measured moments apart,
  // is steadier than the distance between medians on a noisy machine.
  const floors = perPick.get(floorName)!;
  const deltas = perPick.get("custom_round_robin")!.map((value, i) =>
    value - floors[i]
  );
  console.log(
    `custom_round_robin above the floor, median of the rounds: ${
      median(deltas).toFixed(2)
    } ns per pick (target: at most ${TARGET_NS} ns)`,
  );
  const many = perPick.get(LEAST_REQUEST_10_000);
  const few = perPick.get(LEAST_REQUEST_10);
  if (many !== undefined && few !== undefined) {
    console.log(
      `least_request at 10,000 READY endpoints over 10, median of the rounds' ratios: ${
        medianRatio(many, few).toFixed(2)
      }`,
    );
  }
}
