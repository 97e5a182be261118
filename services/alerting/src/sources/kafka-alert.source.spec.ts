import { createLogger } from '@openrouter/observability';
import { KafkaJSError } from 'kafkajs';
import { retryWhileRetriable, StandingBy, takeAlertBatch, type AlertBatch, type AlertInputHandlers, type SkippedRecord } from './kafka-alert.source';

const logger = createLogger('alerting-spec', 'silent');
const notHosted = (): Error => new KafkaJSError('This server does not host this topic-partition', { retriable: true });

describe('retryWhileRetriable', () => {
  it('waits out retriable Kafka errors (a topic whose leader is not elected yet) and then succeeds', async () => {
    let calls = 0;
    await retryWhileRetriable(logger, 10_000, async () => {
      calls += 1;
      if (calls < 3) throw notHosted();
    });
    expect(calls).toBe(3);
  });

  it('fails at once on an error that retrying cannot fix', async () => {
    let calls = 0;
    const failure = new Error('bad configuration');
    await expect(
      retryWhileRetriable(logger, 10_000, async () => {
        calls += 1;
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(calls).toBe(1);
  });

  it('gives up with the last error once its patience is spent', async () => {
    let calls = 0;
    await expect(
      retryWhileRetriable(logger, 300, async () => {
        calls += 1;
        throw notHosted();
      }),
    ).rejects.toMatchObject({ retriable: true });
    expect(calls).toBeGreaterThanOrEqual(1);
  });
});

describe('taking a batch from the alerting topics', () => {
  type KafkaRecord = AlertBatch['messages'][number];
  const record = (offset: number, headers: KafkaRecord['headers'] = {}, value = `v${offset}`): KafkaRecord => ({ key: Buffer.from(`k${offset}`), value: Buffer.from(value), headers, offset: String(offset) });
  const skips = () => {
    const seen: string[] = [];
    const skipped: SkippedRecord = (where, error) => seen.push(`${where.topic}/${where.partition}@${where.offset}: ${error instanceof Error ? error.name : 'unknown'}`);
    return { seen, skipped };
  };

  it('takes a record with a header sent without a value (null from kafkajs), and the records after it', async () => {
    const usage: string[] = [];
    const budgets: Array<KafkaRecord['headers']> = [];
    const handlers: AlertInputHandlers = {
      usage: async (messages) => void usage.push(...messages.map((m) => m.key)),
      budget: (_value, headers) => void budgets.push(headers),
    };
    const { seen, skipped } = skips();
    await takeAlertBatch({ topic: 'usage', partition: 0, messages: [record(1), record(2, { 'x-empty': null, traceparent: '00-a-01' }), record(3)] }, 'usage', handlers, skipped);
    await takeAlertBatch({ topic: 'budget', partition: 1, messages: [record(7, { 'x-empty': null }), record(8, { tag: 'b' })] }, 'usage', handlers, skipped);
    expect(usage).toEqual(['k1', 'k2', 'k3']);
    expect(budgets).toEqual([{}, { tag: 'b' }]);
    expect(seen).toEqual([]);
  });

  it('refuses a whole batch, taking and skipping nothing, once the replica no longer holds the alerting lease', async () => {
    const usage: string[] = [];
    let active = true;
    const handlers: AlertInputHandlers = { usage: async (messages) => void usage.push(...messages.map((m) => m.key)), budget: () => undefined, mayTake: () => active };
    const { seen, skipped } = skips();
    await takeAlertBatch({ topic: 'usage', partition: 0, messages: [record(1)] }, 'usage', handlers, skipped);
    active = false;
    await expect(takeAlertBatch({ topic: 'usage', partition: 0, messages: [record(2), record(3)] }, 'usage', handlers, skipped)).rejects.toBeInstanceOf(StandingBy);
    await expect(takeAlertBatch({ topic: 'budget', partition: 0, messages: [record(4)] }, 'usage', handlers, skipped)).rejects.toBeInstanceOf(StandingBy);
    expect(usage).toEqual(['k1']);
    expect(seen).toEqual([]);
  });

  it('skips and reports a record whose handling throws, and still takes the records after it', async () => {
    const usage: string[] = [];
    const budgets: string[] = [];
    const handlers: AlertInputHandlers = {
      async usage(messages) {
        if (messages.some((m) => m.value.toString() === 'poison')) throw new TypeError('cannot read this one');
        usage.push(...messages.map((m) => m.key));
      },
      budget(value) {
        if (value.toString() === 'poison') throw new RangeError('index out of range');
        budgets.push(value.toString());
      },
    };
    const { seen, skipped } = skips();
    await takeAlertBatch({ topic: 'usage', partition: 0, messages: [record(1), record(2, {}, 'poison'), record(3)] }, 'usage', handlers, skipped);
    await takeAlertBatch({ topic: 'budget', partition: 2, messages: [record(4, {}, 'poison'), record(5)] }, 'usage', handlers, skipped);
    expect(usage).toEqual(['k1', 'k3']);
    expect(budgets).toEqual(['v5']);
    expect(seen).toEqual(['usage/0@2: TypeError', 'budget/2@4: RangeError']);
  });
});
