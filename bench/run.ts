import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { configSchema } from '@openrouter/config';
import { KafkaBroker } from '../test/support/infra/kafka';
import { RedisServer } from '../test/support/infra/redis';
import { benchKeys } from './bench-config';
import { GrpcChain, grpcFloorRow, type GrpcChainSample } from './grpc-floor';
import { checkTarget, drive, SCENARIOS, type Scenario } from './load';
import { measureChargeback, type ChargebackResult } from './pipeline/chargeback';
import { measureUsageThroughput, type UsageThroughputResult } from './pipeline/usage-throughput';
import { ProcessGroupMeter, sampleGroupMemory, type MemoryPeaks } from './proc-stats';
import { benchReportSchema, checkTargets, summarise, toMarkdown, type BenchReport, type CellMeasurement, type GrpcFloorRow, type MemorySample, type TargetMemory, type UsageRecordCheck } from './report';
import { BenchProcess, REPO_ROOT } from './targets/child-process';
import { directTarget, startDistributed, startEmbedded, startFloor, startUpstream, type Upstream } from './targets/start-targets';
import { TARGET_NAMES, type BenchTarget, type TargetName } from './targets/target';

const list = <T extends string>(values: readonly [T, ...T[]]) =>
  z
    .string()
    .transform((s) => s.split(',').map((v) => v.trim()).filter((v) => v !== ''))
    .pipe(z.array(z.enum(values)).min(1));
const positiveInts = z
  .string()
  .transform((s) => s.split(',').map((v) => Number(v.trim())))
  .pipe(z.array(z.number().int().positive()).min(1));
const count = z.coerce.number().int().nonnegative();

const optionsSchema = z.object({
  smoke: z.boolean().default(false),
  concurrency: positiveInts.optional(),
  durationMs: count.optional(),
  rounds: count.pipe(z.number().positive()).optional(),
  warmupMs: count.optional(),
  targets: list(TARGET_NAMES).default([...TARGET_NAMES]),
  scenarios: list(SCENARIOS).default([...SCENARIOS]),
  usageEvents: count.optional(),
  chargebackEvents: count.optional(),
  skipPipeline: z.boolean().default(false),
  onlyPipeline: z.boolean().default(false),
  kafkaBrokers: z.string().optional(),
  redisUrl: z.string().optional(),
  out: z.string().default(join(REPO_ROOT, 'bench/results')),
  profile: z.string().optional(),
  /** A directory for every started process's whole output, one `<name>.log` each. */
  processLogs: z.string().min(1).optional(),
  /** Extra Node options for the gateway's processes (deployment flags to compare), space-separated. */
  nodeArgs: z
    .string()
    .transform((v) => v.split(/\s+/).filter(Boolean))
    .pipe(z.array(z.string().regex(/^--[a-z0-9-]+(=\S+)?$/, 'a Node or V8 option such as --max-semi-space-size=2')))
    .optional(),
});

export type BenchOptions = z.infer<typeof optionsSchema>;

function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      smoke: { type: 'boolean' },
      concurrency: { type: 'string' },
      'duration-ms': { type: 'string' },
      rounds: { type: 'string' },
      'warmup-ms': { type: 'string' },
      targets: { type: 'string' },
      scenarios: { type: 'string' },
      'usage-events': { type: 'string' },
      'chargeback-events': { type: 'string' },
      'skip-pipeline': { type: 'boolean' },
      'only-pipeline': { type: 'boolean' },
      'kafka-brokers': { type: 'string' },
      'redis-url': { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'string' },
      'process-logs': { type: 'string' },
      'node-args': { type: 'string' },
    },
  });
  const parsed = optionsSchema.safeParse({
    smoke: values.smoke,
    concurrency: values.concurrency,
    durationMs: values['duration-ms'],
    rounds: values.rounds,
    warmupMs: values['warmup-ms'],
    targets: values.targets,
    scenarios: values.scenarios,
    usageEvents: values['usage-events'],
    chargebackEvents: values['chargeback-events'],
    skipPipeline: values['skip-pipeline'],
    onlyPipeline: values['only-pipeline'],
    kafkaBrokers: values['kafka-brokers'],
    redisUrl: values['redis-url'],
    out: values.out,
    profile: values.profile,
    processLogs: values['process-logs'],
    nodeArgs: values['node-args'],
  });
  if (!parsed.success) throw new Error(`bad options:\n${parsed.error.issues.map((i) => `  --${i.path.join('.')}: ${i.message}`).join('\n')}`);
  if (parsed.data.onlyPipeline && parsed.data.skipPipeline) throw new Error('bad options: --only-pipeline and --skip-pipeline exclude each other');
  return parsed.data;
}

