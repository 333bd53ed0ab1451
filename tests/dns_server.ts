/**
 * A real DNS server for the tests: dnsmasq on a free loopback port, given
 * its config on stdin (A and TXT records included) and started again with a
 * new one on every change. It answers only for `.test` names and forwards
 * nothing, so no query leaves the machine.
 *
 * Needs dnsmasq (Debian's `dnsmasq-base`); {@linkcode dnsServerUnavailable}
 * says why not.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Resolver } from "node:dns/promises";
import { kill } from "./processes.ts";
import { sleep } from "./helpers.ts";

/** Why no DNS server can be started here, or `null` if one can. */
export async function dnsServerUnavailable(): Promise<string | null> {
  try {
    await new Deno.Command("dnsmasq", { args: ["--version"], stdout: "null" })
      .output();
    return null;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return "dnsmasq (Debian's dnsmasq-base) is not installed";
    }
    throw error;
  }
}

/** A running dnsmasq, and what it answers. */
export interface DnsServer {
  /** `127.0.0.1:port`, the authority of a `dns://` target. */
  readonly address: string;
  /** Answers `name` with these A records, or with NXDOMAIN for none. */
  setHosts(name: string, addresses: readonly string[]): Promise<void>;
  /** Answers `name`'s TXT query with `text`. */
  setTxt(name: string, text: string): Promise<void>;
  /** Stops answering: the process ends, its port stays unanswered. */
  stop(): Promise<void>;
  /** Starts again on the same port. */
  start(): Promise<void>;
}

/** A free loopback port (TCP; dnsmasq takes the same one for UDP). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Runs `body` with a DNS server, which is stopped afterwards. */
export async function withDnsServer(
  body: (dns: DnsServer) => Promise<void>,
): Promise<void> {
  const port = freePort();
  const address = `127.0.0.1:${port}`;
  const hosts = new Map<string, readonly string[]>();
  const txt = new Map<string, string>();
  const resolver = new Resolver();
  resolver.setServers([address]);
  let process: Deno.ChildProcess | null = null;

  const start = async () => {
    const config = [
      `port=${port}`,
      "listen-address=127.0.0.1",
      "bind-interfaces",
      "no-resolv",
      "no-hosts",
      "no-poll",
      "local=/test/",
      ...[...hosts].flatMap(([name, addresses]) =>
        addresses.map((a) => `host-record=${name},${a}`)
      ),
      ...[...txt].map(([name, text]) =>
        `txt-record=${name},"${text.replaceAll('"', '\\"')}"`
      ),
    ];
    process = new Deno.Command("dnsmasq", {
      args: [
        "--keep-in-foreground",
        "--conf-file=-",
        "--pid-file=",
        "--user=root",
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const writer = process.stdin.getWriter();
    await writer.write(new TextEncoder().encode(config.join("\n") + "\n"));
    await writer.close();
    // Ready once it accepts TCP on its port: a UDP query to a port nothing
    // listens on yet would wait for the resolver's timeout (8 s in Deno).
    const end = performance.now() + 5000;
    for (;;) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        break;
      } catch (error) {
        if (performance.now() > end) {
          throw new Error(`dnsmasq did not listen within 5 s: ${error}`);
        }
        await sleep(20);
      }
    }
    // dnsmasq.test is never given an A record.
    await assert.rejects(resolver.resolve4("dnsmasq.test"), {
      code: "ENOTFOUND",
    });
  };
  const stop = async () => {
    if (process === null) return;
    kill(process, "SIGTERM");
    await process.status;
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
        hosts.set(name, addresses);
        await restart();
      },
      async setTxt(name, text) {
        txt.set(name, text);
        await restart();
      },
      stop,
      start,
    });
  } finally {
    await stop();
  }
}
