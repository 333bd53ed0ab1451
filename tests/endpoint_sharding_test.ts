/**
 * The endpoint sharding layer, driven by a fake helper and fake subchannels:
 * which children an update keeps, how their states aggregate, and what a
 * child that goes IDLE or leaves READY sets off.
 */
import assert from "node:assert/strict";
import {
  type ChannelOptions,
  connectivityState as ConnectivityState,
  experimental,
  status,
} from "@grpc/grpc-js";
import {
  type ChildState,
  EndpointSharding,
  type ShardedPolicy,
  type ShardingObserver,
} from "../balancer/endpoint_sharding.ts";
import { SERVER_NAMES } from "../balancer/discovery/server_names.ts";
import { StateCounts } from "../balancer/_aggregate_state.ts";
import {
  HEALTH_CHECK_SERVICE_NAME,
  HealthCheckingSubchannel,
} from "../balancer/health_check.ts";
import { logged } from "../testing/wait.ts";
import {
  endpoint,
  endpointOf,
  FakeHelper,
  pickOne,
  tick,
} from "../testing/fakes.ts";
import { LEAVES_PICK_FIRST_TIMER } from "../testing/sanitizers.ts";

const { READY, CONNECTING, IDLE, TRANSIENT_FAILURE } = ConnectivityState;
const [A, B, C] = [2001, 2002, 2003];

/** The config of the recording policy the tests put on the block. */
const RECORDING: experimental.TypedLoadBalancingConfig = {
  getLoadBalancerName: () => "recording",
  toJsonObject: () => ({ recording: {} }),
};

/** A resolver update of `endpoints` for `sharding`, as the channel sends it. */
function updateEndpoints(
  sharding: EndpointSharding,
  endpoints: experimental.Endpoint[],
  options: ChannelOptions = {},
): boolean {
  return sharding.updateAddressList(
    experimental.statusOrFromValue(endpoints),
    RECORDING,
    options,
    "",
  );
}

/**
 * Sharding over a fake helper under a policy that records every
 * combination as it was, and shows the aggregate state with the block's
 * own pickers.
 */
function newSharding(
  policy: Partial<ShardedPolicy> = {},
  childPolicy: experimental.TypedLoadBalancingConfig | null = null,
) {
  const helper = new FakeHelper();
  const reports: { state: ConnectivityState; children: ChildState[] }[] = [];
  // An observer that counts the children alive.
  const alive = new Set<object>();
  const observer: ShardingObserver = {
    child() {
      const child = {
        picker: (picker: experimental.Picker) => picker,
        subchannel() {},
        close: () => alive.delete(child),
      };
      alive.add(child);
      return child;
    },
    states() {},
    close() {},
  };
  const sharding = new EndpointSharding(
    helper,
    {
      name: "recording",
      combine: (state, children) => {
        reports.push({
          state,
          children: children.map((
            { endpoint, key, state, picker, lastError, data },
          ) => ({
            endpoint,
            key,
            state,
            picker,
            lastError,
            data,
            exitIdle() {},
          })),
        });
        return { state };
      },
      ...policy,
    },
    childPolicy,
    () => observer,
  );
  const update = (ports: number[]) =>
    updateEndpoints(sharding, ports.map(endpoint));
  return { helper, sharding, reports, update, children: () => alive.size };
}

Deno.test("endpoint sharding: states aggregate READY > CONNECTING > IDLE > TRANSIENT_FAILURE", () => {
  const aggregate = (states: ConnectivityState[]) => {
    const counts = new StateCounts();
    for (const state of states) counts.add(state);
    return counts.aggregate();
  };
  const cases: [ConnectivityState[], ConnectivityState][] = [
    [[READY, TRANSIENT_FAILURE], READY],
    [[CONNECTING, READY], READY],
    [[IDLE, READY], READY],
    [[IDLE, CONNECTING], CONNECTING],
    [[CONNECTING, IDLE], CONNECTING],
    [[TRANSIENT_FAILURE, CONNECTING], CONNECTING],
    [[TRANSIENT_FAILURE, IDLE], IDLE],
    [[TRANSIENT_FAILURE, TRANSIENT_FAILURE], TRANSIENT_FAILURE],
    [[], TRANSIENT_FAILURE],
  ];
  for (const [states, expected] of cases) {
    assert.equal(
      aggregate(states),
      expected,
      states.map((s) => ConnectivityState[s]).join(", "),
    );
  }
});

