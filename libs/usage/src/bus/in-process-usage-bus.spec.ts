import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@openrouter/observability';
import { emptyUsageEvent } from '../event/usage-event.factory';
import { FileOutbox } from '../kafka/file-outbox';
import { InProcessUsageBus } from './in-process-usage-bus';
import type { UsageMessage } from './usage-bus';

const logger = createLogger('usage-bus-spec', 'silent');
const message = (n: number): UsageMessage => ({ key: 'org', value: Buffer.from(String(n)), headers: {} });
const payloads = (batch: UsageMessage[]): string[] => batch.map((m) => m.value.toString());

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

describe('InProcessUsageBus', () => {
  it('hands a burst of publishes over as one batch after the linger, in order', async () => {
    const bus = new InProcessUsageBus(logger, { maxWaitMs: 10_000 });
    const batches: string[][] = [];
    const delivered = deferred();
    await bus.start(async (batch) => {
      batches.push(payloads(batch));
      delivered.resolve();
    });
    for (let n = 0; n < 5; n++) void bus.publishMessage(message(n));
    // Nothing is delivered while the batch gathers (the linger is far longer than this test)...
    await new Promise((done) => setImmediate(done));
    expect(batches).toEqual([]);
    expect(await bus.lag()).toBe(5);
    // ...and close flushes it at once rather than waiting out the linger.
    await bus.close();
    await delivered.promise;
    expect(batches).toEqual([['0', '1', '2', '3', '4']]);
    expect(await bus.lag()).toBe(0);
  });

  it('hands a batch over as soon as it is full, without waiting out the linger', async () => {
    const bus = new InProcessUsageBus(logger, { maxWaitMs: 10_000, batchMaxEvents: 3 });
    const batches: string[][] = [];
    const twoBatches = deferred();
    await bus.start(async (batch) => {
      batches.push(payloads(batch));
      if (batches.length === 2) twoBatches.resolve();
    });
    for (let n = 0; n < 6; n++) void bus.publishMessage(message(n));
    await twoBatches.promise;
    expect(batches).toEqual([
      ['0', '1', '2'],
      ['3', '4', '5'],
    ]);
    await bus.close();
  });

  it('gathers what arrives while a batch is stored into the next batch, not straight away', async () => {
    const bus = new InProcessUsageBus(logger, { maxWaitMs: 10_000, batchMaxEvents: 3 });
    const batches: string[][] = [];
    const storing = deferred();
    const release = deferred();
    await bus.start(async (batch) => {
      batches.push(payloads(batch));
      if (batches.length === 1) {
        storing.resolve();
        await release.promise;
      }
    });
    for (let n = 0; n < 3; n++) void bus.publishMessage(message(n));
    await storing.promise;
    // Published during the first insert: one event, far from a full batch.
    void bus.publishMessage(message(3));
    release.resolve();
    for (let i = 0; i < 5; i++) await new Promise((done) => setImmediate(done));
    expect(batches).toEqual([['0', '1', '2']]);
    expect(await bus.lag()).toBe(1);
    // It goes when the batch fills (or the linger ends, or close flushes).
    void bus.publishMessage(message(4));
    void bus.publishMessage(message(5));
    await bus.close();
    expect(batches).toEqual([
      ['0', '1', '2'],
      ['3', '4', '5'],
    ]);
  });

  it('delivers a failed batch again until the handler takes it', async () => {
    const bus = new InProcessUsageBus(logger, { retryInitialMs: 1, retryMaxMs: 2 });
    const attempts: string[][] = [];
    const stored = deferred();
    await bus.start(async (batch) => {
      attempts.push(payloads(batch));
      if (attempts.length < 3) throw new Error('insert failed');
      stored.resolve();
    });
    void bus.publishMessage(message(1));
    void bus.publishMessage(message(2));
    await stored.promise;
    expect(attempts).toEqual([
      ['1', '2'],
      ['1', '2'],
      ['1', '2'],
    ]);
    await bus.close();
    expect(await bus.lag()).toBe(0);
  });

  describe('with an outbox', () => {
    let dir: string;
    const outboxOptions = { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 };
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'usage-bus-outbox-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('keeps what the store refuses on disk, with everything published after it, and hands it over in order once it stores again', async () => {
      const bus = new InProcessUsageBus(logger, { retryInitialMs: 5, retryMaxMs: 20, outbox: await FileOutbox.open(dir, outboxOptions) });
      let storeUp = false;
      const stored: string[] = [];
      const allStored = deferred();
      await bus.start(async (batch) => {
        if (!storeUp) throw new Error('ClickHouse is down');
        stored.push(...payloads(batch));
        if (stored.length === 6) allStored.resolve();
      });
      for (let n = 0; n < 3; n++) await bus.publishMessage(message(n));
      await waitUntil(() => bus.status().mode === 'outbox');
      // Published during the outage: resolved once on disk, behind the first three.
      for (let n = 3; n < 6; n++) await bus.publishMessage(message(n));
      expect(bus.status()).toMatchObject({ mode: 'outbox', pending: 6 });
      expect(await bus.lag()).toBe(6);
      storeUp = true;
      await allStored.promise;
      expect(stored).toEqual(['0', '1', '2', '3', '4', '5']);
      await waitUntil(() => bus.status().mode === 'direct');
      await bus.publishMessage(message(6));
      await waitUntil(() => stored.length === 7);
      expect(bus.status()).toMatchObject({ mode: 'direct', pending: 0, outboxBytes: 0 });
      await bus.close();
    });

    it('writes what is published together during an outage in one append, not one fsync per event', async () => {
      const outbox = await FileOutbox.open(dir, outboxOptions);
      const appends = jest.spyOn(outbox, 'append');
      const bus = new InProcessUsageBus(logger, { retryInitialMs: 5, retryMaxMs: 20, outbox });
      let storeUp = false;
      const stored: string[] = [];
      await bus.start(async (batch) => {
        if (!storeUp) throw new Error('ClickHouse is down');
        stored.push(...payloads(batch));
      });
      await bus.publishMessage(message(0));
      await waitUntil(() => bus.status().mode === 'outbox');
      const before = appends.mock.calls.length;
      await Promise.all(Array.from({ length: 200 }, (_, i) => bus.publishMessage(message(i + 1))));
      expect(await bus.lag()).toBe(201);
      expect(appends.mock.calls.length - before).toBeLessThanOrEqual(2);
      storeUp = true;
      await waitUntil(() => stored.length === 201);
      expect(stored).toEqual(Array.from({ length: 201 }, (_, i) => String(i)));
      await bus.close();
    });

    it('writes the events of a group that encode, and keeps one that protobuf cannot encode in memory alone, for the consumer', async () => {
      const lines: Array<{ msg: string; pending?: number }> = [];
      const capturing = createLogger('usage-bus-spec', 'info', { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string; pending?: number }) });
      const first = new InProcessUsageBus(capturing, { retryInitialMs: 5, drainTimeoutMs: 50, outbox: await FileOutbox.open(dir, outboxOptions) });
      await first.start(async () => {
        throw new Error('ClickHouse is down');
      });
      const event = (id: string, audioMs = 0) => ({ ...emptyUsageEvent(id, 1_750_000_000_000), audioMs });
      await first.publish(event('e-0'));
      await waitUntil(() => first.status().mode === 'outbox');
      // Published together during the outage (written together, after the first of them at most), one with a count no uint64 holds.
      await Promise.all([first.publish(event('e-1')), first.publish(event('e-2')), first.publish(event('e-bad', 2e19)), first.publish(event('e-3'))]);
      // Kept for the next start, all but the one that cannot be written anywhere.
      await first.close();
      expect(lines.filter((l) => l.msg === 'usage events left undelivered at shutdown')).toEqual([expect.objectContaining({ pending: 1 })]);
      const next = new InProcessUsageBus(logger, { outbox: await FileOutbox.open(dir, outboxOptions) });
      expect(await next.lag()).toBe(4);
      await next.close();
    });

    it('keeps what is left at shutdown for the next start, which hands it over first', async () => {
      const first = new InProcessUsageBus(logger, { retryInitialMs: 5, drainTimeoutMs: 50, outbox: await FileOutbox.open(dir, outboxOptions) });
      await first.start(async () => {
        throw new Error('ClickHouse is down');
      });
      for (let n = 0; n < 4; n++) await first.publishMessage(message(n));
      await first.close();

      const next = new InProcessUsageBus(logger, { outbox: await FileOutbox.open(dir, outboxOptions) });
      expect(await next.lag()).toBe(4);
      const stored: string[] = [];
      await next.start(async (batch) => void stored.push(...payloads(batch)));
      void next.publishMessage(message(4));
      await waitUntil(() => stored.length === 5);
      expect(stored).toEqual(['0', '1', '2', '3', '4']);
      await next.close();
    });
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((done) => setTimeout(done, 5));
  expect(condition()).toBe(true);
}
