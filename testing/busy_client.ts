/**
 * A plain grpc-js client with no policy of this project's: what a server
 * must outlive.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { type EchoResponse, echoService } from "../echo/mod.ts";

const UNARY = echoService.UnaryEcho;

/**
 * Sends `count` UnaryEcho RPCs, `concurrency` at a time, round_robin over
 * `addresses`, then closes the channel; resolves to how many failed.
 */
export async function busyClient(
  addresses: readonly string[],
  count: number,
  concurrency: number,
): Promise<number> {
  const client = new grpc.Client(
    `ipv4:${addresses.join(",")}`,
    grpc.credentials.createInsecure(),
    {
      "grpc.service_config": JSON.stringify({
        loadBalancingConfig: [{ round_robin: {} }],
      }),
    },
  );
  let started = 0;
  let failed = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      await new Promise<void>((resolve) =>
        client.makeUnaryRequest<{ message: string }, EchoResponse>(
          UNARY.path,
          UNARY.requestSerialize,
          UNARY.responseDeserialize,
          { message: "busy" },
          { deadline: new Date(Date.now() + 10_000) },
          (error) => {
            if (error) failed++;
            resolve();
          },
        )
      );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  client.close();
  return failed;
}