Deno.test(
  "endpoint sharding: an update keeps the children of endpoints still present, replaces the rest, and reports once",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports, update } = newSharding();
    update([A, B]);
    await tick();
    // A child remembers its last error: a kept child still has it.
    helper.subchannel(A).setState(TRANSIENT_FAILURE, "A failed once");
    helper.subchannel(A).setState(READY);
    helper.subchannel(B).setState(READY);
    await tick();
    const before = reports.length;
    update([A, C]);
    assert.equal(reports.length, before + 1, "one report per update");
    const { state, children } = reports.at(-1)!;
    assert.equal(state, READY);
    assert.deepEqual(
      children.map((child) => child.endpoint),
      [A, C].map(endpoint),
    );
    assert.equal(children[0].state, READY);
    assert.match(
      children[0].lastError ?? "",
      /A failed once/,
      "A's child kept",
    );
    assert.equal(helper.subchannel(B).refs, 0, "B's child was destroyed");
    assert.ok(helper.subchannels.has(`127.0.0.1:${C}`), "C has a child");
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: a change of health-check service replaces the children, so their subchannels watch it",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports } = newSharding();
    const update = (service: string | null) =>
      updateEndpoints(
        sharding,
        [A, B].map(endpoint),
        service === null ? {} : { [HEALTH_CHECK_SERVICE_NAME]: service },
      );
    update(null);
    await tick();
    helper.subchannel(A).setState(TRANSIENT_FAILURE, "A failed once");
    await tick();
    update(null);
    assert.match(reports.at(-1)!.children[0].lastError ?? "", /A failed/);
    update("grpc.examples.echo.Echo");
    assert.doesNotMatch(
      reports.at(-1)!.children[0].lastError ?? "",
      /A failed once/,
      "replaced",
    );
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: an endpoint whose addresses come in a new order is the same endpoint: its child is kept (gRFC A61)",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports } = newSharding();
    const update = (first: number[]) =>
      updateEndpoints(sharding, [endpointOf(first), endpoint(C)]);
    update([A, B]);
    await tick();
    // Both addresses fail, so the child reports an error (the last one,
    // B's) that it remembers.
    helper.subchannel(A).setState(TRANSIENT_FAILURE, "A failed once");
    helper.subchannel(B).setState(TRANSIENT_FAILURE, "B failed once");
    await tick();
    helper.subchannel(A).setState(READY);
    await tick();
    const refs = helper.subchannel(A).refs;
    update([B, A]);
    const { children } = reports.at(-1)!;
    assert.deepEqual(children.map((child) => child.endpoint), [
      endpointOf([B, A]),
      endpoint(C),
    ]);
    assert.match(
      children[0].lastError ?? "",
      /B failed once/,
      "A's child kept",
    );
    assert.equal(children[0].state, READY);
    assert.equal(helper.subchannel(A).refs, refs, "its connection kept");
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: a repeated endpoint shares one child",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports, update, children } = newSharding();
    update([A, A, B]);
    await tick();
    assert.equal(children(), 2);
    assert.deepEqual(
      reports.at(-1)!.children.map((child) => child.endpoint),
      [A, B].map(endpoint),
    );
    sharding.destroy();
    // A second child for A would hold a reference that destroy never drops.
    for (const port of [A, B]) {
      assert.equal(helper.subchannel(port).refs, 0, `${port} released`);
    }
  },
);

