/**
 * A real DNS server for the tests: dnsmasq on a free loopback port, given
 * its config on stdin. A records come from files in a folder it watches, so
 * they change while clients query, with no gap; a change of TXT records, or
 * to refusing, starts it again, between the tests' clients. It answers only
 * for `.test` names and forwards nothing, so no query leaves the machine.
 *
 * Needs dnsmasq (Debian's `dnsmasq-base`); {@linkcode dnsServerUnavailable}
 * says why not.
 *
 * @module
 */
import { Resolver } from "node:dns/promises";
import { kill, lineReader } from "./processes.ts";
import { freePort } from "./ports.ts";
import { notInstalled } from "./installed.ts";
import { sleep } from "./wait.ts";

/** A TXT record's text holding `serviceConfig` for every client. */
export function grpcConfig(serviceConfig: object): string {
  return `grpc_config=${JSON.stringify([{ serviceConfig }])}`;
}

/** Why no DNS server can be started here, or `null` if one can. */
export function dnsServerUnavailable(): Promise<string | null> {
  return notInstalled(
    "dnsmasq",
    ["--version"],
    "dnsmasq (Debian's dnsmasq-base) is not installed",
  );
}

/** A running dnsmasq, and what it answers. */
export interface DnsServer {
  /** `127.0.0.1:port`, the authority of a `dns://` target. */
  readonly address: string;
  /**
   * Answers `name` with these A records, or with NXDOMAIN for none, at once
   * and without a restart: a client may be asking.
   */
  setHosts(name: string, addresses: readonly string[]): Promise<void>;
  /** Answers `name`'s TXT query with `text`; restarts the server. */
  setTxt(name: string, text: string): Promise<void>;
  /**
   * Refuses every query (REFUSED), as a DNS server does that lost its zone
   * or its upstream, until {@linkcode DnsServer.answer}; restarts the server.
   * A server that does not answer at all (stopped, or restarting while a
   * client asks) is no test of ours: Deno's resolver then asks the system's
   * nameservers too (docs/known_issues.md), off the machine.
   */
  refuse(): Promise<void>;
  /** Answers again, as before {@linkcode DnsServer.refuse}. */
  answer(): Promise<void>;
}

/** dnsmasq on one port, started again whenever its config changes. */
class Dnsmasq implements DnsServer {
  readonly address: string;
  readonly #port: number;
  readonly #hostsDir: string;
  readonly #txt = new Map<string, string>();
  readonly #resolver = new Resolver();
  #process: Deno.ChildProcess | null = null;
  #drained: Promise<void> = Promise.resolve();
  #refusing = false;

  constructor(port: number, hostsDir: string) {
    this.#port = port;
    this.#hostsDir = hostsDir;
    this.address = `127.0.0.1:${port}`;
    this.#resolver.setServers([this.address]);
  }

  async setHosts(name: string, addresses: readonly string[]): Promise<void> {
    await Deno.writeTextFile(
      `${this.#hostsDir}/${name}`,
      addresses.map((a) => `${a} ${name}\n`).join(""),
    );
    // dnsmasq reads the folder when it changes; wait until it answers so.
    const want = [...addresses].sort().join(",");
    const end = performance.now() + 5000;
    while (performance.now() < end) {
      const got = await this.#resolver.resolve4(name).catch(() => []);
      if ([...got].sort().join(",") === want) return;
      await sleep(20);
    }
    throw new Error(`dnsmasq did not answer ${name} with ${want}`);
  }

  async setTxt(name: string, text: string): Promise<void> {
    this.#txt.set(name, text);
    await this.restart();
  }

  async refuse(): Promise<void> {
    this.#refusing = true;
    await this.restart();
  }

  async answer(): Promise<void> {
    this.#refusing = false;
    await this.restart();
  }

  /** Starts dnsmasq; resolves once it says it has started. */
  async start(): Promise<void> {
    const child = new Deno.Command("dnsmasq", {
      args: [
        "--keep-in-foreground",
        "--conf-file=-",
        "--pid-file=",
        "--user=root",
        "--log-facility=-",
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#process = child;
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(this.#config() + "\n"));
    await writer.close();
    // Ready once it says it started: it has bound its sockets by then. A
    // query sent before would meet a closed port, and Deno's resolver would
    // then ask the system's nameservers; a TCP probe would leave a forked
    // dnsmasq holding the port.
    const log = lineReader(child.stderr);
    const seen: string[] = [];
    for await (const line of log) {
      seen.push(line);
      if (line.includes("started, version")) break;
    }
    if (!seen.at(-1)?.includes("started, version")) {
      throw new Error(`dnsmasq did not start: ${seen.join(" | ")}`);
    }
    this.#drained = (async () => {
      for await (const _ of log);
    })();
  }

  async stop(): Promise<void> {
    if (this.#process === null) return;
    kill(this.#process, "SIGTERM");
    await this.#process.status;
    await this.#drained;
    this.#process = null;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  #config(): string {
    // With no record and no local domain, and no upstream to ask, dnsmasq
    // refuses every query.
    return [
      `port=${this.#port}`,
      "listen-address=127.0.0.1",
      "bind-interfaces",
      "no-resolv",
      "no-hosts",
      "no-poll",
      ...(this.#refusing ? [] : [
        "local=/test/",
        `hostsdir=${this.#hostsDir}`,
        ...[...this.#txt].map(([name, text]) =>
          `txt-record=${name},"${text.replaceAll('"', '\\"')}"`
        ),
      ]),
    ].join("\n");
  }
}

/** Runs `body` with a DNS server, which is stopped afterwards. */
export async function withDnsServer(
  body: (dns: DnsServer) => Promise<void>,
): Promise<void> {
  const hostsDir = await Deno.makeTempDir({ dir: "/tmp", prefix: "crr-dns-" });
  // TCP's free port; dnsmasq takes the same one for UDP.
  const dns = new Dnsmasq(freePort(), hostsDir);
  await dns.start();
  try {
    await body(dns);
  } finally {
    await dns.stop();
    await Deno.remove(hostsDir, { recursive: true });
  }
}
