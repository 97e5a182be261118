import { collectDefaultMetrics, Registry } from 'prom-client';
import type { MetricsConfig } from '@openrouter/config';

export { Registry };

/**
 * One registry per service instance: the embedded gateway runs every service in one process,
 * and each keeps its own series and its own `/metrics`. Every series carries `service`.
 */
export function createMetricsRegistry(service: string, config: Pick<MetricsConfig, 'processMetrics'> = { processMetrics: true }): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (config.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'openrouter_' });
  return registry;
}

/** Latency buckets (seconds) from 5 ms to 2 minutes: gateway hops are fast, completions are slow. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];
/** Buckets for in-process work (gateway overhead, ClickHouse inserts). */
export const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A label value from a bounded set: empty becomes `none`, anything long is cut. */
export function label(value: string | undefined): string {
  if (!value) return 'none';
  return value.length > 64 ? value.slice(0, 64) : value;
}
