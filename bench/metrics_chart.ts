/**
 * `deno task chart:metrics`: the picks per backend over a rolling restart,
 * drawn from a real Prometheus's `query_range` answer as an SVG chart by
 * vega-lite, with no browser.
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
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import {
  type EchoServer,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { startMeteredClient } from "../testing/metered_client.ts";
import { type Series, withPrometheus } from "../testing/prometheus.ts";
import { sleep } from "../testing/wait.ts";

const OUT = new URL("../docs/metrics_rolling_restart.svg", import.meta.url);
/** What the chart plots: picks per second per backend, over 3 s windows. */
const PROMQL = "sum by (customlb_endpoint) (rate(customlb_picks_total[3s]))";

/** Drains server `i`, stops it, and starts it again on its address. */
async function restart(servers: EchoServer[], i: number): Promise<void> {
  const { address } = servers[i];
  await stopEchoServers([servers[i]], { drainMs: 1_000 });
  await sleep(2_000);
  servers[i] = await startEchoServer(address);
}

/** The series as a vega-lite line chart, rendered to SVG. */
async function render(
  series: readonly Series[],
  names: ReadonlyMap<string, string>,
  start: number,
): Promise<string> {
  const values = series.flatMap(({ labels, points }) =>
    points.map(([t, rate]) => ({
      seconds: t - start,
      rate,
      backend: names.get(labels.customlb_endpoint) ?? "?",
    }))
  );
  const spec: TopLevelSpec = {
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
  const view = new vega.View(vega.parse(compile(spec).spec), {
    renderer: "none",
  });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

async function main(): Promise<void> {
  const metered = await startMeteredClient("chart", 3);
  const { servers, load } = metered;
  const names = new Map(
    servers.map(({ address }, i) => [address, i === 0 ? "first" : "second"]),
  );
  try {
    const svg = await withPrometheus(metered.scraped, async (p) => {
      const start = Date.now() / 1000;
      await sleep(8_000);
      await restart(servers, 0);
      await sleep(9_000);
      await restart(servers, 1);
      await sleep(9_000);
      const end = Date.now() / 1000;
      return render(await p.queryRange(PROMQL, start, end, 1), names, start);
    });
    await Deno.writeTextFile(OUT, svg + "\n");
    const failed = load.sent.filter(({ error }) => error).length;
    console.log(`${OUT.pathname}: written; failed RPCs: ${failed}`);
  } finally {
    await metered.close();
  }
}

if (import.meta.main) await main();
