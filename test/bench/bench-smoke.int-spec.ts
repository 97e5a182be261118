import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { sharedKafkaBrokers, sharedRedisUrl } from '../support/infra/shared-infra';

const root = resolve(__dirname, '../..');

const memorySample = z.object({ rssMb: z.number(), pssMb: z.number(), byProcess: z.record(z.string(), z.object({ rssMb: z.number(), pssMb: z.number() })) });
const targetMemory = z.object({
  peakRssMb: z.number(),
  peakPssMb: z.number(),
  byProcess: z.record(z.string(), z.object({ peakRssMb: z.number(), peakPssMb: z.number() })),
  atStart: memorySample.optional(),
  atRest: memorySample.optional(),
});

/** The part of the report (bench/report.ts) this spec checks; the harness validates all of it. */
const reportSchema = z.object({
  settings: z.object({ concurrency: z.array(z.number()), targets: z.array(z.string()) }),
  rows: z.array(
    z.object({
      scenario: z.string(),
      target: z.string(),
      requests: z.number(),
      errors: z.number(),
      requestsPerSecond: z.number(),
      p50Ms: z.number(),
      p99Ms: z.number(),
      ttfbP50Ms: z.number().optional(),
      cpuMsPerRequest: z.number(),
      cpuMsPerRequestByProcess: z.record(z.string(), z.number()).optional(),
      peakRssMb: z.number(),
      throughputVsFloor: z.number().optional(),
    }),
  ),
  peakRssMb: z.record(z.string(), z.number()),
  memory: z.record(z.string(), targetMemory),
  grpcFloorMemory: targetMemory.optional(),
  idleCpuMsPerSecond: z.record(z.string(), z.record(z.string(), z.number())),
  grpcFloor: z.array(
    z.object({ scenario: z.string(), concurrency: z.number(), requests: z.number(), errors: z.number(), cpuMsPerRequest: z.object({ client: z.number(), relay: z.number(), backend: z.number(), total: z.number() }) }),
  ),
  routeDecision: z.object({ p50Micros: z.number() }).nullable(),
  usageRecords: z.array(z.object({ target: z.string(), completed: z.number(), stored: z.number() })),
  usagePipeline: z.object({ events: z.number(), stored: z.number(), eventsPerSecond: z.number(), consumer: z.object({ eventsPerSecond: z.number(), batches: z.number(), cpuMsPerThousandEvents: z.number() }) }).nullable(),
  chargeback: z.object({ events: z.number(), groups: z.number(), totalCost: z.string() }).nullable(),
  targets: z.array(z.object({ name: z.string(), measured: z.number().nullable(), note: z.string().optional() })),
});

/**
 * `npm run bench:smoke` end to end, on the shared Kafka and Redis: every target starts, every
 * scenario runs, the pipeline benchmarks run, and the report has the promised shape. Timings
 * are never asserted: they belong to the machine, not to the code.
 */
