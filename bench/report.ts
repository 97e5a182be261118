import { z } from 'zod';
import type { Scenario } from './load';
import type { TargetName } from './targets/target';

/** The p-th percentile (0..1) of unsorted values, nearest-rank; 0 for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
}

const round = (n: number, digits = 3): number => Number(n.toFixed(digits));

const rowSchema = z.object({
  scenario: z.enum(['chat', 'stream', 'embeddings']),
  concurrency: z.number().int().positive(),
  target: z.enum(['direct', 'floor', 'embedded', 'distributed']),
  requests: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  requestsPerSecond: z.number().nonnegative(),
  p50Ms: z.number().nonnegative(),
  p99Ms: z.number().nonnegative(),
  /**
   * Latency above the direct call's at the same percentile (may be negative within noise);
   * absent when the run did not measure the direct call (`--targets` without `direct`).
   */
  overheadP50Ms: z.number().optional(),
  overheadP99Ms: z.number().optional(),
  ttfbP50Ms: z.number().nonnegative().optional(),
  ttfbP99Ms: z.number().nonnegative().optional(),
  ttfbOverheadP50Ms: z.number().optional(),
  /** CPU (user + system) of the target's own processes per request, summed over them. */
  cpuMsPerRequest: z.number().nonnegative(),
  /** The same per process of the target (the distributed mode's services), where it has more than one. */
  cpuMsPerRequestByProcess: z.record(z.string(), z.number().nonnegative()).optional(),
  /** Highest summed RSS of the target's processes during this cell's runs. */
  peakRssMb: z.number().nonnegative(),
  /** Against the floor proxy at the same cell: throughput share, CPU multiple. */
  throughputVsFloor: z.number().nonnegative().optional(),
  cpuVsFloor: z.number().nonnegative().optional(),
});
export type ResultRow = z.infer<typeof rowSchema>;

const grpcFloorRowSchema = z.object({
  scenario: z.enum(['chat', 'stream']),
  concurrency: z.number().int().positive(),
  requests: z.number().int().positive(),
  errors: z.number().int().nonnegative(),
  requestsPerSecond: z.number().nonnegative(),
  p50Ms: z.number().nonnegative(),
  /** CPU per call of the client, the relay and the backend, and their sum. */
  cpuMsPerRequest: z.object({ client: z.number().nonnegative(), relay: z.number().nonnegative(), backend: z.number().nonnegative(), total: z.number().nonnegative() }),
});
export type GrpcFloorRow = z.infer<typeof grpcFloorRowSchema>;

const targetCheckSchema = z.object({ name: z.string(), target: z.string(), measured: z.number().nullable(), unit: z.string(), met: z.boolean().nullable(), note: z.string().optional() });
export type TargetCheck = z.infer<typeof targetCheckSchema>;

const megabytes = z.number().nonnegative();
/** Summed RSS and PSS at one moment, and each process's, MB. */
const memorySampleSchema = z.object({ rssMb: megabytes, pssMb: megabytes, byProcess: z.record(z.string(), z.object({ rssMb: megabytes, pssMb: megabytes })) });
const targetMemorySchema = z.object({
  peakRssMb: megabytes,
  peakPssMb: megabytes,
  byProcess: z.record(z.string(), z.object({ peakRssMb: megabytes, peakPssMb: megabytes })),
  /**
   * Right after the target was ready, before the warm-up: the code and libraries loaded, nothing
   * served yet. Absent for the direct call and in reports that predate it.
   */
  atStart: memorySampleSchema.optional(),
  /** At the end of the idle phase after the warm-up: every connection open, no traffic. */
  atRest: memorySampleSchema.optional(),
});

const usageRecordCheckSchema = z.object({ target: z.enum(['direct', 'floor', 'embedded', 'distributed']), completed: z.number().int().nonnegative(), stored: z.number().int().nonnegative(), waitedMs: z.number().nonnegative() });
export type UsageRecordCheck = z.infer<typeof usageRecordCheckSchema>;

