/**
 * Throughput and latency of UnaryEcho through `custom_round_robin` and the
 * layers a user puts around it, next to grpc-js's bare `round_robin` and
 * `pick_first`, and `least_request_experimental` and
 * `ring_hash_experimental` (1,000 keys in turn) over the same two servers: the two echo servers run in a separate process, and this
 * process holds one channel per contender. `custom_round_robin` alone, then
 * the layers, each row adding one to the row above: health checking,
 * `outlier_detection` above, the client's retry policy. Last,
 * `custom_round_robin` alone on server pairs of its own: one in plaintext,
 * one serving TLS with certificates made for the run, so that TLS is set
 * beside plaintext in the same setting.
 *
 * Three rounds; in each, every contender sends 10,000 RPCs at concurrency 1
 * and 25,000 at concurrency 64, the contenders taking turns, in a rotating
 * order, in slices of a tenth of that.
 * Then the time to the first successful RPC of 10 fresh channels each.
 * The table shows medians of the rounds and each figure's ratio to
 * round_robin's. The last lines give the throughput ratio of each layer to
 * round_robin, the retry policy's own cost (its contender's throughput over
 * the one below it), servers of its own against shared ones, and TLS against
 * plaintext on servers of their own.
 *
 * ```sh
 * deno task bench:rpc
 * ```
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  LEAST_REQUEST,
  ManualResolver,
  registerCustomRoundRobin,
  registerLeastRequest,
  registerRingHash,
  RING_HASH,
} from "../balancer/mod.ts";
import {
  clientServiceConfig,
  metricsChannelOptions,
  underOutlierDetection,
} from "../cli/client_config.ts";
import { serveMetrics } from "../cli/metrics.ts";
import { ECHO_SERVICE_NAME, EchoClient } from "../echo/mod.ts";
import { clientCredentials } from "../cli/tls.ts";
import { makeCerts } from "../testing/certs.ts";
import { startServerTask } from "../testing/processes.ts";
import { keyedUnary } from "../testing/rpcs.ts";
import { median, quantile } from "./stats.ts";

// Each layer row adds exactly one layer to the row above it: the policy
// alone, then health checking, then outlier_detection, then the retry policy.
const { methodConfig: RETRY, ...WITH_HEALTH } = clientServiceConfig(
  3,
  ECHO_SERVICE_NAME,
);
const { methodConfig: _retry, ...POLICY_ALONE } = clientServiceConfig(3, null);
const WITH_OUTLIER_DETECTION = underOutlierDetection(WITH_HEALTH);

/** Each contender's service config. */
const CONFIGS = {
  "round_robin": { loadBalancingConfig: [{ round_robin: {} }] },
  "pick_first": { loadBalancingConfig: [{ pick_first: {} }] },
  "least_request": { loadBalancingConfig: [{ [LEAST_REQUEST]: {} }] },
  "ring_hash": {
    loadBalancingConfig: [{ [RING_HASH]: { requestHashHeader: "x-user" } }],
  },
  "custom_round_robin": POLICY_ALONE,
  "+ health": WITH_HEALTH,
  "+ outlier_detection": WITH_OUTLIER_DETECTION,
  "+ retry": { ...WITH_OUTLIER_DETECTION, methodConfig: RETRY },
  "custom_round_robin + metrics": POLICY_ALONE,
  "custom_round_robin, own servers": POLICY_ALONE,
  "custom_round_robin, TLS": POLICY_ALONE,
} as const;
type Policy = keyof typeof CONFIGS;
const POLICIES = Object.keys(CONFIGS) as Policy[];
const LAYERS: Policy[] = [
  "custom_round_robin",
  "+ health",
  "+ outlier_detection",
];
const RUNS = [
  { concurrency: 1, rpcs: 10_000 },
  { concurrency: 64, rpcs: 25_000 },
] as const;
const ROUNDS = 3;
/** Each policy's RPCs of a round, in turns of this many slices. */
const SLICES = 10;
const FRESH_CHANNELS = 10;
const WARM_UP_RPCS = 2_000;

/** What one run of one policy measured. */
interface Measured {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

function unary(client: EchoClient): Promise<void> {
  return keyedUnary(client, "bench");
}

/** RPCs sent in slices: the total time and every latency, in milliseconds. */
class Sample {
  ms = 0;
  readonly latencies: number[] = [];

