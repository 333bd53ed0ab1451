/**
 * The whole example in one command: starts the two echo servers, runs the
 * client against them, stops the servers and exits with the client's status.
 * Flags go to the client (`deno task demo --choose-second 2`).
 *
 * @module
 */
import { runClient } from "./client.ts";
import { startEchoServers, stopEchoServers } from "./echo/mod.ts";
import { CLIENT_USAGE } from "./cli/client_flags.ts";
import { printServing, runMain, withoutGrpcLog } from "./cli/main.ts";

const ADDRESSES = ["localhost:50050", "localhost:50051"];

await runMain("demo", CLIENT_USAGE, async () => {
  const servers = await withoutGrpcLog(() => startEchoServers(ADDRESSES));
  printServing(servers);
  try {
    return await runClient(Deno.args);
  } finally {
    await stopEchoServers(servers, { drainMs: 0 });
  }
});