export const benchReportSchema = z.object({
  schema: z.literal('open-router-bench/v1'),
  startedAt: z.string(),
  finishedAt: z.string(),
  machine: z.object({ cpus: z.number().int().positive(), cpuModel: z.string(), memoryMb: z.number().positive(), node: z.string(), platform: z.string() }),
  settings: z.object({
    smoke: z.boolean(),
    concurrency: z.array(z.number().int().positive()),
    durationMs: z.number().int().positive(),
    rounds: z.number().int().positive(),
    warmupMs: z.number().int().nonnegative(),
    targets: z.array(z.enum(['direct', 'floor', 'embedded', 'distributed'])),
    profile: z.boolean(),
    /** Extra Node options the gateway's processes ran with. */
    nodeArgs: z.array(z.string()).default([]),
  }),
  pipeline: z.object({ embedded: z.string(), distributed: z.string(), missing: z.array(z.string()) }),
  rows: z.array(rowSchema),
  /** Summed RSS peak of each target's processes over the whole run, MB. */
  peakRssMb: z.record(z.string(), z.number().nonnegative()),
  /**
   * Per target: the peak of the summed RSS and of the summed PSS (shared pages such as the Node
   * binary counted once instead of once per process), and each process's own peaks, MB.
   */
  memory: z.record(z.string(), targetMemorySchema),
  /** Per target and process: CPU ms per second with no traffic, measured after the warm-up. */
  idleCpuMsPerSecond: z.record(z.string(), z.record(z.string(), z.number().nonnegative())),
  /**
   * The distributed mode's two gRPC hops alone (client, relay, backend; no logic), measured
   * interleaved with the targets; absent when the distributed mode was not measured.
   */
  grpcFloor: z.array(grpcFloorRowSchema).optional(),
  /**
   * The gRPC floor's relay and backend: two Node processes with grpc-js and the gateway's
   * contracts, built into dist/ like the services. Peak over its measured runs, at start and at
   * rest as the targets'.
   */
  grpcFloorMemory: targetMemorySchema.optional(),
  routeDecision: z.object({ decisions: z.number().int().positive(), p50Micros: z.number().nonnegative(), p99Micros: z.number().nonnegative() }).nullable(),
  /**
   * Per target whose store the harness reads (the distributed one): the requests it answered in
   * full and the usage records its ClickHouse held after billing caught up. A request the load
   * driver abandoned at the end of a run is recorded too, so `stored` may exceed `completed`.
   */
  usageRecords: z.array(usageRecordCheckSchema).optional(),
  usagePipeline: z
    .object({
      events: z.number().int().positive(),
      eventsPerSecond: z.number().positive(),
      publishSeconds: z.number().nonnegative(),
      storedSeconds: z.number().positive(),
      stored: z.number().int().nonnegative(),
      consumer: z.object({ eventsPerSecond: z.number().positive(), drainSeconds: z.number().positive(), batches: z.number().int().positive(), cpuMsPerThousandEvents: z.number().positive() }),
    })
    .nullable(),
  chargeback: z
    .object({
      events: z.number().int().positive(),
      insertSeconds: z.number().nonnegative(),
      rawQueryMs: z.number().nonnegative(),
      rollupQueryMs: z.number().nonnegative(),
      groups: z.number().int().nonnegative(),
      totalCost: z.string(),
    })
    .nullable(),
  targets: z.array(targetCheckSchema),
  notes: z.array(z.string()),
});
export type BenchReport = z.infer<typeof benchReportSchema>;
export type TargetMemory = z.infer<typeof targetMemorySchema>;
export type MemorySample = z.infer<typeof memorySampleSchema>;

export interface CellMeasurement {
  scenario: Scenario;
  concurrency: number;
  target: TargetName;
  requests: number;
  errors: number;
  durationMs: number;
  latenciesMs: number[];
  ttfbMs: number[];
  cpuMs: number;
  cpuMsByProcess: Record<string, number>;
  peakRssBytes: number;
}

