/**
 * Test hosts: each an echo server (`server.ts --listen-anywhere`) in a
 * network namespace of its own, reached from the test over a veth pair, with
 * an address in {@linkcode TEST_RANGE}.
 *
 * No packet for a test host may leave the machine. While the hosts exist, a
 * blackhole route holds the whole range: only the hosts' own links (more
 * specific routes) carry its traffic, and when a link is gone its traffic
 * stops at the blackhole instead of following the default route out.
 *
 * Needs root and iproute2; {@linkcode testHostsUnavailable} says why not.
 *
 * @module
 */
import assert from "node:assert/strict";
import { denoRunArgs, kill, lineReader } from "./processes.ts";

/** The test hosts' range; the blackhole route covers all of it. */
export const TEST_RANGE = "10.251.0.0/16";

/** The address of test host `n` (1-based); deno.json's test task may dial these. */
export function hostAddress(n: number): string {
  return `10.251.${n}.2`;
}

const decoder = new TextDecoder();

/** Runs `ip <args>`; resolves to its stdout, throws with its stderr. */
export async function ip(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("ip", {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`ip ${args.join(" ")}: ${decoder.decode(stderr).trim()}`);
  }
  return decoder.decode(stdout);
}

/** Why test hosts cannot be made here, or `null` if they can. */
export async function testHostsUnavailable(): Promise<string | null> {
  if (Deno.uid() !== 0) return "they need root to create network namespaces";
  try {
    await ip("-V");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return "iproute2 (the ip command) is not installed";
    }
    throw error;
  }
  return null;
}

/**
 * Asserts where the machine would send a packet to `address` of the test
 * range: over host `n`'s own link, or, for `n` = `null` (no host there),
 * into the range's blackhole route. Either way, never via a gateway.
 */
export async function assertRouteStaysHere(
  address: string,
  n: number | null,
): Promise<void> {
  if (n !== null) {
    const route = await ip("route", "get", address);
    assert.match(route, new RegExp(`^${address} dev ${names(n).link} `));
    assert.doesNotMatch(route, / via /);
    return;
  }
  assert.match(
    await ip("route", "show", "type", "blackhole"),
    new RegExp(`^blackhole ${TEST_RANGE.replaceAll(".", "\\.")}`, "m"),
  );
  // The kernel answers a lookup that meets a blackhole with EINVAL.
  await assert.rejects(ip("route", "get", address), /Invalid argument/);
}

/** A test host: a namespace, a veth pair, and an echo server inside. */
export interface TestHost {
  /** `address:port` of its echo server. */
  readonly target: string;
  /**
   * Cuts the host off silently, both ways: each end of the link gets a
   * link-layer address for the other that no interface has, so every frame
   * is dropped by the receiving end (existing connections and new SYNs
   * alike), the routes stay, and nothing answers or resets.
   */
  cut(): Promise<void>;
  /** Undoes {@linkcode TestHost.cut}: both ends learn the real address again. */
  heal(): Promise<void>;
  /**
   * Stops the host's server with SIGTERM, as a rollout does: NOT_SERVING,
   * the drain, then no new connections. Resolves to its exit code.
   */
  terminate(): Promise<number>;
}

/** A link-layer address that no interface here has. */
const NOWHERE = "02:00:00:00:00:01";

function names(n: number) {
  return { ns: `crr-test-${n}`, link: `crr-h${n}`, inside: `crr-n${n}` };
}

/** Starts test host `n` with its echo server on `port`, given `serverArgs`. */
async function createHost(
  n: number,
  port: number,
  started: Deno.ChildProcess[],
  serverArgs: readonly string[],
): Promise<TestHost> {
  const { ns, link, inside } = names(n);
  const address = hostAddress(n);
  const gateway = `10.251.${n}.1`;
  const inNs = (...args: string[]) => ip("netns", "exec", ns, "ip", ...args);
  await ip("netns", "add", ns);
  await ip("link", "add", link, "type", "veth", "peer", "name", inside);
  await ip("link", "set", inside, "netns", ns);
  await ip("addr", "add", `${gateway}/30`, "dev", link);
  await ip("link", "set", link, "up");
  await inNs("addr", "add", `${address}/30`, "dev", inside);
  await inNs("link", "set", inside, "up");
  await inNs("link", "set", "lo", "up");
  const target = `${address}:${port}`;
  // `ip netns exec` execs the server: signals reach it directly.
  const server = new Deno.Command("ip", {
    args: [
      ...["netns", "exec", ns, Deno.execPath()],
      ...denoRunArgs("server.ts", address),
      ...["--addrs", target, "--listen-anywhere", ...serverArgs],
    ],
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  started.push(server);
  const first = await lineReader(server.stdout).next();
  assert.equal(first.value, `serving on ${target}`);
  const neighbours = (mac: string | null) =>
    Promise.all([
      mac === null
        ? ip("neigh", "del", address, "dev", link)
        : ip("neigh", "replace", address, "lladdr", mac, "dev", link),
      mac === null
        ? inNs("neigh", "del", gateway, "dev", inside)
        : inNs("neigh", "replace", gateway, "lladdr", mac, "dev", inside),
    ]);
  return {
    target,
    cut: async () => void await neighbours(NOWHERE),
    heal: async () => void await neighbours(null),
    async terminate() {
      kill(server, "SIGTERM");
      return (await server.status).code;
    },
  };
}

/**
 * A shell script that removes hosts `numbers`, whatever runs in them and the
 * blackhole route, each step whether or not the last one found anything.
 */
function removal(numbers: readonly number[]): string {
  const commands = [
    ...numbers.flatMap((n) => [
      `ip netns pids ${names(n).ns} | xargs -r kill -9`,
      `ip link del ${names(n).link}`,
      `ip netns del ${names(n).ns}`,
    ]),
    `ip route del blackhole ${TEST_RANGE}`,
  ];
  return `${commands.join(" 2>/dev/null; ")} 2>/dev/null; true`;
}

/**
 * A process that runs {@linkcode removal} once its stdin closes: when the
 * test closes it, and also when the test process dies (a failed assertion,
 * Ctrl-C, which Deno's test runner answers by exiting, or SIGKILL).
 */
function cleanupGuard(numbers: readonly number[]): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: ["-c", `cat >/dev/null; ${removal(numbers)}`],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/**
 * Creates `count` test hosts behind the range's blackhole route, runs `body`
 * with them (their servers started with `serverArgs` too), then removes the
 * hosts and the route, however the test ends.
 * Leftovers of a run that could not clean up are removed first.
 */
export async function withTestHosts(
  count: number,
  port: number,
  body: (hosts: TestHost[]) => Promise<void>,
  serverArgs: readonly string[] = [],
): Promise<void> {
  const numbers = Array.from({ length: count }, (_, i) => i + 1);
  await new Deno.Command("sh", { args: ["-c", removal(numbers)] }).output();
  const guard = cleanupGuard(numbers);
  const servers: Deno.ChildProcess[] = [];
  try {
    await ip("route", "replace", "blackhole", TEST_RANGE);
    const hosts: TestHost[] = [];
    for (const n of numbers) {
      hosts.push(await createHost(n, port, servers, serverArgs));
    }
    await body(hosts);
  } finally {
    for (const server of servers) {
      kill(server, "SIGKILL");
      await server.status;
    }
    await guard.stdin.close();
    await guard.status;
  }
}
