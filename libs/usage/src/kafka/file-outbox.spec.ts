import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, appendFileSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { UsageMessage } from '../bus/usage-bus';
import { FileOutbox, OutboxFullError } from './file-outbox';
import { LOCK_FILE, OutboxLockedError } from './outbox-lock';
import { createLogger } from '@openrouter/observability';

const message = (i: number): UsageMessage => ({ key: `org-${i % 3}`, value: Buffer.from(`payload-${i}`), headers: { n: String(i) } });
const numbers = (records: UsageMessage[]): number[] => records.map((r) => Number(r.headers['n']));
const options = { maxBytes: 10 * 1024 * 1024, segmentBytes: 4 * 1024 };

async function drain(outbox: FileOutbox, chunk = 7): Promise<number[]> {
  const seen: number[] = [];
  for (;;) {
    const peek = await outbox.peek(chunk);
    if (peek.records.length === 0) return seen;
    seen.push(...numbers(peek.records));
    await outbox.ack(peek, peek.records.length);
  }
}

describe('FileOutbox', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-spec-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a directory it cannot make with a configuration error naming the setting, not a bare EEXIST', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const refusal = await FileOutbox.open(join(file, 'outbox'), options).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).toMatchObject({ name: 'ConfigError', source: expect.stringContaining('usage.outbox.dir') as string });
    expect(String((refusal as Error).message)).toContain(`the usage outbox cannot use the directory ${join(file, 'outbox')}: ENOTDIR`);
  });

  it('replays records in append order across segments, then removes them', async () => {
    const outbox = await FileOutbox.open(dir, options);
    for (let i = 0; i < 300; i += 10) await outbox.append(Array.from({ length: 10 }, (_, j) => message(i + j)));
    expect(outbox.size).toBe(300);
    expect(readdirSync(dir).filter((f) => f.endsWith('.log')).length).toBeGreaterThan(1);
    expect(await drain(outbox)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(outbox.isEmpty()).toBe(true);
    expect(outbox.bytes).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.log'))).toEqual([]);
    await outbox.close();
  });

  it('keeps what was not acknowledged across a restart, and nothing that was', async () => {
    // Another process appends and acknowledges, then crashes (killed, nothing closed).
    const first = otherProcess(dir, `
      await outbox.append(Array.from({ length: 50 }, (_, i) => message(i)));
      await outbox.ack(await outbox.peek(20), 20);`);
    await first.ready;
    await first.kill();
    const second = await FileOutbox.open(dir, options);
    expect(second.size).toBe(30);
    await second.append([message(50)]);
    expect(await drain(second)).toEqual(Array.from({ length: 31 }, (_, i) => i + 20));
    await second.close();
    const third = await FileOutbox.open(dir, options);
    expect(third.isEmpty()).toBe(true);
    await third.append([message(99)]);
    expect(await drain(third)).toEqual([99]);
    await third.close();
  });

  it('cuts a torn last record written by a crash mid-append', async () => {
    const outbox = await FileOutbox.open(dir, { ...options, segmentBytes: 1024 * 1024 });
    await outbox.append([message(1), message(2), message(3)]);
    await outbox.close();
    const segment = readdirSync(dir).find((f) => f.endsWith('.log'));
    if (!segment) throw new Error('no segment');
    const path = join(dir, segment);
    truncateSync(path, statSync(path).size - 5);
    appendFileSync(path, Buffer.from([0, 0]));
    const reopened = await FileOutbox.open(dir, options);
    expect(reopened.size).toBe(2);
    await reopened.append([message(4)]);
    expect(await drain(reopened)).toEqual([1, 2, 4]);
    await reopened.close();
  });

  describe('bytes the disk damaged', () => {
    type Line = { level: number; msg: string; bytes?: number; copy?: string };
    let lines: Line[];
    const logger = () => createLogger('spec', 'info', { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
    beforeEach(() => (lines = []));

    /** The segment's path and where each of its records starts. */
    function frames(): { path: string; starts: number[] } {
      const segment = readdirSync(dir).find((f) => f.endsWith('.log'));
      if (!segment) throw new Error('no segment');
      const path = join(dir, segment);
      const data = readFileSync(path);
      const starts: number[] = [];
      for (let at = 0; at < data.length; at += 8 + data.readUInt32BE(at)) starts.push(at);
      return { path, starts };
    }
    function overwrite(path: string, at: number, bytes: Buffer): void {
      const data = readFileSync(path);
      bytes.copy(data, at);
      writeFileSync(path, data);
    }
    const damagedCopies = () => readdirSync(dir).filter((f) => f.startsWith('damaged-'));

    it('are set aside at start-up, and every record after them is still delivered', async () => {
      const outbox = await FileOutbox.open(dir, { ...options, segmentBytes: 1024 * 1024 });
      await outbox.append(Array.from({ length: 6 }, (_, i) => message(i)));
      await outbox.close();
      const { path, starts } = frames();
      // One byte of record 1's payload, and a zeroed run over the end of 3 and the start of 4.
      overwrite(path, starts[1]! + 12, Buffer.from('#'));
      overwrite(path, starts[4]! - 3, Buffer.alloc(12));
      const reopened = await FileOutbox.open(dir, { ...options, logger: logger() });
      expect(reopened.size).toBe(3);
      await reopened.append([message(6)]);
      expect(await drain(reopened, 2)).toEqual([0, 2, 5, 6]);
      expect(reopened.isEmpty()).toBe(true);
      expect(reopened.bytes).toBe(0);
      await reopened.close();
      const skipped = lines.filter((l) => /no record skipped/.test(l.msg));
      expect(skipped.map((l) => l.bytes)).toEqual([starts[2]! - starts[1]!, starts[5]! - starts[3]!]);
      expect(damagedCopies().sort()).toEqual(skipped.map((l) => l.copy).sort());
      expect(readFileSync(join(dir, skipped[0]!.copy!)).length).toBe(starts[2]! - starts[1]!);
    });

    it('are set aside when found while delivering, also a length that runs past the segment', async () => {
      const outbox = await FileOutbox.open(dir, { ...options, segmentBytes: 1024 * 1024, logger: logger() });
      await outbox.append(Array.from({ length: 6 }, (_, i) => message(i)));
      const { path, starts } = frames();
      overwrite(path, starts[1]! + 9, Buffer.from('#'));
      const length = Buffer.alloc(4);
      length.writeUInt32BE(1_000_000);
      overwrite(path, starts[3]!, length);
      await outbox.append([message(6)]);
      expect(await drain(outbox, 10)).toEqual([0, 2, 4, 5, 6]);
      expect(outbox.isEmpty()).toBe(true);
      expect(lines.filter((l) => /no record skipped/.test(l.msg)).map((l) => l.bytes)).toEqual([starts[2]! - starts[1]!, starts[4]! - starts[3]!]);
      expect(damagedCopies()).toHaveLength(2);
      // The outbox goes on as before.
      await outbox.append([message(7)]);
      expect(await drain(outbox)).toEqual([7]);
      await outbox.close();
    });

    it('at the end of a segment, found while delivering, end that segment only', async () => {
      const outbox = await FileOutbox.open(dir, { ...options, segmentBytes: 1024 * 1024, logger: logger() });
      await outbox.append(Array.from({ length: 3 }, (_, i) => message(i)));
      const { path, starts } = frames();
      overwrite(path, starts[2]! + 9, Buffer.from('#'));
      expect(await drain(outbox)).toEqual([0, 1]);
      expect(outbox.isEmpty()).toBe(true);
      await outbox.append([message(3), message(4)]);
      expect(await drain(outbox)).toEqual([3, 4]);
      await outbox.close();
    });
  });

  describe('when the disk takes less than it was given', () => {
    let restore: () => void;
    /** Makes the next writes to any file behave as `writes` say: a short write (its share of the length) or a failure. */
    async function diskThat(...writes: Array<number | 'ENOSPC'>): Promise<void> {
      const probe = await open(join(dir, 'probe'), 'w');
      const proto = Object.getPrototypeOf(probe) as { write: FileHandle['write'] };
      await probe.close();
      type Write = (this: FileHandle, buffer: Buffer, offset?: number, length?: number, position?: number) => ReturnType<FileHandle['write']>;
      const original = proto.write as unknown as Write;
      const spy = jest.spyOn(proto, 'write');
      for (const behaviour of writes) {
        spy.mockImplementationOnce(function (this: FileHandle, buffer: Buffer, offset?: number, length?: number, position?: number) {
          if (behaviour === 'ENOSPC') return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
          return original.call(this, buffer, offset, Math.max(1, Math.floor((length ?? buffer.length) * behaviour)), position);
        } as FileHandle['write']);
      }
      restore = () => spy.mockRestore();
    }
    afterEach(() => restore?.());

    it('writes the rest of a short write before acknowledging the append', async () => {
      const outbox = await FileOutbox.open(dir, options);
      await diskThat(0.5, 0.5);
      await outbox.append(Array.from({ length: 20 }, (_, i) => message(i)));
      restore();
      await outbox.append([message(20)]);
      expect(await drain(outbox)).toEqual(Array.from({ length: 21 }, (_, i) => i));
      await outbox.close();
    });

    it('refuses an append the disk could not take whole, and keeps every acknowledged record before and after it, across a restart', async () => {
      const outbox = await FileOutbox.open(dir, options);
      await outbox.append(Array.from({ length: 5 }, (_, i) => message(i)));
      // Half of the next append is written, then the disk is full.
      await diskThat(0.5, 'ENOSPC');
      await expect(outbox.append(Array.from({ length: 5 }, (_, i) => message(100 + i)))).rejects.toThrow(/ENOSPC/);
      restore();
      // Space again: later appends follow the last acknowledged record, not the torn one.
      await outbox.append(Array.from({ length: 5 }, (_, i) => message(10 + i)));
      expect(outbox.size).toBe(10);
      await outbox.close();
      const reopened = await FileOutbox.open(dir, options);
      expect(await drain(reopened)).toEqual([0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
      await reopened.close();
    });
  });

  it('refuses appends past its bound instead of filling the disk', async () => {
    const outbox = await FileOutbox.open(dir, { maxBytes: 600, segmentBytes: 1024 });
    await outbox.append(Array.from({ length: 5 }, (_, i) => message(i)));
    await expect(outbox.append(Array.from({ length: 20 }, (_, i) => message(i)))).rejects.toBeInstanceOf(OutboxFullError);
    expect(outbox.size).toBe(5);
    expect(await drain(outbox)).toEqual([0, 1, 2, 3, 4]);
    await outbox.close();
  });

  it('keeps order when appends and acknowledgements interleave', async () => {
    const outbox = await FileOutbox.open(dir, options);
    const seen: number[] = [];
    let next = 0;
    for (let round = 0; round < 40; round++) {
      await outbox.append(Array.from({ length: 5 }, () => message(next++)));
      const peek = await outbox.peek(3);
      seen.push(...numbers(peek.records));
      await outbox.ack(peek, peek.records.length);
    }
    seen.push(...(await drain(outbox)));
    expect(seen).toEqual(Array.from({ length: next }, (_, i) => i));
    await outbox.close();
  });
  describe('when the file system fails', () => {
    const segmentPath = (n: number): string => join(dir, `segment-${String(n).padStart(12, '0')}.log`);
    const segmentFiles = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.log'));
    // Every append fills its segment, so each starts a new one.
    const oneRecordSegments = { ...options, segmentBytes: 1 };

    it('leaves no trace of a segment it could not create: later appends and deliveries go on', async () => {
      const outbox = await FileOutbox.open(dir, oneRecordSegments);
      await outbox.append([message(0)]);
      // The next segment cannot be created (as with EMFILE or ENOSPC): a directory has its name.
      mkdirSync(segmentPath(2));
      await expect(outbox.append([message(1)])).rejects.toThrow(/EISDIR/);
      expect(outbox.size).toBe(1);
      rmSync(segmentPath(2), { recursive: true });
      await outbox.append([message(2)]);
      expect(await drain(outbox)).toEqual([0, 2]);
      expect(outbox.isEmpty()).toBe(true);
      expect(segmentFiles()).toEqual([]);
      await outbox.append([message(3)]);
      await outbox.close();
      const reopened = await FileOutbox.open(dir, oneRecordSegments);
      expect(await drain(reopened)).toEqual([3]);
      await reopened.close();
    });

    it('deletes a delivered segment whose deletion failed later, and delivers every record once', async () => {
      const outbox = await FileOutbox.open(dir, oneRecordSegments);
      for (let i = 0; i < 3; i++) await outbox.append([message(i)]);
      expect(segmentFiles()).toHaveLength(3);
      const first = await outbox.peek(10);
      expect(numbers(first.records)).toEqual([0]);
      // Delivered, but its file cannot be deleted (as with EIO or EROFS): a directory takes its place.
      rmSync(segmentPath(1));
      mkdirSync(segmentPath(1));
      const delivered = numbers(first.records);
      await expect(outbox.ack(first, 1)).rejects.toThrow(/directory/i);
      // Still failing to delete it: deliveries go on regardless, each record once.
      delivered.push(...(await drainThroughFailures(outbox)));
      expect(delivered).toEqual([0, 1, 2]);
      expect(outbox.isEmpty()).toBe(true);
      // The disk is well again: the next delivery deletes what was left.
      rmSync(segmentPath(1), { recursive: true });
      await outbox.append([message(3)]);
      expect(await drain(outbox)).toEqual([3]);
      expect(segmentFiles()).toEqual([]);
      await outbox.close();
      const reopened = await FileOutbox.open(dir, oneRecordSegments);
      expect(reopened.isEmpty()).toBe(true);
      await reopened.close();
    });

    it('takes the segments before the cursor for delivered at start-up, also when the cursor names one not made yet', async () => {
      const outbox = await FileOutbox.open(dir, oneRecordSegments);
      for (let i = 0; i < 3; i++) await outbox.append([message(i)]);
      const files = segmentFiles().map((name) => ({ name, data: readFileSync(join(dir, name)) }));
      expect(await drain(outbox)).toEqual([0, 1, 2]);
      await outbox.close();
      // All delivered, the cursor on the next segment to make, and the files still there (their
      // deletion failed, or the process was killed before it).
      for (const { name, data } of files) writeFileSync(join(dir, name), data);
      const reopened = await FileOutbox.open(dir, oneRecordSegments);
      expect(reopened.isEmpty()).toBe(true);
      expect(segmentFiles()).toEqual([]);
      await reopened.append([message(3)]);
      expect(await drain(reopened)).toEqual([3]);
      await reopened.close();
    });
  });

  describe('the directory lock', () => {
    it('refuses a second outbox on the same directory, naming it, and opens again once the first is closed', async () => {
      const first = await FileOutbox.open(dir, options);
      await first.append([message(1)]);
      const refused = FileOutbox.open(dir, options);
      await expect(refused).rejects.toBeInstanceOf(OutboxLockedError);
      await expect(refused).rejects.toThrow(dir);
      // The first one was not disturbed.
      await first.append([message(2)]);
      await first.close();
      const second = await FileOutbox.open(dir, options);
      expect(await drain(second)).toEqual([1, 2]);
      await second.close();
      expect(readdirSync(dir)).not.toContain(LOCK_FILE);
    });

    it('refuses a directory another running process has open, and takes it over once that process died', async () => {
      const other = otherProcess(dir, 'await outbox.append([message(7), message(8)]);');
      try {
        await other.ready;
        await expect(FileOutbox.open(dir, options)).rejects.toThrow(/in use by pid \d+.*its process is running/);
      } finally {
        await other.kill();
      }
      // Killed: its lock names a process that no longer runs.
      const outbox = await FileOutbox.open(dir, options);
      expect(await drain(outbox)).toEqual([7, 8]);
      await outbox.close();
    });

    describe('held by a process elsewhere (another host or container)', () => {
      const lockPath = (): string => join(dir, LOCK_FILE);
      const writeLock = (beat: number): void =>
        writeFileSync(lockPath(), JSON.stringify({ pid: 1, host: 'elsewhere', namespace: 'x', started: '1', token: 't', since: '2025-01-01T00:00:00.000Z', beat }));

      it('takes it over once it is no longer renewed', async () => {
        writeLock(0);
        const outbox = await FileOutbox.open(dir, { ...options, lockStaleMs: 200 });
        await outbox.append([message(1)]);
        expect(await drain(outbox)).toEqual([1]);
        await outbox.close();
      });

      it('refuses it while it is renewed', async () => {
        writeLock(0);
        let settled = false;
        const opening = FileOutbox.open(dir, { ...options, lockStaleMs: 2_000 }).then(
          (outbox) => outbox,
          (error: unknown) => error,
        );
        void opening.finally(() => (settled = true));
        // The holder renews its lock until the opener gives up.
        for (let beat = 1; !settled; beat++) {
          writeLock(beat);
          await new Promise((done) => setTimeout(done, 20));
        }
        const refused = await opening;
        expect(refused).toBeInstanceOf(OutboxLockedError);
        expect(String(refused)).toMatch(/renewed/);
      });
    });

    it('refuses appends once another process has taken its lock over', async () => {
      const outbox = await FileOutbox.open(dir, { ...options, lockStaleMs: 100 });
      await outbox.append([message(1)]);
      // Its lock was deleted and taken (as by a process that thought it stale).
      rmSync(join(dir, LOCK_FILE));
      const thief = await FileOutbox.open(dir, options);
      await waitUntil(async () => outbox.append([message(2)]).then(() => false, (error: Error) => /taken over/.test(error.message)));
      await thief.close();
      await outbox.close();
    });
  });
});

/** Peeks and acknowledges until the outbox is empty, going on when an acknowledgement fails. */
async function drainThroughFailures(outbox: FileOutbox): Promise<number[]> {
  const seen: number[] = [];
  for (let round = 0; round < 50; round++) {
    const peek = await outbox.peek(10);
    if (peek.records.length === 0) return seen;
    seen.push(...numbers(peek.records));
    await outbox.ack(peek, peek.records.length).catch(() => undefined);
  }
  throw new Error(`the outbox never emptied; delivered ${seen.join(',')}`);
}

async function waitUntil(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (await condition()) return;
    await new Promise((done) => setTimeout(done, 10));
  }
  throw new Error('the condition never held');
}

const REPOSITORY = resolve(__dirname, '../../../..');

/**
 * Another process with the outbox of `dir` open: it runs `script` (with `outbox` and `message` in
 * scope), then waits until it is killed (`kill`: SIGKILL, so nothing is closed or released).
 */
function otherProcess(dir: string, script: string): { ready: Promise<void>; kill: () => Promise<void> } {
  const program = `
    const { FileOutbox } = require(${JSON.stringify(join(REPOSITORY, 'libs/usage/src/kafka/file-outbox.ts'))});
    const message = ${message.toString()};
    (async () => {
      const outbox = await FileOutbox.open(${JSON.stringify(dir)}, ${JSON.stringify(options)});
      ${script}
      process.stdout.write('ready\\n');
      setInterval(() => undefined, 1_000);
    })().catch((error) => { console.error(error); process.exit(1); });`;
  const child = spawn(process.execPath, ['-r', join(REPOSITORY, 'bench/register.js'), '-e', program], { cwd: REPOSITORY, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = new Promise<void>((done, fail) => {
    child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && done());
    void exited.then(() => fail(new Error(`the other process ended before it was ready: ${stderr}`)));
  });
  return {
    ready,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