/** Turns raw cells into report rows: percentiles, overhead over direct, ratios to the floor. */
export function summarise(cells: readonly CellMeasurement[]): ResultRow[] {
  const rows: ResultRow[] = cells.map((c) => ({
    scenario: c.scenario,
    concurrency: c.concurrency,
    target: c.target,
    requests: c.requests,
    errors: c.errors,
    requestsPerSecond: round(c.durationMs > 0 ? (c.requests * 1000) / c.durationMs : 0, 1),
    p50Ms: round(percentile(c.latenciesMs, 0.5)),
    p99Ms: round(percentile(c.latenciesMs, 0.99)),
    ...(c.scenario === 'stream' ? { ttfbP50Ms: round(percentile(c.ttfbMs, 0.5)), ttfbP99Ms: round(percentile(c.ttfbMs, 0.99)) } : {}),
    cpuMsPerRequest: round(c.requests > 0 ? c.cpuMs / c.requests : 0, 4),
    ...(Object.keys(c.cpuMsByProcess).length > 1
      ? { cpuMsPerRequestByProcess: Object.fromEntries(Object.entries(c.cpuMsByProcess).map(([name, ms]) => [name, round(c.requests > 0 ? ms / c.requests : 0, 4)])) }
      : {}),
    peakRssMb: round(c.peakRssBytes / 1024 / 1024, 1),
  }));
  const find = (row: ResultRow, target: TargetName): ResultRow | undefined => rows.find((r) => r.scenario === row.scenario && r.concurrency === row.concurrency && r.target === target);
  for (const row of rows) {
    const direct = find(row, 'direct');
    if (direct) {
      row.overheadP50Ms = round(row.p50Ms - direct.p50Ms);
      row.overheadP99Ms = round(row.p99Ms - direct.p99Ms);
      if (row.ttfbP50Ms !== undefined && direct.ttfbP50Ms !== undefined) row.ttfbOverheadP50Ms = round(row.ttfbP50Ms - direct.ttfbP50Ms);
    }
    const floor = find(row, 'floor');
    if (floor && row.target !== 'direct' && row.target !== 'floor') {
      if (floor.requestsPerSecond > 0) row.throughputVsFloor = round(row.requestsPerSecond / floor.requestsPerSecond, 3);
      if (floor.cpuMsPerRequest > 0) row.cpuVsFloor = round(row.cpuMsPerRequest / floor.cpuMsPerRequest, 2);
    }
  }
  return rows;
}

/** The issue's targets, checked against the measured rows. `met: null` means not measured. */
export function checkTargets(report: Omit<BenchReport, 'targets'>): TargetCheck[] {
  const row = (scenario: Scenario, concurrency: number, target: TargetName): ResultRow | undefined =>
    report.rows.find((r) => r.scenario === scenario && r.concurrency === concurrency && r.target === target);
  const highest = Math.max(...report.settings.concurrency);
  const loaded = report.settings.concurrency.includes(16) ? 16 : highest;
  const checks: TargetCheck[] = [];
  const add = (name: string, target: string, measured: number | undefined, unit: string, ok: (v: number) => boolean, note?: string): void => {
    checks.push({ name, target, measured: measured ?? null, unit, met: measured === undefined ? null : ok(measured), ...(note ? { note } : {}) });
  };
  const distChat = row('chat', loaded, 'distributed');
  const grpcChat = report.grpcFloor?.find((r) => r.scenario === 'chat' && r.concurrency === loaded);
  add('distributed: CPU per request, all services (chat, c=' + loaded + ')', '≤ 0.5', distChat?.cpuMsPerRequest, 'ms', (v) => v <= 0.5, grpcChat ? `the two gRPC hops alone: ${grpcChat.cpuMsPerRequest.total} ms` : undefined);
  const grpcAlone = (scenario: 'chat' | 'stream', what: string): string | undefined => {
    const g = report.grpcFloor?.find((r) => r.scenario === scenario && r.concurrency === 1);
    return g ? `the two gRPC hops alone: p50 ${g.p50Ms} ms${what}` : undefined;
  };
  add('distributed: TTFB overhead p50 (stream, c=1)', '≤ 1', row('stream', 1, 'distributed')?.ttfbOverheadP50Ms, 'ms', (v) => v <= 1, grpcAlone('stream', ' for the whole stream'));
  add('distributed: overhead p50 at c=1 (chat)', '≤ 0.5', row('chat', 1, 'distributed')?.overheadP50Ms, 'ms', (v) => v <= 0.5, grpcAlone('chat', ''));
  add('embedded: throughput vs floor (chat, c=' + loaded + ')', '≥ 0.5', row('chat', loaded, 'embedded')?.throughputVsFloor, '×', (v) => v >= 0.5);
  const rss = report.peakRssMb['distributed'];
  const distMemory = report.memory['distributed'];
  const rest = distMemory?.atRest;
  add(
    'distributed: all services RSS under load',
    '≤ 300',
    rss,
    'MB',
    (v) => v <= 300,
    distMemory === undefined ? undefined : `summed PSS ${distMemory.peakPssMb} MB${rest ? `; at rest ${rest.rssMb} MB RSS, ${rest.pssMb} MB PSS` : ''}`,
  );
  add('usage consumer into ClickHouse (Kafka backlog → billing → chDB)', '≥ 20000', report.usagePipeline?.consumer.eventsPerSecond, 'events/s', (v) => v >= 20_000);
  add('usage pipeline live (publisher on the same cores)', '≥ 20000', report.usagePipeline?.eventsPerSecond, 'events/s', (v) => v >= 20_000);
  add(`chargeback over a month (${report.chargeback?.events ?? 0} events, raw table)`, '< 1000', report.chargeback ? round(report.chargeback.rawQueryMs, 1) : undefined, 'ms', (v) => v < 1000);
  add('routing decision p50 (no classification)', '< 50', report.routeDecision?.p50Micros, 'µs', (v) => v < 50);
  return checks;
}

