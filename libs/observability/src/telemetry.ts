import type { ObservabilityConfig } from '@openrouter/config';
import { createLogger } from './logger';
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

/**
 * A service's telemetry. With tracing on, OpenTelemetry's own warnings (a failed span export) go to
 * `options.logger`, the service's; a service that gives none has them logged by a logger of its
 * name at `warn`, to the same standard output.
 */
export function createTelemetry(service: string, config: Pick<ObservabilityConfig, 'metrics' | 'tracing'>, options: TelemetryOptions = {}): Telemetry {
  const registry = config.metrics.enabled ? createMetricsRegistry(service, { processMetrics: config.metrics.processMetrics }) : new SilentRegistry();
  const logger = config.tracing.enabled ? (options.logger ?? createLogger(service, 'warn')) : undefined;
  const tracing = Tracing.create(service, config.tracing, { ...options, ...(logger ? { logger } : {}) });
  return {
    service,
    registry,
    tracing,
    async close() {
      await tracing.shutdown().catch(() => undefined);
    },
  };
}
