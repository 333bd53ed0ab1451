/**
 * A fake ChannelControlHelper, fake subchannels and a fake clock, to drive
 * a policy's state changes and a resolver's timers deterministically,
 * without a network or real waiting.
 *
 * @module
 */
import {
  type ChannelInterface,
  connectivityState as ConnectivityState,
  experimental,
  Metadata,
} from "@grpc/grpc-js";
import type { Clock } from "../balancer/discovery/manual_resolver.ts";

type SubchannelInterface = experimental.SubchannelInterface;
type ConnectivityStateListener = experimental.ConnectivityStateListener;
type RealSubchannel = ReturnType<SubchannelInterface["getRealSubchannel"]>;

/** A subchannel whose state the test sets. */
export class FakeSubchannel implements SubchannelInterface {
  state: ConnectivityState = ConnectivityState.IDLE;
  connectCalls = 0;
  backoffResets = 0;
  refs = 0;
  readonly #listeners = new Set<ConnectivityStateListener>();

  /**
   * @param address Its `host:port`.
   * @param channel What {@linkcode FakeSubchannel.getChannel} returns, for
   *   a health-checking wrapper to run its stream on.
   */
  constructor(readonly address: string, readonly channel?: ChannelInterface) {}

  /** Moves to `state`, telling every listener, as a real subchannel does. */
  setState(state: ConnectivityState, error?: string): void {
    const previous = this.state;
    this.state = state;
    for (const listener of [...this.#listeners]) {
      listener(this, previous, state, 0, error);
    }
  }

  getConnectivityState(): ConnectivityState {
    return this.state;
  }
  addConnectivityStateListener(listener: ConnectivityStateListener): void {
    this.#listeners.add(listener);
  }
  removeConnectivityStateListener(listener: ConnectivityStateListener): void {
    this.#listeners.delete(listener);
  }
  startConnecting(): void {
    this.connectCalls++;
  }
  getAddress(): string {
    return this.address;
  }
  throttleKeepalive(): void {}
  ref(): void {
    this.refs++;
  }
  unref(): void {
    this.refs--;
  }
  getChannelzRef(): ReturnType<SubchannelInterface["getChannelzRef"]> {
    return { kind: "subchannel", id: 0, name: this.address } as ReturnType<
      SubchannelInterface["getChannelzRef"]
    >;
  }
  isHealthy(): boolean {
    return true;
  }
  addHealthStateWatcher(_watcher: (healthy: boolean) => void): void {}
  removeHealthStateWatcher(_watcher: (healthy: boolean) => void): void {}
  addDataWatcher(): void {}
  /** What the policy calls on the real subchannel: counted. */
  resetBackoff(): void {
    this.backoffResets++;
  }
  // The fake is its own real subchannel: wrappers compare real subchannels,
  // and the block's metrics listen to it.
  getRealSubchannel(): RealSubchannel {
    return this as unknown as RealSubchannel;
  }
  realSubchannelEquals(other: SubchannelInterface): boolean {
    return other.getRealSubchannel() === this.getRealSubchannel();
  }
  getCallCredentials(): never {
    throw new Error("not used by the policy");
  }
  getChannel(): ChannelInterface {
    if (!this.channel) throw new Error("not used by the policy");
    return this.channel;
  }
}

/** What the policy last told the channel. */
export interface Reported {
  readonly state: ConnectivityState;
  readonly picker: experimental.Picker;
  readonly errorMessage: string | null;
}

/** Records what a policy reports; hands out one fake subchannel per address. */
export class FakeHelper implements experimental.ChannelControlHelper {
  readonly subchannels = new Map<string, FakeSubchannel>();
  readonly reports: Reported[] = [];
  reresolutions = 0;

  /** @param channel Every subchannel's {@linkcode FakeSubchannel.channel}. */
  constructor(readonly channel?: ChannelInterface) {}

  createSubchannel(address: experimental.SubchannelAddress): FakeSubchannel {
    const key = experimental.subchannelAddressToString(address);
    let subchannel = this.subchannels.get(key);
    if (!subchannel) {
      subchannel = new FakeSubchannel(key, this.channel);
      this.subchannels.set(key, subchannel);
    }
    return subchannel;
  }
  updateState(
    state: ConnectivityState,
    picker: experimental.Picker,
    errorMessage: string | null,
  ): void {
    this.reports.push({ state, picker, errorMessage });
  }
  requestReresolution(): void {
    this.reresolutions++;
  }
  /** Channelz children added and not removed. */
  channelzChildren = 0;
  addChannelzChild(): void {
    this.channelzChildren++;
  }
  removeChannelzChild(): void {
    this.channelzChildren--;
  }

  /** The latest report. */
  get latest(): Reported {
    const latest = this.reports.at(-1);
    if (!latest) throw new Error("nothing reported yet");
    return latest;
  }

  /** The fake subchannel for `127.0.0.1:port`. */
  subchannel(port: number): FakeSubchannel {
    const subchannel = this.subchannels.get(`127.0.0.1:${port}`);
    if (!subchannel) throw new Error(`no subchannel for port ${port}`);
    return subchannel;
  }
}

/** An endpoint of one address, `127.0.0.1:port`. */
export function endpoint(port: number): experimental.Endpoint {
  return endpointOf([port]);
}

/** An endpoint of the addresses `127.0.0.1:port`, in the order given. */
export function endpointOf(ports: readonly number[]): experimental.Endpoint {
  return { addresses: ports.map((port) => ({ host: "127.0.0.1", port })) };
}

/** Arguments for a pick; the pickers under test do not read them. */
export const PICK_ARGS: experimental.PickArgs = {
  metadata: new Metadata(),
  extraPickInfo: {},
};

/** What `n` picks give: the subchannel address, or the result type's name. */
export function pickMany(picker: experimental.Picker, n: number): string[] {
  return Array.from({ length: n }, () => {
    const result = picker.pick(PICK_ARGS);
    return result.subchannel?.getAddress() ??
      experimental.PickResultType[result.pickResultType];
  });
}

/** One pick's full result. */
export function pickOne(picker: experimental.Picker): experimental.PickResult {
  return picker.pick(PICK_ARGS);
}

/** Lets pick_first's process.nextTick work run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * A {@linkcode Clock} the test moves by hand: timers run only in
 * {@linkcode FakeClock.advance}, in the order they fall due.
 */
export class FakeClock implements Clock {
  #now = 0;
  #nextId = 0;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): number {
    this.#timers.set(++this.#nextId, { at: this.#now + ms, callback });
    return this.#nextId;
  }

  clearTimeout(timer: unknown): void {
    this.#timers.delete(timer as number);
  }

  /** How many timers wait. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time on by `ms`, running each timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const [due] = [...this.#timers].filter(([, timer]) => timer.at <= end)
        .sort(([, a], [, b]) => a.at - b.at);
      if (due === undefined) break;
      const [id, { at, callback }] = due;
      this.#timers.delete(id);
      this.#now = at;
      callback();
    }
    this.#now = end;
  }
}
