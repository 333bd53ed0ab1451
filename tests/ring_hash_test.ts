/**
 * `ring_hash_experimental` on a fake helper and fake subchannels: its
 * config, its ring (the same endpoint for the same hash as grpc-js-xds's
 * `ring_hash`), its picks by state, its aggregate state and its
 * connections.
 */
import assert from "node:assert/strict";
import {
  type ChannelOptions,
  connectivityState as ConnectivityState,
  experimental,
  Metadata,
} from "@grpc/grpc-js";
import xxhash from "xxhash-wasm";
import {
  buildRing,
  ringHash,
  type RingHashEndpoint,
} from "../balancer/ring_hash.ts";
import { checkServiceConfig } from "../balancer/service_config.ts";
import {
  registerRingHash,
  registerXds,
  RING_SIZE_CAP,
} from "../balancer/mod.ts";
import { FakeHelper, FakeSubchannel, tick } from "../testing/fakes.ts";
import { LEAVES_PICK_FIRST_TIMER } from "../testing/sanitizers.ts";

const { IDLE, CONNECTING, READY, TRANSIENT_FAILURE } = ConnectivityState;
const { h64 } = await xxhash();

registerRingHash();

Deno.test("ring_hash config: the defaults are gRFC A42's, 0 takes them, a header is lowercased", () => {
  assert.deepEqual(ringHash.Config.createFromJson({}).settings, {
    minRingSize: 1024,
    maxRingSize: 4096,
    requestHashHeader: "",
  });
  assert.deepEqual(
    ringHash.Config.createFromJson({
      minRingSize: 0,
      maxRingSize: 0,
      requestHashHeader: "X-User_Id.v2",
    }).settings,
    { minRingSize: 1024, maxRingSize: 4096, requestHashHeader: "x-user_id.v2" },
  );
  assert.deepEqual(
    ringHash.Config.createFromJson({ minRingSize: 1, maxRingSize: 8388608 })
      .settings,
    { minRingSize: 1, maxRingSize: 8388608, requestHashHeader: "" },
  );
  assert.equal(
    ringHash.Config.createFromJson({ minRingSize: 5, maxRingSize: 5 }).settings
      .maxRingSize,
    5,
  );
  // grpc-js-xds's and C-core's name for the cap.
  assert.equal(RING_SIZE_CAP, "grpc.lb.ring_hash.ring_size_cap");
});

Deno.test("ring_hash config: each bad field is one line naming it and the value, from checkServiceConfig too", () => {
  const cases: [Record<string, unknown>, string][] = [
    [
      { minRingSize: 8388609 },
      "minRingSize must be an integer from 0 to 8388608, got 8388609",
    ],
    [
      { maxRingSize: -1 },
      "maxRingSize must be an integer from 0 to 8388608, got -1",
    ],
    [
      { maxRingSize: 1.5 },
      "maxRingSize must be an integer from 0 to 8388608, got 1.5",
    ],
    [
      { minRingSize: "1024" },
      'minRingSize must be an integer from 0 to 8388608, got "1024"',
    ],
    [
      { minRingSize: 10, maxRingSize: 5 },
      "minRingSize (10) must not be above maxRingSize (5)",
    ],
    [
      { requestHashHeader: "x user" },
      'requestHashHeader must be a header name (letters, digits, "-", "_" and "."), got "x user"',
    ],
    [
      { requestHashHeader: ":path" },
      'requestHashHeader must be a header name (letters, digits, "-", "_" and "."), got ":path"',
    ],
    [
      { requestHashHeader: "x-user-bin" },
      'requestHashHeader must not name a binary header (one ending in -bin), got "x-user-bin"',
    ],
    [
      { requestHashHeader: 7 },
      "requestHashHeader must be a string, got 7",
    ],
  ];
  for (const [json, message] of cases) {
    assert.throws(
      () => ringHash.Config.createFromJson(json),
      (error: Error) => error.message === message,
      message,
    );
    assert.throws(
      () =>
        checkServiceConfig({
          loadBalancingConfig: [{ ring_hash_experimental: json }],
        }),
      (error: Error) => error.message === `ring_hash_experimental: ${message}`,
      message,
    );
  }
});

