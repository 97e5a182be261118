import { createLogger } from '@openrouter/observability';
import { DependencyError, DependencyWait, type DependencyWaitOptions } from './dependency-wait';

const logger = createLogger('test', 'silent');

function wait<T>(attempt: () => Promise<T>, options: Partial<DependencyWaitOptions<T>> = {}): DependencyWait<T> {
  return new DependencyWait({ what: 'the store', location: 'db:1', setting: 'store.url', attempt, outage: () => 'connect ECONNREFUSED', logger, initialDelayMs: 10, maxDelayMs: 10, ...options });
}

const outcome = (promise: Promise<unknown>): Promise<unknown> => promise.then((value) => ({ value }), (error: unknown) => error);

describe('DependencyWait', () => {
  it('gives up when stopped, though the try under way then gets through: the service is going away', async () => {
    let answer: (value: string) => void = () => undefined;
    const waiting = wait(() => new Promise<string>((done) => (answer = done)));
    await new Promise((done) => setImmediate(done));
    waiting.stop();
    answer('migrated');
    const result = await outcome(waiting.ready);
    expect(result).toBeInstanceOf(DependencyError);
    expect(String((result as Error).message)).toBe('stopped while waiting for the store at db:1');
    expect(await waiting.readiness('store').check()).toBe(false);
  });

  it('stops between tries when its signal is aborted (a signal during the start), and does not start when it already was', async () => {
    let tries = 0;
    const stopping = new AbortController();
    const waiting = wait(
      async () => {
        tries++;
        throw new Error('connect ECONNREFUSED');
      },
      { signal: stopping.signal, initialDelayMs: 60_000, maxDelayMs: 60_000 },
    );
    while (tries === 0) await new Promise((done) => setImmediate(done));
    stopping.abort();
    // Without the abort the next try would be a minute away.
    expect(await outcome(waiting.ready)).toBeInstanceOf(DependencyError);
    expect(tries).toBe(1);

    let later = 0;
    const never = wait(async () => void later++, { signal: stopping.signal });
    expect(await outcome(never.ready)).toBeInstanceOf(DependencyError);
    expect(later).toBe(0);
  });

  it('resolves with what the try found when nobody stops it', async () => {
    let tries = 0;
    const waiting = wait(async () => {
      if (++tries < 3) throw new Error('connect ECONNREFUSED');
      return 'migrated';
    });
    await expect(waiting.ready).resolves.toBe('migrated');
    expect(tries).toBe(3);
    expect(await waiting.readiness('store').check()).toBe(true);
  });
});
