import { createLogger } from '@openrouter/observability';
import { KafkaJSError } from 'kafkajs';
import { retryWhileRetriable } from './kafka-alert.source';

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
