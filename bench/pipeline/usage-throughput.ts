import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import { z } from 'zod';
import { Kafka, logLevel } from 'kafkajs';
import { parseConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { KafkaUsagePublisher } from '@openrouter/usage';
import { freePort } from '../../test/support/ports';
import { benchConfigDocument, benchKeys } from '../bench-config';
import { BenchProcess } from '../targets/child-process';
import { syntheticUsageEvent } from './event-generator';

export interface UsageThroughputResult {
  events: number;
  /** Events stored in ClickHouse and committed in Kafka per second, from the first publish. */
  eventsPerSecond: number;
  publishSeconds: number;
  storedSeconds: number;
  stored: number;
  /** Handler calls billing made (one ClickHouse insert each). */
  batches: number;
}

/**
 * Usage events per second through the real pipeline: the ingress publisher (libs/usage) sends
 * `events` synthetic events to Kafka, the billing service (its own process, from the build)
 * consumes them into ClickHouse (chDB) and commits. Done means the group's committed offsets
 * cover every event, which billing only commits after the insert succeeded.
 */
export async function measureUsageThroughput(options: { brokers: readonly string[]; events: number; runId: string; nodeArgs?: readonly string[] }): Promise<UsageThroughputResult> {
  const dir = mkdtempSync(join(tmpdir(), 'or-bench-pipeline-'));
  const [billingPort, billingGrpc] = await Promise.all([freePort(), freePort()]);
  const document = benchConfigDocument({
    mode: 'distributed',
    ports: { ingress: 0, router: 1, routerHttp: 0, adapter: 1, adapterHttp: 0, billing: billingPort, billingGrpc: billingGrpc, alerting: 0 },
    keys: benchKeys(),
    upstreamBaseUrl: 'http://127.0.0.1:9/v1',
    kafkaBrokers: options.brokers,
    redisUrl: 'redis://127.0.0.1:9',
    dataDir: join(dir, 'data'),
    runId: `${options.runId}_pipeline`,
  });
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, stringify(document));
  const config = parseConfig(document, {});
  const logger = createLogger('bench-usage', 'warn');

  const billing = BenchProcess.node('billing', 'dist/services/billing/src/main.js', [], { env: { OPENROUTER_CONFIG: configPath }, nodeArgs: options.nodeArgs ?? [] });
  const kafka = new Kafka({ clientId: 'bench-usage-probe', brokers: [...options.brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  let publisher: KafkaUsagePublisher | undefined;
  try {
    await billing.waitHealthy(`http://127.0.0.1:${billingPort}/ready`, 90_000);
    await admin.connect();
    const { topic, consumerGroup } = config.usage.kafka;
    publisher = await KafkaUsagePublisher.start({ kafka: config.usage.kafka, outbox: { ...config.usage.outbox, dir: join(dir, 'outbox') } }, logger);

    const base = Date.UTC(2025, 2, 1);
    const started = performance.now();
    const publishing: Array<Promise<void>> = [];
    for (let i = 0; i < options.events; i++) {
      publishing.push(publisher.publish(syntheticUsageEvent(options.runId, i, base + i)));
      // Yield now and then so batches leave while the rest is produced.
      if (i % 5_000 === 4_999) await new Promise((done) => setImmediate(done));
    }
    await Promise.all(publishing);
    const published = performance.now();
    if (publisher.status().mode !== 'direct') throw new Error('the usage publisher fell back to its outbox: Kafka did not take the events');

    let committed = 0;
    const deadline = Date.now() + 600_000;
    while (committed < options.events) {
      if (!billing.running) throw new Error(`billing exited:\n${billing.tail}`);
      if (Date.now() > deadline) throw new Error(`billing stored ${committed} of ${options.events} events in 10 minutes`);
      const offsets = await admin.fetchOffsets({ groupId: consumerGroup, topics: [topic] });
      committed = (offsets[0]?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
      if (committed < options.events) await new Promise((done) => setTimeout(done, 50));
    }
    const storedAt = performance.now();
    const storedSeconds = (storedAt - started) / 1000;
    const { stored, batches } = await ingestCounters(billingPort);
    return { events: options.events, eventsPerSecond: Math.round(options.events / storedSeconds), publishSeconds: (published - started) / 1000, storedSeconds, stored, batches };
  } finally {
    await publisher?.close().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await billing.stop();
  }
}

const readySchema = z.object({ details: z.object({ 'usage-consumer': z.object({ stored: z.number(), batches: z.number() }) }) });

/** The events billing says it inserted and in how many batches (its readiness details). */
async function ingestCounters(billingPort: number): Promise<{ stored: number; batches: number }> {
  const response = await fetch(`http://127.0.0.1:${billingPort}/ready`);
  const { stored, batches } = readySchema.parse(await response.json()).details['usage-consumer'];
  return { stored, batches };
}
