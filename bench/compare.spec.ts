import { chanceApart, compareReports, comparisonMarkdown } from './compare';
import { benchReportSchema, type BenchReport, type ResultRow } from './report';

function report(rows: Array<Partial<ResultRow> & Pick<ResultRow, 'target' | 'requestsPerSecond' | 'cpuMsPerRequest'>>, extra: Partial<BenchReport> = {}): BenchReport {
  return benchReportSchema.parse({
    schema: 'open-router-bench/v1',
    startedAt: '2026-12-04T10:00:00.000Z',
    finishedAt: '2026-12-04T10:05:00.000Z',
    machine: { cpus: 2, cpuModel: 'test', memoryMb: 24_000, node: '20.20.2', platform: 'linux' },
    settings: { smoke: false, concurrency: [16], durationMs: 5_000, rounds: 2, warmupMs: 3_000, targets: ['floor', 'embedded', 'distributed'], profile: false },
    pipeline: { embedded: 'one process', distributed: 'five processes', missing: [] },
    rows: rows.map((r) => ({ scenario: 'chat', concurrency: 16, requests: 1_000, errors: 0, p50Ms: 10, p99Ms: 30, peakRssMb: 500, ...r })),
    peakRssMb: {},
    memory: { embedded: { peakRssMb: 550, peakPssMb: 420, byProcess: {} } },
    idleCpuMsPerSecond: {},
    routeDecision: null,
    usagePipeline: null,
    chargeback: null,
    targets: [],
    notes: [],
    ...extra,
  });
}

const floorRow = { target: 'floor' as const, requestsPerSecond: 4_000, cpuMsPerRequest: 0.2 };