Deno.test(
  "endpoint sharding: a child that goes IDLE is told to connect at once",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports, update } = newSharding();
    update([A, B]);
    await tick();
    helper.subchannel(A).setState(READY);
    helper.subchannel(B).setState(READY);
    await tick();
    const connects = helper.subchannel(A).connectCalls;
    helper.subchannel(A).setState(IDLE);
    await tick();
    assert.equal(helper.subchannel(A).connectCalls, connects + 1);
    assert.notEqual(reports.at(-1)!.children[0].state, IDLE);
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: a child that goes IDLE and reports CONNECTING from within its exitIdle is counted once: all failed is TRANSIENT_FAILURE",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports, update } = newSharding();
    update([A, B]);
    await tick();
    helper.subchannel(A).setState(READY);
    helper.subchannel(B).setState(READY);
    await tick();
    // pick_first reports IDLE, and CONNECTING again inside the exitIdle
    // that IDLE calls.
    helper.subchannel(A).setState(IDLE);
    helper.subchannel(B).setState(IDLE);
    await tick();
    helper.subchannel(A).setState(TRANSIENT_FAILURE, "refused");
    helper.subchannel(B).setState(TRANSIENT_FAILURE, "refused");
    await tick();
    assert.deepEqual(
      reports.at(-1)!.children.map(({ state }) => state),
      [TRANSIENT_FAILURE, TRANSIENT_FAILURE],
    );
    assert.equal(reports.at(-1)!.state, TRANSIENT_FAILURE);
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: a child whose connection goes asks for re-resolution, which pick_first does not; a READY child kept by updates does not",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, update } = newSharding();
    update([A, B]);
    await tick();
    helper.subchannel(A).setState(READY);
    await tick();
    const before = helper.reresolutions;
    // A kept READY child reports READY again at every update: asking then
    // would loop, the resolver answering each request with an update.
    for (let i = 0; i < 3; i++) {
      update([A, B]);
      await tick();
    }
    assert.equal(helper.reresolutions, before);
    // A lost connection: the subchannel goes from READY to IDLE.
    helper.subchannel(A).setState(IDLE);
    await tick();
    assert.equal(helper.reresolutions, before + 1);
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: resetBackoff reaches every child's subchannels; destroy releases them",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, update, children } = newSharding();
    update([A, B]);
    await tick();
    sharding.resetBackoff();
    assert.deepEqual([A, B].map((p) => helper.subchannel(p).backoffResets), [
      1,
      1,
    ]);
    sharding.destroy();
    assert.deepEqual([A, B].map((p) => helper.subchannel(p).refs), [0, 0]);
    assert.equal(children(), 0);
  },
);

