/**
 * A vega-lite spec read from standard input, written to standard output as
 * SVG, with no browser. The charting library has a config and a lockfile of
 * its own, so that only the chart tasks fetch it.
 *
 * ```sh
 * echo '{"data":{"values":[{"x":1}]},"mark":"point"}' |
 *   deno run -q -c bench/chart/deno.json bench/chart/svg.ts > chart.svg
 * ```
 *
 * @module
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), {
    renderer: "none",
  });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

if (import.meta.main) {
  const spec = JSON.parse(await new Response(Deno.stdin.readable).text());
  console.log(await toSvg(spec));
}
