/**
 * Free loopback ports, for servers that are not told port 0.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";

/**
 * Where an in-process test server listens: an IP, never a name. grpc-js's
 * `Server.bindAsync` resolves a name with a DNS resolver that it never
 * destroys, whose 30 s re-resolution timer then outlives the test and fails
 * the ops sanitizer; an IP is answered without one.
 */
export const ANY_PORT = "127.0.0.1:0";

/** Binds `server` to a free port on 127.0.0.1; resolves to its address. */
export function listen(server: grpc.Server): Promise<string> {
  return new Promise((resolve, reject) =>
    server.bindAsync(
      ANY_PORT,
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