Deno.test(
  "endpoint sharding: a subchannel is verified over TLS as the name the resolver gives its address",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const fakes = new FakeHelper();
    const made = new Map<string, unknown>();
    const helper: experimental.ChannelControlHelper = {
      createSubchannel: (address, options) => {
        made.set(
          experimental.subchannelAddressToString(address),
          options["grpc.ssl_target_name_override"],
        );
        return fakes.createSubchannel(address);
      },
      updateState: () => {},
      requestReresolution: () => {},
      addChannelzChild: () => {},
      removeChannelzChild: () => {},
    };
    const sharding = new EndpointSharding(helper, {
      name: "recording",
      combine: (state) => ({ state }),
    });
    updateEndpoints(
      sharding,
      [A, B].map(endpoint),
      { [SERVER_NAMES]: { [`127.0.0.1:${A}`]: "a.test" } },
    );
    await tick();
    assert.equal(made.get(`127.0.0.1:${A}`), "a.test");
    assert.equal(
      made.get(`127.0.0.1:${B}`),
      undefined,
      "no name: the target's",
    );
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: changes in one turn make one listener run, after them, with every child's latest state in the update's order",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports, update } = newSharding();
    update([C, A, B]);
    await tick();
    const before = reports.length;
    for (const port of [A, B, C]) {
      helper.subchannel(port).setState(CONNECTING);
      helper.subchannel(port).setState(READY);
    }
    helper.subchannel(B).setState(TRANSIENT_FAILURE, "B failed");
    assert.equal(reports.length, before, "no run while the turn goes on");
    await tick();
    assert.equal(reports.length, before + 1, "one run for the turn");
    const { state, children } = reports.at(-1)!;
    assert.equal(state, READY);
    assert.deepEqual(
      children.map((child) => [child.endpoint, child.state]),
      [[endpoint(C), READY], [endpoint(A), READY], [
        endpoint(B),
        TRANSIENT_FAILURE,
      ]],
    );
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: an update is one listener run, whatever its children report meanwhile; changes queued before it make none after",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports, update } = newSharding();
    update([A, B]);
    await tick();
    helper.subchannel(A).setState(READY);
    const before = reports.length;
    update([B, C, A]);
    assert.equal(reports.length, before + 1, "one run, at the update's end");
    assert.deepEqual(
      reports.at(-1)!.children.map((child) => [child.endpoint, child.state]),
      [[endpoint(B), CONNECTING], [endpoint(C), CONNECTING], [
        endpoint(A),
        READY,
      ]],
    );
    await tick();
    assert.equal(reports.length, before + 1, "the queued change was in it");
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: no listener run after destroy, for changes queued before it",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports, update } = newSharding();
    update([A, B]);
    await tick();
    const before = reports.length;
    helper.subchannel(A).setState(READY);
    sharding.destroy();
    await tick();
    assert.equal(reports.length, before);
  },
);

Deno.test(
  "endpoint sharding: a resolver error without children fails RPCs with it; with children it changes nothing; both are accepted",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports, update, children } = newSharding();
    const error = (details: string) =>
      sharding.updateAddressList(
        experimental.statusOrFromError({ code: status.UNAVAILABLE, details }),
        RECORDING,
        {},
        "",
      );
    assert.equal(error("no such name"), true);
    const failed = helper.latest;
    assert.equal(failed.state, TRANSIENT_FAILURE);
    assert.equal(
      failed.errorMessage,
      "recording: no endpoints were resolved: no such name",
    );
    assert.match(pickOne(failed.picker).status?.details ?? "", /no such name/);
    update([A, B]);
    await tick();
    helper.subchannel(A).setState(READY);
    await tick();
    const shown = helper.reports.length;
    const combined = reports.length;
    assert.equal(error("the DNS server is down"), true);
    await tick();
    assert.equal(helper.reports.length, shown, "nothing new shown");
    assert.equal(reports.length, combined, "the children stay");
    assert.equal(helper.latest.state, READY);
    assert.equal(children(), 2);
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: a list the policy refuses follows the resolver-error rule and asks for re-resolution; another policy's config is not taken",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, update, children } = newSharding({
      refuse: (endpoints) => endpoints.length === 3 ? "three is a crowd" : null,
    });
    assert.equal(update([A, B, C]), true);
    await tick();
    assert.equal(helper.latest.state, TRANSIENT_FAILURE);
    assert.equal(
      helper.latest.errorMessage,
      "recording: no endpoints were resolved: three is a crowd",
    );
    assert.equal(helper.reresolutions, 1);
    assert.equal(children(), 0, "no child made for a refused list");
    update([A, B]);
    await tick();
    helper.subchannel(B).setState(READY);
    await tick();
    assert.equal(update([A, B, C]), true);
    await tick();
    assert.equal(helper.reresolutions, 2);
    assert.equal(children(), 2, "the children of the last good list stay");
    assert.equal(helper.latest.state, READY);
    const other = { ...RECORDING, getLoadBalancerName: () => "round_robin" };
    assert.equal(
      sharding.updateAddressList(
        experimental.statusOrFromValue([endpoint(C)]),
        other,
        {},
        "",
      ),
      false,
    );
    assert.equal(children(), 2);
    sharding.destroy();
  },
);

/** The endpoints each `one_endpoint` child was given, by child. */
const childUpdates: experimental.Endpoint[][][] = [];

