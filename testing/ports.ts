/**
 * Free loopback ports, for servers that are not told port 0.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";

/** Binds `server` to a free port on 127.0.0.1; resolves to its address. */
export function listen(server: grpc.Server): Promise<string> {
  return new Promise((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (error, port) => error ? reject(error) : resolve(`127.0.0.1:${port}`),
    )
  );
}

/**
 * A loopback port that is free now, for a server that must be told its port
 * before it starts (one that cannot take port 0).
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
