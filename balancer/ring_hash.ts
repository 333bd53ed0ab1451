/**
 * The `ring_hash_experimental` load-balancing policy (gRFCs A42, A61, A76
 * and A117): consistent hashing, so that every RPC of one key reaches the
 * same endpoint, and only a lost endpoint's keys move.
 *
 * Each endpoint is placed on a ring of 64-bit hashes, as many times as its
 * weight's share of the ring; an RPC's hash, from a request header
 * (`requestHashHeader`, A76), goes to the first entry at or after it. The
 * ring is the one grpc-go, C-core and grpc-js-xds build for the same
 * endpoints: XXH64 with seed 0 of each endpoint's address (or its
 * `hashKey`) with an `_N` suffix, sorted.
 *
 * Read top to bottom: the settings, the ring, the picker, the policy, its
 * registration. Children connect only when a pick, or the policy, asks.
 *
 * @module
 */
import {
  type ChannelOptions,
  connectivityState as ConnectivityState,
  experimental,
  logVerbosity as LogVerbosity,
  Metadata,
  status,
} from "@grpc/grpc-js";
import xxhash from "xxhash-wasm";
import type { ChildState } from "./endpoint_sharding.ts";
import { definePolicy } from "./define_policy.ts";
import { shown } from "./_config.ts";
import { unreachable } from "./_failures.ts";

// grpc-js-xds's XXH64 too; the WebAssembly module loads once, with this one.
const { h64 } = await xxhash();

const TRACER = "ring_hash";

/**
 * The name under which the policy is registered and configured: grpc-go's
 * and C-core's, which grpc-js-xds's `ring_hash` does not clash with.
 *
 * @example The policy's entry in a service config
 * ```ts
 * const serviceConfig = {
 *   loadBalancingConfig: [{ [RING_HASH]: { requestHashHeader: "x-user" } }],
 * };
 * ```
 */
export const RING_HASH = "ring_hash_experimental";

/**
 * `minRingSize` when the config leaves it out, or gives 0 (gRFC A42).
 *
 * @example An empty entry takes the defaults
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const { settings } = ringHash.Config.createFromJson({});
 * assert.equal(settings.minRingSize, DEFAULT_MIN_RING_SIZE);
 * assert.equal(settings.maxRingSize, DEFAULT_MAX_RING_SIZE);
 * ```
 */
export const DEFAULT_MIN_RING_SIZE = 1024;

/** `maxRingSize` when the config leaves it out, or gives 0 (gRFC A42). */
export const DEFAULT_MAX_RING_SIZE = 4096;

/** The largest ring size a config may give (gRFC A42): 8M. */
export const MAX_RING_SIZE = 8_388_608;

/**
 * The channel option that caps both ring sizes, grpc-js-xds's and C-core's
 * name for it; 4096 when not set.
 *
 * @example A channel whose rings may have 10,000 entries
 * ```ts
 * const options = { [RING_SIZE_CAP]: 10_000 };
 * ```
 */
export const RING_SIZE_CAP = "grpc.lb.ring_hash.ring_size_cap";

const DEFAULT_RING_SIZE_CAP = 4096;

/** The settings of a `ring_hash_experimental` config. */
export interface RingHashSettings {
  /** The fewest entries the ring has, before the channel's cap. */
  readonly minRingSize: number;
  /** The most entries the ring has, before the channel's cap. */
  readonly maxRingSize: number;
  /**
   * The request header whose value places an RPC on the ring (gRFC A76),
   * lowercase; `""` for the hash an xDS route gives (`extraPickInfo.hash`).
   */
  readonly requestHashHeader: string;
}

/**
 * The policy's settings from its config entry.
 *
 * @throws {Error} naming the field and the bad value.
 */
function parse(config: Record<string, unknown>): RingHashSettings {
  const size = (field: string, fallback: number): number => {
    const value = config[field] ?? 0;
    if (
      !Number.isInteger(value) || (value as number) < 0 ||
      (value as number) > MAX_RING_SIZE
    ) {
      throw new Error(
        `${field} must be an integer from 0 to ${MAX_RING_SIZE}, got ${
          shown(value)
        }`,
      );
    }
    return value === 0 ? fallback : value as number;
  };
  const minRingSize = size("minRingSize", DEFAULT_MIN_RING_SIZE);
  const maxRingSize = size("maxRingSize", DEFAULT_MAX_RING_SIZE);
  if (minRingSize > maxRingSize) {
    throw new Error(
      `minRingSize (${minRingSize}) must not be above maxRingSize (${maxRingSize})`,
    );
  }
  return {
    minRingSize,
    maxRingSize,
    requestHashHeader: hashHeader(config.requestHashHeader ?? ""),
  };
}

/**
 * A76's `request_hash_header`, lowercase, as gRPC metadata keys are.
 *
 * @throws {Error} for a value that is no header name, or a binary header's.
 */
