import { benchReportSchema, checkTargets, summarise, toMarkdown, type BenchReport, type CellMeasurement } from './report';

function cell(target: CellMeasurement['target'], latencyMs: number, scenario: CellMeasurement['scenario'] = 'chat'): CellMeasurement {
  const latenciesMs = Array.from({ length: 100 }, () => latencyMs);
  return { scenario, concurrency: 1, target, requests: 100, errors: 0, durationMs: 1_000, latenciesMs, ttfbMs: scenario === 'stream' ? latenciesMs : [], cpuMs: 50, cpuMsByProcess: { [target]: 50 }, peakRssBytes: 64 * 1024 * 1024 };
}

describe('bench report rows', () => {
  it('gives the overhead over the direct call measured in the same cell', () => {
    const rows = summarise([cell('direct', 1), cell('distributed', 3.5), cell('direct', 1, 'stream'), cell('distributed', 4, 'stream')]);
    const chat = rows.find((r) => r.target === 'distributed' && r.scenario === 'chat');
    const stream = rows.find((r) => r.target === 'distributed' && r.scenario === 'stream');
    expect(chat?.overheadP50Ms).toBe(2.5);
    expect(stream?.ttfbOverheadP50Ms).toBe(3);
  });

  it('leaves the overhead out, not zero, when the run did not measure the direct call', () => {
    const [row] = summarise([cell('distributed', 3.5, 'stream')]);
    expect(row?.p50Ms).toBe(3.5);
    expect(row?.overheadP50Ms).toBeUndefined();
    expect(row?.overheadP99Ms).toBeUndefined();
    expect(row?.ttfbOverheadP50Ms).toBeUndefined();
  });
});

describe('bench report memory', () => {
  const base = {
    schema: 'open-router-bench/v1',
    startedAt: '2026-12-05T10:00:00.000Z',
    finishedAt: '2026-12-05T10:05:00.000Z',
    machine: { cpus: 2, cpuModel: 'test', memoryMb: 24_000, node: '20.20.2', platform: 'linux' },
    settings: { smoke: false, concurrency: [16], durationMs: 5_000, rounds: 1, warmupMs: 3_000, targets: ['direct', 'floor', 'distributed'], profile: false },
    pipeline: { embedded: 'one process', distributed: 'five processes', missing: [] },
    rows: [],
    peakRssMb: { direct: 0, floor: 155, distributed: 1045 },
    idleCpuMsPerSecond: {},
    routeDecision: null,
    usagePipeline: null,
    chargeback: null,
    notes: [],
  };
  // A report from before memory at start and at rest were measured.
  const peaksOnly = {
    direct: { peakRssMb: 0, peakPssMb: 0, byProcess: {} },
    floor: { peakRssMb: 155, peakPssMb: 94, byProcess: { floor: { peakRssMb: 155, peakPssMb: 94 } } },
    distributed: { peakRssMb: 1045, peakPssMb: 719, byProcess: { router: { peakRssMb: 236, peakPssMb: 186 }, ingress: { peakRssMb: 301, peakPssMb: 244 } } },
  };
  const sample = (rssMb: number, pssMb: number, byProcess: Record<string, { rssMb: number; pssMb: number }>) => ({ rssMb, pssMb, byProcess });
  const measured = {
    ...peaksOnly,
    floor: { ...peaksOnly.floor, atStart: sample(50, 30, { floor: { rssMb: 50, pssMb: 30 } }), atRest: sample(60, 36, { floor: { rssMb: 60, pssMb: 36 } }) },
    distributed: {
      ...peaksOnly.distributed,
      atStart: sample(420, 300, { router: { rssMb: 92, pssMb: 70 }, ingress: { rssMb: 164, pssMb: 140 } }),
      atRest: sample(520, 380, { router: { rssMb: 110, pssMb: 85 }, ingress: { rssMb: 200, pssMb: 170 } }),
    },
  };
  const grpcFloorMemory = {
    peakRssMb: 190,
    peakPssMb: 120,
    byProcess: { relay: { peakRssMb: 100, peakPssMb: 64 }, backend: { peakRssMb: 90, peakPssMb: 56 } },
    atStart: sample(140, 80, { relay: { rssMb: 72, pssMb: 41 }, backend: { rssMb: 68, pssMb: 39 } }),
    atRest: sample(150, 88, { relay: { rssMb: 77, pssMb: 45 }, backend: { rssMb: 73, pssMb: 43 } }),
  };
  const full = (memory: unknown, extra: object = {}): BenchReport => {
    const parsed = benchReportSchema.omit({ targets: true }).parse({ ...base, memory, ...extra });
    return benchReportSchema.parse({ ...parsed, targets: checkTargets(parsed) });
  };
  const memorySection = (report: BenchReport): string[] => {
    const lines = toMarkdown(report).split('\n');
    const start = lines.findIndex((l) => l.startsWith('### Memory'));
    return lines.slice(start, lines.findIndex((l, i) => i > start && l.startsWith('###')));
  };

  it('still reads a report with the peaks only, and shows what it lacks as –', () => {
    const report = full(peaksOnly);
    expect(report.memory['distributed']?.atRest).toBeUndefined();
    expect(report.grpcFloorMemory).toBeUndefined();
    expect(report.targets.find((t) => t.name.startsWith('distributed: all services RSS'))).toMatchObject({ measured: 1045, note: 'summed PSS 719 MB', met: false });
    const section = memorySection(report);
    expect(section).toContain('| distributed | – | – | 1045 | – | – | 719 |');
    expect(section).toContain('| distributed: router | – | – | 236 | – | – | 186 |');
    // The direct call has no process: no row.
    expect(section.some((l) => l.startsWith('| direct '))).toBe(false);
  });

  it('gives the memory at start and at rest beside the peak, summed and per process, and the gRPC floor’s two processes', () => {
    const report = full(measured, { grpcFloorMemory });
    expect(report.memory['distributed']?.atRest?.byProcess['router']).toEqual({ rssMb: 110, pssMb: 85 });
    expect(report.grpcFloorMemory?.atStart?.rssMb).toBe(140);
    expect(report.targets.find((t) => t.name.startsWith('distributed: all services RSS'))?.note).toBe('summed PSS 719 MB; at rest 520 MB RSS, 380 MB PSS');

    const section = memorySection(report);
    expect(section).toContain('| summed over the processes, MB | RSS at start | RSS at rest | RSS peak | PSS at start | PSS at rest | PSS peak |');
    expect(section).toContain('| floor | 50 | 60 | 155 | 30 | 36 | 94 |');
    expect(section).toContain('| distributed | 420 | 520 | 1045 | 300 | 380 | 719 |');
    expect(section).toContain('| gRPC floor | 140 | 150 | 190 | 80 | 88 | 120 |');
    // Per process only where a target has several; the floor proxy's one process is its sum.
    expect(section).toContain('| distributed: ingress | 164 | 200 | 301 | 140 | 170 | 244 |');
    expect(section).toContain('| gRPC floor: relay | 72 | 77 | 100 | 41 | 45 | 64 |');
    expect(section).toContain('| gRPC floor: backend | 68 | 73 | 90 | 39 | 43 | 56 |');
    expect(section.some((l) => l.startsWith('| floor: floor '))).toBe(false);
  });
});
