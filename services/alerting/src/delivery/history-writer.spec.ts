import { Writable } from 'node:stream';
import { createLogger, type AlertHistoryEntry, type AlertHistoryStore } from '@openrouter/observability';
import { HistoryWriter } from './history-writer';

const entry = (alertId: string): AlertHistoryEntry => ({
  at: '2026-01-01T00:00:00.000Z',
  alertId,
  ruleId: 'r',
  ruleKind: 'error_rate',
  severity: 'warning',
  status: 'firing',
  labels: {},
  value: 1,
  threshold: 1,
  summary: '',
  startedAt: '2026-01-01T00:00:00.000Z',
  notified: true,
  channels: [],
});

/** A store whose first write waits until released. */
class SlowStore implements Pick<AlertHistoryStore, 'append'> {
  readonly written: string[] = [];
  private release: (() => void) | undefined;
  private first = true;

  append(entries: readonly AlertHistoryEntry[]): Promise<void> {
    const write = (): void => void this.written.push(...entries.map((e) => e.alertId));
    if (!this.first) return Promise.resolve(write());
    this.first = false;
    return new Promise((resolve) => (this.release = () => resolve(write())));
  }

  releaseFirst(): void {
    this.release?.();
  }
}

/** A store that takes a moment over each write, and refuses one that ends after it was closed. */
class ClosingStore implements Pick<AlertHistoryStore, 'append'> {
  readonly written: string[] = [];
  open = true;

  async append(entries: readonly AlertHistoryEntry[]): Promise<void> {
    await new Promise((done) => setImmediate(done));
    if (!this.open) throw new Error('the store is closed');
    this.written.push(...entries.map((e) => e.alertId));
  }
}

describe('alert history writer', () => {
  it('keeps entries appended while a batch is written, even when the buffer was trimmed meanwhile, and logs what it dropped', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const store = new SlowStore();
    const writer = new HistoryWriter(store, createLogger('history-spec', 'info', sink), 3);
    writer.append([entry('a'), entry('b'), entry('c')]);
    // While a, b, c are being written: two more push a and b out of the bounded buffer.
    writer.append([entry('d'), entry('e')]);
    store.releaseFirst();
    await writer.flushed();
    expect(store.written).toEqual(['a', 'b', 'c', 'd', 'e']);
    const dropped = lines.map((l) => JSON.parse(l) as { msg: string; dropped?: number; first?: Array<{ alert: string }> }).find((l) => l.msg.includes('buffer full'));
    expect(dropped).toMatchObject({ dropped: 2, first: [{ alert: 'a' }, { alert: 'b' }] });
    await writer.close();
  });

  it('writes at its close what was appended while a batch was being written, and every batch past the first', async () => {
    const store = new ClosingStore();
    const writer = new HistoryWriter(store, createLogger('history-spec', 'silent'));
    writer.append([entry('first')]);
    // Appended while the first batch is written (a delivery's outcome at shutdown): more than one batch.
    const many = Array.from({ length: 1_500 }, (_, i) => entry(`e${i}`));
    writer.append(many);
    await writer.close(5_000);
    // The service closes the store right after.
    store.open = false;
    expect(store.written).toEqual(['first', ...many.map((e) => e.alertId)]);
  });

  it('gives up at its close on a write that fails, without retrying it, and logs what is left', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    let calls = 0;
    const failing = { append: () => (calls++, Promise.reject(new Error('store down'))) };
    const writer = new HistoryWriter(failing, createLogger('history-spec', 'info', sink), 100, 60_000, 60_000);
    writer.append([entry('a')]);
    await writer.close(5_000);
    expect(calls).toBe(1);
    expect(lines.some((l) => l.includes('alert history left unwritten at shutdown') && l.includes('"entries":1'))).toBe(true);
  });

  it('stops retrying once closed: a store that keeps failing is not written to after the close', async () => {
    jest.useFakeTimers();
    try {
      let calls = 0;
      const failing = { append: () => (calls++, Promise.reject(new Error('store down'))) };
      const writer = new HistoryWriter(failing, createLogger('history-spec', 'silent'), 100, 500, 1_000);
      writer.append([entry('a')]);
      await jest.advanceTimersByTimeAsync(2_000);
      await writer.close(1_000);
      const atClose = calls;
      await jest.advanceTimersByTimeAsync(60_000);
      expect(calls).toBe(atClose);
    } finally {
      jest.useRealTimers();
    }
  });
});