/** Endpoints on ports 1000 + i, with weights 1, 2, 3, 1, 2, 3, …. */
function weighted(n: number): RingHashEndpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    addresses: [{ host: "127.0.0.1", port: 1000 + i }],
    endpointWeight: 1 + i % 3,
    // grpc-js-xds reads a weight only from a locality's endpoint.
    localityPath: [],
  }));
}

/** A policy made through grpc-js's registry, on a fake helper of its own. */
function policyOf(json: Record<string, object>) {
  const helper = new FakeHelper();
  const balancer = new experimental.ChildLoadBalancerHandler(helper);
  const config = experimental.parseLoadBalancingConfig(
    json as Parameters<typeof experimental.parseLoadBalancingConfig>[0],
  );
  const update = (endpoints: RingHashEndpoint[], options = {}) =>
    balancer.updateAddressList(
      experimental.statusOrFromValue(endpoints),
      config,
      options,
      "",
    );
  return { helper, balancer, update };
}

/** A pick with `hash` as an xDS route gives it, and no metadata. */
function hashArgs(hash: bigint): experimental.PickArgs {
  return { metadata: new Metadata(), extraPickInfo: { hash: String(hash) } };
}

/** Makes every subchannel of `helper` READY. */
function allReady(helper: FakeHelper): void {
  for (const subchannel of helper.subchannels.values()) {
    if (subchannel.state === READY) continue;
    subchannel.setState(CONNECTING);
    subchannel.setState(READY);
  }
}

/**
 * Connects every endpoint of a lazy policy: a pick at one of each
 * endpoint's own ring entries starts it connecting.
 */
async function connectAll(
  policy: ReturnType<typeof policyOf>,
  endpoints: RingHashEndpoint[],
  options: { min: number; max: number },
): Promise<void> {
  const ring = buildRing(endpoints, options.min, options.max);
  for (let i = 0; i < endpoints.length; i++) {
    const entry = ring.owners.indexOf(i);
    if (entry < 0) continue;
    policy.helper.latest.picker.pick(hashArgs(ring.hashes[entry]));
    await tick();
    allReady(policy.helper);
    await tick();
  }
}

/** The address each of `hashes` is picked to, or the pick's type. */
function picks(helper: FakeHelper, hashes: bigint[]): string[] {
  return hashes.map((hash) => {
    const result = helper.latest.picker.pick(hashArgs(hash));
    return result.subchannel?.getAddress() ??
      experimental.PickResultType[result.pickResultType];
  });
}

for (const n of [3, 10, 100]) {
  Deno.test(
    `ring_hash: for ${n} weighted endpoints, 1,000 hashes reach the endpoint grpc-js-xds's ring_hash picks, and again with one removed`,
    LEAVES_PICK_FIRST_TIMER,
    async () => {
      await registerXds();
      const sizes = { min: 1024, max: 4096 };
      const ours = policyOf({
        ring_hash_experimental: { minRingSize: 1024, maxRingSize: 4096 },
      });
      const theirs = policyOf({
        ring_hash: { min_ring_size: 1024, max_ring_size: 4096 },
      });
      const endpoints = weighted(n);
      for (const policy of [ours, theirs]) policy.update(endpoints);
      // grpc-js-xds builds its ring once its XXH64 has loaded.
      await tick();
      for (const policy of [ours, theirs]) {
        await connectAll(policy, endpoints, sizes);
      }
      const hashes = Array.from({ length: 1000 }, (_, i) => h64(`key-${i}`));
      const expected = picks(theirs.helper, hashes);
      assert.equal(expected.filter((p) => p.startsWith("127.")).length, 1000);
      assert.deepEqual(picks(ours.helper, hashes), expected);

      const fewer = endpoints.filter((_, i) => i !== 1);
      for (const policy of [ours, theirs]) policy.update(fewer);
      await tick();
      const after = picks(theirs.helper, hashes);
      assert.ok(!after.includes("127.0.0.1:1001"));
      assert.deepEqual(picks(ours.helper, hashes), after);
      // A removed endpoint changes the others' shares, and so their entries
      // (gRFC A42): keys move between them too, in both, alike.
      for (const policy of [ours, theirs]) policy.balancer.destroy();
    },
  );
}

