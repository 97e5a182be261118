import { mapLimited } from './map-limited';

describe('mapLimited', () => {
  it('keeps the input order with calls in flight at once', async () => {
    let inFlight = 0;
    let most = 0;
    const result = await mapLimited([3, 1, 2, 5, 4], 2, async (n) => {
      most = Math.max(most, ++inFlight);
      await Promise.resolve();
      inFlight -= 1;
      return n * 10;
    });
    expect(result).toEqual([30, 10, 20, 50, 40]);
    expect(most).toBe(2);
    expect(await mapLimited([], 2, async (n: number) => n)).toEqual([]);
    // A limit below one still makes progress, one call at a time.
    expect(await mapLimited([1, 2], 0, async (n) => n + 1)).toEqual([2, 3]);
  });

  it('starts no further call once one failed: the request has failed, and another deployment may be serving it', async () => {
    const started: number[] = [];
    const run = mapLimited(Array.from({ length: 10 }, (_, i) => i), 2, async (n) => {
      started.push(n);
      if (n === 0) throw new Error('429');
      await Promise.resolve();
      return n;
    });
    await expect(run).rejects.toThrow('429');
    // Let the call still in flight (1) finish and its worker look for more work.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1]);
  });
});
