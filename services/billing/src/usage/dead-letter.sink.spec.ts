import { Kafka, type Producer, type ProducerRecord } from 'kafkajs';
import { kafkaUsageSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import type { UsageMessage } from '@openrouter/usage';
import { KafkaDeadLetterSink } from './dead-letter.sink';

/** A port nothing listens on: the producer below never reaches a broker. */
const REFUSED_PORT = 1;
const SEND_TIMEOUT_MS = 5_000;

/**
 * The sink's sends are timed on the clock alone (a broker that is slow, not one that is away), so
 * its producer is one whose every send takes `sendMs` of jest's fake clock: how long a slice takes
 * is then exact, and no test waits in real time.
 */
function slowProducers(sendMs: () => number): { sends: ProducerRecord[]; producers: () => number } {
  const sends: ProducerRecord[] = [];
  let made = 0;
  jest.spyOn(Kafka.prototype, 'producer').mockImplementation(() => {
    made += 1;
    const producer: Pick<Producer, 'connect' | 'send' | 'disconnect'> = {
      connect: async () => undefined,
      send: (record) =>
        new Promise((resolve) => {
          setTimeout(() => {
            sends.push(record);
            resolve([]);
          }, sendMs());
        }),
      disconnect: async () => undefined,
    };
    return producer as Producer;
  });
  return { sends, producers: () => made };
}

/** A bad message of about 40 KiB: the 64 KiB a send may carry here takes one. */
const letter = (n: number): { message: UsageMessage; reason: string } => ({ message: { key: `org-${n}`, value: Buffer.alloc(40 * 1024, n), headers: {} }, reason: 'undecodable' });

describe('KafkaDeadLetterSink', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  const sink = (): KafkaDeadLetterSink =>
    new KafkaDeadLetterSink(kafkaUsageSchema.parse({ brokers: [`127.0.0.1:${REFUSED_PORT}`], sendTimeoutMs: SEND_TIMEOUT_MS, maxSendBytes: 64 * 1024 }), createLogger('billing', 'silent'));

  it('gives each send of a large batch its own timeout: slices that each take less are all sent, however long they take together', async () => {
    const { sends } = slowProducers(() => SEND_TIMEOUT_MS * 0.6);
    const dlq = sink();
    let settled: unknown = 'pending';
    const sent = dlq.send([letter(1), letter(2), letter(3)]).then(
      () => (settled = 'sent'),
      (error: unknown) => (settled = error),
    );
    // Three slices, one after another: 1.8 times the timeout in all.
    await jest.advanceTimersByTimeAsync(SEND_TIMEOUT_MS * 2);
    await sent;
    expect(settled).toBe('sent');
    expect(sends.map((s) => [s.topic, s.acks, s.messages.map((m) => m.key)])).toEqual([
      ['openrouter.usage.v1.dlq', -1, ['org-1']],
      ['openrouter.usage.v1.dlq', -1, ['org-2']],
      ['openrouter.usage.v1.dlq', -1, ['org-3']],
    ]);
    await dlq.close();
  });

  it('fails a send that takes longer than the timeout, and makes a new producer for the next', async () => {
    let sendMs = SEND_TIMEOUT_MS * 2;
    const { sends, producers } = slowProducers(() => sendMs);
    const dlq = sink();
    const failed = dlq.send([letter(1)]).then(
      () => undefined,
      (error: unknown) => error,
    );
    await jest.advanceTimersByTimeAsync(SEND_TIMEOUT_MS);
    expect(await failed).toEqual(new Error(`dead-letter send timed out after ${SEND_TIMEOUT_MS} ms`));
    sendMs = 1;
    const sent = dlq.send([letter(2)]);
    await jest.advanceTimersByTimeAsync(SEND_TIMEOUT_MS * 2);
    await sent;
    expect(producers()).toBe(2);
    expect(sends.map((s) => s.messages.map((m) => m.key))).toContainEqual(['org-2']);
    await dlq.close();
  });
});
