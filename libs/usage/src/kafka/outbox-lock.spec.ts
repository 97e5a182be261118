import { existsSync, linkSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import fsPromises, { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@openrouter/observability';
import { LOCK_FILE, OutboxLock, OutboxLockedError, type MonotonicClock } from './outbox-lock';

const RENEW_FAILED = 'usage outbox lock not renewed; trying again';

interface Line {
  level: number;
  msg: string;
  err?: { message?: string };
}

/** A logger whose lines are kept (pino levels: 50 error, 40 warn, 20 debug). */
function captured(): { logger: ReturnType<typeof createLogger>; lines: Line[] } {
  const lines: Line[] = [];
  return { logger: createLogger('spec', 'debug', { write: (line: string) => void lines.push(JSON.parse(line) as Line) }), lines };
}

/** A monotonic clock that only moves when waited on: `sleep` moves it and then calls `onSleep`. */
function steppedClock(onSleep: (now: number) => void = () => undefined): MonotonicClock {
  let now = 0;
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms;
      onSleep(now);
      await new Promise((done) => setImmediate(done));
    },
  };
}

/** The wall clock reads right once, then `stepMs` off (NTP stepping it at a container's start). */
function stepWallClock(stepMs: number): jest.SpyInstance {
  const real = Date.now.bind(Date);
  let calls = 0;
  return jest.spyOn(Date, 'now').mockImplementation(() => real() + (calls++ === 0 ? 0 : stepMs));
}

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !condition(); i++) await new Promise((done) => setTimeout(done, 10));
  if (!condition()) throw new Error('the condition never held');
}

describe('OutboxLock', () => {
  let dir: string;
  const lockPath = (): string => join(dir, LOCK_FILE);
  const beatOf = (): number => (JSON.parse(readFileSync(lockPath(), 'utf8')) as { beat: number }).beat;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-lock-spec-'));
  });
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('held by a process elsewhere, judged on the monotonic clock', () => {
    const writeLock = (beat: number): void =>
      writeFileSync(lockPath(), JSON.stringify({ pid: 1, host: 'elsewhere', namespace: 'x', started: '1', token: 't', since: '2025-01-01T00:00:00.000Z', beat }));

    it('refuses a lock that is renewed, although the wall clock steps forward while it watches', async () => {
      writeLock(0);
      let beat = 0;
      // The holder renews every 2 s, as a live one does.
      const clock = steppedClock((now) => now % 2_000 === 0 && writeLock(++beat));
      stepWallClock(3_600_000);
      const opening = OutboxLock.acquire(dir, { staleMs: 10_000, clock });
      await expect(opening).rejects.toBeInstanceOf(OutboxLockedError);
      await expect(opening).rejects.toThrow(/renewed/);
    });

    it('takes over a lock not renewed for the stale time, although the wall clock steps back while it watches', async () => {
      writeLock(0);
      const clock = steppedClock();
      stepWallClock(-3_600_000);
      const lock = await OutboxLock.acquire(dir, { staleMs: 10_000, clock });
      // Waited the stale time (give or take a poll), not the step.
      expect(clock.now()).toBeGreaterThanOrEqual(10_000);
      expect(clock.now()).toBeLessThan(12_000);
      expect(lock.held).toBe(true);
      await lock.release();
      expect(existsSync(lockPath())).toBe(false);
    }, 10_000);
  });

  describe('renewing', () => {
    /** The FileHandle methods every handle shares, to make the lock's writes fail or count its syncs. */
    async function handleMethods(): Promise<{ write: FileHandle['write']; sync: FileHandle['sync'] }> {
      const probe = await open(join(dir, 'probe'), 'w');
      await probe.close();
      return Object.getPrototypeOf(probe) as { write: FileHandle['write']; sync: FileHandle['sync'] };
    }

    it('keeps its hold through a lock file missing for a moment and a failing stat, and removes the file at release', async () => {
      const { logger, lines } = captured();
      const lock = await OutboxLock.acquire(dir, { staleMs: 50, logger });
      const failed = (code: string) => () => lines.some((l) => l.msg === RENEW_FAILED && (l.err?.message ?? '').includes(code));
      // Another starter moves the file aside and puts it back (taking over a lock it thought stale).
      const aside = `${lockPath()}.stale-spec`;
      renameSync(lockPath(), aside);
      await waitUntil(failed('ENOENT'));
      linkSync(aside, lockPath());
      rmSync(aside);
      // A network file system's error.
      let estale = 0;
      const realStat = fsPromises.stat;
      jest.spyOn(fsPromises, 'stat').mockImplementation(((path: string, ...rest: []) => {
        if (path === lockPath() && estale++ < 3) return Promise.reject(Object.assign(new Error(`ESTALE: stale file handle, stat '${path}'`), { code: 'ESTALE' }));
        return realStat(path, ...rest);
      }) as typeof fsPromises.stat);
      await waitUntil(failed('ESTALE'));
      await waitUntil(() => estale > 3);
      const before = beatOf();
      await waitUntil(() => beatOf() > before);
      expect(lock.held).toBe(true);
      expect(lines.filter((l) => l.level >= 50)).toEqual([]);
      await lock.release();
      expect(existsSync(lockPath())).toBe(false);
    });

    it('fsyncs each renewal, and logs renewals that fail at warn when they start and at debug while they go on', async () => {
      const { logger, lines } = captured();
      const proto = await handleMethods();
      const syncs = jest.spyOn(proto, 'sync');
      const lock = await OutboxLock.acquire(dir, { staleMs: 50, logger });
      const first = beatOf();
      await waitUntil(() => beatOf() > first + 1);
      expect(syncs).toHaveBeenCalled();
      // The lock's renewals (text written at offset 0) fail, as on a failing disk.
      const realWrite = proto.write;
      const writes = jest.spyOn(proto, 'write').mockImplementation(function (this: FileHandle, data: unknown, ...rest: unknown[]) {
        if (typeof data === 'string') return Promise.reject(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
        return (realWrite as (...args: unknown[]) => ReturnType<FileHandle['write']>).call(this, data, ...rest);
      } as FileHandle['write']);
      await waitUntil(() => lines.filter((l) => l.msg === RENEW_FAILED).length >= 5);
      const failures = lines.filter((l) => l.msg === RENEW_FAILED);
      expect(failures[0]).toMatchObject({ level: 40, err: { message: 'EIO: i/o error, write' } });
      expect(failures.slice(1).every((l) => l.level === 20)).toBe(true);
      writes.mockRestore();
      const after = beatOf();
      await waitUntil(() => beatOf() > after);
      expect(lock.held).toBe(true);
      await lock.release();
    });

    it('gives up its hold, loudly, only once the lock file names another holder, and leaves that file alone', async () => {
      const { logger, lines } = captured();
      const lock = await OutboxLock.acquire(dir, { staleMs: 50, logger });
      // Taken over by a process that thought it stale (it was paused too long).
      rmSync(lockPath());
      writeFileSync(lockPath(), JSON.stringify({ pid: 4242, host: 'elsewhere', namespace: 'x', started: '1', token: 'other', since: '2025-01-01T00:00:00.000Z', beat: 0 }));
      await waitUntil(() => !lock.held);
      expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual([expect.stringMatching(/taken over by pid 4242 on elsewhere/)]);
      await lock.release();
      expect(readFileSync(lockPath(), 'utf8')).toContain('"token":"other"');
    });
  });
});
