import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type GatewayConfig } from '@openrouter/config';
import { usagev1 } from '@openrouter/contracts';
import { emptyUsageEvent, priceEvent, type PriceBook } from '@openrouter/usage';
import { testDatabase } from './infra/clickhouse';
import { testConfigDocument } from './test-config';

export interface UsageTestConfigOptions {
  brokers: string[];
  /** Extra model pricing (merged into the gpt-4o-mini model's `pricing`). */
  pricing?: Record<string, unknown>;
  usage?: Record<string, unknown>;
  /** Kafka send timeout; short only for a test of a broker outage, which must fall back quickly. */
  sendTimeoutMs?: number;
}

/**
 * A configuration whose usage pipeline runs on Kafka with topics, consumer group, outbox and
 * ClickHouse database of its own, so suites sharing the broker and chDB never meet.
 */
export function usageTestConfig(options: UsageTestConfigOptions): GatewayConfig {
  const id = randomBytes(4).toString('hex');
  const document = testConfigDocument('http://127.0.0.1:9/v1', { ingress: 0, router: 0, adapter: 0 });
  const models = document['models'] as Array<Record<string, unknown>>;
  const first = models[0];
  if (first && options.pricing) first['pricing'] = { ...(first['pricing'] as Record<string, unknown>), ...options.pricing };
  document['usage'] = {
    bus: 'kafka',
    kafka: {
      brokers: options.brokers,
      clientId: `test-${id}`,
      topic: `usage-${id}.v1`,
      dlqTopic: `usage-${id}.v1.dlq`,
      consumerGroup: `billing-${id}`,
      partitions: 3,
      // Far longer than a send takes: on a loaded machine a send (768 KiB with `acks: all`) can take
      // seconds, and one that times out moves the publisher to its outbox, whose replay repeats
      // events that tests count exactly.
      sendTimeoutMs: options.sendTimeoutMs ?? 30_000,
      connectionTimeoutMs: 1_000,
    },
    outbox: { dir: mkdtempSync(join(tmpdir(), 'usage-outbox-')), replayIntervalMs: 250 },
    // Events carry fixed 2025 instants (price changes); keep them whatever today's date is.
    clickhouse: { embedded: { path: ':memory:' }, database: testDatabase('usage'), retentionDays: 3_650 },
    consumer: { maxWaitMs: 100, retryInitialMs: 50, retryMaxMs: 500 },
    ...(options.usage ?? {}),
  };
  return parseConfig(document, {});
}

const ORGS = ['acme', 'globex', 'initech', 'umbrella'];

/** A priced, valid usage event such as ingress makes, with deterministic varied dimensions. */
export function makeUsageEvent(prices: PriceBook, i: number, receivedAtMs: number, prefix = 'evt'): usagev1.UsageEvent {
  const event = emptyUsageEvent(`${prefix}-${i}`, receivedAtMs);
  event.completedAtMs = receivedAtMs + 40 + (i % 50);
  event.firstTokenAtMs = receivedAtMs + 10;
  event.latencyMs = event.completedAtMs - receivedAtMs;
  event.ttftMs = 10;
  event.tenant = { orgId: ORGS[i % ORGS.length] ?? 'acme', projectId: `p${i % 3}`, teamId: `t${i % 2}`, appId: 'app', costCenter: `cc${i % 5}`, keyId: `k${i % 7}`, endUser: '', tags: { env: 'test' } };
  event.operation = usagev1.Operation.OPERATION_CHAT;
  event.requestedModel = 'gpt-4o-mini';
  event.servedModel = 'gpt-4o-mini';
  event.provider = 'simulated';
  event.deployment = 'sim-mini';
  event.upstreamModel = 'sim-mini-upstream';
  event.status = usagev1.Status.STATUS_OK;
  event.httpStatus = 200;
  event.tokens = { prompt: 100 + (i % 997), completion: 7 + (i % 101), cachedRead: i % 13, cacheWrite: 0, reasoning: 0, estimated: false };
  event.attempts = [{ provider: 'simulated', deployment: 'sim-mini', status: usagev1.AttemptStatus.ATTEMPT_STATUS_OK, errorKind: '', latencyMs: event.latencyMs }];
  const cost = priceEvent(prices, event);
  event.cost = { amount: cost.amount, currency: cost.currency, priceVersion: cost.priceVersion };
  return event;
}