function hashHeader(value: unknown): string {
  if (typeof value !== "string") {
    throw new Error(`requestHashHeader must be a string, got ${shown(value)}`);
  }
  const name = value.toLowerCase();
  if (name !== "" && !/^[0-9a-z_.-]+$/.test(name)) {
    throw new Error(
      `requestHashHeader must be a header name (letters, digits, "-", "_" and "."), got ${
        shown(value)
      }`,
    );
  }
  if (name.endsWith("-bin")) {
    throw new Error(
      `requestHashHeader must not name a binary header (one ending in -bin), got ${
        shown(value)
      }`,
    );
  }
  return name;
}

/**
 * An endpoint as a resolver may hand it to the policy: with a weight, as
 * grpc-js-xds's endpoints carry one, and a hash key (gRFC A76).
 */
export interface RingHashEndpoint extends experimental.Endpoint {
  /** Its share of the ring against the others'; 1 when left out. */
  readonly endpointWeight?: number;
  /**
   * What places it on the ring in place of its first address: a name that
   * outlives its address, as a StatefulSet's pod names do.
   */
  readonly hashKey?: string;
}

/** Where an endpoint is placed on the ring: its hash key, or first address. */
function hashKeyOf(endpoint: RingHashEndpoint): string {
  return typeof endpoint.hashKey === "string" && endpoint.hashKey !== ""
    ? endpoint.hashKey
    : experimental.subchannelAddressToString(endpoint.addresses[0]);
}

/** An endpoint's weight: a positive number, 1 when absent or not one. */
function weightOf(endpoint: RingHashEndpoint): number {
  const weight = endpoint.endpointWeight;
  return typeof weight === "number" && weight > 0 ? weight : 1;
}

/**
 * The ring: its entries' hashes, sorted, and each entry's endpoint, an
 * index into the endpoints it was built from.
 */
export interface Ring {
  readonly hashes: BigUint64Array;
  readonly owners: Uint32Array;
}

/**
 * Builds the ring of `endpoints` as gRFC A42 says: each endpoint's share of
 * the ring is its normalized weight; the ring has the smallest size, within
 * the bounds, at which the smallest share is a whole number of entries.
 *
 * @param minRingSize The bound below, already capped.
 * @param maxRingSize The bound above, already capped.
 */
export function buildRing(
  endpoints: readonly RingHashEndpoint[],
  minRingSize: number,
  maxRingSize: number,
): Ring {
  let weightSum = 0;
  for (const endpoint of endpoints) weightSum += weightOf(endpoint);
  let minShare = 1;
  for (const endpoint of endpoints) {
    minShare = Math.min(minShare, weightOf(endpoint) / weightSum);
  }
  const scale = Math.min(
    Math.ceil(minShare * minRingSize) / minShare,
    maxRingSize,
  );
  const hashes: bigint[] = [];
  const owners: number[] = [];
  let current = 0;
  let target = 0;
  endpoints.forEach((endpoint, i) => {
    const key = hashKeyOf(endpoint);
    target += scale * (weightOf(endpoint) / weightSum);
    for (let n = 0; current < target; n++, current++) {
      hashes.push(h64(`${key}_${n}`, 0n));
      owners.push(i);
    }
  });
  // A hash two entries share, a 2**-64 chance, goes to the first's owner.
  const ownerOf = new Map<bigint, number>();
  hashes.forEach((hash, i) => {
    if (!ownerOf.has(hash)) ownerOf.set(hash, owners[i]);
  });
  const sorted = BigUint64Array.from(hashes).sort();
  return {
    hashes: sorted,
    owners: Uint32Array.from(sorted, (hash) => ownerOf.get(hash)!),
  };
}

/**
 * The first ring entry at or after `hash`: its index, or the ring's length
 * past the last, which a walk taken modulo the length starts from entry 0.
 */