/**
 * A child policy other than pick_first: it reports READY at once, with a
 * picker that names its endpoint in the pick's status.
 */
class OneEndpoint implements experimental.LoadBalancer {
  readonly #helper: experimental.ChannelControlHelper;
  readonly #updates: experimental.Endpoint[][] = [];
  constructor(helper: experimental.ChannelControlHelper) {
    this.#helper = helper;
    childUpdates.push(this.#updates);
  }
  updateAddressList(
    endpoints: experimental.StatusOr<experimental.Endpoint[]>,
  ): boolean {
    if (!endpoints.ok) return false;
    this.#updates.push(endpoints.value);
    const name = experimental.endpointToString(endpoints.value[0]);
    this.#helper.updateState(READY, {
      pick: () => ({
        pickResultType: experimental.PickResultType.DROP,
        subchannel: null,
        status: { code: status.OK, details: name, metadata: null! },
        onCallStarted: null,
        onCallEnded: null,
      }),
    }, null);
    return true;
  }
  exitIdle(): void {}
  resetBackoff(): void {}
  destroy(): void {}
  getTypeName(): string {
    return "one_endpoint";
  }
}

Deno.test("endpoint sharding: the child policy is a parameter: each endpoint's child is that policy, given its one endpoint", async () => {
  experimental.registerLoadBalancerType(
    "one_endpoint",
    OneEndpoint,
    class {
      getLoadBalancerName = () => "one_endpoint";
      toJsonObject = () => ({ one_endpoint: {} });
      static createFromJson = () => new this();
    },
  );
  const config = experimental.parseLoadBalancingConfig({ one_endpoint: {} });
  childUpdates.length = 0;
  const { helper, sharding, reports, update } = newSharding({}, config);
  update([A, B]);
  update([B, A]);
  await tick();
  assert.deepEqual(childUpdates, [
    [[endpoint(A)], [endpoint(A)]],
    [[endpoint(B)], [endpoint(B)]],
  ], "one child per endpoint, kept across updates, each given its own");
  assert.equal(helper.subchannels.size, 0, "no pick_first made subchannels");
  const { state, children } = reports.at(-1)!;
  assert.equal(state, READY);
  assert.deepEqual(
    children.map((child) => pickOne(child.picker).status?.details),
    [`[127.0.0.1:${B}]`, `[127.0.0.1:${A}]`],
  );
  sharding.destroy();
  assert.throws(
    () => newSharding({}, { ...config, getLoadBalancerName: () => "no_such" }),
    /recording: child policy no_such is not registered/,
  );
});

Deno.test(
  "endpoint sharding: an endpoint of two addresses has a subchannel for each, and resetBackoff reaches both",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, children } = newSharding();
    updateEndpoints(sharding, [endpointOf([A, B]), endpoint(C)]);
    await tick();
    assert.equal(children(), 2);
    helper.subchannel(A).setState(TRANSIENT_FAILURE);
    await tick();
    sharding.resetBackoff();
    assert.deepEqual(
      [A, B, C].map((p) => helper.subchannel(p).backoffResets),
      [1, 1, 1],
    );
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: endpoints by Unix socket path are told apart, and each keeps its child",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { sharding, children } = newSharding();
    const socket = (path: string) => ({ addresses: [{ path }] });
    updateEndpoints(sharding, [socket("/run/a.sock"), socket("/run/b.sock")]);
    await tick();
    assert.equal(children(), 2);
    updateEndpoints(sharding, [socket("/run/b.sock"), socket("/run/b.sock")]);
    assert.equal(children(), 1);
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: a child's channelz children and re-resolution requests reach the channel",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding } = newSharding(
      {},
      experimental.parseLoadBalancingConfig({ pick_first: {} }),
    );
    updateEndpoints(sharding, [endpoint(A)]);
    await tick();
    assert.ok(helper.channelzChildren > 0, "pick_first's subchannel is known");
    const before = helper.reresolutions;
    // Never READY: only pick_first itself asks for re-resolution here.
    helper.subchannel(A).setState(CONNECTING);
    helper.subchannel(A).setState(TRANSIENT_FAILURE);
    await tick();
    assert.ok(helper.reresolutions > before, "pick_first's request passed on");
    sharding.destroy();
    assert.equal(helper.channelzChildren, 0);
  },
);

