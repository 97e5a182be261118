import { keepClaimed } from './fleet-flights';

/** Renewals as a store answers them: each call recorded, answered by `answer` (its claim still ours, or not, or the store away). */
class Renewals {
  readonly calls: Array<{ id: string; owner: string; ttlMs: number }> = [];
  answer: () => Promise<boolean> = async () => true;

  readonly renew = (id: string, owner: string, ttlMs: number): Promise<boolean> => {
    this.calls.push({ id, owner, ttlMs });
    return this.answer();
  };
}

describe('keepClaimed', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('extends the claim to its whole time to live every third of it, until stopped', async () => {
    const renewals = new Renewals();
    const stop = keepClaimed(renewals, 'entry', 'token', 900, () => undefined);
    await jest.advanceTimersByTimeAsync(299);
    expect(renewals.calls).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(renewals.calls).toEqual([{ id: 'entry', owner: 'token', ttlMs: 900 }]);
    // Well past the claim's own time to live: still held.
    await jest.advanceTimersByTimeAsync(2_700);
    expect(renewals.calls).toHaveLength(10);
    stop();
    await jest.advanceTimersByTimeAsync(9_000);
    expect(renewals.calls).toHaveLength(10);
  });

  it('stops for good once the claim is no longer its own', async () => {
    const renewals = new Renewals();
    renewals.answer = async () => false;
    keepClaimed(renewals, 'entry', 'token', 300, () => undefined);
    await jest.advanceTimersByTimeAsync(100);
    expect(renewals.calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(3_000);
    expect(renewals.calls).toHaveLength(1);
  });

  it('tells of a renewal that failed and tries again a third later', async () => {
    const renewals = new Renewals();
    const failures: unknown[] = [];
    renewals.answer = () => Promise.reject(new Error('Connection is closed.'));
    const stop = keepClaimed(renewals, 'entry', 'token', 300, (error) => failures.push(error));
    await jest.advanceTimersByTimeAsync(200);
    expect(renewals.calls).toHaveLength(2);
    expect(failures).toEqual([new Error('Connection is closed.'), new Error('Connection is closed.')]);
    renewals.answer = async () => true;
    await jest.advanceTimersByTimeAsync(100);
    expect(renewals.calls).toHaveLength(3);
    expect(failures).toHaveLength(2);
    stop();
  });

  it('sends one renewal at a time to a store that is slow to answer', async () => {
    const renewals = new Renewals();
    let answer: (ours: boolean) => void = () => undefined;
    renewals.answer = () => new Promise((resolve) => (answer = resolve));
    const stop = keepClaimed(renewals, 'entry', 'token', 300, () => undefined);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(renewals.calls).toHaveLength(1);
    answer(true);
    await jest.advanceTimersByTimeAsync(100);
    expect(renewals.calls).toHaveLength(2);
    stop();
  });
});
