/**
 * A network partition: each backend is a test host of its own (see
 * test_hosts.ts), and one host is cut off silently, packets dropped both
 * ways with no reset, for connections that exist and for new attempts. Only
 * the client's keepalive can tell.
 *
 * Needs root and iproute2; without them the test is skipped, saying why.
 */
import assert from "node:assert/strict";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
} from "../cli/client_config.ts";
import { connect } from "../testing/channels.ts";
import { failures, startLoad, untilSent } from "../testing/steady_load.ts";
import { sleep } from "../testing/wait.ts";
import { untilPattern, untilServes } from "../testing/rpcs.ts";
import {
  assertRouteStaysHere,
  hostAddress,
  testHostsUnavailable,
  withTestHosts,
} from "../testing/test_hosts.ts";

const PORT = 50051;

/**
 * A cut is noticed when a keepalive ping goes unanswered: one is due at most
 * `keepalive_time` after the cut and fails `keepalive_timeout` later. An RPC
 * caught on the cut connection then has a retry backoff of at most 0.5 s to
 * go (client.ts); the rest is room for a busy machine.
 */
const NOTICE_MS = CLIENT_CHANNEL_OPTIONS["grpc.keepalive_time_ms"]! +
  CLIENT_CHANNEL_OPTIONS["grpc.keepalive_timeout_ms"]! + 500 + 1000;

/** How long the host stays cut off. */
const CUT_MS = 4000;

/**
 * After the heal, the reconnection attempt that began when the cut was
 * noticed is still waiting on its SYN: grpc-js sets no connect timeout, so
 * the attempt lasts as long as the kernel resends the SYN, with gaps that
 * start at 1 s and at most double. The next SYN goes out within (time since
 * the attempt began) + 1 s of the heal, so within `CUT_MS` + 1 s. Then the
 * health check's first answer, and room for a busy machine.
 */
const RECOVER_MS = CUT_MS + 1000 + 2000;

const reason = await testHostsUnavailable();
if (reason !== null) console.log(`partition test skipped: ${reason}`);

Deno.test({
  name:
    "partition: a silent cut is noticed by keepalive, no RPC fails, traffic moves; healed, the host takes its share again",
  ignore: reason !== null,
  async fn() {
    await withTestHosts(2, PORT, async ([a, b]) => {
      const { client } = connect(
        [a.target, b.target],
        clientServiceConfig(3),
        CLIENT_CHANNEL_OPTIONS,
      );
      try {
        await untilServes(client, b.target);
        const load = startLoad(client, 8);
        await untilSent(load, 500);
        await b.cut();
        const cutAt = performance.now();
        // The cut host is still reached over its own link only, and an
        // address of the range without one meets the blackhole: no route
        // names the default gateway.
        await assertRouteStaysHere(hostAddress(2), 2);
        await assertRouteStaysHere(hostAddress(9), null);
        await sleep(CUT_MS);
        const sent = await load.stop();
        assert.deepEqual(failures(sent), []);
        const stuck = Math.max(...sent.map((x) => x.ms));
        assert.ok(stuck < NOTICE_MS, `an RPC waited ${stuck} ms`);
        const later = sent.filter((x) => x.at > cutAt + NOTICE_MS);
        assert.ok(later.length > 20, `${later.length} RPCs after the notice`);
        assert.deepEqual(later.filter((x) => x.server !== a.target), []);

        await b.heal();
        const healedAt = performance.now();
        await untilServes(client, b.target, RECOVER_MS);
        const recoverMs = performance.now() - healedAt;
        await untilPattern(client, a.target, b.target);
        console.log(
          `cut for ${CUT_MS} ms: ${sent.length} RPCs, 0 failed, longest ` +
            `${stuck.toFixed(0)} ms; healed host served again after ` +
            `${recoverMs.toFixed(0)} ms`,
        );
      } finally {
        client.close();
      }
    });
  },
});
