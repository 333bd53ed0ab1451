/**
 * `deno task chart:metrics`: the picks per backend over a rolling restart,
 * from a real Prometheus's `query_range` answer, as a vega-lite spec on
 * standard output that `bench/chart/svg.ts` draws as SVG (the task pipes one
 * into the other, so that only the chart's own config fetches vega).
 *
 * Two echo servers, a client under load through `custom_round_robin`
 * (chooseSecond 3) with health checking and its metrics served as the
 * client program serves them, and a Prometheus scraping them every second.
 * Each server in turn drains (NOT_SERVING for a second), stops, stays down
 * for two seconds and starts again on its address.
 *
 * ```sh
 * deno task chart:metrics   # writes docs/metrics_rolling_restart.svg
 * ```
 *
 * @module
 */
import {
  type EchoServer,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { startMeteredClient } from "../testing/metered_client.ts";
import { type Series, withPrometheus } from "../testing/prometheus.ts";
import { sleep } from "../testing/wait.ts";

/** What the chart plots: picks per second per backend, over 3 s windows. */
const PROMQL = "sum by (customlb_endpoint) (rate(customlb_picks_total[3s]))";

/** Drains server `i`, stops it, and starts it again on its address. */
async function restart(servers: EchoServer[], i: number): Promise<void> {
  const { address } = servers[i];
  await stopEchoServers([servers[i]], { drainMs: 1_000 });
  await sleep(2_000);
  servers[i] = await startEchoServer(address);
}

/** The series as a vega-lite line chart's spec. */
function chartSpec(
  series: readonly Series[],
  names: ReadonlyMap<string, string>,
  start: number,
): Record<string, unknown> {
  const values = series.flatMap(({ labels, points }) =>
    points.map(([t, rate]) => ({
      seconds: t - start,
      rate,
      backend: names.get(labels.customlb_endpoint) ?? "?",
    }))
  );
  return {
    title: "custom_round_robin (chooseSecond 3): picks per backend, " +
      "each drained, stopped 2 s and restarted: first at 8 s, second at 20 s",
    width: 640,
    height: 240,
    data: { values },
    mark: { type: "line", interpolate: "step-after" },
    encoding: {
      x: { field: "seconds", type: "quantitative", title: "seconds" },
      y: { field: "rate", type: "quantitative", title: "picks per second" },
      color: { field: "backend", type: "nominal", title: "backend" },
    },
  };
}

async function main(): Promise<void> {
  const metered = await startMeteredClient("chart", 3);
  const { servers, load } = metered;
  const names = new Map(
    servers.map(({ address }, i) => [address, i === 0 ? "first" : "second"]),
  );
  try {
    const spec = await withPrometheus(metered.scraped, async (p) => {
      const start = Date.now() / 1000;
      await sleep(8_000);
      await restart(servers, 0);
      await sleep(9_000);
      await restart(servers, 1);
      await sleep(9_000);
      const end = Date.now() / 1000;
      return chartSpec(await p.queryRange(PROMQL, start, end, 1), names, start);
    });
    console.log(JSON.stringify(spec));
    const failed = load.sent.filter(({ error }) => error).length;
    console.error(`failed RPCs: ${failed}`);
  } finally {
    await metered.close();
  }
}

if (import.meta.main) await main();
