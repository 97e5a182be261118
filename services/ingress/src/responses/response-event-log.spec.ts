import { MemoryResponseEventLog } from './response-event-log';
import { delta, describeResponseEventLog } from './response-event-log.cases.testing';
import { newTestResponseId } from './response-store.cases.testing';

describe('MemoryResponseEventLog', () => {
  describeResponseEventLog('the cases of every log', { log: () => new MemoryResponseEventLog() });

  it('drops a response’s events at the expiry its last append gave, and starts it again from 0', async () => {
    let now = Date.UTC(2025, 5, 1);
    const log = new MemoryResponseEventLog(() => now);
    const id = newTestResponseId();
    await log.append(id, 0, [delta('a')], now + 60_000);
    await log.append(id, 1, [delta('b')], now + 120_000);
    now += 119_999;
    expect(await log.length(id)).toBe(2);
    now += 1;
    expect(await log.length(id)).toBe(0);
    expect(await log.read(id, -1, 10)).toEqual([]);
    expect(await log.append(id, 0, [delta('c')], now + 1_000)).toBe(1);
  });

  it('keeps the logs of at most maxLogs responses, dropping the oldest for a new one', async () => {
    const log = new MemoryResponseEventLog(Date.now, 2);
    const [a, b, c] = [newTestResponseId(), newTestResponseId(), newTestResponseId()];
    const later = Date.now() + 60_000;
    await log.append(a, 0, [delta('a')], later);
    await log.append(b, 0, [delta('b')], later);
    // Appending to a kept log adds no log.
    await log.append(a, 1, [delta('a again')], later);
    expect([await log.length(a), await log.length(b)]).toEqual([2, 1]);
    await log.append(c, 0, [delta('c')], later);
    expect([await log.length(a), await log.length(b), await log.length(c)]).toEqual([0, 1, 1]);
  });

  it('holds maxBytes of events in all, dropping the oldest responses’ logs but never the one being added to', async () => {
    const one = Buffer.byteLength(JSON.stringify({ ...delta('x'.repeat(100)), sequence_number: 0 }), 'utf8');
    const log = new MemoryResponseEventLog(Date.now, 100, one * 3);
    const [a, b] = [newTestResponseId(), newTestResponseId()];
    const later = Date.now() + 60_000;
    await log.append(a, 0, [delta('x'.repeat(100)), delta('x'.repeat(100))], later);
    await log.append(b, 0, [delta('x'.repeat(100))], later);
    expect([await log.length(a), await log.length(b)]).toEqual([2, 1]);
    // A fourth event: over the bound, the oldest other log goes.
    await log.append(b, 1, [delta('x'.repeat(100))], later);
    expect([await log.length(a), await log.length(b)]).toEqual([0, 2]);
    // The one being added to stays, even past the bound alone.
    await log.append(b, 2, [delta('x'.repeat(100)), delta('x'.repeat(100))], later);
    expect(await log.length(b)).toBe(4);
    // Deleted: what it held is free again.
    await log.delete(b);
    await log.append(a, 0, [delta('x'.repeat(100)), delta('x'.repeat(100)), delta('x'.repeat(100))], later);
    expect(await log.length(a)).toBe(3);
  });

  it('keeps the events it was given as they were: a caller changing its objects afterwards changes nothing kept', async () => {
    const log = new MemoryResponseEventLog();
    const id = newTestResponseId();
    const event = delta('kept');
    await log.append(id, 0, [event], Date.now() + 60_000);
    event['delta'] = 'changed';
    const [read] = await log.read(id, -1, 1);
    if (read) read['delta'] = 'changed too';
    expect((await log.read(id, -1, 1))[0]?.['delta']).toBe('kept');
  });
});
