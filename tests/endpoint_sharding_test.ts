/**
 * The endpoint sharding layer, driven by a fake helper and fake subchannels:
 * which children an update keeps, how their states aggregate, and what a
 * child that goes IDLE or leaves READY sets off.
 */
import assert from "node:assert/strict";
import {
  connectivityState as ConnectivityState,
  experimental,
} from "@grpc/grpc-js";
import {
  type ChildState,
  EndpointSharding,
  SERVER_NAMES,
} from "../balancer/endpoint_sharding.ts";
import { StateCounts } from "../balancer/_aggregate_state.ts";
import { HEALTH_CHECK_SERVICE_NAME } from "../balancer/health_check.ts";
import { endpoint, endpointOf, FakeHelper, tick } from "../testing/fakes.ts";
import { LEAVES_PICK_FIRST_TIMER } from "../testing/sanitizers.ts";

const { READY, CONNECTING, IDLE, TRANSIENT_FAILURE } = ConnectivityState;
const [A, B, C] = [2001, 2002, 2003];

/** Sharding over a fake helper, recording every report as it was. */
function newSharding() {
  const helper = new FakeHelper();
  const reports: { state: ConnectivityState; children: ChildState[] }[] = [];
  const sharding = new EndpointSharding(
    helper,
    (state, children) =>
      reports.push({
        state,
        children: children.map(({ endpoint, state, picker, lastError }) => ({
          endpoint,
          state,
          picker,
          lastError,
        })),
      }),
  );
  const update = (ports: number[]) =>
    sharding.updateEndpoints(ports.map(endpoint), {}, "");
  return { helper, sharding, reports, update };
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
      sharding.updateEndpoints(
        [A, B].map(endpoint),
        service === null ? {} : { [HEALTH_CHECK_SERVICE_NAME]: service },
        "",
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
      sharding.updateEndpoints([endpointOf(first), endpoint(C)], {}, "");
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
    const { helper, sharding, reports, update } = newSharding();
    update([A, A, B]);
    await tick();
    assert.equal(sharding.size, 2);
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
  "endpoint sharding: a child whose connection goes asks for re-resolution, which pick_first does not",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, sharding, update } = newSharding();
    update([A, B]);
    await tick();
    helper.subchannel(A).setState(READY);
    await tick();
    const before = helper.reresolutions;
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
    const { helper, sharding, update } = newSharding();
    update([A, B]);
    await tick();
    sharding.resetBackoff();
    assert.deepEqual([A, B].map((p) => helper.subchannel(p).backoffResets), [
      1,
      1,
    ]);
    sharding.destroy();
    assert.deepEqual([A, B].map((p) => helper.subchannel(p).refs), [0, 0]);
    assert.equal(sharding.size, 0);
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
    const sharding = new EndpointSharding(helper, () => {});
    sharding.updateEndpoints(
      [A, B].map(endpoint),
      { [SERVER_NAMES]: { [`127.0.0.1:${A}`]: "a.test" } },
      "",
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
