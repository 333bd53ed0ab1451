/**
 * Real servers and a real channel through the policy: two echo servers on
 * free ports and a client reaching them through a manual resolver.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { ManualResolver, registerCustomRoundRobin } from "../balancer/mod.ts";
import {
  EchoClient,
  type EchoServer,
  type EchoServerOptions,
  startEchoServer,
  stopEchoServers,
} from "../echo/mod.ts";
import { ANY_PORT } from "./ports.ts";

registerCustomRoundRobin();

let schemes = 0;

/** Two servers and a client reaching them through a manual resolver. */
export interface Setup {
  readonly servers: EchoServer[];
  readonly resolver: ManualResolver;
  readonly client: EchoClient;
  readonly first: string;
  readonly second: string;
  close(): Promise<void>;
}

/** What {@linkcode setup} starts besides the defaults. */
export interface SetupOptions {
  /** Options of both servers. */
  readonly server?: EchoServerOptions;
  /** Channel options of the client. */
  readonly channel?: grpc.ChannelOptions;
}

/**
 * A client reaching `endpoints` through a manual resolver of its own that
 * hands the channel `serviceConfig`.
 */
export function connect(
  endpoints: readonly string[],
  serviceConfig: unknown,
  options?: grpc.ChannelOptions,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): { resolver: ManualResolver; client: EchoClient } {
  const scheme = `integration-${++schemes}`;
  const resolver = new ManualResolver(scheme, { endpoints, serviceConfig });
  resolver.register();
  const client = new EchoClient(`${scheme}:///echo`, credentials, options);
  return { resolver, client };
}

/** Two echo servers on free ports and a client reaching them by `config`. */
export async function setup(
  serviceConfig: unknown,
  options: SetupOptions = {},
): Promise<Setup> {
  const servers = [
    await startEchoServer(ANY_PORT, options.server),
    await startEchoServer(ANY_PORT, options.server),
  ];
  const { resolver, client } = connect(
    servers.map(({ address }) => address),
    serviceConfig,
    options.channel,
  );
  return {
    servers,
    resolver,
    client,
    first: servers[0].address,
    second: servers[1].address,
    async close() {
      client.close();
      await stopEchoServers(servers, { drainMs: 0, graceMs: 1000 });
    },
  };
}

/** A service config with only the policy. */
export function policyConfig(chooseSecond: number) {
  return {
    loadBalancingConfig: [{ custom_round_robin: { chooseSecond } }],
  };
}
