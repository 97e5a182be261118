import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { parseConfig, type GatewayConfig } from '@openrouter/config';
import { usagev1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import { createClickHouse, KafkaUsagePublisher, PriceBook, type ClickHouseTarget } from '@openrouter/usage';
import { startAlerting, type AlertingHandle } from '@openrouter/alerting';
import { readyAnswer } from '../support/infra/ready-probe';
import { RedisServer } from '../support/infra/redis';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { makeUsageEvent, usageTestConfig } from '../support/usage-fixtures';
import { WebhookReceiver } from '../support/webhook-receiver';

const logger = createLogger('alerting-standby-spec', 'silent');
/** Short, so a lost lease shows within seconds: renewed every second, given up two seconds after the last renewal. */
const LEASE_TTL_MS = 3_000;

function alertingConfig(base: GatewayConfig, hookUrl: string, group: string, redisUrl: string, keyPrefix: string): GatewayConfig {
  const doc = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  doc['access'] = { redis: { url: redisUrl, keyPrefix } };
  doc['budgets'] = { topic: `budget-${group}.v1` };
  doc['observability'] = {
    alerting: {
      consumerGroup: group,
      evaluateIntervalMs: 100,
      bucketMs: 500,
      delivery: { initialBackoffMs: 50, maxBackoffMs: 200 },
      channels: [{ id: 'ops', kind: 'webhook', url: hookUrl, secret: 'standby-spec-secret' }],
      rules: [{ id: 'errors', kind: 'error_rate', scope: 'deployment', windowMs: 600_000, threshold: 0.4, minRequests: 10, cooldownMs: 600_000 }],
    },
  };
  return parseConfig(doc, {});
}

/** A value of `/metrics` on a service's HTTP port: the series of `name` with these labels (among others), 0 when absent. */
async function metric(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && wanted.every((w) => l.includes(w)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('alerting as two replicas on one Redis: one active, one standing by (real Redis and Kafka, history in chDB)', () => {
  let redis: RedisServer;
  let keys: Redis;
  let hooks: WebhookReceiver;
  let config: GatewayConfig;
  let store: ClickHouseTarget;
  let publisher: KafkaUsagePublisher;
  let admin: Admin;
  let group: string;
  let leaseKey: string;
  const replicas: AlertingHandle[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    keys = new Redis(redis.port, '127.0.0.1', { lazyConnect: true });
    await keys.connect();
    hooks = await WebhookReceiver.start();
    group = `alerting-${randomBytes(4).toString('hex')}`;
    const keyPrefix = `standby-${randomBytes(4).toString('hex')}:`;
    leaseKey = `${keyPrefix}alerting:active`;
    config = alertingConfig(usageTestConfig({ brokers: sharedKafkaBrokers() }), hooks.url(), group, redis.url, keyPrefix);
    store = createClickHouse(config.usage.clickhouse, config.gateway.dataDir);
    publisher = await KafkaUsagePublisher.start({ kafka: config.usage.kafka, outbox: config.usage.outbox, clientName: 'alerting-standby-spec' }, logger);
    admin = new Kafka({ clientId: 'alerting-standby-spec', brokers: sharedKafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
  }, 120_000);

  afterAll(async () => {
    for (const r of replicas) await r.close();
    await publisher?.close();
    await admin?.disconnect();
    await store?.client.close();
    await hooks?.close();
    keys?.disconnect();
    await redis?.stop();
  });

  const firings = () => hooks.received.filter((h) => (h.json as { rule: { id: string }; status: string }).rule.id === 'errors' && (h.json as { status: string }).status === 'firing');
  const groupMembers = async () => (await admin.describeGroups([group])).groups[0]?.members.length ?? 0;

  /** A batch of usage events, half of them failing, completed now. */
  async function publishErrors(): Promise<void> {
    const prices = PriceBook.fromModels(config.models);
    const events = Array.from({ length: 20 }, (_, i) => {
      const e = makeUsageEvent(prices, i, Date.now(), `e-${Date.now()}-${randomBytes(2).toString('hex')}`);
      e.completedAtMs = Date.now();
      if (i % 2 === 0) {
        e.status = usagev1.Status.STATUS_ERROR;
        e.errorKind = 'upstream_error';
        e.attempts = [{ provider: 'simulated', deployment: 'sim-mini', status: usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR, errorKind: 'upstream_error', latencyMs: 30 }];
      }
      return e;
    });
    await Promise.all(events.map((e) => publisher.publish(e)));
  }

  it('lets one replica consume and notify while the other stands by, healthy and ready, outside the consumer group', async () => {
    const first = await startAlerting(config, logger, { store, leaseTtlMs: LEASE_TTL_MS });
    replicas.push(first);
    await waitFor(() => first.role() === 'active', { what: 'the first replica to take the lease' });
    const second = await startAlerting(config, logger, { store, leaseTtlMs: LEASE_TTL_MS });
    replicas.push(second);

    // The consumer group starts at the end of the topic: publish until the active one has joined and sees traffic.
    await waitFor(
      async () => {
        await publishErrors();
        return firings().length > 0;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the error-rate alert' },
    );
    expect(first.role()).toBe('active');
    expect(second.role()).toBe('standby');
    expect(second.alerting).toBeUndefined();
    expect(await groupMembers()).toBe(1);
    expect(await keys.get(leaseKey)).not.toBeNull();
    const standbyReady = await readyAnswer(second.httpPort);
    expect(standbyReady?.status).toBe(200);
    expect(standbyReady?.body.details?.['role']).toEqual({ role: 'standby' });
    expect(standbyReady?.body.details?.['kafka']).toEqual({ state: 'standby' });
    expect((await fetch(`http://127.0.0.1:${second.httpPort}/health`)).status).toBe(200);
    expect(await metric(second.httpPort, 'openrouter_alerting_active')).toBe(0);
    expect(await metric(first.httpPort, 'openrouter_alerting_active')).toBe(1);
    // The active one's consumer runs; the standby, which runs none, has no series (no stopped consumer to alert of).
    expect(await metric(first.httpPort, 'openrouter_usage_consumer_running')).toBe(1);
    expect(await (await fetch(`http://127.0.0.1:${second.httpPort}/metrics`)).text()).not.toMatch(/^openrouter_usage_consumer_running\{/m);
    expect((await readyAnswer(first.httpPort))?.body.details?.['role']).toEqual({ role: 'active' });
    await first.historyFlushed();
    expect(firings()).toHaveLength(1);
  }, 120_000);

  it('hands over to the standby when the active one stops: it takes back the firing alert (not notified again) and resumes consuming', async () => {
    const [first, second] = replicas;
    if (!first || !second) throw new Error('the first test starts both replicas');
    await first.close();
    replicas.splice(replicas.indexOf(first), 1);
    // Released at shutdown: taken at the standby's next attempt (a third of the time to live), not after it expires.
    await waitFor(() => second.role() === 'active' && second.alerting !== undefined, { timeoutMs: 30_000, what: 'the standby to take over' });
    const usageSeen = await metric(second.httpPort, 'openrouter_alerting_events_total', { kind: 'usage' });
    // The same deployment keeps failing: the new active one sees the alert's condition hold in its own windows.
    await waitFor(
      async () => {
        await publishErrors();
        return (await metric(second.httpPort, 'openrouter_alerting_events_total', { kind: 'usage' })) >= usageSeen + 40;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the new active replica to consume' },
    );
    expect(await groupMembers()).toBe(1);
    // Two evaluation rounds after it has counted them: a firing it did not know of would have been notified.
    const rounds = await metric(second.httpPort, 'openrouter_alert_evaluations_total');
    await waitFor(async () => (await metric(second.httpPort, 'openrouter_alert_evaluations_total')) >= rounds + 2, { what: 'two evaluation rounds' });
    expect(await metric(second.httpPort, 'openrouter_alerts_firing', { rule: 'errors' })).toBe(1);
    expect(firings()).toHaveLength(1);
  }, 120_000);

  it('stops an active replica whose lease another token holds: out of the consumer group, no evaluation, standing by', async () => {
    const [active] = replicas;
    if (!active) throw new Error('the second test leaves one replica');
    await waitFor(() => active.role() === 'active', { what: 'the remaining replica active' });
    await keys.set(leaseKey, 'another-replica', 'PX', 60_000);
    await waitFor(() => active.role() === 'standby' && active.alerting === undefined, { timeoutMs: 30_000, what: 'the replica to stand by' });
    await waitFor(async () => (await groupMembers()) === 0, { timeoutMs: 60_000, what: 'the consumer group to be empty' });
    expect(await metric(active.httpPort, 'openrouter_alerting_active')).toBe(0);
    // Once the key is free again, it takes the lease back at its next attempt.
    await keys.del(leaseKey);
    await waitFor(() => active.role() === 'active', { timeoutMs: 30_000, what: 'the replica to take the lease back' });
  }, 120_000);

  it('stops an active replica that cannot reach Redis to renew its lease, and takes it again once Redis is back', async () => {
    const [active] = replicas;
    if (!active) throw new Error('the second test leaves one replica');
    await waitFor(() => active.role() === 'active' && active.alerting !== undefined, { what: 'the replica active' });
    const port = redis.port;
    await redis.stop();
    // Before the key could have expired (two thirds of its time to live after the last renewal), it stops.
    await waitFor(() => active.role() === 'standby' && active.alerting === undefined, { timeoutMs: 30_000, what: 'the replica to stand by' });
    await waitFor(async () => (await groupMembers()) === 0, { timeoutMs: 60_000, what: 'the consumer group to be empty' });
    expect((await readyAnswer(active.httpPort))?.body.details?.['role']).toEqual({ role: 'standby' });
    redis = await RedisServer.start(port);
    await waitFor(() => active.role() === 'active' && active.alerting !== undefined, { timeoutMs: 30_000, what: 'the replica to take the lease again' });
  }, 120_000);
});
