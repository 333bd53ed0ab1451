/**
 * The whole example in one command: starts the two echo servers, runs the
 * client against them, stops the servers and exits with the client's status.
 * Flags go to the client (`deno task demo --choose-second 2`).
 *
 * @module
 */
import { CLIENT_USAGE, runClient } from "./client.ts";
import { type EchoServer, startEchoServer, stopEchoServers } from "./server.ts";
import { runMain } from "./cli.ts";

const ADDRESSES = ["localhost:50050", "localhost:50051"];

await runMain("demo", CLIENT_USAGE, async () => {
  const servers: EchoServer[] = [];
  try {
    for (const address of ADDRESSES) {
      servers.push(await startEchoServer(address));
    }
    for (const { address } of servers) console.log(`serving on ${address}`);
    return await runClient(Deno.args);
  } finally {
    await stopEchoServers(servers);
  }
});
