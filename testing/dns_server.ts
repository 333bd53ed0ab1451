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

/** Runs `body` with a DNS server, which is stopped afterwards. */
export async function withDnsServer(
  body: (dns: DnsServer) => Promise<void>,
): Promise<void> {
  // TCP's free port; dnsmasq takes the same one for UDP.
  const port = freePort();
  const address = `127.0.0.1:${port}`;
  const hostsDir = await Deno.makeTempDir({ dir: "/tmp", prefix: "crr-dns-" });
  const txt = new Map<string, string>();
  const resolver = new Resolver();
  resolver.setServers([address]);
  let process: Deno.ChildProcess | null = null;
  let drained: Promise<void> = Promise.resolve();
  let refusing = false;

  const start = async () => {
    // With no record and no local domain, and no upstream to ask, dnsmasq
    // refuses every query.
    const config = [
      `port=${port}`,
      "listen-address=127.0.0.1",
      "bind-interfaces",
      "no-resolv",
      "no-hosts",
      "no-poll",
      ...(refusing ? [] : [
        "local=/test/",
        `hostsdir=${hostsDir}`,
        ...[...txt].map(([name, text]) =>
          `txt-record=${name},"${text.replaceAll('"', '\\"')}"`
        ),
      ]),
    ];
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
    process = child;
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(config.join("\n") + "\n"));
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
    drained = (async () => {
      for await (const _ of log);
    })();
  };
  const stop = async () => {
    if (process === null) return;
    kill(process, "SIGTERM");
    await process.status;
    await drained;
    process = null;
  };
  const restart = async () => {
    await stop();
    await start();
  };

  await start();
  try {
    await body({
      address,
      async setHosts(name, addresses) {
        await Deno.writeTextFile(
          `${hostsDir}/${name}`,
          addresses.map((a) => `${a} ${name}\n`).join(""),
        );
        // dnsmasq reads the folder when it changes; wait until it answers so.
        const want = [...addresses].sort().join(",");
        const end = performance.now() + 5000;
        while (performance.now() < end) {
          const got = await resolver.resolve4(name).catch(() => []);
          if ([...got].sort().join(",") === want) return;
          await sleep(20);
        }
        throw new Error(`dnsmasq did not answer ${name} with ${want}`);
      },
      async setTxt(name, text) {
        txt.set(name, text);
        await restart();
      },
      async refuse() {
        refusing = true;
        await restart();
      },
      async answer() {
        refusing = false;
        await restart();
      },
    });
  } finally {
    await stop();
    await Deno.remove(hostsDir, { recursive: true });
  }
}
