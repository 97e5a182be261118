import { FaultInjector } from './fault-injector';

describe('fault injector', () => {
  it('applies the first matching fault, filtered by model and path', () => {
    const injector = new FaultInjector(1);
    injector.setFaults([
      { kind: 'http_error', status: 503, model: 'gpt-4o' },
      { kind: 'timeout', path: 'embeddings' },
      { kind: 'http_error', status: 500 },
    ]);
    expect(injector.select({ model: 'gpt-4o', path: 'chat' })?.status).toBe(503);
    expect(injector.select({ model: 'other', path: 'embeddings' })?.kind).toBe('timeout');
    expect(injector.select({ model: 'other', path: 'chat' })?.status).toBe(500);
    expect(injector.select({ path: 'chat' })?.status).toBe(500);
  });

  it('stops a fault after `remaining` hits and falls through to the next', () => {
    const injector = new FaultInjector(1);
    injector.setFaults([{ kind: 'http_error', status: 429, remaining: 2 }, { kind: 'http_error', status: 500, remaining: 1 }]);
    const statuses = Array.from({ length: 5 }, () => injector.select({ path: 'chat' })?.status);
    expect(statuses).toEqual([429, 429, 500, undefined, undefined]);
  });

  it('never applies a fault with remaining 0 and never mutates the caller’s fault', () => {
    const faults = [{ kind: 'timeout' as const, remaining: 1 }];
    const injector = new FaultInjector(1);
    injector.setFaults(faults);
    injector.select({ path: 'chat' });
    expect(faults[0]?.remaining).toBe(1);
    injector.setFaults([{ kind: 'timeout', remaining: 0 }]);
    expect(injector.select({ path: 'chat' })).toBeUndefined();
  });

  it('rolls rates from the seeded PRNG: deterministic, roughly proportional, replayable after reset', () => {
    const run = (seed: number): boolean[] => {
      const injector = new FaultInjector(seed);
      injector.setFaults([{ kind: 'http_error', rate: 0.3 }]);
      return Array.from({ length: 1000 }, () => injector.select({ path: 'chat' }) !== undefined);
    };
    const first = run(42);
    expect(run(42)).toEqual(first);
    expect(run(43)).not.toEqual(first);
    const hits = first.filter(Boolean).length;
    expect(hits).toBeGreaterThan(240);
    expect(hits).toBeLessThan(360);

    const injector = new FaultInjector(42);
    injector.setFaults([{ kind: 'http_error', rate: 0.3 }]);
    const before = Array.from({ length: 20 }, () => injector.select({ path: 'chat' }) !== undefined);
    injector.reset([{ kind: 'http_error', rate: 0.3 }]);
    expect(Array.from({ length: 20 }, () => injector.select({ path: 'chat' }) !== undefined)).toEqual(before);
  });

  it('treats rate 0 as never and lets a missed roll fall through', () => {
    const injector = new FaultInjector(1);
    injector.setFaults([{ kind: 'timeout', rate: 0 }, { kind: 'http_error', status: 502 }]);
    expect(injector.select({ path: 'chat' })?.status).toBe(502);
  });
});
