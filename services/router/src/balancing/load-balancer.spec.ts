import { seededRandom } from '../stats/clock';
import { balance } from './load-balancer';

const deployments = [
  { id: 'a', weight: 1, outstanding: 0, latencyMs: 100 },
  { id: 'b', weight: 3, outstanding: 0, latencyMs: 100 },
];

function firstPicks(method: 'weighted' | 'least_outstanding' | 'p2c', items = deployments, n = 10_000): Record<string, number> {
  const random = seededRandom(12345);
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const id = balance(method, items, random)[0]?.id ?? '';
    counts[id] = (counts[id] ?? 0) + 1;
  }
  return counts;
}

describe('load balancing', () => {
  it('weighted random splits by weight within ±3% over 10k decisions', () => {
    const counts = firstPicks('weighted');
    expect(Math.abs((counts['b'] ?? 0) / 10_000 - 0.75)).toBeLessThan(0.03);
    expect(Math.abs((counts['a'] ?? 0) / 10_000 - 0.25)).toBeLessThan(0.03);
  });

  it('least outstanding prefers the least loaded per unit of weight', () => {
    const loaded = [
      { id: 'a', weight: 1, outstanding: 0, latencyMs: 100 },
      { id: 'b', weight: 3, outstanding: 5, latencyMs: 100 },
    ];
    expect(firstPicks('least_outstanding', loaded, 100)).toEqual({ a: 100 });
  });

  it('power of two choices keeps the faster of two draws', () => {
    const mixed = [
      { id: 'slow', weight: 1, outstanding: 0, latencyMs: 1000 },
      { id: 'fast', weight: 1, outstanding: 0, latencyMs: 100 },
    ];
    expect(firstPicks('p2c', mixed, 1000)).toEqual({ fast: 1000 });
  });

  it('returns every deployment once, in a reproducible order for a seed', () => {
    const run = () => Array.from({ length: 50 }, (_, i) => balance('weighted', deployments, seededRandom(i)).map((d) => d.id).join(''));
    expect(run()).toEqual(run());
    expect(new Set(run())).toEqual(new Set(['ab', 'ba']));
  });
});
