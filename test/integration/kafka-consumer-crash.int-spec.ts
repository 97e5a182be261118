import { randomBytes } from 'node:crypto';
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs';
import { KafkaBudgetPublisher } from '@openrouter/budgets';
import { startBilling, type BillingHandle } from '@openrouter/billing';
import { parseConfig, type GatewayConfig } from '@openrouter/config';
import { budgetv1 } from '@openrouter/contracts';
import { createLogger, type Logger } from '@openrouter/observability';
import { createClickHouse, KafkaUsagePublisher, PriceBook, type ClickHouseTarget } from '@openrouter/usage';
import { startAlerting, type AlertingHandle } from '@openrouter/alerting';
import { queryRows } from '../support/infra/clickhouse';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';
import { readyAnswer as ready } from '../support/infra/ready-probe';
import { waitFor } from '../support/infra/wait-for';
import { makeUsageEvent, usageTestConfig } from '../support/usage-fixtures';
import { WebhookReceiver } from '../support/webhook-receiver';

/**
 * A consumer that kafkajs stops for good, for real: the topic is compressed with lz4, which
 * kafkajs cannot decode (`KafkaJSNotImplemented: LZ4 compression not implemented`, not retriable).
 * The service must say so in `/ready`, its log and its metrics, and come back by itself once an
 * operator removed the cause (the topic's compression reset, the group moved past the batch).
 */

interface LogLine {
  level: number;
  time: string;
  msg: string;
  failure?: { name: string; message: string };
}

/** A logger that keeps its lines (as JSON text too, to check nothing of a message got in). */
function capturingLogger(name: string): { logger: Logger; lines: LogLine[]; text: string[] } {
  const lines: LogLine[] = [];
  const text: string[] = [];
  const logger = createLogger(name, 'info', {
    write(line: string) {
      text.push(line);
      lines.push(JSON.parse(line) as LogLine);
    },
  });
  return { logger, lines, text };
}

async function runningGauge(port: number, group: string): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^openrouter_usage_consumer_running\\{[^}]*group="${group}"[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? NaN);
}

/** The topic's settings replaced by `entries` (kafkajs's AlterConfigs is not incremental). */
async function setTopicConfig(admin: Admin, topic: string, entries: Record<string, string>): Promise<void> {
  await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: Object.entries(entries).map(([name, value]) => ({ name, value })) }] });
  await waitFor(
    async () => {
      const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['compression.type'] }] });
      return described.resources[0]?.configEntries[0]?.configValue === entries['compression.type'];
    },
    { timeoutMs: 10_000, what: `compression.type of ${topic}` },
  );
}

/**
 * The operator's repair: every batch from now on is written as the producer sent it, and the
 * group's offsets move to the topic's end, past the batches it cannot read. The group must have no
 * member meanwhile: the stopped consumer has left it, and a fresh one is in it only while it tries.
 */
async function repair(admin: Admin, topic: string, groupId: string, retentionMs: number): Promise<void> {
  await setTopicConfig(admin, topic, { 'compression.type': 'producer', 'retention.ms': String(retentionMs) });
  const ends = await admin.fetchTopicOffsets(topic);
  await waitFor(
    () =>
      admin.setOffsets({ groupId, topic, partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })) }).then(
        () => true,
        () => false,
      ),
    { timeoutMs: 30_000, intervalMs: 100, what: `the offsets of ${groupId} moved past the lz4 batches` },
  );
}

const report = (line: string): boolean => process.stderr.write(`kafka consumer crash: ${line}\n`);

