// The client side of the runtime benchmark (bench/runtimes.ts), in plain
// JavaScript so that Node, Bun and Deno run the same file. It reaches the
// two servers through custom_round_robin, imported from the module named on
// its command line, and answers each line on stdin with one JSON line:
//
//   run CONCURRENCY N   N UnaryEcho RPCs, CONCURRENCY at a time:
//                       {"ms": total, "latencies": [ms of each RPC]}
//
// Usage: RUNTIME bench_client.mjs MODULE FIRST_ADDRESS SECOND_ADDRESS
import { Buffer } from "node:buffer";
import process from "node:process";
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";

const [modulePath, first, second] = process.argv.slice(-3);
const { ManualResolver, registerCustomRoundRobin } = await import(modulePath);

registerCustomRoundRobin();
new ManualResolver("bench", {
  endpoints: [first, second],
  serviceConfig: {
    loadBalancingConfig: [{ custom_round_robin: { chooseSecond: 3 } }],
  },
}).register();
const client = new grpc.Client(
  "bench:///echo",
  grpc.credentials.createInsecure(),
);

// EchoRequest and EchoResponse both hold one string, field 1.
const REQUEST = Buffer.from([0x0a, 5, ...new TextEncoder().encode("bench")]);
const unary = () =>
  new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      "/grpc.examples.echo.Echo/UnaryEcho",
      () => REQUEST,
      (buffer) => buffer,
      {},
      {},
      (error) => error ? reject(error) : resolve(),
    )
  );

async function run(concurrency, n) {
  const latencies = [];
  let sent = 0;
  const worker = async () => {
    while (sent < n) {
      sent++;
      const start = performance.now();
      await unary();
      latencies.push(performance.now() - start);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ms: performance.now() - start, latencies };
}

for await (const line of createInterface({ input: process.stdin })) {
  const [, concurrency, n] = line.split(" ");
  console.log(JSON.stringify(await run(Number(concurrency), Number(n))));
}
client.close();