Deno.test("ring_hash: the ring's size is A42's, the channel's cap bounds it, and an endpoint's hashKey places it in place of its address", () => {
  const equal = weighted(4).map(({ addresses }) => ({ addresses }));
  // Equal weights: the smallest share, 1/4, is whole at 1024 entries.
  assert.equal(buildRing(equal, 1024, 4096).hashes.length, 1024);
  // Weights 1, 2, 3, 1 (7 in all): 1/7 is whole at 1029.
  assert.equal(buildRing(weighted(4), 1024, 4096).hashes.length, 1029);
  assert.equal(buildRing(weighted(4), 10, 20).hashes.length, 14);
  assert.equal(buildRing(weighted(4), 100, 100).hashes.length, 100);
  // Sorted, and each entry is XXH64 of "address_N".
  const ring = buildRing(equal.slice(0, 1), 4, 4);
  assert.deepEqual(
    [...ring.hashes],
    [0, 1, 2, 3].map((n) => h64(`127.0.0.1:1000_${n}`)).sort((a, b) =>
      a < b ? -1 : a > b ? 1 : 0
    ),
  );
  const named = buildRing([{ ...equal[0], hashKey: "echo-0" }], 2, 2);
  assert.deepEqual(
    [...named.hashes].sort(),
    [h64("echo-0_0"), h64("echo-0_1")].sort(),
  );
  // An empty hashKey, and a weight that is no positive number, are not set.
  const plain = buildRing(equal, 100, 1000);
  for (
    const odd of [{ hashKey: "" }, { endpointWeight: 0 }, {
      endpointWeight: -2,
    }, { endpointWeight: "3" }]
  ) {
    const ring = buildRing(
      equal.map((endpoint, i) => i === 1 ? { ...endpoint, ...odd } : endpoint),
      100,
      1000,
    );
    assert.deepEqual(ring, plain, JSON.stringify(odd));
  }
});

/** Our policy on `n` one-weight endpoints, the header `x-user`. */
async function keyed(n: number, options: ChannelOptions = {}) {
  const policy = policyOf({
    ring_hash_experimental: { requestHashHeader: "x-user" },
  });
  const endpoints = weighted(n).map(({ addresses }) => ({ addresses }));
  policy.update(endpoints, options);
  await tick();
  return { ...policy, endpoints };
}

/** A pick for the RPC of `user`. */
function userArgs(...values: string[]): experimental.PickArgs {
  const metadata = new Metadata();
  for (const value of values) metadata.add("x-user", value);
  return { metadata, extraPickInfo: {} };
}

/** Where `args` goes once every endpoint is READY. */
function addressOf(
  helper: FakeHelper,
  args: experimental.PickArgs,
): string | undefined {
  return helper.latest.picker.pick(args).subchannel?.getAddress();
}

Deno.test(
  "ring_hash: a keyed pick waits for its own endpoint while it connects, never for the first READY one",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, balancer } = await keyed(5);
    assert.equal(helper.subchannels.size, 0, "no connection before a pick");
    assert.equal(helper.latest.state, IDLE);
    const args = userArgs("alice");
    const first = helper.latest.picker.pick(args);
    assert.equal(first.pickResultType, experimental.PickResultType.QUEUE);
    await tick();
    assert.equal(helper.subchannels.size, 1, "only alice's endpoint connects");
    const [alice] = helper.subchannels.values();
    // Another endpoint READY first changes nothing for alice.
    const other = helper.latest.picker.pick(userArgs("bob"));
    assert.equal(other.pickResultType, experimental.PickResultType.QUEUE);
    await tick();
    for (const subchannel of helper.subchannels.values()) {
      if (subchannel === alice) continue;
      subchannel.setState(CONNECTING);
      subchannel.setState(READY);
    }
    await tick();
    assert.equal(
      helper.latest.picker.pick(args).pickResultType,
      experimental.PickResultType.QUEUE,
    );
    alice.setState(CONNECTING);
    alice.setState(READY);
    await tick();
    assert.equal(addressOf(helper, args), alice.address);
    balancer.destroy();
  },
);

