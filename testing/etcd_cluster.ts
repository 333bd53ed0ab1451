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

/** One member's name and URLs. */
interface Member {
  readonly name: string;
  readonly client: string;
  readonly peer: string;
}

/** The cluster's members, each started, killed and asked in turn. */
class Cluster implements EtcdCluster {
  readonly #dir: string;
  readonly #members: readonly Member[];
  readonly #processes: (Deno.ChildProcess | null)[];

  constructor(dir: string, size: number) {
    this.#dir = dir;
    this.#members = Array.from({ length: size }, (_, i) => ({
      name: `m${i}`,
      client: `http://127.0.0.1:${freePort()}`,
      peer: `http://127.0.0.1:${freePort()}`,
    }));
    this.#processes = this.#members.map(() => null);
  }

  get endpoints(): string[] {
    return this.#members.map(({ client }) => client);
  }

  /** Starts every member; resolves once all are healthy. */
  async startAll(): Promise<void> {
    this.#members.forEach((_, i) => this.#spawn(i));
    await Promise.all(this.#members.map((_, i) => this.#untilHealthy(i)));
  }

  async kill(i: number): Promise<void> {
    const process = this.#processes[i];
    if (process === null) return;
    this.#processes[i] = null;
    kill(process, "SIGKILL");
    await process.status;
  }

  async start(i: number): Promise<void> {
    const { name } = this.#members[i];
    assert.equal(this.#processes[i], null, `etcd ${name} is running`);
    this.#spawn(i);
    await this.#untilHealthy(i);
  }

  async leader(): Promise<number> {
    const end = performance.now() + HEALTHY_MS;
    for (;;) {
      const statuses = await this.#statuses();
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
  }

  async keys(prefix: string): Promise<string[]> {
    // All keys from `prefix/` up to, not including, `prefix0`.
    const { kvs = [] } = await gateway(
      `${this.#running().client}/v3/kv/range`,
      {
        key: btoa(`${prefix}/`),
        range_end: btoa(`${prefix}0`),
        keys_only: true,
      },
    ) as { kvs?: { key: string }[] };
    return kvs.map(({ key }) => atob(key));
  }

  async put(key: string, value: string): Promise<void> {
    await gateway(`${this.#running().client}/v3/kv/put`, {
      key: btoa(key),
      value: btoa(value),
    });
  }

  /** Kills every member and removes their data. */
  async remove(): Promise<void> {
    await Promise.all(this.#members.map((_, i) => this.kill(i)));
    await Deno.remove(this.#dir, { recursive: true });
  }

  #running(): Member {
    return this.#members.find((_, i) => this.#processes[i] !== null)!;
  }

  /** Each member's status, `null` for one that is down or does not answer. */
  #statuses(): Promise<(MemberStatus | null)[]> {
    return Promise.all(
      this.#members.map(({ client }, i) =>
        this.#processes[i] === null
          ? null
          : (gateway(`${client}/v3/maintenance/status`, {}) as Promise<
            MemberStatus
          >).catch(() => null)
      ),
    );
  }

  #spawn(i: number): void {
    const { name, client, peer } = this.#members[i];
    const dir = this.#dir;
    const initialCluster = this.#members
      .map((member) => `${member.name}=${member.peer}`).join(",");
    this.#processes[i] = new Deno.Command("etcd", {
      args: [
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
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  async #untilHealthy(i: number): Promise<void> {
    const { name, client } = this.#members[i];
    const end = performance.now() + HEALTHY_MS;
    while (!(await healthy(client))) {
      const process = this.#processes[i];
      const status = process === null
        ? null
        : await Promise.race([process.status, sleep(100)]);
      if (status) assert.fail(`etcd ${name} exited: see ${this.#dir}`);
      if (performance.now() > end) {
        assert.fail(`etcd ${name}: not healthy in ${HEALTHY_MS} ms`);
      }
    }
  }
}

/** What `maintenance/status` answers, in part. */
type MemberStatus = { header: { member_id: string }; leader: string };

/** Runs `body` with a cluster of `size` members, stopped afterwards. */
export async function withEtcdCluster(
  size: number,
  body: (cluster: EtcdCluster) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "crr-etcd-" });
  const cluster = new Cluster(dir, size);
  try {
    await cluster.startAll();
    await body(cluster);
  } finally {
    await cluster.remove();
  }
}
