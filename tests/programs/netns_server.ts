/**
 * An echo server for a test host in a network namespace, where the address
 * is not loopback (server.ts refuses those). It stops when its stdin closes,
 * which happens when the test that started it ends, however it ends; or on
 * SIGTERM.
 *
 * ```sh
 * ip netns exec NS deno run ... tests/programs/netns_server.ts 10.251.1.2:50051
 * ```
 *
 * @module
 */
import { startEchoServers, stopEchoServers } from "../../server.ts";

const servers = await startEchoServers([Deno.args[0]]);
await Promise.race([
  Deno.stdin.readable.pipeTo(new WritableStream()),
  new Promise<void>((resolve) =>
    Deno.addSignalListener("SIGTERM", () => resolve())
  ),
]);
await stopEchoServers(servers, { drainMs: 0, graceMs: 1000 });
Deno.exit(0);