Deno.test(
  "ring_hash: a keyed pick whose endpoint failed walks on to the next one; the header's values are joined by commas",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, balancer, endpoints } = await keyed(5);
    // Keys that land on every endpoint start all five connecting.
    for (let i = 0; helper.subchannels.size < 5; i++) {
      assert.ok(i < 500, "500 keys reach every endpoint");
      helper.latest.picker.pick(userArgs(`warm-${i}`));
      await tick();
      allReady(helper);
      await tick();
    }
    const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const before = users.map((user) => addressOf(helper, userArgs(user)));
    // The header's hash is XXH64 of its values joined by ",": the endpoint
    // of the first ring entry at or after it.
    const ring = buildRing(endpoints, 1024, 4096);
    const at = ring.hashes.findIndex((hash) => hash >= h64("a,b"));
    assert.equal(
      addressOf(helper, userArgs("a", "b")),
      `127.0.0.1:${1000 + ring.owners[at < 0 ? 0 : at]}`,
    );
    const failed = helper.subchannel(1002);
    await fail(failed, () => {
      helper.latest.picker.pick(
        userArgs(users[before.indexOf(failed.address)]),
      );
    });
    const after = users.map((user) => addressOf(helper, userArgs(user)));
    users.forEach((user, i) => {
      if (before[i] === failed.address) {
        assert.notEqual(after[i], failed.address, user);
      } else assert.equal(after[i], before[i], user);
    });
    assert.ok(before.includes(failed.address), "some keys were on it");
    balancer.destroy();
  },
);

Deno.test(
  "ring_hash: an RPC without the header takes a random hash: the first READY endpoint, or one connection started",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, balancer } = await keyed(5);
    const result = helper.latest.picker.pick(userArgs());
    assert.equal(result.pickResultType, experimental.PickResultType.QUEUE);
    await tick();
    assert.equal(helper.subchannels.size, 1, "at most one connection started");
    const [only] = helper.subchannels.values();
    only.setState(CONNECTING);
    await tick();
    helper.latest.picker.pick(userArgs(""));
    await tick();
    assert.equal(helper.subchannels.size, 1, "none while one is CONNECTING");
    only.setState(READY);
    await tick();
    for (let i = 0; i < 20; i++) {
      assert.equal(addressOf(helper, userArgs()), only.address);
    }
    balancer.destroy();
  },
);

