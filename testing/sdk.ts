/**
 * A real OpenTelemetry SDK installed for the length of a test, with a
 * reader the test collects from by hand.
 *
 * @module
 */
import { metrics } from "@opentelemetry/api";
import {
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";

/** A reader the test collects from by hand. */
export class TestReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** One data point: its labels and value. */
export interface Point {
  readonly labels: Record<string, unknown>;
  readonly value: unknown;
}

/**
 * Runs `body` with an SDK installed as the global MeterProvider; `collect`
 * gives its points by instrument name, `reader` what it collects as is.
 */
export async function withSdk(
  body: (
    collect: () => Promise<Map<string, Point[]>>,
    reader: TestReader,
  ) => Promise<void>,
): Promise<void> {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(provider);
  try {
    await body(async () => {
      const { resourceMetrics } = await reader.collect();
      return points(resourceMetrics);
    }, reader);
  } finally {
    metrics.disable();
    await provider.shutdown();
  }
}

function points(resource: ResourceMetrics): Map<string, Point[]> {
  const byName = new Map<string, Point[]>();
  for (const scope of resource.scopeMetrics) {
    for (const metric of scope.metrics) {
      byName.set(
        metric.descriptor.name,
        metric.dataPoints.map((point) => ({
          labels: point.attributes,
          value: point.value,
        })),
      );
    }
  }
  return byName;
}

/** The value of `name`'s point whose labels include `labels`. */
export function valueOf(
  collected: Map<string, Point[]>,
  name: string,
  labels: Record<string, string> = {},
): unknown {
  const point = collected.get(name)?.find((point) =>
    Object.entries(labels).every(([key, value]) => point.labels[key] === value)
  );
  return point?.value;
}