const fmt = (n: number | undefined, digits = 2): string => (n === undefined ? '–' : n.toFixed(digits));

/** The report as markdown: one table per scenario, then the targets and the pipeline. */
export function toMarkdown(report: BenchReport): string {
  const lines: string[] = [];
  const row = (scenario: Scenario, concurrency: number, target: TargetName): ResultRow | undefined =>
    report.rows.find((r) => r.scenario === scenario && r.concurrency === concurrency && r.target === target);
  const m = report.machine;
  lines.push(`Measured ${report.startedAt} on ${m.cpus} × ${m.cpuModel}, ${Math.round(m.memoryMb / 1024)} GB, Node ${m.node}${report.settings.smoke ? ' (smoke run: numbers are not meaningful)' : ''}.`);
  lines.push(
    `Per cell: ${report.settings.rounds} round(s) of ${report.settings.durationMs / 1000} s per target, targets alternated, after ${report.settings.warmupMs / 1000} s warm-up each.${report.settings.nodeArgs.length > 0 ? ` Gateway processes ran with \`${report.settings.nodeArgs.join(' ')}\`.` : ''}`,
  );
  lines.push('');
  for (const scenario of ['chat', 'stream', 'embeddings'] as const) {
    const rows = report.rows.filter((r) => r.scenario === scenario);
    if (rows.length === 0) continue;
    const stream = scenario === 'stream';
    lines.push(`### ${scenario === 'chat' ? 'Chat, non-streaming' : stream ? 'Chat, streaming (SSE)' : 'Embeddings'}`, '');
    lines.push(
      `| c | target | req/s | p50 ms | p99 ms | overhead p50 ms | overhead p99 ms |${stream ? ' TTFB p50 ms | TTFB p99 ms | TTFB overhead p50 ms |' : ''} CPU ms/req | peak RSS MB | req/s vs floor | CPU vs floor | errors |`,
    );
    lines.push(`|---|---|---:|---:|---:|---:|---:|${stream ? '---:|---:|---:|' : ''}---:|---:|---:|---:|---:|`);
    for (const r of rows) {
      lines.push(
        `| ${r.concurrency} | ${r.target} | ${fmt(r.requestsPerSecond, 0)} | ${fmt(r.p50Ms, 3)} | ${fmt(r.p99Ms, 3)} | ${fmt(r.overheadP50Ms, 3)} | ${fmt(r.overheadP99Ms, 3)} |` +
          (stream ? ` ${fmt(r.ttfbP50Ms, 3)} | ${fmt(r.ttfbP99Ms, 3)} | ${fmt(r.ttfbOverheadP50Ms, 3)} |` : '') +
          ` ${fmt(r.cpuMsPerRequest, 3)} | ${fmt(r.peakRssMb, 0)} | ${fmt(r.throughputVsFloor, 2)} | ${fmt(r.cpuVsFloor, 2)} | ${r.errors} |`,
      );
    }
    lines.push('');
  }
  const split = report.rows.filter((r) => r.cpuMsPerRequestByProcess !== undefined);
  const names = [...new Set(split.flatMap((r) => Object.keys(r.cpuMsPerRequestByProcess ?? {})))];
  if (split.length > 0) {
    lines.push('### CPU ms per request by process', '');
    lines.push(`| scenario | c | target | ${names.join(' | ')} | total |`, `|---|---|---|${names.map(() => '---:|').join('')}---:|`);
    for (const r of split) lines.push(`| ${r.scenario} | ${r.concurrency} | ${r.target} | ${names.map((n) => fmt(r.cpuMsPerRequestByProcess?.[n], 3)).join(' | ')} | ${fmt(r.cpuMsPerRequest, 3)} |`);
    lines.push('');
  }
  const grpc = report.grpcFloor ?? [];
  if (grpc.length > 0) {
    lines.push('### gRPC transport floor: the distributed mode\'s two hops, no logic', '');
    lines.push(
      "A client (ingress's place), a relay (the router's) and a backend with a canned answer (the adapter's), with the gateway's contracts, channel options, call helpers and service token, measured interleaved with the targets. The distributed columns are the same cell's ingress, router and adapter.",
      '',
    );
    lines.push('| scenario | c | calls/s | p50 ms | client | relay | backend | total CPU ms/call | distributed ingress + router + adapter | distributed ÷ floor |', '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const g of grpc) {
      const d = row(g.scenario, g.concurrency, 'distributed')?.cpuMsPerRequestByProcess;
      const hops = d ? (d['ingress'] ?? 0) + (d['router'] ?? 0) + (d['adapter'] ?? 0) : undefined;
      const c = g.cpuMsPerRequest;
      lines.push(
        `| ${g.scenario} | ${g.concurrency} | ${fmt(g.requestsPerSecond, 0)} | ${fmt(g.p50Ms, 3)} | ${fmt(c.client, 3)} | ${fmt(c.relay, 3)} | ${fmt(c.backend, 3)} | ${fmt(c.total, 3)} | ${fmt(hops, 3)} | ${hops === undefined || c.total === 0 ? '–' : fmt(hops / c.total, 2)} |`,
      );
    }
    lines.push('');
  }
  // The direct call has no process of its own to measure.
  const memory = [...Object.entries(report.memory), ...(report.grpcFloorMemory ? [['gRPC floor', report.grpcFloorMemory] as const] : [])].filter(([, m]) => Object.keys(m.byProcess).length > 0);
  if (memory.length > 0) {
    const mb = (n: number | undefined): string => (n === undefined ? '–' : String(n));
    const header = '| RSS at start | RSS at rest | RSS peak | PSS at start | PSS at rest | PSS peak |';
    lines.push('### Memory: at start, at rest, peak under load', '');
    lines.push(
      'At start: right after the target is ready, before the warm-up (code and libraries loaded, nothing served). At rest: at the end of the idle phase after the warm-up. Peak: the highest sample under load. ' +
        'RSS counts pages shared between processes (the Node binary, libraries) once per process; PSS divides each shared page among the processes that map it, so its sum counts it once. ' +
        "The gRPC floor is its relay and backend: two Node processes with grpc-js and the gateway's contracts and no logic.",
      '',
    );
    lines.push(`| summed over the processes, MB ${header}`, '|---|---:|---:|---:|---:|---:|---:|');
    for (const [name, m] of memory) lines.push(`| ${name} | ${mb(m.atStart?.rssMb)} | ${mb(m.atRest?.rssMb)} | ${m.peakRssMb} | ${mb(m.atStart?.pssMb)} | ${mb(m.atRest?.pssMb)} | ${m.peakPssMb} |`);
    lines.push('');
    const split = memory.filter(([, m]) => Object.keys(m.byProcess).length > 1);
    if (split.length > 0) {
      lines.push(`| per process, MB ${header}`, '|---|---:|---:|---:|---:|---:|---:|');
      for (const [name, m] of split) {
        for (const [process, p] of Object.entries(m.byProcess)) {
          const start = m.atStart?.byProcess[process];
          const rest = m.atRest?.byProcess[process];
          lines.push(`| ${name}: ${process} | ${mb(start?.rssMb)} | ${mb(rest?.rssMb)} | ${p.peakRssMb} | ${mb(start?.pssMb)} | ${mb(rest?.pssMb)} | ${p.peakPssMb} |`);
        }
      }
      lines.push('');
    }
  }
  const idle = Object.entries(report.idleCpuMsPerSecond);
  if (idle.length > 0) {
    lines.push('### Idle CPU after the warm-up, ms per second', '');
    lines.push('| target | per process | total |', '|---|---|---:|');
    for (const [name, byProcess] of idle) {
      const total = Object.values(byProcess).reduce((a, b) => a + b, 0);
      lines.push(`| ${name} | ${Object.entries(byProcess).map(([process, ms]) => `${process} ${ms}`).join(', ')} | ${total} |`);
    }
    lines.push('');
  }
  lines.push('### Targets', '', '| target | goal | measured | met |', '|---|---|---:|---|');
  for (const t of report.targets) lines.push(`| ${t.name} | ${t.target} ${t.unit} | ${t.measured === null ? 'not measured' : `${t.measured} ${t.unit}${t.note ? ` (${t.note})` : ''}`} | ${t.met === null ? '–' : t.met ? 'yes' : '**no**'} |`);
  lines.push('');
  lines.push('### Usage pipeline and chargeback', '');
  const u = report.usagePipeline;
  lines.push(
    u
      ? [
          `- Billing draining a Kafka backlog into ClickHouse: ${u.events} events waiting, drained in ${u.consumer.drainSeconds.toFixed(2)} s between the first and the last insert, ${u.consumer.batches} inserts: **${Math.round(u.consumer.eventsPerSecond)} events/s**; billing's CPU ${u.consumer.cpuMsPerThousandEvents.toFixed(1)} ms per 1 000 events.`,
          `- Live, publisher and billing on the same cores: ${u.events} events published in ${u.publishSeconds.toFixed(2)} s, all stored and committed after ${u.storedSeconds.toFixed(2)} s: **${Math.round(u.eventsPerSecond)} events/s**.`,
        ].join('\n')
      : '- Kafka → billing → ClickHouse: not measured.',
  );
  const c = report.chargeback;
  lines.push(
    c
      ? `- Chargeback for one month over ${c.events} events (inserted in ${c.insertSeconds.toFixed(1)} s): raw table **${c.rawQueryMs.toFixed(0)} ms**, daily rollup **${c.rollupQueryMs.toFixed(0)} ms** (${c.groups} groups, total ${c.totalCost}).`
      : '- Chargeback: not measured.',
  );
  for (const u of report.usageRecords ?? []) {
    const verdict = u.stored >= u.completed ? 'every one recorded' : `**${u.completed - u.stored} missing**`;
    lines.push(`- Usage records, ${u.target}: ${u.stored} stored in ClickHouse for ${u.completed} requests answered in full (${verdict}; billing caught up ${(u.waitedMs / 1000).toFixed(1)} s after the last run).`);
  }
  const rd = report.routeDecision;
  lines.push(rd ? `- Routing decision without classification: p50 **${rd.p50Micros} µs**, p99 ${rd.p99Micros} µs over ${rd.decisions} decisions.` : '- Routing decision: not measured.');
  if (report.pipeline.missing.length > 0) lines.push(`- Not in the pipeline yet: ${report.pipeline.missing.join('; ')}.`);
  for (const note of report.notes) lines.push(`- ${note}`);
  lines.push('');
  return lines.join('\n');
}
