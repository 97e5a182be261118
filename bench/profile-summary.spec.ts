import { callersOf, summariseProfile } from './profile-summary';

interface Frame {
  name: string;
  url?: string;
}

/**
 * A `.cpuprofile` from a list of samples, each a stack (outermost first) and its duration in ms,
 * as V8 writes it: a call tree of nodes and, per sample, the leaf's id and the time since the
 * previous sample.
 */
function profileOf(samples: Array<{ stack: Frame[]; ms: number }>): string {
  const nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children: number[] }> = [
    { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [] },
  ];
  const childOf = new Map<string, number>();
  const leaf = (stack: Frame[]): number => {
    let parent = 1;
    for (const frame of stack) {
      const key = `${parent}/${frame.name}/${frame.url ?? ''}`;
      let id = childOf.get(key);
      if (id === undefined) {
        id = nodes.length + 1;
        nodes.push({ id, callFrame: { functionName: frame.name, url: frame.url ?? '', lineNumber: 0 }, children: [] });
        nodes[parent - 1]!.children.push(id);
        childOf.set(key, id);
      }
      parent = id;
    }
    return parent;
  };
  return JSON.stringify({ nodes, startTime: 0, endTime: 0, samples: samples.map((s) => leaf(s.stack)), timeDeltas: samples.map((s) => s.ms * 1000) });
}

/** Samples of 100 ms each, so a window's edges fall between samples. */
const repeat = (stack: Frame[], ms: number) => Array.from({ length: ms / 100 }, () => ({ stack, ms: 100 }));
const idle = (ms: number) => repeat([{ name: '(idle)' }], ms);
const handler = { name: 'handle', url: 'file:///repo/dist/services/ingress/src/routes/chat.js' };
const undici = { name: 'request', url: 'file:///repo/node_modules/undici/lib/api/api-request.js' };
const hmac = { name: 'Hmac', url: 'node:internal/crypto/hash' };

describe('summariseProfile', () => {
  const text = profileOf([
    ...repeat([{ name: 'startUp', url: 'node:internal/modules/cjs/loader' }], 500),
    ...idle(2_000),
    ...repeat([handler, undici], 600),
    ...repeat([handler], 300),
    ...idle(4_100),
  ]);

  it('gives self time per function over the whole profile, highest first, with idle counted as time', () => {
    const summary = summariseProfile(text);
    expect(summary.totalMs).toBe(7_500);
    expect(summary.busyMs).toBe(1_400);
    expect(summary.entries.map((e) => [e.frame.split(' ')[0], e.selfMs])).toEqual([
      ['(idle)', 6_100],
      ['request', 600],
      ['startUp', 500],
      ['handle', 300],
    ]);
    expect(summary.entries[1]?.selfShare).toBeCloseTo(600 / 7_500);
  });

  it('gives self time per package with byPackage', () => {
    const frames = summariseProfile(text, { byPackage: true }).entries.map((e) => e.frame);
    expect(frames).toEqual(expect.arrayContaining(['undici', 'node:internal/modules/cjs/loader', '(idle)']));
  });

  it('keeps only the profile’s last milliseconds with lastMs: an idle tail reads as idle', () => {
    const summary = summariseProfile(text, { window: { lastMs: 4_000 } });
    expect(summary.busyMs).toBe(0);
    expect(summary.entries.map((e) => e.frame)).toEqual(['(idle)']);
  });

  it('finds the busiest window with busiestMs, wherever the load fell', () => {
    const summary = summariseProfile(text, { window: { busiestMs: 900 } });
    expect(summary.fromMs).toBe(2_500);
    expect(summary.busyMs).toBe(900);
    expect(summary.entries.map((e) => [e.frame.split(' ')[0], e.selfMs])).toEqual([
      ['request', 600],
      ['handle', 300],
    ]);
  });

  it('reads the whole profile when the busiest window is longer than it', () => {
    expect(summariseProfile(text, { window: { busiestMs: 60_000 } }).totalMs).toBe(7_500);
  });

  it('refuses what is not a CPU profile', () => {
    expect(() => summariseProfile('{"nodes": []}')).toThrow();
  });
});

describe('callersOf', () => {
  const route = { name: 'route', url: 'file:///repo/dist/services/router/src/router.service.js' };
  const embed = { name: 'embed', url: 'file:///repo/dist/services/router/src/router.service.js' };
  const text = profileOf([
    { stack: [route, hmac], ms: 30 },
    { stack: [handler, hmac], ms: 10 },
    { stack: [handler, hmac, hmac], ms: 10 },
    { stack: [embed, handler, hmac], ms: 25 },
    { stack: [handler], ms: 30 },
    ...idle(900),
  ]);

  it('splits a function’s time by its callers, nearest first, and counts recursion once', () => {
    const callers = callersOf(text, 'Hmac', 2);
    expect(callers.map((c) => [c.path.map((p) => p.split(' ')[0]), c.totalMs])).toEqual([
      [['route'], 30],
      [['handle', 'embed'], 25],
      [['handle'], 20],
    ]);
    expect(callers[0]?.share).toBeCloseTo(30 / 105);
  });

  it('finds nothing for a function the profile does not have', () => {
    expect(callersOf(text, 'absent')).toEqual([]);
  });
});
