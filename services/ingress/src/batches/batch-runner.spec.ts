import { batchesSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { InternalCallCredential } from '../access/internal-call';
import { until } from '../redis.testing';
import { BatchRunner, retryDelayMs } from './batch-runner';
import { MemoryBatchStore } from './batch-store';
import { MemoryFileStore } from './memory-file-store';
import type { OwnApiResponse } from './own-api';

const withHeader = (value: string | string[] | number | undefined) => ({ headers: { 'retry-after': value } });
const noHeader = { headers: {} };

describe('retryDelayMs', () => {
  it("waits the answer's Retry-After in seconds, whatever the attempt", () => {
    expect(retryDelayMs(withHeader('2'), 1)).toBe(2_000);
    expect(retryDelayMs(withHeader('0'), 5)).toBe(0);
    expect(retryDelayMs(withHeader('1.5'), 3)).toBe(1_500);
    expect(retryDelayMs(withHeader(7), 1)).toBe(7_000);
  });

  it('waits a minute at most, however long Retry-After asks', () => {
    expect(retryDelayMs(withHeader('60'), 1)).toBe(60_000);
    expect(retryDelayMs(withHeader('3600'), 1)).toBe(60_000);
  });

  it('takes the first value of a header given more than once', () => {
    expect(retryDelayMs(withHeader(['3', '30']), 1)).toBe(3_000);
  });

  it('without a usable Retry-After (none, a date, negative, not a number), waits a growing delay with jitter: between half of 1, 2, 4 … s and all of it', () => {
    const jitter = jest.spyOn(Math, 'random');
    try {
      for (const response of [noHeader, withHeader(undefined), withHeader('Wed, 21 Oct 2025 07:28:00 GMT'), withHeader('-1'), withHeader('soon')]) {
        for (const [attempt, base] of [
          [1, 1_000],
          [2, 2_000],
          [3, 4_000],
          [6, 32_000],
        ] as const) {
          jitter.mockReturnValueOnce(0);
          expect(retryDelayMs(response, attempt)).toBe(base / 2);
          jitter.mockReturnValueOnce(0.999_999);
          expect(retryDelayMs(response, attempt)).toBeCloseTo(base, -1);
          jitter.mockReturnValueOnce(0.5);
          expect(retryDelayMs(response, attempt)).toBe((base * 3) / 4);
        }
      }
    } finally {
      jitter.mockRestore();
    }
  });

  it('grows to a minute and no further, for any number of attempts', () => {
    for (const attempt of [7, 8, 20, 1_100]) {
      const delay = retryDelayMs(noHeader, attempt);
      expect(delay).toBeGreaterThanOrEqual(30_000);
      expect(delay).toBeLessThanOrEqual(60_000);
    }
  });

  it('spreads the waits of lines refused together: random draws within [base/2, base]', () => {
    const delays = Array.from({ length: 200 }, () => retryDelayMs(noHeader, 3));
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(2_000);
      expect(delay).toBeLessThanOrEqual(4_000);
    }
    expect(new Set(delays).size).toBeGreaterThan(150);
  });
});

describe('BatchRunner: a batch whose run fails', () => {
  it('is not taken up again by the same replica before its claim would lapse, however often the replica looks', async () => {
    const store = new (class extends MemoryBatchStore {
      inputReads = 0;
      polls = 0;
      override async active(): Promise<string[]> {
        this.polls++;
        return super.active();
      }
      // A failure that lasts: every run of the batch stops on it.
      override async input(): Promise<Buffer | undefined> {
        this.inputReads++;
        throw new Error('the store cannot read the input');
      }
    })();
    const now = Math.floor(Date.now() / 1000);
    await store.create(
      { id: 'batch_failing', owner: 'acme/search', keyId: 'k', endpoint: '/v1/chat/completions', inputFileId: 'file-1', completionWindow: '24h', status: 'validating', createdAt: now, expiresAt: now + 86_400, requestCounts: { total: 1, completed: 0, failed: 0 }, metadata: null, tags: {} },
      Buffer.from('{}'),
    );
    const api = async (): Promise<OwnApiResponse> => ({ statusCode: 200, headers: {}, body: '{}' });
    const runner = new BatchRunner(batchesSchema.parse({ enabled: true, pollMs: 50, leaseMs: 60_000 }), store, new MemoryFileStore(), api, new InternalCallCredential(), createLogger('ingress', 'silent'));
    runner.start();
    try {
      await until(() => store.inputReads === 1 && store.polls >= 12, 'the replica to look a dozen times after the failure');
      expect(store.inputReads).toBe(1);
    } finally {
      await runner.close();
    }
  });
});