function firstAtOrAfter(hashes: BigUint64Array, hash: bigint): number {
  let low = 0;
  let high = hashes.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (hashes[middle] < hash) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** A uniformly random 64-bit hash. */
function randomHash(): bigint {
  const high = BigInt(Math.floor(Math.random() * 0x1_0000_0000));
  const low = BigInt(Math.floor(Math.random() * 0x1_0000_0000));
  return (high << 32n) | low;
}

const QUEUE: experimental.PickResult = {
  pickResultType: experimental.PickResultType.QUEUE,
  subchannel: null,
  status: null,
  onCallStarted: null,
  onCallEnded: null,
};

/**
 * Picks by the ring: the RPC's hash finds a ring entry in O(log ring
 * size), and its endpoint serves it, as gRFCs A42 and A61 say: READY, it is
 * picked; IDLE, it starts connecting and the RPC waits; CONNECTING, the RPC
 * waits; TRANSIENT_FAILURE, the walk goes on along the ring. An RPC without
 * the header gets a random hash, and goes to the first READY endpoint from
 * there, starting at most one connection on its way (A76). With every
 * endpoint in TRANSIENT_FAILURE, the RPC fails.
 */
export class RingHashPicker implements experimental.Picker {
  readonly #ring: Ring;
  readonly #children: readonly ChildState[];
  readonly #states: readonly ConnectivityState[];
  readonly #pickers: readonly experimental.Picker[];
  readonly #header: string;
  readonly #anyConnecting: boolean;
  readonly #failure: string;

  /**
   * @param ring The ring, whose owners index `children`.
   * @param children The endpoints' children, in the ring's order.
   * @param header As {@linkcode RingHashSettings.requestHashHeader}.
   * @param failure Why an RPC fails when every endpoint is down.
   */
  constructor(
    ring: Ring,
    children: readonly ChildState[],
    header: string,
    failure: string,
  ) {
    this.#ring = ring;
    this.#children = children;
    this.#states = children.map((child) => child.state);
    this.#pickers = children.map((child) => child.picker);
    this.#header = header;
    this.#anyConnecting = this.#states.includes(ConnectivityState.CONNECTING);
    this.#failure = failure;
  }

  /** The ring it picks by. */
  get ring(): Ring {
    return this.#ring;
  }

  /** Picks for one RPC by delegating to its endpoint's picker. */
  pick(pickArgs: experimental.PickArgs): experimental.PickResult {
    const hash = this.#requestHash(pickArgs);
    const start = firstAtOrAfter(this.#ring.hashes, hash ?? randomHash());
    return hash === null
      ? this.#pickRandom(start, pickArgs)
      : this.#pickKeyed(start, pickArgs);
  }

  /** The RPC's hash, or `null` for a random one. */
  #requestHash(pickArgs: experimental.PickArgs): bigint | null {
    if (this.#header === "") {
      const hash = pickArgs.extraPickInfo.hash;
      return hash === undefined ? null : BigInt(hash);
    }
    const values = pickArgs.metadata.get(this.#header);
    const joined = values.join(",");
    return joined === "" ? null : h64(joined, 0n);
  }

  #pickKeyed(
    start: number,
    pickArgs: experimental.PickArgs,
  ): experimental.PickResult {
    const { owners } = this.#ring;
    for (let i = 0; i < owners.length; i++) {
      const owner = owners[(start + i) % owners.length];
      switch (this.#states[owner]) {
        case ConnectivityState.READY:
          return this.#pickers[owner].pick(pickArgs);
        case ConnectivityState.IDLE:
          this.#children[owner].exitIdle();
          return QUEUE;
        case ConnectivityState.CONNECTING:
          return QUEUE;
      }
    }
    return this.#failed();
  }

  #pickRandom(
    start: number,
    pickArgs: experimental.PickArgs,
  ): experimental.PickResult {
    const { owners } = this.#ring;
    let requested = this.#anyConnecting;
    for (let i = 0; i < owners.length; i++) {
      const owner = owners[(start + i) % owners.length];
      const state = this.#states[owner];
      if (state === ConnectivityState.READY) {
        return this.#pickers[owner].pick(pickArgs);
      }
      if (!requested && state === ConnectivityState.IDLE) {
        requested = true;
        this.#children[owner].exitIdle();
      }
    }
    return requested ? QUEUE : this.#failed();
  }

  #failed(): experimental.PickResult {
    return {
      pickResultType: experimental.PickResultType.TRANSIENT_FAILURE,
      subchannel: null,
      status: {
        code: status.UNAVAILABLE,
        details: this.#failure,
        metadata: new Metadata(),
      },
      onCallStarted: null,
      onCallEnded: null,
    };
  }
}

/** What one channel's policy keeps: its ring, and what it was built from. */
interface RingState {
  ring: Ring | null;
  /** The children the ring was last handed, or `null`. */
  builtFrom: readonly ChildState[] | null;
  /**
   * Each endpoint's hash key and weight, and the bounds, of the ring's
   * build; `""` before the first.
   */
  signature: string;
}

/** What the ring depends on, as one string, to tell when to rebuild it. */
function signatureOf(
  children: readonly ChildState[],
  minRingSize: number,
  maxRingSize: number,
): string {
  const parts = [`${minRingSize} ${maxRingSize}`];
  for (const { endpoint } of children) {
    parts.push(`${hashKeyOf(endpoint)} ${weightOf(endpoint)}`);
  }
  return parts.join("\n");
}

/**
 * The ring for `children`: the last one, unless their endpoints, weights,
 * hash keys or the bounds changed. A new list of the same children, which
 * each resolver update makes, is compared, not rebuilt.
 */