const log = (message: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
};

const routeDecisionSchema = z.object({ decisions: z.number().int().positive(), p50Micros: z.number().nonnegative(), p99Micros: z.number().nonnegative() });
const ROUTE_DECISION_BENCH = join(REPO_ROOT, 'services/router/src/bench/route-decision.bench.ts');

/** The router's own micro-benchmark, when the router ships one. */

/**
 * Waits until the target's store holds a usage record for each of `completed` answered requests,
 * or until billing has added none for 30 s: what is missing then is reported, not waited for.
 */
async function waitForUsageRecords(target: TargetName, completed: number, read: () => Promise<number>): Promise<UsageRecordCheck> {
  const started = Date.now();
  let stored = await read();
  let lastGrowth = Date.now();
  while (stored < completed && Date.now() - lastGrowth < 30_000) {
    await new Promise((done) => setTimeout(done, 250));
    const now = await read();
    if (now > stored) lastGrowth = Date.now();
    stored = now;
  }
  return { target, completed, stored, waitedMs: Date.now() - started };
}
async function measureRouteDecision(decisions: number): Promise<z.infer<typeof routeDecisionSchema> | null> {
  if (!existsSync(ROUTE_DECISION_BENCH)) return null;
  const module: unknown = await import(ROUTE_DECISION_BENCH);
  const bench = z.object({ measureRouteDecision: z.custom<(n: number) => unknown>((v) => typeof v === 'function') }).parse(module);
  return routeDecisionSchema.parse(bench.measureRouteDecision(decisions));
}

interface Infra {
  brokers: string[];
  redisUrl: string;
  stop(): Promise<void>;
}

const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024);

/** The highest memory a target was seen using over all its runs: summed and per process, in MB. */
function mergeMemory(before: TargetMemory | undefined, usage: MemoryPeaks): TargetMemory {
  const byProcess: TargetMemory['byProcess'] = { ...before?.byProcess };
  for (const [name, m] of Object.entries(usage.memoryByProcess)) {
    const seen = byProcess[name];
    byProcess[name] = { peakRssMb: Math.max(seen?.peakRssMb ?? 0, mb(m.peakRssBytes)), peakPssMb: Math.max(seen?.peakPssMb ?? 0, mb(m.peakPssBytes)) };
  }
  return { ...before, peakRssMb: Math.max(before?.peakRssMb ?? 0, mb(usage.peakRssBytes)), peakPssMb: Math.max(before?.peakPssMb ?? 0, mb(usage.peakPssBytes)), byProcess };
}

/** A sample of the processes' memory now, in MB, for the report. */
function memoryNow(processes: ReadonlyArray<{ name: string; pid: number }>): MemorySample {
  const sample = sampleGroupMemory(processes);
  const byProcess = Object.fromEntries(Object.entries(sample.byProcess).map(([name, p]) => [name, { rssMb: mb(p.rssBytes), pssMb: mb(p.pssBytes) }]));
  return { rssMb: mb(sample.rssBytes), pssMb: mb(sample.pssBytes), byProcess };
}

/** No load measured yet: the peaks fill in with the runs. */
const noPeaks = { peakRssMb: 0, peakPssMb: 0, byProcess: {} };

/** The given Kafka and Redis, or a real broker and redis-server of the bench's own. */
async function startInfra(options: BenchOptions): Promise<Infra> {
  if (options.kafkaBrokers && options.redisUrl) return { brokers: options.kafkaBrokers.split(','), redisUrl: options.redisUrl, stop: async () => undefined };
  log('starting Kafka (KRaft) and redis-server');
  const [kafka, redis] = await Promise.all([KafkaBroker.start(), RedisServer.start()]);
  return { brokers: kafka.brokers, redisUrl: redis.url, stop: async () => void (await Promise.all([kafka.destroy(), redis.stop()])) };
}

