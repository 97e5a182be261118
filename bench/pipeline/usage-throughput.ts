import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import { z } from 'zod';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { parseConfig, type GatewayConfig as Config } from '@openrouter/config';
import { createLogger, type Logger } from '@openrouter/observability';
import { KafkaUsagePublisher } from '@openrouter/usage';
import { freePorts } from '../../test/support/ports';
import { benchConfigDocument, benchKeys } from '../bench-config';
import { sampleProcess } from '../proc-stats';
import { BenchProcess } from '../targets/child-process';
import { syntheticUsageEvent } from './event-generator';

export interface UsageThroughputResult {
  events: number;
  /**
   * Live: events stored in ClickHouse and committed in Kafka per second, from the first publish,
   * with the publisher producing on the same machine while billing consumes.
   */
  eventsPerSecond: number;
  publishSeconds: number;
  storedSeconds: number;
  stored: number;
  /** Handler calls billing made (one ClickHouse insert each). */
  batches: number;
  /**
   * The consumer's own throughput: billing drains `events` already waiting in Kafka (the
   * publisher has finished), events per second between its first and its last commit.
   */
  consumer: {
    eventsPerSecond: number;
    drainSeconds: number;
    batches: number;
    /**
     * Billing's CPU (every thread, chDB's included) from its readiness to its last commit, per
     * 1,000 events: steadier than the rate on a shared machine, whose neighbours take the cores
     * but not this process's CPU time.
     */
    cpuMsPerThousandEvents: number;
  };
}

const POLL_MS = 20;

/**
 * Usage events per second through the real pipeline, measured twice with the billing service as
 * its own process from the build, consuming into ClickHouse (chDB):
 *
 * - live: the ingress publisher (libs/usage) sends `events` synthetic events to Kafka while billing
 *   consumes them; done when the group's committed offsets cover every event, which billing only
 *   commits after the insert succeeded;
 * - backlog: `events` are published first, then billing starts and drains them; the rate between
 *   its first and its last commit is the consumer's throughput, with no publisher competing for
 *   the machine's cores (in production the publishers are ingress replicas elsewhere).
 */