Deno.test(
  "ring_hash: the aggregate state is gRFC A61's, connections start by themselves in TRANSIENT_FAILURE and CONNECTING, and all down fails RPCs naming the errors",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, balancer } = await keyed(3);
    assert.equal(helper.latest.state, IDLE);
    helper.latest.picker.pick(userArgs("alice"));
    await tick();
    const [first] = helper.subchannels.values();
    first.setState(CONNECTING);
    await tick();
    assert.equal(helper.latest.state, CONNECTING);
    assert.equal(helper.subchannels.size, 1, "one CONNECTING: no other starts");
    first.setState(TRANSIENT_FAILURE, "refused 1");
    await tick();
    // One in TRANSIENT_FAILURE among several: CONNECTING, and the next starts.
    assert.equal(helper.latest.state, CONNECTING);
    assert.equal(helper.subchannels.size, 2);
    const second = [...helper.subchannels.values()][1];
    second.setState(CONNECTING);
    second.setState(TRANSIENT_FAILURE, "refused 2");
    await tick();
    assert.equal(helper.latest.state, TRANSIENT_FAILURE);
    assert.equal(helper.subchannels.size, 3, "the last starts too");
    const third = [...helper.subchannels.values()][2];
    third.setState(CONNECTING);
    third.setState(TRANSIENT_FAILURE, "refused 3");
    await tick();
    const failed = helper.latest.picker.pick(userArgs("alice"));
    assert.equal(
      failed.pickResultType,
      experimental.PickResultType.TRANSIENT_FAILURE,
    );
    assert.match(
      failed.status?.details ?? "",
      /^ring_hash_experimental: no endpoint is reachable: \[127\.0\.0\.1:1000\]: No connection established\. Last error: refused \d; \[/,
    );
    assert.equal(helper.latest.errorMessage, failed.status?.details);
    // Three endpoints, all named: no count of more.
    assert.doesNotMatch(failed.status?.details ?? "", /more/);
    // An RPC without the header, hashed at random, fails too: none of the
    // endpoints it walks past is IDLE, so none is asked to connect.
    assert.equal(
      helper.latest.picker.pick(userArgs()).pickResultType,
      experimental.PickResultType.TRANSIENT_FAILURE,
    );
    third.setState(IDLE);
    third.setState(CONNECTING);
    third.setState(READY);
    await tick();
    assert.equal(helper.latest.state, READY);
    balancer.destroy();
  },
);

Deno.test(
  "ring_hash: the channel's exitIdle starts one connection (gRFC A117)",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, balancer } = await keyed(5);
    balancer.exitIdle();
    await tick();
    assert.equal(helper.subchannels.size, 1);
    balancer.destroy();
  },
);

Deno.test(
  "ring_hash: an update with the same endpoints keeps the ring; the channel's cap changes it",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, balancer, update, endpoints } = await keyed(3, {
      [RING_SIZE_CAP]: 10,
    });
    const ring = () => {
      const picker = helper.latest.picker as unknown as { ring: unknown };
      return picker.ring;
    };
    const first = ring();
    update(endpoints.map((endpoint) => ({ ...endpoint })), {
      [RING_SIZE_CAP]: 10,
    });
    await tick();
    assert.equal(ring(), first, "the same ring");
    update(endpoints, {});
    await tick();
    assert.notEqual(ring(), first, "a new cap, a new ring");
    balancer.destroy();
  },
);

Deno.test(
  "ring_hash: an endpoint that keeps its hashKey keeps its keys when its address changes",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const policy = policyOf({ ring_hash_experimental: {} });
    const named = (ports: number[]) =>
      ports.map((port, i) => ({
        addresses: [{ host: "127.0.0.1", port }],
        hashKey: `echo-${i}`,
      }));
    const sizes = { min: 1024, max: 4096 };
    policy.update(named([1000, 1001, 1002]));
    await tick();
    await connectAll(policy, named([1000, 1001, 1002]), sizes);
    const hashes = Array.from({ length: 300 }, (_, i) => h64(`key-${i}`));
    const before = picks(policy.helper, hashes);
    policy.update(named([1000, 1001, 1009]));
    await tick();
    await connectAll(policy, named([1000, 1001, 1009]), sizes);
    const after = picks(policy.helper, hashes);
    assert.ok(before.includes("127.0.0.1:1002"));
    assert.deepEqual(
      after,
      before.map((address) =>
        address === "127.0.0.1:1002" ? "127.0.0.1:1009" : address
      ),
    );
    policy.balancer.destroy();
  },
);

/**
 * Puts a READY endpoint in TRANSIENT_FAILURE as a lost backend goes there:
 * pick_first leaves READY for IDLE, `connect` makes a pick start it again,
 * and the attempt fails.
 */
async function fail(
  subchannel: FakeSubchannel,
  connect: () => void,
): Promise<void> {
  subchannel.setState(IDLE);
  await tick();
  connect();
  await tick();
  subchannel.setState(CONNECTING);
  subchannel.setState(TRANSIENT_FAILURE, "down");
  await tick();
}