Deno.test(
  "endpoint sharding: a child leaving READY asks for re-resolution once; no other change adds one",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, update } = newSharding();
    update([A, B]);
    await tick();
    const asked: number[] = [];
    const step = async (port: number, state: ConnectivityState) => {
      const before = helper.reresolutions;
      helper.subchannel(port).setState(state);
      await tick();
      asked.push(helper.reresolutions - before);
    };
    await step(A, CONNECTING);
    await step(A, TRANSIENT_FAILURE);
    await step(B, CONNECTING);
    await step(B, READY);
    await step(B, IDLE);
    // pick_first asks on its own when its one address fails; the block
    // asks when a READY child leaves READY, which pick_first does not.
    assert.deepEqual(asked, [0, 1, 0, 0, 1]);
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: an update that removes the only CONNECTING child counts the rest afresh",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports, update } = newSharding();
    update([A, B]);
    await tick();
    helper.subchannel(A).setState(CONNECTING);
    helper.subchannel(A).setState(TRANSIENT_FAILURE);
    helper.subchannel(B).setState(CONNECTING);
    await tick();
    assert.equal(reports.at(-1)!.state, CONNECTING);
    update([A]);
    assert.equal(reports.at(-1)!.state, TRANSIENT_FAILURE);
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: a policy's TRANSIENT_FAILURE without a message fails RPCs naming the policy",
  LEAVES_PICK_FIRST_TIMER,
  () => {
    const { helper, sharding, update } = newSharding({
      combine: () => ({ state: TRANSIENT_FAILURE }),
    });
    update([A]);
    const { errorMessage, picker } = helper.latest;
    assert.equal(errorMessage, "recording: no endpoint is up");
    assert.equal(
      pickOne(picker).status?.details,
      "recording: no endpoint is up",
    );
    sharding.destroy();
  },
);

/** An observer that records each child's subchannels, and when it closes. */
function recordingObserver() {
  const subchannels: experimental.SubchannelInterface[] = [];
  let closed = 0;
  const observer: ShardingObserver = {
    child: () => ({
      picker: (picker: experimental.Picker) => picker,
      subchannel: (subchannel) => subchannels.push(subchannel),
      close: () => closed++,
    }),
    states() {},
    close() {},
  };
  return { observer, subchannels, closed: () => closed };
}

