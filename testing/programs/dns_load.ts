/**
 * Load through the client's channel to a `dns://` target, for a test that
 * changes the DNS answers and the backends under it: CONCURRENCY workers
 * send UnaryEcho RPCs, as the client sends them, for DURATION_MS, then it
 * prints one JSON line per RPC: `{"at", "ms", "server", "error"}` (`at` in
 * epoch milliseconds, so the test can place it on its own clock).
 *
 * The channel has the client's options and its default service config,
 * with health checking of HEALTH_SERVICE, or none for `""`: a service
 * config in DNS takes its place. Run it with
 * GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true, so that grpc-js asks the target's
 * DNS server.
 *
 * ```sh
 * deno run ... testing/programs/dns_load.ts TARGET DURATION_MS CONCURRENCY HEALTH_SERVICE
 * ```
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  registerCustomRoundRobin,
  registerDnsHealthCheckConfig,
} from "../../balancer/mod.ts";
import {
  CLIENT_CHANNEL_OPTIONS,
  clientServiceConfig,
} from "../../cli/client_config.ts";
import { unaryEcho, withResend } from "../../cli/load.ts";
import { EchoClient } from "../../echo/mod.ts";
import { servedBy } from "../windows.ts";

const [target, durationMs, concurrency, healthService] = Deno.args;
registerCustomRoundRobin();
registerDnsHealthCheckConfig();
const client = new EchoClient(target, grpc.credentials.createInsecure(), {
  ...CLIENT_CHANNEL_OPTIONS,
  "grpc.service_config": JSON.stringify(
    clientServiceConfig(3, healthService === "" ? null : healthService),
  ),
});
// As the client sends it: resent once when its connection was lost.
const send = withResend((deadline) => unaryEcho(client, deadline));
const end = Date.now() + Number(durationMs);
const sent: {
  at: number;
  ms: number;
  server: string | null;
  error: string | null;
}[] = [];
const worker = async () => {
  while (Date.now() < end) {
    const at = Date.now();
    try {
      const { reply } = await send(new Date(at + 5000));
      sent.push({
        at,
        ms: Date.now() - at,
        server: servedBy(reply),
        error: null,
      });
    } catch (error) {
      const { code, details } = error as grpc.ServiceError;
      const failure = `${grpc.status[code]}: ${details}`;
      sent.push({ at, ms: Date.now() - at, server: null, error: failure });
    }
  }
};
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
client.close();
for (const rpc of sent) console.log(JSON.stringify(rpc));
