import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { parseConfig, type GatewayConfig } from '@openrouter/config';
import { usagev1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import { KafkaUsagePublisher, PriceBook } from '@openrouter/usage';
import { DELIVERY_HEADER, RedisAlertingState, startAlerting, type AlertingHandle } from '@openrouter/alerting';
import { RedisServer } from '../support/infra/redis';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { makeUsageEvent, usageTestConfig } from '../support/usage-fixtures';
import { WebhookReceiver } from '../support/webhook-receiver';

const logger = createLogger('alerting-handover-spec', 'silent');
const LEASE_TTL_MS = 3_000;
/** The error-rate rule's window (event time): a consumer a few seconds behind does not drain it while the test looks. */
const WINDOW_MS = 4_000;

interface Hook {
  status: string;
  rule: { id: string };
  alerts: Array<{ id: string; status: string }>;
}

/**
 * Alerting with Redis and without an alert history store (no ClickHouse): what one active replica
 * leaves behind (undelivered notifications, cooldowns) is taken up by the next, through Redis.
 */
function alertingConfig(base: GatewayConfig, hookUrl: string, group: string, redisUrl: string, keyPrefix: string, cooldownMs: number): GatewayConfig {
  const doc = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  doc['access'] = { redis: { url: redisUrl, keyPrefix } };
  doc['budgets'] = { topic: `budget-${group}.v1` };
  doc['observability'] = {
    alerting: {
      consumerGroup: group,
      evaluateIntervalMs: 100,
      bucketMs: 500,
      delivery: { initialBackoffMs: 50, maxBackoffMs: 200, maxAttempts: 3 },
      channels: [{ id: 'ops', kind: 'webhook', url: hookUrl }],
      rules: [{ id: 'errors', kind: 'error_rate', scope: 'deployment', windowMs: WINDOW_MS, threshold: 0.4, minRequests: 10, cooldownMs }],
    },
  };
  return parseConfig(doc, {});
}

async function metric(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && wanted.every((w) => l.includes(w)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('alerting hands its undelivered notifications and cooldowns to the next active replica (real Redis and Kafka)', () => {
  let redis: RedisServer;
  let keys: Redis;
  let hooks: WebhookReceiver;
  let publisher: KafkaUsagePublisher;
  /** One usage topic for the publisher and every replica. */
  let base: GatewayConfig;
  const running: AlertingHandle[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    keys = new Redis(redis.port, '127.0.0.1', { lazyConnect: true });
    await keys.connect();
    hooks = await WebhookReceiver.start();
    base = usageTestConfig({ brokers: sharedKafkaBrokers() });
    publisher = await KafkaUsagePublisher.start({ kafka: base.usage.kafka, outbox: base.usage.outbox, clientName: 'alerting-handover-spec' }, logger);
  }, 120_000);

  afterAll(async () => {
    for (const r of running) await r.close();
    await publisher?.close();
    await hooks?.close();
    keys?.disconnect();
    await redis?.stop();
  });

  async function start(config: GatewayConfig): Promise<AlertingHandle> {
    const handle = await startAlerting(config, logger, { leaseTtlMs: LEASE_TTL_MS });
    running.push(handle);
    await waitFor(() => handle.role() === 'active' && handle.alerting !== undefined, { timeoutMs: 30_000, what: 'the replica to be active' });
    return handle;
  }

  async function stop(handle: AlertingHandle): Promise<void> {
    await handle.close();
    running.splice(running.indexOf(handle), 1);
  }

  const hooksOf = (status: string): Hook[] => hooks.received.map((h) => h.json as Hook).filter((h) => h.rule.id === 'errors' && h.status === status);

  /** Twenty usage events on one deployment, completed now: half failing when `failing`. */
  async function publish(config: GatewayConfig, failing: boolean): Promise<void> {
    const prices = PriceBook.fromModels(config.models);
    const events = Array.from({ length: 20 }, (_, i) => {
      const e = makeUsageEvent(prices, i, Date.now(), `h-${Date.now()}-${randomBytes(3).toString('hex')}`);
      e.completedAtMs = Date.now();
      e.attempts = [{ provider: 'simulated', deployment: 'sim-mini', status: usagev1.AttemptStatus.ATTEMPT_STATUS_OK, errorKind: '', latencyMs: 30 }];
      if (failing && i % 2 === 0) {
        e.status = usagev1.Status.STATUS_ERROR;
        e.errorKind = 'upstream_error';
        e.attempts = [{ provider: 'simulated', deployment: 'sim-mini', status: usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR, errorKind: 'upstream_error', latencyMs: 30 }];
      }
      return e;
    });
    await Promise.all(events.map((e) => publisher.publish(e)));
  }

  it('delivers, through the next replica, a resolution still queued when the active one shut down', async () => {
    hooks.received.length = 0;
    const group = `alerting-${randomBytes(4).toString('hex')}`;
    const keyPrefix = `handover-${randomBytes(4).toString('hex')}:`;
    const config = alertingConfig(base, hooks.url(), group, redis.url, keyPrefix, 600_000);
    const first = await start(config);
    // The group starts at the end of the topic: publish until the replica has joined and sees the failures.
    await waitFor(
      async () => {
        await publish(config, true);
        return hooksOf('firing').length > 0;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the error-rate alert to fire' },
    );
    // The receiver is down from now on: the resolution cannot get through before the shutdown.
    hooks.failNext(1_000_000);
    await waitFor(
      async () => {
        await publish(config, false);
        return (await metric(first.httpPort, 'openrouter_alerts_firing', { rule: 'errors' })) === 0 && (await metric(first.httpPort, 'openrouter_alert_delivery_failures_total', { channel: 'ops' })) > 0;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the alert to resolve and its resolution to fail' },
    );
    await stop(first);
    expect(hooksOf('resolved')).toHaveLength(0);

    hooks.failNext(0);
    await start(config);
    await waitFor(() => hooksOf('resolved').length > 0, { timeoutMs: 30_000, what: 'the next replica to deliver the resolution' });
    const [resolution] = hooksOf('resolved');
    const [firing] = hooksOf('firing');
    expect(resolution?.alerts.map((a) => a.id)).toEqual(firing?.alerts.map((a) => a.id));
    expect(resolution?.alerts.every((a) => a.status === 'resolved')).toBe(true);
    expect(hooksOf('firing')).toHaveLength(1);
    expect(await keys.llen(`${keyPrefix}alerting:outbox`)).toBe(0);
    await waitFor(async () => (await keys.llen(`${keyPrefix}alerting:outbox:delivering`)) === 0, { what: 'the delivered resolution to leave the in-delivery list' });
  }, 180_000);

  it('delivers what a replica took from the outbox and died before delivering, through the next replica', async () => {
    for (const r of [...running]) await stop(r);
    hooks.failNext(0);
    hooks.received.length = 0;
    const group = `alerting-${randomBytes(4).toString('hex')}`;
    const keyPrefix = `taken-${randomBytes(4).toString('hex')}:`;
    const config = alertingConfig(base, hooks.url(), group, redis.url, keyPrefix, 600_000);
    const startedAt = Date.now() - 60_000;
    const resolution = {
      id: `n-${randomBytes(4).toString('hex')}`,
      status: 'resolved' as const,
      ruleId: 'errors',
      ruleKind: 'error_rate',
      severity: 'warning',
      sentAt: Date.now(),
      alerts: [
        {
          fingerprint: 'errors:deployment=sim-mini',
          rule: { id: 'errors', kind: 'error_rate' as const, scope: 'deployment' as const, windowMs: WINDOW_MS, threshold: 0.4, minRequests: 10, severity: 'warning' as const, channels: ['ops'], cooldownMs: 600_000 },
          status: 'resolved' as const,
          labels: { deployment: 'sim-mini' },
          value: 0,
          threshold: 0.4,
          summary: 'error rate back under 40%',
          startedAt,
          at: Date.now(),
          notify: true,
        },
      ],
    };
    // A replica that stopped handed this resolution over; the next one took it from the outbox and died before sending it.
    const unreadable: string[] = [];
    const dead = new RedisAlertingState(keys, keyPrefix, (what) => unreadable.push(what));
    await dead.handOff([{ channel: 'ops', notification: resolution }]);
    expect(await dead.claimHandedOver()).toHaveLength(1);

    await start(config);
    await waitFor(() => hooks.received.some((h) => h.headers[DELIVERY_HEADER] === resolution.id), { timeoutMs: 20_000, what: 'the next replica to deliver what the dead one had taken' });
    const delivered = hooksOf('resolved');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]?.alerts.map((a) => a.id)).toEqual(['errors:deployment=sim-mini']);
    expect(unreadable).toEqual([]);
    // Delivered: nothing is left for a later replica to send again.
    await waitFor(async () => (await keys.llen(`${keyPrefix}alerting:outbox`)) + (await keys.llen(`${keyPrefix}alerting:outbox:delivering`)) === 0, { what: 'the delivered notification to leave Redis' });
  }, 120_000);

  it('keeps a firing alert quiet through a restart within its cooldown, and notifies it again once the cooldown is over', async () => {
    for (const r of [...running]) await stop(r);
    hooks.failNext(0);
    hooks.received.length = 0;
    const group = `alerting-${randomBytes(4).toString('hex')}`;
    const keyPrefix = `cooldown-${randomBytes(4).toString('hex')}:`;
    const config = alertingConfig(base, hooks.url(), group, redis.url, keyPrefix, 600_000);
    const first = await start(config);
    await waitFor(
      async () => {
        await publish(config, true);
        return hooksOf('firing').length > 0;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the error-rate alert to fire' },
    );
    await stop(first);

    const second = await start(config);
    // The deployment keeps failing: the new replica sees the alert fire in its own windows, within its cooldown.
    await waitFor(
      async () => {
        await publish(config, true);
        return (await metric(second.httpPort, 'openrouter_alerts_firing', { rule: 'errors' })) === 1;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the new replica to see the alert firing' },
    );
    const rounds = await metric(second.httpPort, 'openrouter_alert_evaluations_total');
    // Still failing meanwhile, so the window is not left to drain while the test waits.
    await waitFor(
      async () => {
        await publish(config, true);
        return (await metric(second.httpPort, 'openrouter_alert_evaluations_total')) >= rounds + 3;
      },
      { intervalMs: 100, what: 'three more evaluation rounds' },
    );
    expect(await metric(second.httpPort, 'openrouter_alerts_firing', { rule: 'errors' })).toBe(1);
    expect(hooksOf('firing')).toHaveLength(1);
    await stop(second);

    // Under a cooldown that has passed since its notification: the alert ends (its resolution is sent), and firing again it is notified again.
    const shorter = alertingConfig(base, hooks.url(), group, redis.url, keyPrefix, 1_000);
    const third = await start(shorter);
    await waitFor(
      async () => {
        await publish(config, false);
        return hooksOf('resolved').length === 1;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the alert to resolve' },
    );
    await waitFor(
      async () => {
        await publish(config, true);
        return hooksOf('firing').length === 2;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the alert to be notified again after its cooldown' },
    );
    expect(await metric(third.httpPort, 'openrouter_alerts_firing', { rule: 'errors' })).toBe(1);
    const [once, again] = hooksOf('firing');
    expect(again?.alerts.map((a) => a.id)).toEqual(once?.alerts.map((a) => a.id));
  }, 240_000);
});
