/**
 * A plain grpc-js client, as any short-lived client is: round_robin over the
 * given servers, COUNT UnaryEcho RPCs with CONCURRENCY in flight through
 * `makeUnaryRequest`, then the channel closed. Prints `sent COUNT, failed N`.
 *
 * ```sh
 * deno run ... testing/programs/busy_client.ts HOST:PORT,HOST:PORT COUNT CONCURRENCY
 * ```
 *
 * @module
 */
import { busyClient } from "../busy_client.ts";

const [addresses, count, concurrency] = Deno.args;
const failed = await busyClient(
  addresses.split(","),
  Number(count),
  Number(concurrency),
);
console.log(`sent ${count}, failed ${failed}`);
