/**
 * A real etcd cluster for the tests: three members on free loopback ports,
 * each in a data folder of its own, so that a member can be killed and
 * started again with what it knew. It is asked about itself over etcd's
 * JSON gateway, so the tests need no etcd client of their own.
 *
 * Needs etcd (Debian's `etcd-server`); {@linkcode etcdUnavailable} says why
 * not.
 *
 * @module
 */
import assert from "node:assert/strict";
import { freePort } from "./ports.ts";
import { notInstalled } from "./installed.ts";
import { sleep } from "./wait.ts";
import { kill } from "./processes.ts";

/** Why no etcd cluster can be started here, or `null` if one can. */
export function etcdUnavailable(): Promise<string | null> {
  return notInstalled(
    "etcd",
    ["--version"],
    "etcd (Debian's etcd-server) is not installed",
  );
}

/** A running cluster. */
export interface EtcdCluster {
  /** Every member's client URL, `http://127.0.0.1:port`. */
  readonly endpoints: readonly string[];
  /** SIGKILLs member `i`. */
  kill(i: number): Promise<void>;
  /** Starts member `i` again, on its data; resolves once it is healthy. */
  start(i: number): Promise<void>;
  /**
   * The index of the member that leads now, once the running members agree
   * on one of them: after the leader is killed, once a new one is elected.
   */
  leader(): Promise<number>;
  /** The keys under `prefix`, in order, as etcd has them now. */
  keys(prefix: string): Promise<string[]>;
  /** Puts `value` under `key`, as `etcdctl put` would. */
  put(key: string, value: string): Promise<void>;
}

/** How long a member may take to be healthy: an election is about 1 s. */
const HEALTHY_MS = 15_000;

/** POSTs `body` to etcd's JSON gateway at `url`; resolves to the answer. */
async function gateway(url: string, body: unknown): Promise<unknown> {
  const response = await fetch(url, {
    method: "POST",
    body: JSON.stringify(body),
  });
  return await response.json();
}

/** Whether the member at `endpoint` is up and sees a leader. */
async function healthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`);
    return (await response.json()).health === "true";
  } catch {
    return false;
  }
}

/** Runs `body` with a cluster of `size` members, stopped afterwards. */
export async function withEtcdCluster(
  size: number,
  body: (cluster: EtcdCluster) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "crr-etcd-" });
  const members = Array.from({ length: size }, (_, i) => ({
    name: `m${i}`,
    client: `http://127.0.0.1:${freePort()}`,
    peer: `http://127.0.0.1:${freePort()}`,
  }));
  const initialCluster = members.map(({ name, peer }) => `${name}=${peer}`)
    .join(",");
  const processes: (Deno.ChildProcess | null)[] = members.map(() => null);

  const spawn = (i: number) => {
    const { name, client, peer } = members[i];
    const args = [
      `--name=${name}`,
      `--data-dir=${dir}/${name}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-token=${dir}`,
      "--logger=zap",
      `--log-outputs=${dir}/${name}.log`,
    ];
    processes[i] = new Deno.Command("etcd", {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  };
  const untilHealthy = async (i: number) => {
    const end = performance.now() + HEALTHY_MS;
    while (!(await healthy(members[i].client))) {
      const status = processes[i] === null
        ? null
        : await Promise.race([processes[i]!.status, sleep(100)]);
      if (status) assert.fail(`etcd ${members[i].name} exited: see ${dir}`);
      if (performance.now() > end) {
        assert.fail(`etcd ${members[i].name}: not healthy in ${HEALTHY_MS} ms`);
      }
    }
  };
  const stop = async (i: number) => {
    const process = processes[i];
    if (process === null) return;
    processes[i] = null;
    kill(process, "SIGKILL");
    await process.status;
  };

  try {
    members.forEach((_, i) => spawn(i));
    await Promise.all(members.map((_, i) => untilHealthy(i)));
    await body({
      endpoints: members.map(({ client }) => client),
      kill: stop,
      async start(i) {
        assert.equal(processes[i], null, `etcd ${members[i].name} is running`);
        spawn(i);
        await untilHealthy(i);
      },
      async leader() {
        type Status = { header: { member_id: string }; leader: string };
        const end = performance.now() + HEALTHY_MS;
        for (;;) {
          const statuses = await Promise.all(
            members.map(({ client }, i) =>
              processes[i] === null
                ? null
                : (gateway(`${client}/v3/maintenance/status`, {}) as Promise<
                  Status
                >).catch(() => null)
            ),
          );
          const running = statuses.filter((status) => status !== null);
          const leader = running[0]?.leader;
          const i = statuses.findIndex((status) =>
            status?.header.member_id === leader
          );
          if (i >= 0 && running.every((status) => status.leader === leader)) {
            return i;
          }
          if (performance.now() > end) {
            assert.fail(`etcd: no leader in ${HEALTHY_MS} ms`);
          }
          await sleep(100);
        }
      },
      async keys(prefix) {
        const running = members.filter((_, i) => processes[i] !== null);
        // All keys from `prefix/` up to, not including, `prefix0`.
        const { kvs = [] } = await gateway(`${running[0].client}/v3/kv/range`, {
          key: btoa(`${prefix}/`),
          range_end: btoa(`${prefix}0`),
          keys_only: true,
        }) as { kvs?: { key: string }[] };
        return kvs.map(({ key }) => atob(key));
      },
      async put(key, value) {
        const running = members.find((_, i) => processes[i] !== null)!;
        await gateway(`${running.client}/v3/kv/put`, {
          key: btoa(key),
          value: btoa(value),
        });
      },
    });
  } finally {
    await Promise.all(members.map((_, i) => stop(i)));
    await Deno.remove(dir, { recursive: true });
  }
}