function ringFor(
  instance: RingState,
  children: readonly ChildState[],
  settings: RingHashSettings,
  options: ChannelOptions,
): Ring {
  if (instance.builtFrom === children) return instance.ring!;
  const option = options[RING_SIZE_CAP];
  const cap = typeof option === "number" && option > 0
    ? option
    : DEFAULT_RING_SIZE_CAP;
  const min = Math.min(settings.minRingSize, cap);
  const max = Math.min(settings.maxRingSize, cap);
  const signature = signatureOf(children, min, max);
  if (signature !== instance.signature) {
    experimental.trace(
      LogVerbosity.DEBUG,
      TRACER,
      `building a ring for ${children.length} endpoints, ${min} to ${max} entries`,
    );
    instance.ring = buildRing(
      children.map((child) => child.endpoint),
      min,
      max,
    );
    instance.signature = signature;
  }
  instance.builtFrom = children;
  return instance.ring!;
}

/**
 * The aggregate state of gRFC A61: READY if any child is; else
 * TRANSIENT_FAILURE if two are; else CONNECTING if one is CONNECTING, or
 * one is in TRANSIENT_FAILURE among several; else IDLE if one is; else
 * TRANSIENT_FAILURE.
 */
function aggregate(children: readonly ChildState[]): ConnectivityState {
  const counts = [0, 0, 0, 0, 0];
  for (const child of children) counts[child.state]++;
  const { READY, CONNECTING, IDLE, TRANSIENT_FAILURE } = ConnectivityState;
  if (counts[READY] > 0) return READY;
  if (counts[TRANSIENT_FAILURE] > 1) return TRANSIENT_FAILURE;
  if (counts[CONNECTING] > 0) return CONNECTING;
  if (counts[TRANSIENT_FAILURE] === 1 && children.length > 1) {
    return CONNECTING;
  }
  if (counts[IDLE] > 0) return IDLE;
  return TRANSIENT_FAILURE;
}

/**
 * Starts connecting the first IDLE endpoint from a random place on the
 * ring, unless one is CONNECTING already: how the policy connects without
 * a pick (gRFC A61's TRANSIENT_FAILURE and CONNECTING, A117's exitIdle).
 */
function connectOne(ring: Ring, children: readonly ChildState[]): void {
  if (children.some((child) => child.state === ConnectivityState.CONNECTING)) {
    return;
  }
  const { owners } = ring;
  const start = Math.floor(Math.random() * owners.length);
  for (let i = 0; i < owners.length; i++) {
    const child = children[owners[(start + i) % owners.length]];
    if (child.state === ConnectivityState.IDLE) {
      child.exitIdle();
      return;
    }
  }
}

/**
 * The policy: the block (`EndpointSharding`) with a pick_first child per
 * endpoint that connects only when a pick or the policy asks, a ring built
 * again only when the endpoints change, and a {@linkcode RingHashPicker}
 * over it in every state.
 *
 * @example The config class parses the policy's entry and writes it back
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const config = ringHash.Config.createFromJson({
 *   requestHashHeader: "X-User",
 * });
 * assert.deepEqual(config.toJsonObject(), {
 *   ring_hash_experimental: {
 *     minRingSize: 1024,
 *     maxRingSize: 4096,
 *     requestHashHeader: "x-user",
 *   },
 * });
 * ```
 */
export const ringHash = definePolicy({
  name: RING_HASH,
  parse,
  lazy: true,
  instance: (): RingState => ({ ring: null, builtFrom: null, signature: "" }),
  // The block asks only once an update has been combined, so with a ring.
  exitIdle: (children, _settings, instance) =>
    connectOne(instance.ring!, children),
  combine(_state, children, settings, instance, options) {
    const ring = ringFor(instance, children, settings, options);
    const state = aggregate(children);
    if (
      state === ConnectivityState.TRANSIENT_FAILURE ||
      state === ConnectivityState.CONNECTING
    ) {
      connectOne(ring, children);
    }
    const failure = unreachable(RING_HASH, children);
    return {
      state,
      picker: new RingHashPicker(
        ring,
        children,
        settings.requestHashHeader,
        failure,
      ),
      errorMessage: state === ConnectivityState.TRANSIENT_FAILURE
        ? failure
        : null,
    };
  },
});

/**
 * Registers `ring_hash_experimental` with grpc-js, and nothing else. Call
 * it before creating a channel whose service config names the policy;
 * calling it again is harmless.
 *
 * @example A channel whose RPCs of one user reach one backend
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 *
 * registerRingHash();
 * const client = new grpc.Client(
 *   "dns:///backends.internal:50051",
 *   grpc.credentials.createInsecure(),
 *   {
 *     "grpc.service_config": JSON.stringify({
 *       loadBalancingConfig: [
 *         { ring_hash_experimental: { requestHashHeader: "x-user" } },
 *       ],
 *     }),
 *   },
 * );
 * client.close();
 * ```
 */
export function registerRingHash(): void {
  ringHash.register();
}
