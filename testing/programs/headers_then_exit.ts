/**
 * A gRPC server that answers one call's headers and then dies: the process
 * exits with the call open, as a backend killed mid-reply does. It prints
 * its port, then serves until the first call.
 *
 * ```sh
 * deno run ... testing/programs/headers_then_exit.ts
 * ```
 *
 * @module
 */
import { createServer, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";

const server = createServer();
server.on("stream", (stream: ServerHttp2Stream) => {
  stream.respond({ ":status": 200, "content-type": "application/grpc" });
  // An empty write's callback runs once what comes before it, the headers,
  // is handed to the socket: then the process dies, before any message or
  // trailer.
  stream.write(new Uint8Array(0), () => Deno.exit(0));
});
server.listen(0, "127.0.0.1", () => {
  console.log((server.address() as AddressInfo).port);
});
