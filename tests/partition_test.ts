/**
 * A network partition without a reset: each backend is a test host in a
 * network namespace of its own, reached over a veth pair, with addresses
 * that exist only inside those namespaces and no route out of the machine.
 * Taking one host's link down drops its packets silently; only the client's
 * keepalive can tell.
 *
 * Needs root and iproute2; without them the tests are skipped, saying why.
 */
import assert from "node:assert/strict";
import { CLIENT_CHANNEL_OPTIONS, clientServiceConfig } from "../client.ts";
import {
  connect,
  failures,
  sleep,
  startLoad,
  untilPattern,
  untilServes,
} from "./helpers.ts";
import { kill } from "./processes.ts";

/** The test hosts' addresses; deno.json's test task may dial these only. */
const HOSTS = ["10.251.1.2", "10.251.2.2"];
const PORT = 50051;

/** Runs `ip <args>`; throws with its stderr if it fails. */
async function ip(...args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("ip", {
    args,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `ip ${args.join(" ")}: ${new TextDecoder().decode(stderr).trim()}`,
    );
  }
}

/** Why the tests cannot run here, or `null` if they can. */
async function unavailable(): Promise<string | null> {
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

/** A test host: a namespace, a veth pair, and an echo server inside. */
interface TestHost {
  /** `address:port` of its echo server. */
  readonly target: string;
  /** The veth end outside the namespace; down means a silent partition. */
  readonly link: string;
  remove(): Promise<void>;
}

async function createHost(index: number): Promise<TestHost> {
  const n = index + 1;
  const ns = `crr-test-${n}`;
  const link = `crr-h${n}`;
  const inside = `crr-n${n}`;
  const remove = async () => {
    if (server) {
      kill(server, "SIGKILL");
      await server.status;
    }
    await ip("link", "del", link).catch(() => {});
    await ip("netns", "del", ns).catch(() => {});
  };
  let server: Deno.ChildProcess | undefined;
  await remove();
  try {
    await ip("netns", "add", ns);
    await ip("link", "add", link, "type", "veth", "peer", "name", inside);
    await ip("link", "set", inside, "netns", ns);
    await ip("addr", "add", `10.251.${n}.1/30`, "dev", link);
    await ip("link", "set", link, "up");
    const exec = ["netns", "exec", ns, "ip"];
    await ip(...exec, "addr", "add", `${HOSTS[index]}/30`, "dev", inside);
    await ip(...exec, "link", "set", inside, "up");
    await ip(...exec, "link", "set", "lo", "up");
    const target = `${HOSTS[index]}:${PORT}`;
    server = new Deno.Command("ip", {
      args: [
        ...["netns", "exec", ns, Deno.execPath(), "run", "-q"],
        `--allow-net=${HOSTS[index]}`,
        "--allow-read=proto,node_modules",
        "--allow-sys=uid,gid",
        "--allow-env=GRPC_*",
        "tests/netns_server.ts",
        target,
      ],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const first = await server.stdout.pipeThrough(new TextDecoderStream())
      .getReader().read();
    assert.equal(first.value?.trim(), `serving on ${target}`);
    return { target, link, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

const reason = await unavailable();
if (reason !== null) console.log(`partition tests skipped: ${reason}`);

Deno.test({
  name:
    "partition: a silent link loss is noticed by keepalive within 3 s and traffic moves; link up and 1:2 resumes",
  ignore: reason !== null,
  async fn() {
    const hosts: TestHost[] = [];
    let close = () => {};
    try {
      hosts.push(await createHost(0), await createHost(1));
      const [first, second] = hosts.map((host) => host.target);
      const { client } = connect(
        [first, second],
        clientServiceConfig(3),
        CLIENT_CHANNEL_OPTIONS,
      );
      close = () => client.close();
      await untilServes(client, second);
      const load = startLoad(client, 8);
      await sleep(500);
      await ip("link", "set", hosts[1].link, "down");
      const downAt = performance.now();
      await sleep(4000);
      const sent = await load.stop();
      assert.deepEqual(failures(sent), []);
      const stuck = Math.max(...sent.map((x) => x.ms));
      assert.ok(stuck < 3000, `an RPC waited ${stuck} ms`);
      const later = sent.filter((x) => x.at > downAt + 3000);
      assert.ok(later.length > 20, `${later.length} RPCs 3 s after`);
      assert.deepEqual(later.filter((x) => x.server !== first), []);

      await ip("link", "set", hosts[1].link, "up");
      await untilPattern(client, first, second);
    } finally {
      // Servers first: see processes.ts on closing busy channels.
      for (const host of hosts) await host.remove();
      close();
    }
  },
});
