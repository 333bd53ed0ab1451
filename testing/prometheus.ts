/**
 * A real Prometheus (Debian's `prometheus`) on loopback, scraping one
 * target every second, asked PromQL questions over its HTTP API.
 *
 * @module
 */
import { notInstalled } from "./installed.ts";
import { freePort } from "./ports.ts";
import { kill } from "./processes.ts";
import { until } from "./wait.ts";

/** Why no Prometheus can be started here, or `null` if one can. */
export function prometheusUnavailable(): Promise<string | null> {
  return notInstalled(
    "prometheus",
    ["--version"],
    "prometheus (Debian's prometheus) is not installed",
  );
}

/** One series of an instant query: its labels and value. */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One series of a range query: its labels and `[seconds, value]` points. */
export interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly points: readonly (readonly [number, number])[];
}

/** A running Prometheus. */
export interface Prometheus {
  /** The answer to an instant query. */
  query(promql: string): Promise<Sample[]>;
  /** The answer to a range query over `[start, end]` (Unix seconds). */
  queryRange(
    promql: string,
    start: number,
    end: number,
    stepSeconds: number,
  ): Promise<Series[]>;
}

/**
 * Runs `body` with a Prometheus that scrapes `target` (`host:port`, path
 * `/metrics`) every second; stops it and removes its data afterwards, also
 * when `body` fails. Resolves once the first scrape has succeeded.
 */
export async function withPrometheus<T>(
  target: string,
  body: (prometheus: Prometheus) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "prometheus-" });
  const config = `${dir}/prometheus.yml`;
  await Deno.writeTextFile(
    config,
    `global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: client
    static_configs: [{targets: ["${target}"]}]
`,
  );
  const listen = `127.0.0.1:${freePort()}`;
  const child = new Deno.Command("prometheus", {
    args: [
      `--config.file=${config}`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=${listen}`,
      "--log.level=error",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const prometheus = client(`http://${listen}`);
    await until(
      "Prometheus's first scrape",
      async () =>
        (await prometheus.query("up == 1").catch(() => [])).length > 0,
      30_000,
    );
    return await body(prometheus);
  } finally {
    kill(child, "SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

function client(base: string): Prometheus {
  const ask = async (path: string, params: Record<string, string>) => {
    const response = await fetch(
      `${base}/api/v1/${path}?${new URLSearchParams(params)}`,
    );
    const body = await response.json();
    if (body.status !== "success") {
      throw new Error(`Prometheus ${path}: ${body.error ?? response.status}`);
    }
    return body.data.result as {
      metric: Record<string, string>;
      value?: [number, string];
      values?: [number, string][];
    }[];
  };
  return {
    async query(promql) {
      return (await ask("query", { query: promql })).map((series) => ({
        labels: series.metric,
        value: Number(series.value![1]),
      }));
    },
    async queryRange(promql, start, end, stepSeconds) {
      const result = await ask("query_range", {
        query: promql,
        start: String(start),
        end: String(end),
        step: String(stepSeconds),
      });
      return result.map((series) => ({
        labels: series.metric,
        points: series.values!.map(([t, v]) => [t, Number(v)] as const),
      }));
    },
  };
}
