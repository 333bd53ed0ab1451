/**
 * Typed access to `echo.proto`: the `grpc.examples.echo.Echo` service.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

/** `grpc.examples.echo.EchoRequest` */
export interface EchoRequest {
  message: string;
}

/** `grpc.examples.echo.EchoResponse` */
export interface EchoResponse {
  message: string;
}

/** Server-side handlers of the four Echo methods. */
export interface EchoHandlers extends grpc.UntypedServiceImplementation {
  UnaryEcho: grpc.handleUnaryCall<EchoRequest, EchoResponse>;
  ServerStreamingEcho: grpc.handleServerStreamingCall<
    EchoRequest,
    EchoResponse
  >;
  ClientStreamingEcho: grpc.handleClientStreamingCall<
    EchoRequest,
    EchoResponse
  >;
  BidirectionalStreamingEcho: grpc.handleBidiStreamingCall<
    EchoRequest,
    EchoResponse
  >;
}

/** A client of the Echo service. */
export interface EchoClient extends grpc.Client {
  UnaryEcho(
    request: EchoRequest,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<EchoResponse>,
  ): grpc.ClientUnaryCall;
  UnaryEcho(
    request: EchoRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<EchoResponse>,
  ): grpc.ClientUnaryCall;
  ServerStreamingEcho(
    request: EchoRequest,
    options?: grpc.CallOptions,
  ): grpc.ClientReadableStream<EchoResponse>;
  ClientStreamingEcho(
    options: grpc.CallOptions,
    callback: grpc.requestCallback<EchoResponse>,
  ): grpc.ClientWritableStream<EchoRequest>;
  BidirectionalStreamingEcho(
    options?: grpc.CallOptions,
  ): grpc.ClientDuplexStream<EchoRequest, EchoResponse>;
}

const definition = loadSync(
  fileURLToPath(new URL("../proto/echo.proto", import.meta.url)),
  { keepCase: true, defaults: true },
);

/** The Echo service's full name, also its name for health checking. */
export const ECHO_SERVICE_NAME = "grpc.examples.echo.Echo";

/** The service definition, for `grpc.Server.addService`. */
export const echoService =
  // proto-loader types what it loads loosely; the interfaces above give it
  // the shape that echo.proto declares.
  definition[ECHO_SERVICE_NAME] as unknown as grpc.ServiceDefinition<
    EchoHandlers
  >;

/**
 * The Echo client class.
 *
 * @example One UnaryEcho, to an echo server on a free port
 * ```ts
 * import assert from "node:assert/strict";
 * import * as grpc from "@grpc/grpc-js";
 * import { startEchoServer, stopEchoServers } from "./mod.ts";
 *
 * const server = await startEchoServer("127.0.0.1:0");
 * const client = new EchoClient(
 *   server.address,
 *   grpc.credentials.createInsecure(),
 * );
 * const reply = await new Promise<string>((resolve, reject) =>
 *   client.UnaryEcho(
 *     { message: "hi" },
 *     {},
 *     (error, reply) => error ? reject(error) : resolve(reply!.message),
 *   )
 * );
 * assert.equal(reply, `hi (from ${server.address})`);
 * client.close();
 * await stopEchoServers([server], { drainMs: 0 });
 * ```
 */
export const EchoClient =
  // The same loose typing: the constructor makes clients of the interface.
  grpc.makeGenericClientConstructor(echoService, "Echo") as unknown as new (
    address: string,
    credentials: grpc.ChannelCredentials,
    options?: grpc.ClientOptions,
  ) => EchoClient;
