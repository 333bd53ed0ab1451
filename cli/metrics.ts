/**
 * The programs' metrics: an OpenTelemetry MeterProvider installed as the
 * global one, read by a Prometheus exporter served over HTTP.
 *
 * @module
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { metrics } from "@opentelemetry/api";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import type { MetricsFlags } from "./flags.ts";

/** A running metrics endpoint. */
export interface MetricsServer {
  /** Where Prometheus scrapes it: `http://HOST:PORT/metrics`. */
  readonly url: string;
  /** Stops serving and uninstalls the MeterProvider. */
  stop(): Promise<void>;
}

/**
 * Installs a MeterProvider whose Prometheus exporter is served at
 * `http://HOST:PORT/metrics`: call it before any channel is made, so that
 * the policies find it.
 *
 * @throws {Error} naming the address, when it cannot be listened on.
 */
export async function serveMetrics(
  { port, host }: MetricsFlags,
): Promise<MetricsServer> {
  // The exporter's own server cannot say which port 0 became.
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const server = createServer((request, response) => {
    if (request.url?.split("?")[0] === "/metrics") {
      exporter.getMetricsRequestHandler(request, response);
    } else {
      response.statusCode = 404;
      response.end();
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, resolve);
    });
  } catch (error) {
    throw new Error(
      `--metrics-port: cannot listen on ${host}:${port}: ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
  const provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  const bound = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}/metrics`,
    async stop() {
      metrics.disable();
      await new Promise((resolve) => server.close(resolve));
      await provider.shutdown();
    },
  };
}