  /** Sends `rpcs` RPCs, `concurrency` at a time, and adds them. */
  async send(client: EchoClient, concurrency: number, rpcs: number) {
    let sent = 0;
    const worker = async () => {
      while (sent < rpcs) {
        sent++;
        const start = performance.now();
        await unary(client);
        this.latencies.push(performance.now() - start);
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    this.ms += performance.now() - start;
  }

  measured(): Measured {
    return {
      rps: this.latencies.length / (this.ms / 1000),
      p50: quantile(this.latencies, 0.5),
      p99: quantile(this.latencies, 0.99),
    };
  }
}

/** The resolver scheme of a contender's channels. */
function scheme(policy: Policy): string {
  return `bench-${POLICIES.indexOf(policy)}`;
}

const TLS: Policy = "custom_round_robin, TLS";
/**
 * Plaintext, with a server pair of its own as the TLS contender has: the
 * pair TLS is set beside.
 */
const OWN: Policy = "custom_round_robin, own servers";
/**
 * The policy alone with an OpenTelemetry SDK and a Prometheus reader
 * installed, scraped every second, and the call-duration interceptor: its
 * channel is the only one made after the SDK is installed, so the others'
 * policies meter nothing.
 */
const METRICS: Policy = "custom_round_robin + metrics";

/**
 * A manual resolver per contender, handing out `plain`, or `own` and `tls`
 * to the contenders with servers of their own.
 */
function registerResolvers(
  plain: readonly string[],
  own: readonly string[],
  tls: readonly string[],
): void {
  for (const policy of POLICIES) {
    new ManualResolver(scheme(policy), {
      endpoints: policy === TLS ? tls : policy === OWN ? own : plain,
      serviceConfig: CONFIGS[policy],
    }).register();
  }
}

function channel(policy: Policy): EchoClient {
  const target = `${scheme(policy)}:///echo`;
  return new EchoClient(
    target,
    policy === TLS
      ? clientCredentials({ ca: certs.ca })
      : grpc.credentials.createInsecure(),
    metricsChannelOptions(target, policy === METRICS),
  );
}

/** Milliseconds from creating a channel to its first successful RPC. */
async function firstRpcMs(policy: Policy): Promise<number> {
  const start = performance.now();
  const client = channel(policy);
  try {
    await unary(client);
    return performance.now() - start;
  } finally {
    client.close();
  }
}

/** `policies` rotated left by `by`, so each takes each turn in order. */
function rotated<T>(list: readonly T[], by: number): T[] {
  return list.map((_, i) => list[(i + by) % list.length]);
}

// Both pairs by name, as TLS verifies names: the same addresses either way.
const certs = await makeCerts();
const servers = await startServerTask(["localhost:0", "localhost:0"]);
const ownServers = await startServerTask(["localhost:0", "localhost:0"]);
const tlsServers = await startServerTask(["localhost:0", "localhost:0"], [
  "--tls-cert",
  certs.server.cert,
  "--tls-key",
  certs.server.key,
]);
registerCustomRoundRobin();
registerLeastRequest();
registerRingHash();
registerResolvers(
  servers.addresses,
  ownServers.addresses,
  tlsServers.addresses,
);
const clients = new Map<Policy, EchoClient>(
  POLICIES.filter((policy) => policy !== METRICS)
    .map((policy) => [policy, channel(policy)]),
);
let metrics = null;
let scrapes: ReturnType<typeof setInterval> | undefined;
try {
  // Every policy but one starts, in its warm-up, before the SDK is there.
  for (const client of clients.values()) {
    await new Sample().send(client, 8, WARM_UP_RPCS);
  }
  metrics = await serveMetrics({ port: 0, host: "127.0.0.1" });
  const url = metrics.url;
  scrapes = setInterval(() => fetch(url).then((r) => r.text()), 1000);
  clients.set(METRICS, channel(METRICS));
  await new Sample().send(clients.get(METRICS)!, 8, WARM_UP_RPCS);

  const measured = new Map<string, Measured[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const { concurrency, rpcs } of RUNS) {
      // The policies take turns in slices, so that a slow moment of this
      // shared machine falls on all of them alike.
      const samples = new Map(POLICIES.map((policy) => [policy, new Sample()]));
      for (let slice = 0; slice < SLICES; slice++) {
        for (const policy of rotated(POLICIES, slice)) {
          await samples.get(policy)!.send(
            clients.get(policy)!,
            concurrency,
            rpcs / SLICES,
          );
        }
      }
      for (const [policy, sample] of samples) {
        const key = `${policy} c=${concurrency}`;
        measured.set(key, [...measured.get(key) ?? [], sample.measured()]);
      }
    }
    console.error(`round ${round} of ${ROUNDS} done`);
  }

  const firstRpc = new Map<Policy, number[]>();
  for (let i = 0; i < FRESH_CHANNELS; i++) {
    for (const policy of rotated(POLICIES, i)) {
      firstRpc.set(policy, [
        ...firstRpc.get(policy) ?? [],
        await firstRpcMs(policy),
      ]);
    }
  }

  const at = (policy: Policy, concurrency: number) => {
    const results = measured.get(`${policy} c=${concurrency}`)!;
    return {
      rps: median(results.map((r) => r.rps)),
      p50: median(results.map((r) => r.p50)),
      p99: median(results.map((r) => r.p99)),
    };
  };
  const fmt = (value: number, digits: number, width: number) =>
    value.toFixed(digits).padStart(width);
  const rows: string[] = [];
  const header = `${"policy".padEnd(33)}${"c".padStart(4)}${
    "RPC/s".padStart(9)
  }${"p50 ms".padStart(8)}${"p99 ms".padStart(8)}${
    "first RPC ms".padStart(14)
  }   ratio to round_robin: RPC/s, p50, p99, first RPC`;
  for (const { concurrency } of RUNS) {
    const base = at("round_robin", concurrency);
    const baseFirst = median(firstRpc.get("round_robin")!);
    for (const policy of POLICIES) {
      const m = at(policy, concurrency);
      const first = median(firstRpc.get(policy)!);
      rows.push(
        `${policy.padEnd(33)}${String(concurrency).padStart(4)}${
          fmt(m.rps, 0, 9)
        }${fmt(m.p50, 3, 8)}${fmt(m.p99, 3, 8)}${fmt(first, 1, 14)}   ${
          [
            m.rps / base.rps,
            m.p50 / base.p50,
            m.p99 / base.p99,
            first / baseFirst,
          ]
            .map((ratio) => ratio.toFixed(2)).join(", ")
        }`,
      );
    }
  }
  console.log(
    `${Deno.version.deno} on ${Deno.build.target}, ${navigator.hardwareConcurrency} cores; medians of ${ROUNDS} rounds (first RPC: of ${FRESH_CHANNELS} channels)`,
  );
  console.log(header);
  for (const row of rows) console.log(row);
  const ratio = (policy: Policy, base: Policy, concurrency: number) =>
    (at(policy, concurrency).rps / at(base, concurrency).rps).toFixed(2);
  const both = (policy: Policy, base: Policy) =>
    `${ratio(policy, base, 1)} (c=1), ${ratio(policy, base, 64)} (c=64)`;
  console.log(
    `+ metrics/custom_round_robin throughput: ${
      both(METRICS, "custom_round_robin")
    }`,
  );
  for (const layer of LAYERS) {
    console.log(
      `${layer}/round_robin throughput: ${both(layer, "round_robin")}`,
    );
  }
  console.log(
    `the retry policy's own cost, + retry/+ outlier_detection throughput: ${
      both("+ retry", "+ outlier_detection")
    }`,
  );
  console.log(
    `servers of its own/shared servers, custom_round_robin throughput: ${
      both(OWN, "custom_round_robin")
    }`,
  );
  for (const { concurrency } of RUNS) {
    const tls = at(TLS, concurrency);
    const plain = at(OWN, concurrency);
    console.log(
      `TLS/plaintext, custom_round_robin, servers of their own, c=${concurrency}: RPC/s ${
        (tls.rps / plain.rps).toFixed(2)
      }, p99 ${(tls.p99 / plain.p99).toFixed(2)}, first RPC ${
        (median(firstRpc.get(TLS)!) /
          median(firstRpc.get(OWN)!)).toFixed(2)
      }`,
    );
  }
} finally {
  clearInterval(scrapes);
  await metrics?.stop();
  await servers.stop();
  await ownServers.stop();
  await tlsServers.stop();
  await certs.remove();
  // Closed after the servers stop, as clients outlive a rolled-out backend;
  // on Deno 2.9.4 to 2.9.6 the other order can crash the server
  // (docs/known_issues.md).
  for (const client of clients.values()) client.close();
}