describe('a Kafka consumer kafkajs stops for good (an lz4 batch, real broker)', () => {
  let kafka: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    kafka = new Kafka({ clientId: 'consumer-crash-spec', brokers: sharedKafkaBrokers(), logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin?.disconnect();
  });

  describe('billing', () => {
    let config: GatewayConfig;
    let billing: BillingHandle;
    let publisher: KafkaUsagePublisher;
    let prices: PriceBook;
    const log = capturingLogger('consumer-crash-billing');

    beforeAll(async () => {
      config = usageTestConfig({ brokers: sharedKafkaBrokers() });
      prices = PriceBook.fromModels(config.models);
      const k = config.usage.kafka;
      // The usage topic as an operator (or a broker default) set it up: every batch stored as lz4.
      await admin.createTopics({
        topics: [{ topic: k.topic, numPartitions: k.partitions, configEntries: [{ name: 'compression.type', value: 'lz4' }, { name: 'retention.ms', value: String(k.retentionMs) }] }],
        waitForLeaders: true,
      });
      billing = await startBilling(config, log.logger);
      publisher = await KafkaUsagePublisher.start({ kafka: config.usage.kafka, outbox: config.usage.outbox, clientName: 'consumer-crash-spec' }, log.logger);
    }, 120_000);

    afterAll(async () => {
      await publisher?.close();
      await billing?.close();
    });

    const stored = async (eventId: string): Promise<boolean> => (await queryRows(billing.usage.store, 'SELECT 1 FROM {db:Identifier}.usage_events WHERE event_id = {id:String}', { id: eventId })).length === 1;

    it('says in /ready that its consumer stopped and why, still serving its reports, and consumes again by itself once the batch is skipped', async () => {
      const group = config.usage.kafka.consumerGroup;
      await waitFor(async () => (await ready(billing.httpPort))?.status === 200, { timeoutMs: 30_000, what: 'billing ready' });
      expect(await runningGauge(billing.httpPort, group)).toBe(1);

      const unreadable = makeUsageEvent(prices, 1, Date.now(), `lz4-${randomBytes(3).toString('hex')}`);
      const published = Date.now();
      await publisher.publish(unreadable);
      const stopped = await waitFor(async () => {
        const r = await ready(billing.httpPort);
        return r?.body.checks['usage-consumer'] === 'failing' ? r : undefined;
      }, { timeoutMs: 30_000, what: "/ready's usage-consumer failing" });
      const notReadyAfterMs = Date.now() - published;
      expect(stopped.body.checks).toEqual({ clickhouse: 'ok', 'usage-consumer': 'failing' });
      // Advisory: billing stays ready, its report RPCs answered from ClickHouse meanwhile.
      expect(stopped.status).toBe(200);
      expect(stopped.body.details?.['usage-consumer']).toEqual(
        expect.objectContaining({
          bus: 'kafka',
          state: 'stopped',
          since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
          error: { name: 'KafkaJSNotImplemented', message: 'LZ4 compression not implemented' },
          nextAttemptAt: expect.anything() as unknown,
          hint: expect.stringContaining('compression.type') as string,
          lag: 1,
        }),
      );
      expect(await runningGauge(billing.httpPort, group)).toBe(0);
      const errors = log.lines.filter((l) => l.level >= 50 && l.msg.startsWith('Kafka consumer stopped'));
      expect(errors).toEqual([expect.objectContaining({ failure: { name: 'KafkaJSNotImplemented', message: 'LZ4 compression not implemented' } })]);
      const crashedAt = Date.parse(errors[0]?.time ?? '');

      // Fresh consumers fail the same way while the batch is there: still failing, and the log says so.
      await waitFor(() => log.lines.some((l) => /failed the same way/.test(l.msg)), { timeoutMs: 30_000, what: 'a failed restart' });
      expect((await ready(billing.httpPort))?.body.checks['usage-consumer']).toBe('failing');

      const repairStarted = Date.now();
      await repair(admin, config.usage.kafka.topic, group, config.usage.kafka.retentionMs);
      const repaired = Date.now();
      await waitFor(async () => (await ready(billing.httpPort))?.body.checks['usage-consumer'] === 'ok', { timeoutMs: 90_000, intervalMs: 100, what: "/ready's usage-consumer ok again" });
      const readyAgainMs = Date.now() - repaired;
      expect((await ready(billing.httpPort))?.body.details?.['usage-consumer']).toEqual(expect.objectContaining({ state: 'running', lag: 0 }));
      expect(await runningGauge(billing.httpPort, group)).toBe(1);
      expect(log.lines.filter((l) => l.msg === 'Kafka consumer running again')).toHaveLength(1);

      const after = makeUsageEvent(prices, 2, Date.now(), 'after-repair');
      await publisher.publish(after);
      await waitFor(() => stored('after-repair-2'), { timeoutMs: 30_000, what: 'the event published after the repair stored' });
      // The batch skipped is not billed by the consumer (docs/usage-pipeline.md says what to do about it).
      expect(await stored(unreadable.eventId)).toBe(false);
      // The log names the cause, never a message: no event id, organisation or key in it.
      expect(log.text.filter((line) => line.includes(unreadable.eventId) || line.includes('after-repair-2'))).toEqual([]);
      report(`billing: publish → usage-consumer failing in ${notReadyAfterMs} ms (crash logged ${crashedAt - published} ms after publishing); repair took ${repaired - repairStarted} ms; repair → usage-consumer ok in ${readyAgainMs} ms`);
    }, 180_000);
  });

  describe('alerting', () => {
    let config: GatewayConfig;
    let alerting: AlertingHandle;
    let store: ClickHouseTarget;
    let hooks: WebhookReceiver;
    let budgets: KafkaBudgetPublisher;
    const log = capturingLogger('consumer-crash-alerting');

    beforeAll(async () => {
      hooks = await WebhookReceiver.start();
      const group = `alerting-crash-${randomBytes(4).toString('hex')}`;
      const doc = JSON.parse(JSON.stringify(usageTestConfig({ brokers: sharedKafkaBrokers() }))) as Record<string, unknown>;
      doc['budgets'] = { topic: `budget-${group}.v1` };
      doc['observability'] = {
        alerting: { consumerGroup: group, evaluateIntervalMs: 100, channels: [{ id: 'ops', kind: 'webhook', url: hooks.url(), secret: 'crash-spec' }], rules: [{ id: 'budget', kind: 'budget_threshold', minPercent: 80 }] },
      };
      config = parseConfig(doc, {});
      store = createClickHouse(config.usage.clickhouse, config.gateway.dataDir);
      alerting = await startAlerting(config, log.logger, { store });
      budgets = new KafkaBudgetPublisher(config.usage.kafka, config.budgets.topic, log.logger);
    }, 120_000);

    afterAll(async () => {
      await budgets?.close();
      await alerting?.close();
      await store?.client.close();
      await hooks?.close();
    });

    const budgetEvent = (budgetId: string): budgetv1.BudgetEvent => ({
      schemaVersion: 1,
      eventId: `${budgetId}/2025-06/80`,
      occurredAtMs: Date.now(),
      budgetId,
      scope: { orgId: 'acme', teamId: '', projectId: '', keyId: '' },
      period: budgetv1.Period.PERIOD_MONTHLY,
      periodKey: '2025-06',
      periodStartMs: Date.now() - 1_000,
      periodEndMs: Date.now() + 3_600_000,
      timezone: 'UTC',
      limit: '100',
      spent: '81',
      currency: 'USD',
      thresholdPercent: 80,
      enforcement: budgetv1.Enforcement.ENFORCEMENT_SOFT,
    });
    const alerted = (budgetId: string): boolean => hooks.received.some((h) => (h.json as { alerts: Array<{ labels: Record<string, string> }> }).alerts.some((a) => a.labels['budget'] === budgetId));
    /** Publishes the budget event until its alert arrives (the group starts at the topic's end: an event before it joined is not read). */
    const alertOn = (budgetId: string): Promise<boolean> =>
      waitFor(
        async () => {
          await budgets.publish(budgetEvent(budgetId)).catch(() => undefined);
          return alerted(budgetId);
        },
        { timeoutMs: 30_000, intervalMs: 1_000, what: `the alert on ${budgetId}` },
      );

    it('is not ready while stopped and takes budget events again once the batch is skipped', async () => {
      const group = config.observability.alerting.consumerGroup;
      const topic = config.budgets.topic;
      await waitFor(async () => (await ready(alerting.httpPort))?.status === 200, { timeoutMs: 30_000, what: 'alerting ready' });
      // Consuming, with a committed offset: a fresh consumer resumes there, not at the topic's end.
      await alertOn('before');
      await waitFor(async () => (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]?.partitions.some((p) => p.offset !== '-1') ?? false, { timeoutMs: 30_000, what: 'the alerting group committed' });

      // Now the budget topic's batches are stored as lz4 (an operator's change).
      await setTopicConfig(admin, topic, { 'compression.type': 'lz4' });
      const published = Date.now();
      const stopped = await waitFor(
        async () => {
          await budgets.publish(budgetEvent('unreadable')).catch(() => undefined);
          const r = await ready(alerting.httpPort);
          return r?.status === 503 ? r : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'alerting /ready 503' },
      );
      const notReadyAfterMs = Date.now() - published;
      expect(stopped.body.checks['kafka']).toBe('failing');
      expect(stopped.body.details?.['kafka']).toEqual(expect.objectContaining({ state: 'stopped', error: { name: 'KafkaJSNotImplemented', message: 'LZ4 compression not implemented' } }));
      expect(await runningGauge(alerting.httpPort, group)).toBe(0);
      expect(log.lines.filter((l) => l.level >= 50 && l.msg.startsWith('Kafka consumer stopped'))).toHaveLength(1);
      await waitFor(() => log.lines.some((l) => /failed the same way/.test(l.msg)), { timeoutMs: 30_000, what: 'a failed restart' });

      await repair(admin, topic, group, config.usage.kafka.retentionMs);
      const repaired = Date.now();
      await waitFor(async () => (await ready(alerting.httpPort))?.status === 200, { timeoutMs: 90_000, intervalMs: 100, what: 'alerting /ready 200 again' });
      const readyAgainMs = Date.now() - repaired;
      expect(await runningGauge(alerting.httpPort, group)).toBe(1);
      expect((await ready(alerting.httpPort))?.body.details?.['kafka']).toEqual(expect.objectContaining({ state: 'running' }));

      await alertOn('after');
      expect(alerted('unreadable')).toBe(false);
      report(`alerting: lz4 set → /ready 503 in ${notReadyAfterMs} ms; repair → /ready 200 in ${readyAgainMs} ms`);
    }, 180_000);
  });
});
