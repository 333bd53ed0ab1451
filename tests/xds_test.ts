/**
 * A control plane chooses the policy (gRFC A52): real echo servers, the test
 * fixture ADS server of testing/ads_server.ts, and channels to
 * `xds:///echo` through `@grpc/grpc-js-xds`. The client task reads its
 * bootstrap from GRPC_XDS_BOOTSTRAP_CONFIG, as a user's would; the channels
 * in the test get theirs by grpc-js-xds's test-only channel option, so that
 * each test has a control plane of its own.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  LEAST_REQUEST,
  registerCustomRoundRobin,
  registerLeastRequest,
  registerXds,
} from "../balancer/mod.ts";
import {
  EchoClient,
  type EchoServer,
  type EchoServerOptions,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { AdsServer, TYPE } from "../testing/ads_server.ts";
import * as xds from "../testing/xds_resources.ts";
import { ANY_PORT } from "../testing/ports.ts";
import { assertRatioProved, runTask } from "../testing/processes.ts";
import { repeated, sequence, unary, untilPattern } from "../testing/rpcs.ts";
import {
  failures,
  type Load,
  type Sent,
  startLoad,
} from "../testing/steady_load.ts";
import { logged, until } from "../testing/wait.ts";
import { LEAVES_XDS_CLIENT } from "../testing/sanitizers.ts";
import { withoutDeprecationWarnings } from "../cli/main.ts";

registerCustomRoundRobin();
registerLeastRequest();
await withoutDeprecationWarnings(registerXds);

/** grpc-js-xds's per-channel bootstrap, for tests only. */
const BOOTSTRAP_OPTION =
  "grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config";

const CLUSTER = "echo-cluster";

/** Echo servers, a control plane serving `echo` over them, and channels. */
interface Mesh {
  readonly servers: EchoServer[];
  readonly addresses: string[];
  readonly ads: AdsServer;
  /** Sets the cluster's policies. */
  policies(policies: readonly xds.Policy[]): void;
  /** Sets the endpoints, by priority. */
  endpoints(priorities: readonly (readonly (string | xds.Endpoint)[])[]): void;
  /** A new channel to `xds:///echo`, closed with the mesh. */
  channel(): EchoClient;
  /** A load on a channel of its own, stopped with the mesh. */
  load(): Load;
  close(): Promise<void>;
}

/**
 * `count` echo servers and a control plane whose cluster has `policies`
 * and the first two servers as its endpoints.
 */
async function mesh(
  policies: readonly xds.Policy[],
  count = 2,
  options: (i: number) => EchoServerOptions = () => ({}),
): Promise<Mesh> {
  const servers: EchoServer[] = [];
  for (let i = 0; i < count; i++) {
    servers.push(await startEchoServer(ANY_PORT, options(i)));
  }
  const addresses = servers.map(({ address }) => address);
  const ads = new AdsServer();
  await ads.start();
  const channels: EchoClient[] = [];
  const loads: Load[] = [];
  const m: Mesh = {
    servers,
    addresses,
    ads,
    policies: (list) => ads.set(CLUSTER, xds.cluster(CLUSTER, list)),
    endpoints: (list) => ads.set(CLUSTER, xds.endpoints(CLUSTER, list)),
    channel() {
      const client = new EchoClient(
        "xds:///echo",
        grpc.credentials.createInsecure(),
        { [BOOTSTRAP_OPTION]: ads.bootstrap() },
      );
      channels.push(client);
      return client;
    },
    load() {
      const load = startLoad(m.channel());
      loads.push(load);
      return load;
    },
    async close() {
      // Stopped first: on a closed channel its RPCs would fail at once, and
      // in a loop that leaves timers no turn.
      await Promise.all(loads.map((load) => load.stop()));
      for (const client of channels) client.close();
      ads.stop();
      await stopEchoServers(servers, { drainMs: 0 });
    },
  };
  ads.set("echo", xds.listener("echo", CLUSTER));
  m.policies(policies);
  m.endpoints([addresses.slice(0, 2)]);
  return m;
}