describe('benchmark harness (smoke)', () => {
  let report: z.infer<typeof reportSchema>;

  beforeAll(async () => {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'ignore' });
    const out = mkdtempSync(join(tmpdir(), 'or-bench-smoke-'));
    const child = spawn(
      process.execPath,
      ['-r', './bench/register.js', 'bench/run.ts', '--smoke', '--kafka-brokers', sharedKafkaBrokers().join(','), '--redis-url', sharedRedisUrl(), '--out', out],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-6000)));
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`the smoke bench exited with ${code}:\n${stderr}`);
    report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'latest-smoke.json'), 'utf8')));
  }, 300_000);

  it('measures every scenario, concurrency and target without errors', () => {
    const { concurrency, targets } = report.settings;
    expect(report.rows).toHaveLength(3 * concurrency.length * targets.length);
    for (const row of report.rows) {
      expect(row.errors).toBe(0);
      expect(row.requests).toBeGreaterThan(0);
      expect(row.requestsPerSecond).toBeGreaterThan(0);
      expect(row.p50Ms).toBeGreaterThan(0);
      expect(row.p99Ms).toBeGreaterThanOrEqual(row.p50Ms);
      if (row.scenario === 'stream') expect(row.ttfbP50Ms).toBeGreaterThan(0);
      if (row.target !== 'direct') {
        expect(row.cpuMsPerRequest).toBeGreaterThan(0);
        expect(row.peakRssMb).toBeGreaterThan(0);
      }
      if (row.target === 'embedded' || row.target === 'distributed') expect(row.throughputVsFloor).toBeGreaterThan(0);
      if (row.target === 'distributed') {
        // Each service's share, adding up to the total.
        const byProcess = row.cpuMsPerRequestByProcess ?? {};
        expect(Object.keys(byProcess).sort()).toEqual(['adapter', 'alerting', 'billing', 'ingress', 'router']);
        const sum = Object.values(byProcess).reduce((a, b) => a + b, 0);
        expect(Math.abs(sum - row.cpuMsPerRequest)).toBeLessThan(0.01 + row.cpuMsPerRequest * 0.001);
      } else expect(row.cpuMsPerRequestByProcess).toBeUndefined();
    }
  });

  it("stores a usage record in the distributed target's ClickHouse server for every request it answered", () => {
    const distributed = report.usageRecords.find((u) => u.target === 'distributed');
    const served = report.rows.filter((r) => r.target === 'distributed').reduce((sum, r) => sum + r.requests, 0);
    // Checks and warm-up come on top of the measured rows.
    expect(distributed?.completed).toBeGreaterThan(served);
    expect(distributed?.stored).toBeGreaterThanOrEqual(distributed?.completed ?? Infinity);
  });

  it("measures the distributed mode's two gRPC hops alone, for chat and stream at every concurrency", () => {
    const cells = report.grpcFloor.map((g) => `${g.scenario}/${g.concurrency}`).sort();
    expect(cells).toEqual(report.settings.concurrency.flatMap((c) => [`chat/${c}`, `stream/${c}`]).sort());
    for (const g of report.grpcFloor) {
      expect(g.errors).toBe(0);
      expect(g.requests).toBeGreaterThan(0);
      const { client, relay, backend, total } = g.cpuMsPerRequest;
      for (const part of [client, relay, backend]) expect(part).toBeGreaterThan(0);
      expect(Math.abs(client + relay + backend - total)).toBeLessThan(0.01);
    }
    expect(report.targets.find((t) => t.name.startsWith('distributed: CPU per request'))?.note).toMatch(/the two gRPC hops alone: [0-9.]+ ms/);
  });

  it('runs the usage pipeline and the chargeback over generated events', () => {
    expect(report.usagePipeline?.stored).toBe(report.usagePipeline?.events);
    expect(report.usagePipeline?.eventsPerSecond).toBeGreaterThan(0);
    expect(report.usagePipeline?.consumer.eventsPerSecond).toBeGreaterThan(0);
    expect(report.usagePipeline?.consumer.batches).toBeGreaterThan(0);
    expect(report.usagePipeline?.consumer.cpuMsPerThousandEvents).toBeGreaterThan(0);
    expect(report.chargeback?.events).toBeGreaterThan(0);
    expect(report.chargeback?.groups).toBeGreaterThan(0);
    expect(Number(report.chargeback?.totalCost)).toBeGreaterThan(0);
  });

  it('checks every target of the issue and measures the routing decision', () => {
    expect(report.targets.length).toBeGreaterThanOrEqual(8);
    for (const check of report.targets) expect(check.measured).not.toBeNull();
    expect(report.routeDecision?.p50Micros).toBeGreaterThan(0);
    expect(report.peakRssMb['distributed']).toBeGreaterThan(0);
  });

  it('measures the background CPU of every process with no traffic', () => {
    expect(Object.keys(report.idleCpuMsPerSecond).sort()).toEqual(['distributed', 'embedded', 'floor']);
    expect(Object.keys(report.idleCpuMsPerSecond['distributed'] ?? {}).sort()).toEqual(['adapter', 'alerting', 'billing', 'ingress', 'router']);
    for (const byProcess of Object.values(report.idleCpuMsPerSecond)) for (const ms of Object.values(byProcess)) expect(ms).toBeGreaterThanOrEqual(0);
  });

  it('reports memory summed as RSS and as PSS, and per process', () => {
    const distributed = report.memory['distributed'];
    expect(Object.keys(distributed?.byProcess ?? {}).sort()).toEqual(['adapter', 'alerting', 'billing', 'ingress', 'router']);
    for (const [name, m] of Object.entries(report.memory)) {
      expect(m.peakRssMb).toBe(report.peakRssMb[name]);
      // The direct call has no process of its own to measure.
      if (name === 'direct') continue;
      // Shared pages are counted once in the PSS sum, once per process in the RSS sum.
      expect(m.peakPssMb).toBeGreaterThan(0);
      expect(m.peakPssMb).toBeLessThanOrEqual(m.peakRssMb);
      for (const p of Object.values(m.byProcess)) {
        expect(p.peakPssMb).toBeGreaterThan(0);
        expect(p.peakPssMb).toBeLessThanOrEqual(p.peakRssMb);
      }
    }
  });

  it("reports memory at start and at rest for every target's processes and the gRPC floor's relay and backend", () => {
    expect(report.memory['direct']?.atStart).toBeUndefined();
    const groups = [...Object.entries(report.memory).filter(([name]) => name !== 'direct'), ['gRPC floor', report.grpcFloorMemory] as const];
    for (const [name, m] of groups) {
      expect(m).toBeDefined();
      if (name === 'gRPC floor') expect(Object.keys(m?.byProcess ?? {}).sort()).toEqual(['backend', 'relay']);
      for (const at of [m?.atStart, m?.atRest]) {
        expect(Object.keys(at?.byProcess ?? {}).sort()).toEqual(Object.keys(m?.byProcess ?? {}).sort());
        expect(at?.pssMb).toBeGreaterThan(0);
        expect(at?.pssMb).toBeLessThanOrEqual(at?.rssMb ?? 0);
      }
    }
    expect(report.targets.find((t) => t.name.startsWith('distributed: all services RSS'))?.note).toMatch(/^summed PSS \d+ MB; at rest \d+ MB RSS, \d+ MB PSS$/);
  });
});
