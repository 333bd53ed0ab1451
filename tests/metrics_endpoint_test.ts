/**
 * The programs' metrics endpoint (`cli/metrics.ts`): the URL it prints for
 * each kind of host, the path it serves (a query string allowed, nothing
 * else), and the client's `--metrics-port` serving both the policy's
 * metrics and grpc-js's call durations while it runs.
 */
import assert from "node:assert/strict";
import { serveMetrics } from "../cli/metrics.ts";
import { kill, lineReader, task } from "../testing/processes.ts";
import { startServerTask } from "../testing/processes.ts";
import { until } from "../testing/wait.ts";

/** GET `url`: its status and body. */
async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

for (
  const [host, shown] of [
    ["127.0.0.1", "127.0.0.1"],
    ["::1", "[::1]"],
    ["localhost", "localhost"],
  ]
) {
  Deno.test(`metrics endpoint: on ${host}, the URL printed is http://${shown}:PORT/metrics, and it answers there`, async () => {
    const metrics = await serveMetrics({ port: 0, host });
    try {
      assert.match(
        metrics.url,
        new RegExp(`^http://${shown.replace(/[.[\]]/g, "\\$&")}:\\d+/metrics$`),
      );
      assert.equal((await get(metrics.url)).status, 200);
    } finally {
      await metrics.stop();
    }
  });
}

Deno.test("metrics endpoint: /metrics with a query string is served; other paths are 404", async () => {
  const metrics = await serveMetrics({ port: 0, host: "127.0.0.1" });
  try {
    const scrape = await get(`${metrics.url}?name[]=customlb_picks_total`);
    assert.equal(scrape.status, 200);
    assert.match(scrape.body, /^# /, "Prometheus's text format");
    const root = metrics.url.replace("/metrics", "");
    for (const path of ["/", "/metric", "/metrics/x", "/other?/metrics"]) {
      assert.equal((await get(root + path)).status, 404, path);
    }
  } finally {
    await metrics.stop();
  }
});

Deno.test("metrics endpoint: client --metrics-port serves the policy's picks and the calls' durations while it runs", async () => {
  const server = await startServerTask();
  const client = task([
    "client",
    "--addrs",
    server.addresses.join(","),
    "--metrics-port",
    "0",
    "--count",
    "1000000",
    "--rate",
    "200",
    "--quiet",
  ]).spawn();
  const stderr = lineReader(client.stderr);
  const stdout = client.stdout.cancel();
  try {
    let url: string | undefined;
    for await (const line of stderr) {
      // deno task's own line comes first.
      if (line.startsWith("Task ")) continue;
      url = line.match(/^metrics on (http:\S+)$/)?.[1];
      break;
    }
    assert.ok(url, "the URL printed");
    let body = "";
    await until("picks and call durations", async () => {
      body = (await get(url)).body;
      return body.includes("customlb_picks_total{") &&
        body.includes("grpc_client_call_duration_bucket{");
    }, 15_000);
    assert.match(body, /customlb_endpoint="127\.0\.0\.1:\d+"/);
  } finally {
    kill(client, "SIGTERM");
    await client.status;
    await stdout;
    for await (const _ of stderr);
    await server.stop();
  }
});
