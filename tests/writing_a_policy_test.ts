/**
 * The policy in docs/writing_a_policy.md, run as written against real
 * servers: proof that the exported building blocks are enough to write one.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { CLIENT_CHANNEL_OPTIONS } from "../cli/client_config.ts";
import {
  type EchoHandlers,
  echoHandlers,
  type EchoServer,
  echoService,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { connect } from "../testing/channels.ts";
import { failures, startLoad, untilSent } from "../testing/steady_load.ts";
import { listen } from "../testing/ports.ts";
import { untilServes } from "../testing/rpcs.ts";
import { endpoint, FakeHelper, pickOne, tick } from "../testing/fakes.ts";
import type { leastRequest } from "../balancer/least_request.ts";
import { checkServiceConfig } from "../balancer/service_config.ts";

/** The doc's policy module: its first TypeScript block, imported as is. */
async function docPolicy(): Promise<
  { leastInFlight: { register(): void } }
> {
  const doc = await Deno.readTextFile(
    new URL("../docs/writing_a_policy.md", import.meta.url),
  );
  const code = doc.match(/```ts\n([\s\S]*?)```/)?.[1];
  assert.ok(code, "a ts block in docs/writing_a_policy.md");
  return await import(
    `data:application/typescript,${encodeURIComponent(code)}`
  );
}

/** An echo server whose UnaryEcho answers only after `ms`. */
async function slowServer(ms: number): Promise<EchoServer> {
  const server = new grpc.Server();
  const address = await listen(server);
  const handlers = echoHandlers(address);
  const delayed: EchoHandlers = {
    ...handlers,
    UnaryEcho: (call, callback) =>
      setTimeout(() => handlers.UnaryEcho(call, callback), ms),
  };
  server.addService(echoService, delayed);
  const health = new HealthImplementation({ "": "SERVING" });
  health.addToServer(server);
  return { address, server, health };
}

const config = (health: boolean) => ({
  loadBalancingConfig: [{ least_in_flight: {} }],
  ...(health ? { healthCheckConfig: { serviceName: "" } } : {}),
});

for (const health of [false, true]) {
  Deno.test(
    `writing a policy: the doc's least_in_flight ${
      health ? "with" : "without"
    } health checking sends most RPCs to the fast backend, none fails`,
    async () => {
      (await docPolicy()).leastInFlight.register();
      // The slow one answers in 200 ms, so it holds one RPC most of the time;
      // the fast one answers at once and is picked whenever it holds fewer.
      // Round robin would send every other RPC to the slow one.
      const slow = await slowServer(200);
      const fast = await startEchoServer("127.0.0.1:0");
      const { client } = connect(
        [slow.address, fast.address],
        config(health),
        CLIENT_CHANNEL_OPTIONS,
      );
      try {
        await untilServes(client, fast.address);
        const load = startLoad(client, 4);
        await untilSent(load, 4000);
        const sent = await load.stop();
        assert.deepEqual(failures(sent), []);
        const onSlow = sent.filter((rpc) => rpc.server === slow.address).length;
        console.log(
          `${onSlow} of ${sent.length} RPCs on the backend that takes 200 ms`,
        );
        assert.ok(onSlow > 0, "the slow backend is still used");
        assert.ok(onSlow < sent.length / 20, `${onSlow} of ${sent.length}`);
      } finally {
        client.close();
        await stopEchoServers([slow, fast], { drainMs: 0, graceMs: 1000 });
      }
    },
  );
}

Deno.test("writing a policy: the doc's maxInFlight reaches the picker, and a bad one is the error the doc quotes", async () => {
  const { leastInFlight } = await docPolicy() as unknown as {
    leastInFlight: typeof leastRequest;
  };
  leastInFlight.register();
  assert.throws(
    () =>
      checkServiceConfig({
        loadBalancingConfig: [{ least_in_flight: { maxInFlight: -1 } }],
      }),
    (error: Error) => {
      const doc =
        "least_in_flight: maxInFlight must be an integer of at least 0, got -1";
      assert.equal(error.message, doc);
      return true;
    },
  );
  const helper = new FakeHelper();
  const policy = new leastInFlight.LoadBalancer(helper);
  policy.updateAddressList(
    grpc.experimental.statusOrFromValue([endpoint(1)]),
    grpc.experimental.parseLoadBalancingConfig({
      least_in_flight: { maxInFlight: 1 },
    }),
    {},
    "",
  );
  await tick();
  helper.subchannel(1).setState(grpc.connectivityState.CONNECTING);
  helper.subchannel(1).setState(grpc.connectivityState.READY);
  await tick();
  const first = pickOne(helper.latest.picker);
  assert.equal(first.pickResultType, grpc.experimental.PickResultType.COMPLETE);
  first.onCallStarted?.();
  const second = pickOne(helper.latest.picker);
  assert.equal(second.pickResultType, grpc.experimental.PickResultType.DROP);
  assert.equal(second.status?.code, grpc.status.UNAVAILABLE);
  first.onCallEnded?.(grpc.status.OK, "", new grpc.Metadata());
  assert.equal(
    pickOne(helper.latest.picker).pickResultType,
    grpc.experimental.PickResultType.COMPLETE,
  );
  policy.destroy();
});