/** Our policy on ports 1000 to 1004, all READY, the header `x-user`. */
async function allReadyKeyed(options: ChannelOptions = {}) {
  const policy = await keyed(5, options);
  for (let i = 0; policy.helper.subchannels.size < 5; i++) {
    assert.ok(i < 500, "500 keys reach every endpoint");
    policy.helper.latest.picker.pick(userArgs(`warm-${i}`));
    await tick();
    allReady(policy.helper);
    await tick();
  }
  return policy;
}

/** The endpoint of the first ring entry at or after `hash`. */
function ringOwner(endpoints: RingHashEndpoint[], hash: bigint): string {
  const ring = buildRing(endpoints, 1024, 4096);
  const at = ring.hashes.findIndex((entry) => entry >= hash);
  return experimental.subchannelAddressToString(
    endpoints[ring.owners[at < 0 ? 0 : at]].addresses[0],
  );
}

Deno.test(
  "ring_hash: a keyed RPC whose endpoint is IDLE or CONNECTING waits for it while the others are READY",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, balancer, endpoints } = await allReadyKeyed();
    const home = ringOwner(endpoints, h64("alice"));
    const subchannel = helper.subchannels.get(home)!;
    const connects = subchannel.connectCalls;
    subchannel.setState(IDLE);
    await tick();
    const idle = helper.latest.picker.pick(userArgs("alice"));
    assert.equal(idle.pickResultType, experimental.PickResultType.QUEUE);
    await tick();
    assert.ok(subchannel.connectCalls > connects, "its connection started");
    subchannel.setState(CONNECTING);
    await tick();
    const connecting = helper.latest.picker.pick(userArgs("alice"));
    assert.equal(connecting.pickResultType, experimental.PickResultType.QUEUE);
    subchannel.setState(READY);
    await tick();
    assert.equal(addressOf(helper, userArgs("alice")), home);
    balancer.destroy();
  },
);

Deno.test(
  "ring_hash: a hash past the ring's last entry goes to its first; a failed endpoint's keys go to the next endpoint on the ring",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const policy = policyOf({ ring_hash_experimental: {} });
    const endpoints = weighted(5).map(({ addresses }) => ({ addresses }));
    policy.update(endpoints);
    await tick();
    await connectAll(policy, endpoints, { min: 1024, max: 4096 });
    const ring = buildRing(endpoints, 1024, 4096);
    const last = 2n ** 64n - 1n;
    assert.ok(ring.hashes[ring.hashes.length - 1] < last);
    assert.equal(
      addressOf(policy.helper, hashArgs(last)),
      `127.0.0.1:${1000 + ring.owners[0]}`,
    );
    await fail(policy.helper.subchannel(1002), () => {
      policy.helper.latest.picker.pick(
        hashArgs(ring.hashes[ring.owners.indexOf(2)]),
      );
    });
    for (let i = 0; i < 200; i++) {
      const hash = h64(`key-${i}`);
      let at = ring.hashes.findIndex((entry) => entry >= hash);
      if (at < 0) at = 0;
      while (ring.owners[at] === 2) at = (at + 1) % ring.owners.length;
      assert.equal(
        addressOf(policy.helper, hashArgs(hash)),
        `127.0.0.1:${1000 + ring.owners[at]}`,
        `key-${i}`,
      );
    }
    policy.balancer.destroy();
  },
);

Deno.test(
  "ring_hash: RPCs without the header, or without a route's hash, spread over the READY endpoints",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const { helper, balancer } = await allReadyKeyed();
    const reached = new Set<string | undefined>();
    for (let i = 0; i < 200; i++) {
      reached.add(addressOf(helper, userArgs(i % 2 === 0 ? "" : undefined!)));
    }
    balancer.destroy();
    assert.ok(reached.size >= 3, `${[...reached]}`);
    const plain = policyOf({ ring_hash_experimental: {} });
    const endpoints = weighted(5).map(({ addresses }) => ({ addresses }));
    plain.update(endpoints);
    await tick();
    await connectAll(plain, endpoints, { min: 1024, max: 4096 });
    const spread = new Set<string | undefined>();
    for (let i = 0; i < 200; i++) {
      spread.add(
        addressOf(plain.helper, {
          metadata: new Metadata(),
          extraPickInfo: {},
        }),
      );
    }
    assert.ok(spread.size >= 3, `${[...spread]}`);
    plain.balancer.destroy();
  },
);

