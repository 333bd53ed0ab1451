/**
 * The metrics end to end: a client under load, through `custom_round_robin`
 * with health checking, serving its metrics as the programs do, scraped
 * every second by a real Prometheus, which PromQL questions then ask.
 */
import assert from "node:assert/strict";
import { setServing, startEchoServer } from "../echo/mod.ts";
import { startMeteredClient } from "../testing/metered_client.ts";
import {
  type Prometheus,
  prometheusUnavailable,
  withPrometheus,
} from "../testing/prometheus.ts";
import { sleep } from "../testing/wait.ts";

const reason = await prometheusUnavailable();
if (reason !== null) console.log(`Prometheus test skipped: ${reason}`);

const CHOOSE_SECOND = 3;

/**
 * The value of `promql`, summed over its series, once `holds` takes it;
 * fails after `ms`. Prometheus scrapes every second and the client's
 * reconnect backoff is at most 1 s, so every wait is a few seconds.
 */
async function once(
  prometheus: Prometheus,
  promql: string,
  holds: (value: number) => boolean,
  ms = 15_000,
): Promise<number> {
  const end = performance.now() + ms;
  let value = NaN;
  while (performance.now() < end) {
    const samples = await prometheus.query(promql);
    value = samples.reduce((sum, { value }) => sum + value, 0);
    if (samples.length > 0 && holds(value)) return value;
    await sleep(250);
  }
  assert.fail(`${promql}: ${value} after ${ms} ms`);
}

/**
 * docs/metrics.md's PromQL, each fenced `promql` block's queries as written
 * (a line that starts indented continues the one before), with the ports of
 * the page's servers, 50050 and 50051, made those of `servers`.
 */
async function documentedQueries(
  servers: readonly string[],
): Promise<string[]> {
  const page = await Deno.readTextFile(
    new URL("../docs/metrics.md", import.meta.url),
  );
  const blocks = [...page.matchAll(/```promql\n([\s\S]*?)```/g)];
  assert.ok(blocks.length > 0, "promql blocks in docs/metrics.md");
  const ports = (query: string) =>
    servers.reduce(
      (text, address, i) =>
        text.replaceAll(`:${50050 + i}"`, `:${address.split(":").pop()}"`),
      query,
    );
  return blocks.flatMap(([, block]) =>
    block.replace(/\n\s+/g, " ").trim().split("\n").map(ports)
  );
}

/** Asks each query of `unanswered`, and forgets those with an answer. */
async function ask(prometheus: Prometheus, unanswered: Set<string>) {
  for (const query of unanswered) {
    if ((await prometheus.query(query)).length > 0) unanswered.delete(query);
  }
}

/** The picks the second endpoint (`address`) has had, as last scraped. */
function picksOf(prometheus: Prometheus, address: string): Promise<number> {
  return once(
    prometheus,
    `customlb_picks_total{customlb_endpoint="${address}"}`,
    () => true,
  );
}

Deno.test({
  name:
    "metrics: a client under load, scraped by a real Prometheus every second, shows through PromQL the 1:3 split, a health change and a disconnection",
  ignore: reason !== null,
}, async (t) => {
  const metered = await startMeteredClient("metrics", CHOOSE_SECOND);
  const { servers, target } = metered;
  const [first, second] = servers.map(({ address }) => address);
  // Each has an answer at some moment: under load, while a backend is
  // unhealthy, while one is down, or after.
  const unanswered = new Set(await documentedQueries([first, second]));
  try {
    await withPrometheus(metered.scraped, async (prometheus) => {
      await t.step(
        "the second backend's share of picks is 1/chooseSecond",
        async () => {
          await once(prometheus, "sum(customlb_picks_total)", (n) => n >= 600);
          const [picks] = await prometheus.query(
            `sum(customlb_picks_total{customlb_endpoint="${second}"}) / sum(customlb_picks_total{grpc_target="${target}"})`,
          );
          assert.ok(
            Math.abs(picks.value - 1 / CHOOSE_SECOND) < 0.01,
            `second's share ${picks.value}`,
          );
          await once(
            prometheus,
            `customlb_endpoints{customlb_state="READY",customlb_policy="custom_round_robin"}`,
            (n) => n === 2,
          );
          await ask(prometheus, unanswered);
        },
      );

      await t.step(
        "a backend set NOT_SERVING shows as a health change, and its picks stop",
        async () => {
          setServing(servers[1], false);
          await once(
            prometheus,
            `customlb_health_changes_total{customlb_address="${second}",customlb_healthy="false"}`,
            (n) => n === 1,
          );
          await once(prometheus, "customlb_health_unhealthy", (n) => n === 1);
          await ask(prometheus, unanswered);
          const before = await picksOf(prometheus, second);
          const firstBefore = await picksOf(prometheus, first);
          await sleep(2_500); // two scrapes or more
          assert.equal(await picksOf(prometheus, second), before);
          assert.ok(await picksOf(prometheus, first) > firstBefore);
          setServing(servers[1], true);
          await once(prometheus, "customlb_health_unhealthy", (n) => n === 0);
        },
      );

      await t.step(
        "a killed backend shows as a disconnection and a failed connection attempt, and back as a success",
        async () => {
          const succeeded =
            "sum(grpc_subchannel_connection_attempts_succeeded_total)";
          assert.equal(await once(prometheus, succeeded, () => true), 2);
          servers[1].server.forceShutdown();
          await once(
            prometheus,
            `grpc_subchannel_disconnections_total{grpc_target="${target}",grpc_disconnect_error="unknown"}`,
            (n) => n === 1,
          );
          await once(
            prometheus,
            "sum(grpc_subchannel_connection_attempts_failed_total)",
            (n) => n >= 1,
          );
          await once(
            prometheus,
            "grpc_subchannel_open_connections",
            (n) => n === 1,
          );
          await ask(prometheus, unanswered);
          servers[1] = await startEchoServer(second);
          await once(prometheus, succeeded, (n) => n === 3);
          await once(
            prometheus,
            "grpc_subchannel_open_connections",
            (n) => n === 2,
          );
          await ask(prometheus, unanswered);
        },
      );

      await t.step(
        "every PromQL query of docs/metrics.md, as written, had an answer",
        () => assert.deepEqual([...unanswered], []),
      );
    });
  } finally {
    await metered.close();
  }
});