/** Waits for a reply to the cluster's current version; returns it. */
async function untilReply(ads: AdsServer) {
  const version = ads.version(TYPE.cluster);
  const reply = () =>
    ads.replies.findLast((r) =>
      r.typeUrl === TYPE.cluster &&
      (r.version === version || r.error !== null)
    );
  await until("the cluster answered", () => reply() !== undefined);
  return reply()!;
}

/** Asserts that `load` failed none of its RPCs, and stops it. */
async function assertNoneFailed(load: Load): Promise<void> {
  const sent = await load.stop();
  assert.ok(sent.length > 0, "no RPC sent");
  assert.deepEqual(failures(sent), [], `of ${sent.length} RPCs`);
}

/**
 * Waits until 6 RPCs in a row alternate between `a` and `b`, as
 * round_robin's, or custom_round_robin's with chooseSecond 2, do.
 */
async function untilAlternating(client: EchoClient, a: string, b: string) {
  await until("alternation", async () => {
    const served = await sequence(6, () => unary(client));
    return served.every((server, i) =>
      [a, b].includes(server) && (i === 0 || server !== served[i - 1])
    );
  });
}

/**
 * A mesh of `count` servers under `policies`, and a load on a channel of
 * its own: once `client` shows the 1:2 pattern over the first two, runs
 * `body`, then asserts that the load failed no RPC.
 */
async function underLoad(
  policies: readonly xds.Policy[],
  body: (m: Mesh, client: EchoClient) => Promise<void>,
  count = 2,
): Promise<void> {
  const m = await mesh(policies, count);
  try {
    const client = m.channel();
    const load = m.load();
    await untilPattern(client, m.addresses[0], m.addresses[1]);
    await body(m, client);
    await assertNoneFailed(load);
  } finally {
    await m.close();
  }
}

Deno.test("xds: the client task proves 1:2 through xds:///echo, and counts RPCs on both, its bootstrap in GRPC_XDS_BOOTSTRAP_CONFIG; every resource ACKed", async () => {
  const m = await mesh([xds.customRoundRobin(3)]);
  try {
    const client = await runTask(
      ["client", "--target", "xds:///echo", "--quiet"],
      { GRPC_XDS_BOOTSTRAP_CONFIG: m.ads.bootstrap() },
    );
    assertRatioProved(client);
    assert.deepEqual(client.stderr, []);
    assert.deepEqual(
      m.ads.replies.map(({ typeUrl, error }) => [typeUrl, error]),
      [TYPE.listener, TYPE.cluster, TYPE.endpoints].map((t) => [t, null]),
    );
    const counted = await runTask(
      ["client", "--target", "xds:///echo", "--count", "30", "--quiet"],
      { GRPC_XDS_BOOTSTRAP_CONFIG: m.ads.bootstrap() },
    );
    assert.equal(counted.code, 0, counted.stderr.join("\n"));
    // Before the second is READY the first takes every RPC, so the split
    // is 1:2 only once both serve; each serves some, and none fails.
    assert.equal(counted.stdout.at(-1), "failed: 0 of 30 RPCs");
    for (const address of m.addresses) {
      assert.ok(
        counted.stdout.some((line) =>
          new RegExp(`^${address}: [1-9]\\d* RPCs$`).test(line)
        ),
        counted.stdout.join("\n"),
      );
    }
  } finally {
    await m.close();
  }
});

Deno.test(
  "xds: A52's fallback: an unknown policy first, ours second, is ours and ACKed; a list of none known is NACKed and the client keeps what it had, 0 failed",
  LEAVES_XDS_CLIENT,
  () => {
    const unknown = xds.typedStructPolicy("no_such_policy", { x: 1 });
    return underLoad([unknown, xds.customRoundRobin(3)], async (m, client) => {
      assert.equal((await untilReply(m.ads)).error, null);
      m.policies([unknown]);
      const nack = await untilReply(m.ads);
      assert.match(nack.error ?? "", /No registered LB policy found in list/);
      await untilPattern(client, m.addresses[0], m.addresses[1]);
    });
  },
);

