import { summarise, type CellMeasurement } from './report';

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
