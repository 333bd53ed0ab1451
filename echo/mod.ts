/**
 * The Echo service of the example, `grpc.examples.echo.Echo`: the typed
 * client and service definition of `echo.proto`, and echo servers that tag
 * every reply with their own address and serve the standard Health service.
 * The server program, the demo and the tests start their servers here.
 *
 * @example Two echo servers on free ports, stopped at once
 * ```ts
 * import { startEchoServers, stopEchoServers } from "./mod.ts";
 *
 * const servers = await startEchoServers(["127.0.0.1:0", "127.0.0.1:0"]);
 * await stopEchoServers(servers, { drainMs: 0 });
 * ```
 *
 * @module
 */
export {
  ECHO_SERVICE_NAME,
  EchoClient,
  type EchoHandlers,
  type EchoRequest,
  type EchoResponse,
  echoService,
} from "./proto.ts";
export { echoHandlers, type Failures } from "./handlers.ts";
export {
  DRAIN_MS,
  type EchoServer,
  type EchoServerOptions,
  GRACE_MS,
  setServing,
  startEchoServer,
  startEchoServers,
  stopEchoServers,
  type StopOptions,
} from "./servers.ts";
