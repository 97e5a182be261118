import { mkdtempSync, readdirSync, rmSync, statSync, truncateSync, appendFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UsageMessage } from '../bus/usage-bus';
import { FileOutbox, OutboxFullError } from './file-outbox';

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
    const first = await FileOutbox.open(dir, options);
    await first.append(Array.from({ length: 50 }, (_, i) => message(i)));
    const peek = await first.peek(20);
    await first.ack(peek, 20);
    // A crash: no close.
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
      const reopened = await FileOutbox.open(dir, options);
      expect(await drain(reopened)).toEqual([0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
      await reopened.close();
      await outbox.close();
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
});
