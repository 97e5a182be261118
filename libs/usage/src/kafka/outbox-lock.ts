import { randomUUID } from 'node:crypto';
import { link, open, readFile, readlink, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from '@openrouter/observability';
import { RepeatedFailureLog } from './repeated-failure-log';

export const LOCK_FILE = 'outbox.lock';

/** What a lock file says about the process holding it. */
export interface LockHolder {
  pid: number;
  host: string;
  /** The machine's boot and the process's pid namespace: pids compare only within one ('' when unknown). */
  namespace: string;
  /** The process's start time (clock ticks since boot, Linux): tells a reused pid apart ('' when unknown). */
  started: string;
  token: string;
  since: string;
  /** Counted up by the holder every few seconds, so a holder that cannot be asked is seen to live. */
  beat: number;
}

export class OutboxLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder | undefined,
    reason: string,
  ) {
    const who = holder ? `pid ${holder.pid} on ${holder.host} since ${holder.since}` : 'another process';
    super(
      `the usage outbox ${dir} is in use by ${who} (${reason}): each process needs an outbox directory of its own. ` +
        `If no process uses it any more, delete ${join(dir, LOCK_FILE)}.`,
    );
    this.name = 'OutboxLockedError';
  }
}

/**
 * A monotonic clock, in milliseconds from any origin, and a wait measured on it. Waits and ages
 * are never measured on the wall clock: NTP stepping it at a container's start would end a wait
 * at once (and take a live holder's lock) or stretch it by the step.
 */
export interface MonotonicClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const monotonicClock: MonotonicClock = {
  now: () => performance.now(),
  // Node's timers run on the monotonic clock.
  sleep: (ms) => new Promise((done) => setTimeout(done, ms)),
};

/** A renewal that keeps failing is logged at warn at least this often (and when its error is new). */
const RENEW_WARN_EVERY_MS = 60_000;

export interface OutboxLockOptions {
  /**
   * A lock whose holder cannot be asked (another host, container or boot) is taken over once its
   * file has not changed for this long (on this process's monotonic clock); the holder renews it
   * every fifth of it.
   */
  staleMs: number;
  /** Monotonic by default; tests step it. */
  clock?: MonotonicClock;
  /** Where a lock lost to another process, and renewals that fail, are reported. */
  logger?: Logger;
}

/**
 * An exclusive lock on an outbox directory: `outbox.lock`, created with O_EXCL, naming its holder.
 * A lock left behind is taken over when its holder is known gone: on the same machine and pid
 * namespace when its pid no longer runs (or runs another process: the start time differs);
 * otherwise when its file has not changed for `staleMs`. The holder keeps the file open and
 * renews it through that handle (fsynced, so other hosts of a network file system see it), and
 * notices when the file names another holder (`held`). A renewal that fails (the file missing
 * for a moment while another starter moves it aside and back, ESTALE or EIO on NFS) is tried
 * again at the next one; only a file that names another holder ends this one's hold.
 */
export class OutboxLock {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private lost = false;
  private readonly renewFailures: RepeatedFailureLog;