Deno.test(
  "ring_hash: an endpoint replaced by another address gets a ring of its own",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const policy = policyOf({ ring_hash_experimental: {} });
    const at = (ports: number[]) =>
      ports.map((port) => ({ addresses: [{ host: "127.0.0.1", port }] }));
    policy.update(at([1000, 1001, 1002]));
    await tick();
    policy.update(at([1000, 1001, 1009]));
    await tick();
    await connectAll(policy, at([1000, 1001, 1009]), { min: 1024, max: 4096 });
    for (let i = 0; i < 200; i++) {
      const hash = h64(`key-${i}`);
      assert.equal(
        addressOf(policy.helper, hashArgs(hash)),
        ringOwner(at([1000, 1001, 1009]), hash),
      );
    }
    policy.balancer.destroy();
  },
);

Deno.test(
  "ring_hash: the channel's cap, a positive number, bounds the ring; anything else leaves the default",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const sizes: number[] = [];
    for (const cap of [10, 0, "10", undefined]) {
      const { helper, balancer } = await keyed(3, {
        [RING_SIZE_CAP]: cap,
      } as ChannelOptions);
      const picker = helper.latest.picker as unknown as {
        ring: { hashes: BigUint64Array };
      };
      sizes.push(picker.ring.hashes.length);
      balancer.destroy();
    }
    assert.deepEqual(sizes, [10, 1026, 1026, 1026]);
  },
);

Deno.test(
  "ring_hash: one endpoint alone in TRANSIENT_FAILURE is TRANSIENT_FAILURE; a failure names three endpoints and counts the rest",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const one = await keyed(1);
    one.helper.latest.picker.pick(userArgs("alice"));
    await tick();
    const [only] = one.helper.subchannels.values();
    only.setState(CONNECTING);
    only.setState(TRANSIENT_FAILURE, "refused");
    await tick();
    assert.equal(one.helper.latest.state, TRANSIENT_FAILURE);
    one.balancer.destroy();

    const five = policyOf({ ring_hash_experimental: {} });
    const endpoints = weighted(5).map(({ addresses }) => ({ addresses }));
    five.update(endpoints);
    await tick();
    await connectAll(five, endpoints, { min: 1024, max: 4096 });
    const ring = buildRing(endpoints, 1024, 4096);
    for (let i = 0; i < 5; i++) {
      await fail(five.helper.subchannel(1000 + i), () => {
        five.helper.latest.picker.pick(
          hashArgs(ring.hashes[ring.owners.indexOf(i)]),
        );
      });
    }
    assert.equal(five.helper.latest.state, TRANSIENT_FAILURE);
    const details = five.helper.latest.picker.pick(hashArgs(1n)).status
      ?.details;
    assert.equal(
      details,
      "ring_hash_experimental: no endpoint is reachable: " +
        [1000, 1001, 1002].map((port) =>
          `[127.0.0.1:${port}]: No connection established. Last error: down`
        ).join("; ") + "; and 2 more",
    );
    five.balancer.destroy();
  },
);

Deno.test(
  "ring_hash: the connections it starts by itself start from a random place on the ring (gRFC A117)",
  LEAVES_PICK_FIRST_TIMER,
  async () => {
    const started = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { helper, balancer } = await keyed(5);
      balancer.exitIdle();
      await tick();
      started.add([...helper.subchannels.keys()].join());
      balancer.destroy();
    }
    assert.ok(started.size >= 2, `${[...started]}`);
  },
);
