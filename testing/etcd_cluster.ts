/**
 * A real etcd cluster for the tests: members on free loopback ports, each in
 * a data folder of its own, so that a member can be killed and started again
 * with what it knew. It is asked about itself with etcdctl, as an operator
 * would. A secure cluster serves TLS only, asks every client for a
 * certificate (`--client-cert-auth`), and has auth enabled, with a reader
 * and a writer user on `services/`, made with etcdctl.
 *
 * Needs etcd and etcdctl (Debian's `etcd-server` and `etcd-client`);
 * {@linkcode etcdUnavailable} says why not.
 *
 * @module
 */
import assert from "node:assert/strict";
import { freePort } from "./ports.ts";
import { notInstalled } from "./installed.ts";
import { sleep } from "./wait.ts";
import { kill } from "./processes.ts";
import type { Certs } from "./certs.ts";

/** Why no etcd cluster can be started here, or `null` if one can. */
export async function etcdUnavailable(): Promise<string | null> {
  return await notInstalled(
    "etcd",
    ["--version"],
    "etcd (Debian's etcd-server) is not installed",
  ) ?? await notInstalled(
    "etcdctl",
    ["version"],
    "etcdctl (Debian's etcd-client) is not installed",
  );
}

/** An etcd user: its name and password. */
export interface EtcdUser {
  readonly name: string;
  readonly password: string;
}

/** A secure cluster's certificates and users. */
export interface EtcdSecurity {
  /** The certificates: the members serve `server` (or `serverCert`), trust `ca`. */
  readonly certs: Certs;
  /** The members' certificate, if not `certs.server`. */
  readonly serverCert?: { readonly cert: string; readonly key: string };
  /** etcd's `--auth-token-ttl`, in seconds (etcd's default: 300). */
  readonly tokenTtlSeconds?: number;
}

/** A running cluster. */
export interface EtcdCluster {
  /** Every member's client URL: `http://127.0.0.1:port`, `https://localhost:port` if secure. */
  readonly endpoints: readonly string[];
  /** A secure cluster's users: read on `services/`, readwrite on it. */
  readonly users: { readonly reader: EtcdUser; readonly writer: EtcdUser };
  /**
   * The programs' flags that reach the cluster: `--etcd-endpoints`, and for
   * a secure one the CA and the client certificate.
   */
  readonly flags: readonly string[];
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
  /** Deletes `key`, as `etcdctl del` would. */
  delete(key: string): Promise<void>;
}

/** How long a member may take to be healthy: an election is about 1 s. */
const HEALTHY_MS = 15_000;

/** One member's name and URLs. */
interface Member {
  readonly name: string;
  /** Where it listens for clients. */
  readonly listen: string;
  /** Its client URL, as clients give it. */
  readonly client: string;
  readonly peer: string;
}

/** A password no test knows in advance. */
function password(): string {
  return crypto.randomUUID();
}

/** The cluster's members, each started, killed and asked in turn. */
class Cluster implements EtcdCluster {
  readonly #dir: string;
  readonly #members: readonly Member[];
  readonly #processes: (Deno.ChildProcess | null)[];
  readonly #security: EtcdSecurity | null;
  readonly #root: EtcdUser = { name: "root", password: password() };
  readonly users = {
    reader: { name: "reader", password: password() },
    writer: { name: "writer", password: password() },
  };
  /** Whether auth is on, so that etcdctl must log in as root. */
  #auth = false;