export async function measureUsageThroughput(options: { brokers: readonly string[]; events: number; runId: string; nodeArgs?: readonly string[] }): Promise<UsageThroughputResult> {
  const kafka = new Kafka({ clientId: 'bench-usage-probe', brokers: [...options.brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const logger = createLogger('bench-usage', 'warn');
  await admin.connect();
  try {
    const live = await measureLive(options, admin, logger);
    const consumer = await measureBacklog(options, admin, logger);
    return { ...live, consumer };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

type ThroughputOptions = Parameters<typeof measureUsageThroughput>[0];

async function measureLive(options: ThroughputOptions, admin: Admin, logger: Logger): Promise<Omit<UsageThroughputResult, 'consumer'>> {
  const run = await pipelineRun(options, 'pipeline');
  const billing = await run.startBilling();
  let publisher: KafkaUsagePublisher | undefined;
  try {
    publisher = await run.startPublisher(logger);
    const started = performance.now();
    await publishAll(publisher, options.events, options.runId);
    const published = performance.now();
    await waitCommitted(admin, run.config, billing, run.billingPort, options.events, () => undefined);
    const storedSeconds = (performance.now() - started) / 1000;
    const { stored, batches } = await ingestCounters(run.billingPort);
    return { events: options.events, eventsPerSecond: Math.round(options.events / storedSeconds), publishSeconds: (published - started) / 1000, storedSeconds, stored, batches };
  } finally {
    await publisher?.close().catch(() => undefined);
    await billing.stop();
  }
}

async function measureBacklog(options: ThroughputOptions, admin: Admin, logger: Logger): Promise<UsageThroughputResult['consumer']> {
  const run = await pipelineRun(options, 'backlog');
  const publisher = await run.startPublisher(logger);
  try {
    await publishAll(publisher, options.events, `${options.runId}-backlog`);
  } finally {
    await publisher.close();
  }
  const billing = await run.startBilling();
  try {
    const ready = performance.now();
    const cpuAtReady = billingCpuMs(billing);
    let first: { at: number; stored: number } | undefined;
    await waitCommitted(admin, run.config, billing, run.billingPort, options.events, (stored, at) => {
      if (!first && stored > 0) first = { at, stored };
    });
    const done = performance.now();
    const cpuMs = billingCpuMs(billing) - cpuAtReady;
    // The rate between the first and the last insert; when one insert took everything, from readiness.
    const [from, counted] = first && first.stored < options.events && done > first.at ? [first.at, options.events - first.stored] : [ready, options.events];
    const drainSeconds = (done - from) / 1000;
    const { batches } = await ingestCounters(run.billingPort);
    return { eventsPerSecond: Math.round(counted / drainSeconds), drainSeconds, batches, cpuMsPerThousandEvents: (cpuMs * 1_000) / options.events };
  } finally {
    await billing.stop();
  }
}

function billingCpuMs(billing: BenchProcess): number {
  const sample = sampleProcess(billing.pid);
  if (!sample) throw new Error(`billing exited:\n${billing.tail}`);
  return sample.cpuMs;
}

interface PipelineRun {
  config: Config;
  billingPort: number;
  startBilling(): Promise<BenchProcess>;
  startPublisher(logger: Logger): Promise<KafkaUsagePublisher>;
}

/** A configuration of its own (topics, consumer group, data directory) for one measurement. */
async function pipelineRun(options: ThroughputOptions, name: string): Promise<PipelineRun> {
  const dir = mkdtempSync(join(tmpdir(), `or-bench-${name}-`));
  const [billingPort, billingGrpc] = await freePorts(2);
  const document = benchConfigDocument({
    mode: 'distributed',
    ports: { ingress: 0, router: 1, routerHttp: 0, adapter: 1, adapterHttp: 0, billing: billingPort, billingGrpc: billingGrpc, alerting: 0 },
    keys: benchKeys(),
    upstreamBaseUrl: 'http://127.0.0.1:9/v1',
    kafkaBrokers: options.brokers,
    redisUrl: 'redis://127.0.0.1:9',
    dataDir: join(dir, 'data'),
    runId: `${options.runId}_${name}`,
  });
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, stringify(document));
  const config = parseConfig(document, {});
  return {
    config,
    billingPort,
    async startBilling() {
      const billing = BenchProcess.node(`billing-${name}`, 'dist/services/billing/src/main.js', [], { env: { OPENROUTER_CONFIG: configPath }, nodeArgs: options.nodeArgs ?? [] });
      try {
        await billing.waitHealthy(`http://127.0.0.1:${billingPort}/ready`, 90_000);
      } catch (error) {
        await billing.stop();
        throw error;
      }
      return billing;
    },
    startPublisher: (logger) => KafkaUsagePublisher.start({ kafka: config.usage.kafka, outbox: { ...config.usage.outbox, dir: join(dir, 'outbox') } }, logger),
  };
}

async function publishAll(publisher: KafkaUsagePublisher, events: number, idPrefix: string): Promise<void> {
  const base = Date.UTC(2025, 2, 1);
  const publishing: Array<Promise<void>> = [];
  for (let i = 0; i < events; i++) {
    publishing.push(publisher.publish(syntheticUsageEvent(idPrefix, i, base + i)));
    // Yield now and then so batches leave while the rest is produced.
    if (i % 5_000 === 4_999) await new Promise((done) => setImmediate(done));
  }
  await Promise.all(publishing);
  if (publisher.status().mode !== 'direct') throw new Error('the usage publisher fell back to its outbox: Kafka did not take the events');
}

/**
 * Polls until billing has stored `events` events and the consumer group's committed offsets cover
 * every message of the topic (an organisation's events travel several to a message, so offsets
 * count messages); `observe` sees the events stored so far.
 */
async function waitCommitted(admin: Admin, config: Config, billing: BenchProcess, billingPort: number, events: number, observe: (stored: number, at: number) => void): Promise<void> {
  const { topic, consumerGroup } = config.usage.kafka;
  const deadline = Date.now() + 600_000;
  // The run's topic is new: its end offsets are its messages, as the committed offsets count them.
  const messages = (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
  let committed = 0;
  let stored = 0;
  for (;;) {
    if (!billing.running) throw new Error(`billing exited:\n${billing.tail}`);
    const offsets = await admin.fetchOffsets({ groupId: consumerGroup, topics: [topic] });
    const now = (offsets[0]?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    // Billing commits right after each insert: its counter is read only when the offsets moved.
    if (now !== committed) {
      const at = performance.now();
      committed = now;
      stored = (await ingestCounters(billingPort)).stored;
      observe(stored, at);
    }
    if (stored >= events && committed >= messages) return;
    if (Date.now() > deadline) throw new Error(`billing stored ${stored} of ${events} events (${committed} of ${messages} messages committed) in 10 minutes`);
    await new Promise((done) => setTimeout(done, POLL_MS));
  }
}

const readySchema = z.object({ details: z.object({ 'usage-consumer': z.object({ stored: z.number(), batches: z.number() }) }) });

/**
 * The events billing says it inserted and in how many batches (its readiness details). A busy
 * billing can take longer than the readiness check allows to read its consumer lag; its details
 * then say `timed out` instead, and are asked for again.
 */
async function ingestCounters(billingPort: number): Promise<{ stored: number; batches: number }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await fetch(`http://127.0.0.1:${billingPort}/ready`);
    const parsed = readySchema.safeParse(await response.json());
    if (parsed.success) {
      const { stored, batches } = parsed.data.details['usage-consumer'];
      return { stored, batches };
    }
    if (Date.now() > deadline) throw new Error(`billing's readiness has given no usage counters for a minute: ${parsed.error.message}`);
    await new Promise((done) => setTimeout(done, POLL_MS));
  }
}
