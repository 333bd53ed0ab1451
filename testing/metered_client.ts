/**
 * Two echo servers and a client through `custom_round_robin` with health
 * checking, under load, its metrics served as the client program serves
 * them: what the Prometheus test and the metrics chart look at.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { ManualResolver, registerCustomRoundRobin } from "../balancer/mod.ts";
import {
  ECHO_SERVICE_NAME,
  EchoClient,
  type EchoServer,
  startEchoServers,
  stopEchoServers,
} from "../echo/mod.ts";
import {
  CLIENT_CHANNEL_OPTIONS,
  metricsChannelOptions,
} from "../cli/client_config.ts";
import { type MetricsServer, serveMetrics } from "../cli/metrics.ts";
import { ANY_PORT } from "./ports.ts";
import { type Load, startLoad } from "./steady_load.ts";

/** The running set-up. */
export interface MeteredClient {
  /** The servers, first and second; a test may replace one it restarts. */
  readonly servers: EchoServer[];
  /** The channel's target, its metrics' `grpc.target`. */
  readonly target: string;
  /** Where Prometheus scrapes the client's metrics: `host:port`. */
  readonly scraped: string;
  /** The load on the client. */
  readonly load: Load;
  /** Stops the load, the client, the servers and the metrics. */
  close(): Promise<void>;
}

/**
 * Starts the servers, the metrics and the client (scheme `scheme`,
 * `chooseSecond`), and a load of 4 RPCs at a time on it.
 */
export async function startMeteredClient(
  scheme: string,
  chooseSecond: number,
): Promise<MeteredClient> {
  registerCustomRoundRobin();
  const metrics: MetricsServer = await serveMetrics({
    port: 0,
    host: "127.0.0.1",
  });
  const servers = await startEchoServers([ANY_PORT, ANY_PORT]);
  const target = `${scheme}:///echo`;
  new ManualResolver(scheme, {
    endpoints: servers.map(({ address }) => address),
    serviceConfig: {
      loadBalancingConfig: [{ custom_round_robin: { chooseSecond } }],
      healthCheckConfig: { serviceName: ECHO_SERVICE_NAME },
    },
  }).register();
  const client = new EchoClient(target, grpc.credentials.createInsecure(), {
    ...CLIENT_CHANNEL_OPTIONS,
    ...metricsChannelOptions(target, true),
  });
  const load = startLoad(client, 4);
  return {
    servers,
    target,
    scraped: new URL(metrics.url).host,
    load,
    async close() {
      await load.stop();
      client.close();
      await stopEchoServers(servers, { drainMs: 0 });
      await metrics.stop();
    },
  };
}