  constructor(dir: string, size: number, security: EtcdSecurity | null) {
    this.#dir = dir;
    this.#security = security;
    const scheme = security === null ? "http" : "https";
    this.#members = Array.from({ length: size }, (_, i) => {
      const port = freePort();
      return {
        name: `m${i}`,
        listen: `${scheme}://127.0.0.1:${port}`,
        // Over TLS a member is verified by name: Deno cannot verify an IP.
        client: `${scheme}://${
          security === null ? "127.0.0.1" : "localhost"
        }:${port}`,
        peer: `http://127.0.0.1:${freePort()}`,
      };
    });
    this.#processes = this.#members.map(() => null);
  }

  get endpoints(): string[] {
    return this.#members.map(({ client }) => client);
  }

  get flags(): string[] {
    const endpoints = ["--etcd-endpoints", this.endpoints.join(",")];
    if (this.#security === null) return endpoints;
    const { ca, client } = this.#security.certs;
    return [
      ...endpoints,
      ...[
        "--etcd-ca",
        ca,
        "--etcd-cert",
        client.cert,
        "--etcd-key",
        client.key,
      ],
    ];
  }

  /** Starts every member; resolves once all are healthy; secures it if asked. */
  async startAll(): Promise<void> {
    this.#members.forEach((_, i) => this.#spawn(i));
    await Promise.all(this.#members.map((_, i) => this.#untilHealthy(i)));
    if (this.#security !== null) await this.#addUsers();
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
      const leading = await Promise.all(
        this.#members.map((member, i) =>
          this.#processes[i] === null ? false : this.#leads(member)
        ),
      );
      if (leading.filter(Boolean).length === 1) return leading.indexOf(true);
      if (performance.now() > end) {
        assert.fail(`etcd: no leader in ${HEALTHY_MS} ms`);
      }
      await sleep(100);
    }
  }

  async keys(prefix: string): Promise<string[]> {
    const out = await this.#etcdctl(
      this.#running(),
      "get",
      "--prefix",
      "--keys-only",
      `${prefix}/`,
    );
    return out.split("\n").filter((line) => line !== "");
  }

  async put(key: string, value: string): Promise<void> {
    await this.#etcdctl(this.#running(), "put", key, value);
  }

  async delete(key: string): Promise<void> {
    await this.#etcdctl(this.#running(), "del", key);
  }

  /** Kills every member and removes their data. */
  async remove(): Promise<void> {
    await Promise.all(this.#members.map((_, i) => this.kill(i)));
    await Deno.remove(this.#dir, { recursive: true });
  }

  /** Root, then the reader and writer users and roles; then auth on. */
  async #addUsers(): Promise<void> {
    const member = this.#members[0];
    const { reader, writer } = this.users;
    const commands = [
      ["user", "add", `root:${this.#root.password}`],
      ["role", "add", "reader"],
      [
        "role",
        "grant-permission",
        "reader",
        "--prefix=true",
        "read",
        "services/",
      ],
      ["role", "add", "writer"],
      [
        "role",
        "grant-permission",
        "writer",
        "--prefix=true",
        "readwrite",
        "services/",
      ],
      ["user", "add", `reader:${reader.password}`],
      ["user", "grant-role", "reader", "reader"],
      ["user", "add", `writer:${writer.password}`],
      ["user", "grant-role", "writer", "writer"],
      ["auth", "enable"],
    ];
    for (const command of commands) await this.#etcdctl(member, ...command);
    this.#auth = true;
  }

  /** Whether `member` says that it leads; `false` if it does not answer. */
  async #leads(member: Member): Promise<boolean> {
    try {
      // endpoint, ID, version, DB size, is leader, ...
      const out = await this.#etcdctl(
        member,
        "endpoint",
        "status",
        "-w",
        "simple",
      );
      return out.split(", ")[4] === "true";
    } catch {
      return false;
    }
  }

  #running(): Member {
    return this.#members.find((_, i) => this.#processes[i] !== null)!;
  }

  /** Runs etcdctl against `member`, as root once auth is on; its stdout. */
  async #etcdctl(member: Member, ...args: string[]): Promise<string> {
    const flags = [`--endpoints=${member.client}`, "--dial-timeout=2s"];
    if (this.#security !== null) {
      const { ca, client } = this.#security.certs;
      flags.push(
        `--cacert=${ca}`,
        `--cert=${client.cert}`,
        `--key=${client.key}`,
      );
      // A cluster given a certificate of its own is given one that clients
      // must refuse, as an expired one: etcdctl, the operator, looks past it.
      if (this.#security.serverCert !== undefined) {
        flags.push("--insecure-skip-tls-verify");
      }
    }
    if (this.#auth) flags.push(`--user=root:${this.#root.password}`);
    const { code, stdout, stderr } = await new Deno.Command("etcdctl", {
      args: [...flags, ...args],
      env: { ETCDCTL_API: "3" },
      stdin: "null",
    }).output();
    const decoder = new TextDecoder();
    if (code !== 0) {
      throw new Error(`etcdctl ${args.join(" ")}: ${decoder.decode(stderr)}`);
    }
    return decoder.decode(stdout);
  }

  #spawn(i: number): void {
    const { name, listen, client, peer } = this.#members[i];
    const dir = this.#dir;
    const initialCluster = this.#members
      .map((member) => `${member.name}=${member.peer}`).join(",");
    this.#processes[i] = new Deno.Command("etcd", {
      args: [
        `--name=${name}`,
        `--data-dir=${dir}/${name}`,
        `--listen-client-urls=${listen}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-token=${dir}`,
        "--logger=zap",
        `--log-outputs=${dir}/${name}.log`,
        ...this.#securityFlags(),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  /** A secure member's TLS and token flags. */
  #securityFlags(): string[] {
    if (this.#security === null) return [];
    const { certs, serverCert = certs.server, tokenTtlSeconds } =
      this.#security;
    return [
      `--cert-file=${serverCert.cert}`,
      `--key-file=${serverCert.key}`,
      `--trusted-ca-file=${certs.ca}`,
      "--client-cert-auth",
      ...(tokenTtlSeconds === undefined
        ? []
        : [`--auth-token-ttl=${tokenTtlSeconds}`]),
    ];
  }

  async #untilHealthy(i: number): Promise<void> {
    const member = this.#members[i];
    const end = performance.now() + HEALTHY_MS;
    while (!(await this.#healthy(member))) {
      const process = this.#processes[i];
      const status = process === null
        ? null
        : await Promise.race([process.status, sleep(100)]);
      if (status) assert.fail(`etcd ${member.name} exited: see ${this.#dir}`);
      if (performance.now() > end) {
        assert.fail(`etcd ${member.name}: not healthy in ${HEALTHY_MS} ms`);
      }
    }
  }

  /** Whether `member` is up and sees a leader. */
  async #healthy(member: Member): Promise<boolean> {
    try {
      await this.#etcdctl(member, "endpoint", "health");
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Runs `body` with a cluster of `size` members, stopped afterwards; a
 * secure one with `security`.
 */
export async function withEtcdCluster(
  size: number,
  body: (cluster: EtcdCluster) => Promise<void>,
  security: EtcdSecurity | null = null,
): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "crr-etcd-" });
  const cluster = new Cluster(dir, size, security);
  try {
    await cluster.startAll();
    await body(cluster);
  } finally {
    await cluster.remove();
  }
}