  private constructor(
    private readonly path: string,
    private file: FileHandle,
    private inode: number,
    private readonly holder: LockHolder,
    beatMs: number,
    private readonly options: OutboxLockOptions,
  ) {
    this.renewFailures = new RepeatedFailureLog(RENEW_WARN_EVERY_MS, () => (options.clock ?? monotonicClock).now());
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => (this.beating = undefined));
    }, beatMs);
    this.timer.unref();
  }

  static async acquire(dir: string, options: OutboxLockOptions): Promise<OutboxLock> {
    const path = join(dir, LOCK_FILE);
    const me = await thisProcess();
    for (let attempt = 0; attempt < 5; attempt++) {
      const lock = await OutboxLock.create(path, me, options);
      if (lock) return lock;
      const text = await readFile(path, 'utf8').catch(ifMissing(undefined));
      if (text === undefined) continue; // released meanwhile
      const holder = parseHolder(text);
      const verdict = await judge(path, text, holder, me, options);
      if (verdict === 'gone') continue;
      if (verdict !== 'stale') throw new OutboxLockedError(dir, holder, verdict);
      await takeOver(dir, path, text, holder);
    }
    throw new OutboxLockedError(dir, undefined, 'other processes keep taking its lock');
  }

  /** False once the lock file is no longer this holder's (another process took it over). */
  get held(): boolean {
    return !this.lost;
  }

  /** Removes the lock file (when it is still this holder's). */
  async release(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
    try {
      if (!this.lost && (await stat(this.path).catch(ifMissing(undefined)))?.ino === this.inode) await rm(this.path, { force: true });
    } finally {
      this.lost = true;
      await this.file.close();
    }
  }

  private static async create(path: string, me: Omit<LockHolder, 'token' | 'since' | 'beat'>, options: OutboxLockOptions): Promise<OutboxLock | undefined> {
    let file: FileHandle;
    try {
      file = await open(path, 'wx');
    } catch (error) {
      if (codeOf(error) === 'EEXIST') return undefined;
      throw error;
    }
    try {
      const holder: LockHolder = { ...me, token: randomUUID(), since: new Date().toISOString(), beat: 0 };
      await file.write(JSON.stringify(holder), 0);
      await file.sync();
      const { ino } = await file.stat();
      return new OutboxLock(path, file, ino, holder, Math.max(1, Math.floor(options.staleMs / 5)), options);
    } catch (error) {
      await file.close().catch(() => undefined);
      await rm(path, { force: true }).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Renews the lock in place, unless its file names another holder now. Any other failure (the
   * file missing or unreadable for a moment, an NFS error) is retried at the next renewal.
   */
  private async beat(): Promise<void> {
    if (this.lost) return;
    try {
      const current = await stat(this.path);
      if (current.ino !== this.inode && !(await this.reopened(current.ino))) return;
      this.holder.beat++;
      // Never shorter than before (the count only grows), so no stale tail is left behind.
      await this.file.write(JSON.stringify(this.holder), 0);
      await this.file.sync();
      this.renewFailures.succeeded();
    } catch (error) {
      // At warn when it starts, on a new error and once a minute while it lasts; debug otherwise.
      const { level, failures, failingForMs } = this.renewFailures.failed(error);
      this.options.logger?.[level]({ err: error, lock: this.path, failures, failingForMs }, 'usage outbox lock not renewed; trying again');
    }
  }

  /**
   * The lock file is another inode than this holder's: lost when it names another holder; when
   * it names this one (a copy put in its place), renewed through the new file from now on. False
   * when lost; throws when the file cannot be read as a holder yet (retried at the next renewal).
   */
  private async reopened(inode: number): Promise<boolean> {
    const text = await readFile(this.path, 'utf8');
    const named = parseHolder(text);
    if (!named) throw new Error(`the lock file ${this.path} does not name a holder (yet)`);
    if (named.token !== this.holder.token) {
      this.lost = true;
      clearInterval(this.timer);
      this.options.logger?.error(
        { lock: this.path, holder: named },
        `the usage outbox lock was taken over by pid ${named.pid} on ${named.host}: this process appends no more events to its outbox ` +
          '(this one was paused longer than the lock is kept, or two processes share the directory: give each its own)',
      );
      return false;
    }
    const file = await open(this.path, 'r+');
    if ((await file.stat()).ino !== inode) {
      await file.close();
      throw new Error(`the lock file ${this.path} changed while it was opened`);
    }
    await this.file.close().catch(() => undefined);
    this.file = file;
    this.inode = inode;
    return true;
  }
}

/**
 * Whether the holder is gone: `'stale'`, `'gone'` (the lock was released meanwhile), or why it is
 * still held.
 */
async function judge(path: string, text: string, holder: LockHolder | undefined, me: Omit<LockHolder, 'token' | 'since' | 'beat'>, options: OutboxLockOptions): Promise<string> {
  if (holder && holder.host === me.host && holder.namespace === me.namespace) {
    if (holder.pid === me.pid) return holder.started === me.started ? 'already open in this process' : 'stale';
    if (!isRunning(holder.pid)) return 'stale';
    const started = await startTimeOf(holder.pid);
    return holder.started !== '' && started !== '' && started !== holder.started ? 'stale' : 'its process is running';
  }
  // A holder elsewhere (another host, container or boot) cannot be asked: it lives while it renews
  // the lock. Stale once the file has not changed for `staleMs`, on this process's monotonic clock.
  const clock = options.clock ?? monotonicClock;
  const since = clock.now();
  while (clock.now() - since < options.staleMs) {
    await clock.sleep(Math.max(1, Math.floor(options.staleMs / 10)));
    const now = await readFile(path, 'utf8').catch(ifMissing(undefined));
    if (now === undefined) return 'gone';
    if (now !== text) return `its lock is renewed (not here: ${holder ? 'another host, container or boot' : 'unreadable holder'})`;
  }
  return 'stale';
}

/**
 * Moves the stale lock aside and deletes it, unless what was moved is no longer the stale lock
 * (taken over meanwhile by another process): that one is put back, and this process refuses.
 */
async function takeOver(dir: string, path: string, stale: string, holder: LockHolder | undefined): Promise<void> {
  const aside = `${path}.stale-${randomUUID()}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return;
    throw error;
  }
  const moved = await readFile(aside, 'utf8').catch(() => undefined);
  if (moved !== stale) {
    await link(aside, path).catch(() => undefined);
    await rm(aside, { force: true });
    throw new OutboxLockedError(dir, holder, 'its lock was taken over by another process at the same time');
  }
  await rm(aside, { force: true });
}

async function thisProcess(): Promise<Omit<LockHolder, 'token' | 'since' | 'beat'>> {
  const boot = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').then((t) => t.trim(), () => '');
  const pidNamespace = await readlink('/proc/self/ns/pid').catch(() => '');
  return { pid: process.pid, host: hostname(), namespace: boot || pidNamespace ? `${boot}/${pidNamespace}` : '', started: await startTimeOf(process.pid) };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return codeOf(error) === 'EPERM';
  }
}

/** Field 22 of `/proc/<pid>/stat` (after the command name, which may hold spaces and parentheses). */
async function startTimeOf(pid: number): Promise<string> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid !== 'number' || typeof value.host !== 'string') return undefined;
    return { pid: value.pid, host: value.host, namespace: value.namespace ?? '', started: value.started ?? '', token: value.token ?? '', since: value.since ?? '', beat: value.beat ?? 0 };
  } catch {
    return undefined;
  }
}

function codeOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function ifMissing<T>(value: T): (error: unknown) => T {
  return (error) => {
    if (codeOf(error) === 'ENOENT') return value;
    throw error;
  };
}