for (
  const [bad, message] of [[3.5, "3.5"], ["x", '"x"'], [-1, "-1"]] as const
) {
  Deno.test(
    `xds: chooseSecond ${message} is NACKed in the policy's words, and RPCs go on under the previous config, 0 failed`,
    LEAVES_XDS_CLIENT,
    () =>
      underLoad([xds.customRoundRobin(3)], async (m, client) => {
        m.policies([xds.customRoundRobin(bad)]);
        const nack = await untilReply(m.ads);
        assert.match(
          nack.error ?? "",
          new RegExp(
            `custom_round_robin: chooseSecond must be an integer from 0 to \\d+, got ${
              message.replace(".", "\\.")
            }`,
          ),
        );
        await untilPattern(client, m.addresses[0], m.addresses[1]);
      }),
  );
}

Deno.test(
  "xds: the cluster's policy switched under load, to round_robin and back: the pattern follows, 0 failed",
  LEAVES_XDS_CLIENT,
  () =>
    underLoad([xds.customRoundRobin(3)], async (m, client) => {
      const [first, second] = m.addresses;
      m.policies([xds.roundRobin()]);
      await untilAlternating(client, first, second);
      m.policies([xds.customRoundRobin(3)]);
      await untilPattern(client, first, second);
    }),
);

/** The share of `sent[from..]` that `server` answered. */
function shareFrom(sent: readonly Sent[], from: number, server: string) {
  const window = sent.slice(from);
  return window.filter((rpc) => rpc.server === server).length / window.length;
}

Deno.test(
  "xds: the control plane switches the cluster from round_robin to least_request (a TypedStruct) under load: ACKed, a slow backend's share falls, 0 failed",
  LEAVES_XDS_CLIENT,
  async () => {
    // Three backends, the third 10 times slower.
    const m = await mesh(
      [xds.roundRobin()],
      3,
      (i) => ({ delayMs: i === 2 ? 20 : 2 }),
    );
    const slow = m.addresses[2];
    m.endpoints([m.addresses]);
    const channel = m.channel();
    const load = startLoad(channel, 16);
    try {
      await until(
        "all three serve",
        () =>
          m.addresses.every((address) =>
            load.sent.some((rpc) => rpc.server === address)
          ),
        10_000,
      );
      let from = load.sent.length;
      await until("500 RPCs", () => load.sent.length >= from + 500, 30_000);
      const before = shareFrom(load.sent, from, slow);
      m.policies([xds.typedStructPolicy(LEAST_REQUEST, { choiceCount: 2 })]);
      assert.equal((await untilReply(m.ads)).error, null, "ACKed");
      // The new policy's children connect before it takes over: 200 RPCs
      // for the switch, then the 500 measured.
      const switched = load.sent.length + 200;
      await until("the switch", () => load.sent.length >= switched, 30_000);
      from = load.sent.length;
      await until("500 RPCs", () => load.sent.length >= from + 500, 30_000);
      const after = shareFrom(load.sent, from, slow);
      console.log(
        `the slow backend's share of 500 RPCs at concurrency 16: round_robin ${
          before.toFixed(3)
        }, then least_request ${after.toFixed(3)}`,
      );
      assert.ok(before > 0.3, `round_robin ${before}`);
      assert.ok(after < before * 2 / 3, `least_request ${after}`);
    } finally {
      await assertNoneFailed(load);
      await m.close();
    }
  },
);

Deno.test(
  "xds: EDS replaces the second endpoint under load: 0 failed, and the new one serves",
  LEAVES_XDS_CLIENT,
  () =>
    underLoad([xds.customRoundRobin(3)], async (m, client) => {
      const [first, , third] = m.addresses;
      m.endpoints([[first, third]]);
      await untilPattern(client, first, third);
    }, 3),
);