Deno.test(
  "endpoint sharding: lazy children connect only when told: by the block's exitIdle, or the policy's own; not again when they go IDLE",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, update } = newSharding({ lazy: true });
    sharding.exitIdle(); // before any update: nothing to tell
    update([A, B]);
    await tick();
    assert.equal(helper.subchannels.size, 0, "no child connects by itself");
    sharding.exitIdle();
    await tick();
    assert.equal(helper.subchannels.size, 2, "each child told to connect");
    helper.subchannel(A).setState(CONNECTING);
    helper.subchannel(A).setState(READY);
    await tick();
    const connects = helper.subchannel(A).connectCalls;
    helper.subchannel(A).setState(IDLE);
    await tick();
    assert.equal(helper.subchannel(A).connectCalls, connects, "left IDLE");
    sharding.destroy();

    const told: number[] = [];
    const own = newSharding({
      lazy: true,
      exitIdle: (children) => told.push(children.length),
    });
    own.sharding.exitIdle();
    assert.deepEqual(told, [], "no hook before the first update");
    own.update([A, B, C]);
    own.sharding.exitIdle();
    await tick();
    assert.deepEqual(told, [3]);
    assert.equal(own.helper.subchannels.size, 0, "the hook decides alone");
    assert.equal(own.sharding.getTypeName(), "recording");
    own.sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: a new observer is told of each child's subchannels, health-checking ones with health on; none closes the old",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const helper = new FakeHelper();
    const first = recordingObserver();
    const second = recordingObserver();
    let current: ShardingObserver | null = first.observer;
    const sharding = new EndpointSharding(
      helper,
      { name: "recording", combine: (state) => ({ state }) },
      null,
      () => current,
    );
    const options = { [HEALTH_CHECK_SERVICE_NAME]: "svc" };
    const go = () =>
      sharding.updateAddressList(
        experimental.statusOrFromValue([endpoint(A), endpoint(B)]),
        RECORDING,
        options,
        "",
      );
    go();
    await tick();
    assert.equal(first.subchannels.length, 2);
    assert.ok(
      first.subchannels.every((s) => s instanceof HealthCheckingSubchannel),
    );
    current = second.observer;
    go();
    await tick();
    assert.equal(first.closed(), 2, "the first observer's children closed");
    assert.deepEqual(
      second.subchannels.slice(0, 2).map((s) => s.getAddress()),
      [`127.0.0.1:${A}`, `127.0.0.1:${B}`],
    );
    current = null;
    go();
    await tick();
    assert.equal(second.closed(), 2, "no observer: the second's closed");
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: a kept child's leaf gets the update's options; a subchannel asked for again is kept once, and its backoff reset once",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const given: experimental.SubchannelAddress[] = [];
    const seen: ChannelOptions[] = [];
    class Recording extends FakeHelper {
      override createSubchannel(
        address: experimental.SubchannelAddress,
        options?: ChannelOptions,
      ) {
        given.push(address);
        seen.push(options ?? {});
        return super.createSubchannel(address);
      }
    }
    const helper = new Recording();
    const sharding = new EndpointSharding(helper, {
      name: "recording",
      combine: (state) => ({ state }),
    });
    const go = (options: ChannelOptions) =>
      sharding.updateAddressList(
        experimental.statusOrFromValue([endpoint(A)]),
        RECORDING,
        options,
        "",
      );
    go({ "grpc.keepalive_time_ms": 1000 });
    await tick();
    helper.subchannel(A).setState(CONNECTING);
    helper.subchannel(A).setState(READY);
    await tick();
    go({ "grpc.keepalive_time_ms": 2000 });
    await tick();
    assert.equal(seen.at(-1)?.["grpc.keepalive_time_ms"], 2000);
    assert.ok(given.length >= 2, "pick_first asked again");
    sharding.resetBackoff();
    assert.equal(helper.subchannel(A).backoffResets, 1);
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: a child's key is its addresses sorted, IPv6 in brackets, joined by a space",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { sharding, reports } = newSharding();
    updateEndpoints(sharding, [
      { addresses: [{ host: "::1", port: B }, { host: "127.0.0.1", port: A }] },
    ]);
    await tick();
    assert.equal(reports.at(-1)!.children[0].key, `127.0.0.1:${A} [::1]:${B}`);
    sharding.destroy();
  },
);

Deno.test(
  "endpoint sharding: an update is combined once, its children's first reports included; a destroyed block asks nothing, and a resolver error with children logs nothing",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, reports, update } = newSharding();
    update([A, B]);
    await tick();
    assert.equal(reports.length, 1, "one combination for the update");
    const lines = await logged(async () => {
      sharding.updateAddressList(
        experimental.statusOrFromError({
          code: status.UNAVAILABLE,
          details: "down",
        }),
        RECORDING,
        {},
        "",
      );
      await tick();
    });
    assert.deepEqual(lines, [], "the resolver reports its own errors");
    const before = helper.reresolutions;
    sharding.updateAddressList(
      experimental.statusOrFromValue([]),
      RECORDING,
      {},
      "",
    );
    sharding.destroy();
    await tick();
    assert.equal(helper.reresolutions, before, "none after destroy");
  },
);
