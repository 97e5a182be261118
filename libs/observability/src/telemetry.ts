import type { ObservabilityConfig } from '@openrouter/config';
import { createMetricsRegistry, Registry } from './metrics/metrics-registry';
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

/** Metrics turned off: instruments still work (so code needs no branches), the exposition is empty. */
class SilentRegistry extends Registry {
  override async metrics(): Promise<string> {
    return '';
  }
}

export function createTelemetry(service: string, config: Pick<ObservabilityConfig, 'metrics' | 'tracing'>, options: TelemetryOptions = {}): Telemetry {
  const registry = config.metrics.enabled ? createMetricsRegistry(service, { processMetrics: config.metrics.processMetrics }) : new SilentRegistry();
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
