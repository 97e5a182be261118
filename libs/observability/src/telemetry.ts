import type { ObservabilityConfig } from '@openrouter/config';
import { createMetricsRegistry, type Registry } from './metrics/metrics-registry';
import { Tracing, type TracingOptions } from './tracing/tracing';

/** What one service instance observes itself with: its own metrics registry and its own tracer. */
export interface Telemetry {
  readonly service: string;
  readonly registry: Registry;
  readonly tracing: Tracing;
  /** Exports buffered spans and stops the tracer. */
  close(): Promise<void>;
}

export type TelemetryOptions = TracingOptions;

export function createTelemetry(service: string, config: Pick<ObservabilityConfig, 'metrics' | 'tracing'>, options: TelemetryOptions = {}): Telemetry {
  const registry = createMetricsRegistry(service, { processMetrics: config.metrics.enabled && config.metrics.processMetrics });
  const tracing = Tracing.create(service, config.tracing, options);
  return {
    service,
    registry,
    tracing,
    async close() {
      await tracing.shutdown().catch(() => undefined);
    },
  };
}