describe('bench comparison', () => {
  it('lines each figure up per side, with medians and the change of the medians', () => {
    const base = [1_100, 1_200, 1_150].map((rps) => report([floorRow, { target: 'embedded', requestsPerSecond: rps, cpuMsPerRequest: 1, throughputVsFloor: rps / 4_000 }]));
    const head = [1_400, 1_300, 1_350].map((rps) => report([floorRow, { target: 'embedded', requestsPerSecond: rps, cpuMsPerRequest: 0.8, throughputVsFloor: rps / 4_000 }]));
    const figures = compareReports(base, head);
    const rps = figures.find((f) => f.subject === 'chat c=16 embedded' && f.metric === 'req/s');
    expect(rps).toMatchObject({ base: [1_100, 1_200, 1_150], head: [1_400, 1_300, 1_350], baseMedian: 1_150, headMedian: 1_350, better: 'higher' });
    expect(rps?.change).toBeCloseTo(200 / 1_150);
    expect(figures.find((f) => f.subject === 'chat c=16 embedded' && f.metric === 'CPU ms/req')).toMatchObject({ baseMedian: 1, headMedian: 0.8, better: 'lower' });
    expect(figures.find((f) => f.metric === 'peak PSS MB')).toMatchObject({ subject: 'embedded (whole run)', base: [420, 420, 420] });
    // Figures a run did not measure (no direct call: no overhead) are not invented.
    expect(figures.some((f) => f.metric === 'overhead p50 ms')).toBe(false);

    const markdown = comparisonMarkdown(figures, { base: 'abc', head: 'def', pairs: 3, args: ['--targets', 'floor,embedded'] });
    // Separated ranges are marked; overlapping ones (the floor's, identical) are not.
    expect(markdown).toContain('| chat c=16 embedded | req/s | 1,100–1,200 (1,150) | 1,300–1,400 (1,350) | +17.4 % ✓ |');
    expect(markdown).toContain('| chat c=16 embedded | CPU ms/req | 1 (1) | 0.8 (0.8) | -20.0 % ✓ |');
    expect(markdown).toContain('| chat c=16 floor | req/s | 4,000 (4,000) | 4,000 (4,000) | +0.0 % |');
  });

  it('marks no change from two runs a side, whose ranges are apart by chance one time in three', () => {
    const base = [1_100, 1_200].map((rps) => report([floorRow, { target: 'embedded', requestsPerSecond: rps, cpuMsPerRequest: 1 }]));
    const head = [1_300, 1_400].map((rps) => report([floorRow, { target: 'embedded', requestsPerSecond: rps, cpuMsPerRequest: 1 }]));
    const markdown = comparisonMarkdown(compareReports(base, head), { base: 'a', head: 'b', pairs: 2, args: [] });
    expect(markdown).toContain('| chat c=16 embedded | req/s | 1,100–1,200 (1,150) | 1,300–1,400 (1,350) | +17.4 % |');
    expect(markdown).toContain('apart with probability 33 %, and a change is marked only at 10 % or less (3 runs a side or more)');
  });

  it('knows how often ranges of identical builds are apart by chance', () => {
    expect(chanceApart(1, 1)).toBe(1);
    expect(chanceApart(2, 2)).toBeCloseTo(1 / 3);
    expect(chanceApart(3, 3)).toBeCloseTo(0.1);
    expect(chanceApart(3, 2)).toBeCloseTo(0.2);
    expect(chanceApart(4, 4)).toBeCloseTo(2 / 70);
  });

  it('gives the distributed services’ CPU as a multiple of the gRPC floor measured in the same run', () => {
    const distributed = (ingress: number, floorTotal: number): BenchReport =>
      report([{ target: 'distributed', requestsPerSecond: 300, cpuMsPerRequest: 5, cpuMsPerRequestByProcess: { ingress, router: 1, adapter: 1, billing: 0.3, alerting: 0.1 } }], {
        grpcFloor: [{ scenario: 'chat', concurrency: 16, requests: 5_000, errors: 0, requestsPerSecond: 1_000, p50Ms: 12, cpuMsPerRequest: { client: 0.5, relay: 0.6, backend: 0.3, total: floorTotal } }],
      });
    const [figure] = compareReports([distributed(2, 1)], [distributed(1, 1)]).filter((f) => f.metric === 'ingress+router+adapter CPU vs gRPC floor');
    expect(figure).toMatchObject({ base: [4], head: [3], change: -0.25 });
    // One run a side: the change is given, never marked.
    expect(comparisonMarkdown([figure!], { base: 'a', head: 'b', pairs: 1, args: [] })).toContain('| 4 (4) | 3 (3) | -25.0 % |');
  });

  it('compares the summed PSS at rest, which reports from before it was measured lack', () => {
    const atRest = (pssMb: number): BenchReport =>
      report([floorRow], { memory: { embedded: { peakRssMb: 550, peakPssMb: 420, byProcess: {}, atRest: { rssMb: 300, pssMb, byProcess: { gateway: { rssMb: 300, pssMb } } } } } });
    expect(compareReports([atRest(250), atRest(260)], [atRest(230), atRest(235)]).find((f) => f.metric === 'PSS MB')).toMatchObject({
      subject: 'embedded (at rest)',
      base: [250, 260],
      head: [230, 235],
      better: 'lower',
    });
    expect(compareReports([report([floorRow])], [atRest(230)]).some((f) => f.subject === 'embedded (at rest)')).toBe(false);
  });

  it('leaves out a figure only one side measured', () => {
    const withPipeline = report([floorRow], {
      usagePipeline: { events: 1_000, eventsPerSecond: 20_000, publishSeconds: 1, storedSeconds: 1, stored: 1_000, consumer: { eventsPerSecond: 30_000, drainSeconds: 1, batches: 2, cpuMsPerThousandEvents: 30 } },
    });
    const figures = compareReports([withPipeline], [report([floorRow])]);
    expect(figures.some((f) => f.subject === 'usage pipeline')).toBe(false);
    expect(compareReports([withPipeline], [withPipeline]).filter((f) => f.subject === 'usage pipeline').map((f) => f.metric)).toEqual(['consumer events/s', 'consumer CPU ms/1k events', 'live events/s']);
  });
});