export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const smoke = options.smoke;
  const settings = {
    smoke,
    concurrency: options.concurrency ?? (smoke ? [1, 16] : [1, 16, 64]),
    durationMs: options.durationMs ?? (smoke ? 1_000 : 5_000),
    rounds: options.rounds ?? (smoke ? 1 : 3),
    warmupMs: options.warmupMs ?? (smoke ? 500 : 3_000),
    targets: options.onlyPipeline ? [] : options.targets,
    profile: options.profile !== undefined,
    nodeArgs: options.nodeArgs ?? [],
  };
  // The gateway's processes (the targets, and billing in the pipeline) run with these.
  const nodeArgs = [...(options.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(options.profile)}`] : []), ...settings.nodeArgs];
  const runId = randomBytes(4).toString('hex');
  if (options.processLogs !== undefined) BenchProcess.logDir = resolve(options.processLogs);
  const notes: string[] = [];

  let routeDecision: Awaited<ReturnType<typeof measureRouteDecision>> = null;
  if (options.onlyPipeline) notes.push('--only-pipeline: no load targets and no routing decision measured.');
  else {
    log('routing decision micro-benchmark');
    routeDecision = await measureRouteDecision(smoke ? 2_000 : 50_000);
    if (!routeDecision) notes.push('services/router/src/bench/route-decision.bench.ts is absent: routing decision not measured.');
  }

  const needsInfra = settings.targets.includes('distributed') || !options.skipPipeline;
  const infra = needsInfra ? await startInfra(options) : undefined;
  const keys = benchKeys();
  const targets: BenchTarget[] = [];
  let upstream: Upstream | undefined;
  const cells = new Map<string, CellMeasurement>();
  const peakRss = new Map<TargetName, number>();
  const memory = new Map<TargetName, TargetMemory>();
  const idleCpu: Partial<Record<TargetName, Record<string, number>>> = {};
  const grpcCells = new Map<string, { scenario: 'chat' | 'stream'; concurrency: number; samples: GrpcChainSample[] }>();
  let grpcFloor: GrpcFloorRow[] | undefined;
  let grpcFloorMemory: TargetMemory | undefined;
  let usagePipeline: UsageThroughputResult | null = null;
  let chargeback: ChargebackResult | null = null;
  let chain: GrpcChain | undefined;
  // Requests each target answered in full (checks, warm-up, runs): each must leave a usage record.
  const completed = new Map<TargetName, number>();
  const count = (target: BenchTarget, sample: { requests: number }): void => {
    completed.set(target.name, (completed.get(target.name) ?? 0) + sample.requests);
  };
  const usageRecords: UsageRecordCheck[] = [];
  try {
    try {
      for (const name of settings.targets) {
        upstream ??= await startUpstream(keys);
        log(`starting target ${name}`);
        const gateway = { upstream, keys, runId, kafkaBrokers: infra?.brokers, redisUrl: infra?.redisUrl, nodeArgs };
        const target =
          name === 'direct' ? directTarget(upstream, keys) : name === 'floor' ? await startFloor(upstream, keys) : name === 'embedded' ? await startEmbedded(gateway) : await startDistributed(gateway);
        targets.push(target);
        // What the code and libraries take before the target serves anything.
        if (target.processes.length > 0) memory.set(name, { ...noPeaks, atStart: memoryNow(target.processes) });
        await checkTarget(target);
        count(target, { requests: SCENARIOS.length });
      }

      const measure = async (target: BenchTarget, scenario: Scenario, concurrency: number, durationMs: number): Promise<void> => {
        const meter = new ProcessGroupMeter(target.processes);
        meter.begin();
        const sample = await drive(target, scenario, concurrency, durationMs);
        const usage = meter.end();
        count(target, sample);
        peakRss.set(target.name, Math.max(peakRss.get(target.name) ?? 0, usage.peakRssBytes));
        memory.set(target.name, mergeMemory(memory.get(target.name), usage));
        const key = `${scenario}/${concurrency}/${target.name}`;
        const cell = cells.get(key) ?? { scenario, concurrency, target: target.name, requests: 0, errors: 0, durationMs: 0, latenciesMs: [], ttfbMs: [], cpuMs: 0, cpuMsByProcess: {}, peakRssBytes: 0 };
        cell.requests += sample.requests;
        cell.errors += sample.errors;
        cell.durationMs += sample.durationMs;
        for (const v of sample.latenciesMs) cell.latenciesMs.push(v);
        for (const v of sample.ttfbMs) cell.ttfbMs.push(v);
        cell.cpuMs += usage.cpuMs;
        for (const [name, ms] of Object.entries(usage.cpuMsByProcess)) cell.cpuMsByProcess[name] = (cell.cpuMsByProcess[name] ?? 0) + ms;
        cell.peakRssBytes = Math.max(cell.peakRssBytes, usage.peakRssBytes);
        cells.set(key, cell);
      };

      // The distributed mode's reference: its two gRPC hops with no logic, interleaved with the targets.
      const chainScenarios = settings.targets.includes('distributed') ? options.scenarios.filter((s): s is 'chat' | 'stream' => s === 'chat' || s === 'stream') : [];
      if (chainScenarios.length > 0) {
        log('starting the gRPC transport floor');
        chain = await GrpcChain.start();
        grpcFloorMemory = { ...noPeaks, atStart: memoryNow(chain.processes) };
      }

      if (targets.length > 0) log('warm-up');
      for (const target of targets) for (const scenario of options.scenarios) count(target, await drive(target, scenario, 16, settings.warmupMs));
      for (const scenario of chainScenarios) await chain?.measure(scenario, 16, settings.warmupMs);
      if (targets.length > 0) {
        // Background CPU without traffic, once every connection has been opened by the warm-up:
        // timers, consumers and merges that every request then pays for.
        const idleMs = smoke ? 1_000 : 5_000;
        log(`idle ${idleMs / 1000} s`);
        const meters = targets.filter((t) => t.processes.length > 0).map((t) => ({ name: t.name, meter: new ProcessGroupMeter(t.processes) }));
        for (const { meter } of meters) meter.begin();
        await new Promise((done) => setTimeout(done, idleMs));
        for (const { name, meter } of meters) {
          const usage = meter.end();
          idleCpu[name] = Object.fromEntries(Object.entries(usage.cpuMsByProcess).map(([process, ms]) => [process, Math.round((ms * 1000) / idleMs)]));
        }
        // Memory at rest: everything loaded and connected, nothing in flight.
        for (const target of targets) {
          const before = memory.get(target.name);
          if (before) memory.set(target.name, { ...before, atRest: memoryNow(target.processes) });
        }
        if (chain && grpcFloorMemory) grpcFloorMemory = { ...grpcFloorMemory, atRest: memoryNow(chain.processes) };
      }

      // Alternate targets inside every cell, rotating the order each round, so drift (thermal,
      // neighbours, GC, caches) falls on every target alike.
      for (const scenario of targets.length > 0 ? options.scenarios : []) {
        for (const concurrency of settings.concurrency) {
          for (let round = 0; round < settings.rounds; round++) {
            const order = targets.map((_, i) => targets[(i + round) % targets.length] as BenchTarget);
            for (const target of order) await measure(target, scenario, concurrency, settings.durationMs);
            if (chain && (scenario === 'chat' || scenario === 'stream')) {
              const cell = grpcCells.get(`${scenario}/${concurrency}`) ?? { scenario, concurrency, samples: [] };
              const sample = await chain.measure(scenario, concurrency, settings.durationMs);
              cell.samples.push(sample);
              grpcFloorMemory = mergeMemory(grpcFloorMemory, sample.memory);
              grpcCells.set(`${scenario}/${concurrency}`, cell);
            }
          }
          log(`${scenario} c=${concurrency} done`);
        }
      }
      if (chain) grpcFloor = [...grpcCells.values()].map((c) => grpcFloorRow(c.scenario, c.concurrency, c.samples));
      // The full pipeline ran: every answered request's usage event reached ClickHouse.
      for (const target of targets) {
        if (!target.usageRecords) continue;
        const check = await waitForUsageRecords(target.name, completed.get(target.name) ?? 0, target.usageRecords.bind(target));
        usageRecords.push(check);
        log(`${target.name}: ${check.stored} usage records stored for ${check.completed} answered requests`);
      }
    } finally {
      await chain?.stop();
      for (const target of targets.reverse()) await target.stop().catch((error: unknown) => log(`stopping ${target.name}: ${String(error)}`));
      await upstream?.process.stop();
    }

    if (!options.skipPipeline && infra) {
      // The smoke's backlog is large enough for billing's CPU to span several /proc clock ticks (10 ms):
      // 5 000 events drained in one tick and read as no CPU at all.
      const usageEvents = options.usageEvents ?? (smoke ? 30_000 : 200_000);
      log(`usage pipeline: ${usageEvents} events through Kafka → billing → ClickHouse`);
      usagePipeline = await measureUsageThroughput({ brokers: infra.brokers, events: usageEvents, runId, nodeArgs });
      log(`usage pipeline: consumer ${usagePipeline.consumer.eventsPerSecond} events/s over a backlog (${usagePipeline.consumer.batches} inserts); live ${usagePipeline.eventsPerSecond} events/s (published in ${usagePipeline.publishSeconds.toFixed(2)} s, stored after ${usagePipeline.storedSeconds.toFixed(2)} s, ${usagePipeline.batches} inserts)`);
      const chargebackEvents = options.chargebackEvents ?? (smoke ? 100_000 : 10_000_000);
      if (chargebackEvents > 0) {
        log(`chargeback: generating ${chargebackEvents} events into ClickHouse (chDB)`);
        chargeback = await measureChargeback(chargebackEvents);
      } else notes.push('--chargeback-events 0: chargeback not measured.');
    }
  } finally {
    await infra?.stop();
  }

  const budgetsOn = 'budgets' in configSchema.shape;
  const missing = budgetsOn ? [] : ['budget reservation (no `budgets` configuration exists yet, so nothing is reserved)'];
  notes.push(
    'CPU ms/req and RSS count the target\'s own processes only: the upstream simulator, Kafka, Redis and the load generator are not included. The direct target has none.',
    'Latency overhead is the difference of percentiles against the direct call in the same cell; on a shared machine small negative values are noise.',
  );
  if (settings.profile) notes.push('Run with --cpu-prof on the gateway processes: timings are inflated by the profiler.');
  const base = {
    schema: 'open-router-bench/v1' as const,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', memoryMb: Math.round(totalmem() / 1024 / 1024), node: process.versions.node, platform: process.platform },
    settings,
    pipeline: {
      embedded: `one process: API key auth, rate limits (in-memory counters)${budgetsOn ? ', hard budgets reserved and settled (in-memory ledger)' : ''}, routing, usage events over the in-process bus into billing and chDB`,
      distributed: `ingress, router, adapter, billing, alerting as processes: API key auth, rate limits in Redis${budgetsOn ? ', hard budgets reserved and settled in Redis' : ''}, routing over gRPC, usage events to Kafka, billing consuming into chDB`,
      missing,
    },
    rows: summarise([...cells.values()]),
    peakRssMb: Object.fromEntries([...peakRss].map(([name, bytes]) => [name, Math.round(bytes / 1024 / 1024)])),
    memory: Object.fromEntries([...memory]),
    idleCpuMsPerSecond: idleCpu,
    ...(grpcFloor ? { grpcFloor } : {}),
    ...(grpcFloorMemory ? { grpcFloorMemory } : {}),
    routeDecision,
    usageRecords,
    usagePipeline,
    chargeback,
    notes,
  };
  return benchReportSchema.parse({ ...base, targets: checkTargets(base) });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const report = await runBench(options);
  const out = resolve(options.out);
  mkdirSync(out, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const name = `${options.smoke ? 'smoke' : 'bench'}-${stamp}`;
  writeFileSync(join(out, `${name}.json`), JSON.stringify(report, null, 2) + '\n');
  const markdown = toMarkdown(report);
  writeFileSync(join(out, `${name}.md`), markdown);
  writeFileSync(join(out, `latest${options.smoke ? '-smoke' : ''}.json`), JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(`${markdown}\nwritten: ${join(out, `${name}.json`)} and .md\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
