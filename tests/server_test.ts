/**
 * The echo servers' shutdown: NOT_SERVING first, then the drain, then no new
 * connections.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import {
  ECHO_SERVICE_NAME,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { LEAVES_RECONNECT_TIMERS } from "../testing/sanitizers.ts";

const check = healthService.Check;

/** One Health/Check of `service` on `address`, as a status name. */
function healthOf(address: string, service: string): Promise<string> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) =>
    client.makeUnaryRequest(
      check.path,
      check.requestSerialize,
      check.responseDeserialize,
      { service },
      { deadline: new Date(Date.now() + 2000) },
      (error, reply) =>
        error ? reject(error) : resolve((reply as { status: string }).status),
    )
  ).finally(() => client.close());
}

Deno.test(
  "server: a stopping server reports NOT_SERVING for the whole drain, still answering, then stops",
  LEAVES_RECONNECT_TIMERS, // the last check's, to the stopped server
  async () => {
    const server = await startEchoServer("127.0.0.1:0");
    assert.equal(await healthOf(server.address, ECHO_SERVICE_NAME), "SERVING");
    const stopped = stopEchoServers([server], { drainMs: 600, graceMs: 1000 });
    for (const service of ["", ECHO_SERVICE_NAME]) {
      assert.equal(await healthOf(server.address, service), "NOT_SERVING");
    }
    await stopped;
    await assert.rejects(healthOf(server.address, ""), {
      code: grpc.status.UNAVAILABLE,
    });
  },
);