Deno.test(
  "xds: EDS health: an UNHEALTHY or DRAINING endpoint gets no RPCs; one of two left is refused in the policy's words",
  LEAVES_XDS_CLIENT,
  async () => {
    const m = await mesh([xds.customRoundRobin(3)], 3);
    try {
      const client = m.channel();
      const [first, second, third] = m.addresses;
      m.endpoints([[first, { address: second, health: "UNHEALTHY" }, third]]);
      await untilPattern(client, first, third);
      m.endpoints([[first, second, { address: third, health: "DRAINING" }]]);
      await untilPattern(client, first, second);
      await logged(async (lines) => {
        m.endpoints([[first, { address: second, health: "DRAINING" }]]);
        await until(
          "the policy's refusal",
          () =>
            lines.some((line) =>
              line.includes("expected exactly 2 endpoints, got 1")
            ),
        );
      });
      // Refused: the policy keeps the two it had.
      await untilPattern(client, first, second);
    } finally {
      await m.close();
    }
  },
);

Deno.test(
  "xds: the control plane stops: RPCs go on with the last resources, 0 failed; back with a change, the change is applied",
  LEAVES_XDS_CLIENT,
  () =>
    underLoad([xds.customRoundRobin(3)], async (m, client) => {
      const [first, second] = m.addresses;
      m.ads.stop();
      await sequence(30, () => unary(client));
      m.policies([xds.customRoundRobin(2)]);
      await m.ads.start();
      // chooseSecond 2: every other RPC to the second.
      await untilAlternating(client, first, second);
    }),
);

Deno.test(
  "xds: priorities: all of priority 0 down, priority 1's two serve 1:2; priority 0 back, it serves again",
  LEAVES_XDS_CLIENT,
  async () => {
    const m = await mesh([xds.customRoundRobin(3)], 4);
    try {
      const client = m.channel();
      const [a, b, c, d] = m.addresses;
      m.endpoints([[a, b], [c, d]]);
      await untilPattern(client, a, b);
      await stopEchoServers(m.servers.slice(0, 2), { drainMs: 0 });
      // Both children of priority 0 fail to connect at once: no failover
      // timer to wait out.
      await untilPattern(client, c, d, 15_000);
      m.servers.splice(
        0,
        2,
        await startEchoServer(a),
        await startEchoServer(b),
      );
      // Back within the reconnection backoff: 1 s, then 1.6 s, jittered.
      await untilPattern(client, a, b, 15_000);
    } finally {
      await m.close();
    }
  },
);

Deno.test(
  "xds: the Cluster's outlier_detection ejects a backend that fails every RPC, under custom_round_robin: then every RPC goes to the other, 0 failed",
  LEAVES_XDS_CLIENT,
  async () => {
    const failing = { percent: 100, code: grpc.status.UNAVAILABLE };
    const m = await mesh(
      [xds.customRoundRobin(3)],
      2,
      (i) => i === 1 ? { failures: failing } : {},
    );
    try {
      m.ads.set(
        CLUSTER,
        xds.cluster(CLUSTER, [xds.customRoundRobin(3)], {
          outlier_detection: {
            interval: { seconds: 1 },
            base_ejection_time: { seconds: 30 },
            max_ejection_percent: { value: 50 },
            enforcing_success_rate: { value: 0 },
            failure_percentage_threshold: { value: 50 },
            enforcing_failure_percentage: { value: 100 },
            failure_percentage_minimum_hosts: { value: 2 },
            failure_percentage_request_volume: { value: 5 },
          },
        }),
      );
      const client = m.channel();
      const [first] = m.addresses;
      const served = () => unary(client).catch(() => "failed");
      // Ejected at the first interval with 5 RPCs on the second: about 1 s.
      await until("every RPC to the first", async () => {
        const last = await sequence(12, served);
        return last.every((server) => server === first);
      }, 10_000);
      assert.deepEqual(await sequence(30, served), repeated([first], 30));
    } finally {
      await m.close();
    }
  },
);
