/**
 * A client that sits idle between RPCs: ROUNDS UnaryEcho RPCs, IDLE_MS
 * apart, printing `round N: ok` or `round N: failed: ...` for each; exits 1
 * if any failed. `project` is this project's client (custom_round_robin,
 * health checking, keepalive); `plain` is grpc-js with its defaults.
 *
 * ```sh
 * deno run ... testing/programs/idle_client.ts project|plain HOST:PORT,HOST:PORT IDLE_MS ROUNDS
 * ```
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  ManualResolver,
  registerCustomRoundRobin,
} from "../../balancer/mod.ts";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
} from "../../cli/client_config.ts";
import { unaryEcho, withResend } from "../../cli/load.ts";
import { EchoClient } from "../../echo/mod.ts";

const [mode, addresses, idleMs, rounds] = Deno.args;
const insecure = grpc.credentials.createInsecure();
let client: EchoClient;
if (mode === "project") {
  registerCustomRoundRobin();
  new ManualResolver("idle", {
    endpoints: addresses.split(","),
    serviceConfig: clientServiceConfig(3),
  }).register();
  client = new EchoClient("idle:///echo", insecure, CLIENT_CHANNEL_OPTIONS);
} else {
  client = new EchoClient(`ipv4:${addresses}`, insecure);
}
// As the client sends it: resent once when its connection was lost.
const send = withResend((deadline) => unaryEcho(client, deadline));
let failed = 0;
for (let round = 1; round <= Number(rounds); round++) {
  if (round > 1) await new Promise((r) => setTimeout(r, Number(idleMs)));
  try {
    await send(new Date(Date.now() + 5000));
    console.log(`round ${round}: ok`);
  } catch (error) {
    failed++;
    console.log(`round ${round}: failed: ${(error as Error).message}`);
  }
}
client.close();
Deno.exit(failed === 0 ? 0 : 1);
