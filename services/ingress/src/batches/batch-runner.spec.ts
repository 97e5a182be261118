import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { batchesSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { InternalCallCredential } from '../access/internal-call';
import { until } from '../redis.testing';
import { trafficAttributes } from '../auth/api-key.guard';
import { randomId, type BatchRecord } from './batch-record';
import { BatchRunner, batchTagsHeader, OUTPUT_LIMITS, retryDelayMs } from './batch-runner';
import { cancelBatch, MemoryBatchStore } from './batch-store';
import { MemoryFileStore } from './memory-file-store';
import type { OwnApiRequest, OwnApiResponse } from './own-api';

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


const LOGGER = createLogger('ingress', 'silent');
const OWNER = 'acme/search';

/** A batch of `owner`, to run, created now (changes aside). */
function batchOf(lines: number, changes: Partial<BatchRecord> = {}): BatchRecord {
  const now = Math.floor(Date.now() / 1000);
  return { id: randomId('batch_'), owner: OWNER, keyId: 'search-1', endpoint: '/v1/chat/completions', inputFileId: 'file-input', completionWindow: '24h', status: 'validating', createdAt: now, expiresAt: now + 86_400, requestCounts: { total: lines, completed: 0, failed: 0 }, metadata: null, tags: {}, ...changes };
}

/** An input file of `lines` chat requests, `r0` … */
function inputOf(lines: number): Buffer {
  return Buffer.from(Array.from({ length: lines }, (_, i) => JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [] } })).join('\n'));
}

/** A line of a batch's output or error file. */
interface FileLine {
  id: string;
  custom_id: string;
  response: { status_code: number; body: unknown } | null;
  error: { code: string; message: string } | null;
}

async function linesOf(files: MemoryFileStore, fileId: string | undefined): Promise<FileLine[]> {
  const content = fileId === undefined ? undefined : await files.content(OWNER, fileId);
  if (!content) return [];
  const text = content.toString('utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as FileLine);
}

/** An answer of about 1 000 bytes, with a token each way. */
const answer = (): OwnApiResponse => ({ statusCode: 200, headers: {}, body: JSON.stringify({ text: 'x'.repeat(1_000), usage: { prompt_tokens: 1, completion_tokens: 1 } }) });

/** A promise and what settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** An own API whose lines are answered only once `answers` opens; `calls()` counts the lines it took. */
function heldApi(): { api: () => Promise<OwnApiResponse>; answers: { open: () => void }; calls: () => number } {
  let taken = 0;
  const answers = gate();
  const api = async (): Promise<OwnApiResponse> => {
    taken++;
    await answers.opened;
    return answer();
  };
  return { api, answers, calls: () => taken };
}

describe('BatchRunner: the size of a batch’s output', () => {
  it('starts no line once its results reach resultBytes: the lines left end unrun and unbilled in the error file, batch_output_too_large, and the batch completes', async () => {
    const store = new MemoryBatchStore();
    const files = new MemoryFileStore();
    const calls: OwnApiRequest[] = [];
    const api = async (request: OwnApiRequest): Promise<OwnApiResponse> => {
      calls.push(request);
      return answer();
    };
    const batch = batchOf(10, { tags: { team: 'search' } });
    await store.create(batch, inputOf(10));
    // One line at a time: each starts once the one before is kept. Each result is some 1 100 to 1 250 bytes: three pass 2 500.
    const runner = new BatchRunner(batchesSchema.parse({ enabled: true, pollMs: 50, concurrency: 1 }), store, files, api, new InternalCallCredential(), LOGGER, undefined, { resultBytes: 2_500 });
    runner.start();
    try {
      await until(async () => (await store.byId(batch.id))?.status === 'completed', 'the batch to complete');
    } finally {
      await runner.close();
    }
    const ended = await store.byId(batch.id);
    expect(calls).toHaveLength(3);
    expect(ended).toMatchObject({ status: 'completed', requestCounts: { total: 10, completed: 3, failed: 7 }, usage: { input: 3, output: 3 } });
    expect((await linesOf(files, ended?.outputFileId)).map((l) => l.custom_id)).toEqual(['r0', 'r1', 'r2']);
    const errors = await linesOf(files, ended?.errorFileId);
    expect(errors.map((l) => [l.custom_id, l.error?.code])).toEqual([3, 4, 5, 6, 7, 8, 9].map((i) => [`r${i}`, 'batch_output_too_large']));
    expect(errors[0]?.error?.message).toContain('2500 bytes');
    expect(await store.active()).toEqual([]);
    // Each line carries its batch's tag first, then the creating request's.
    expect(calls[0]?.headers['x-openrouter-tags']).toBe(`batch=${batch.id},team=search`);
  });

  it('keeps no output file larger than fileBytes: answers of lines running as the results filled up that do not fit are in the error file, without their body, and the batch still ends', async () => {
    const store = new MemoryBatchStore();
    const files = new MemoryFileStore();
    let calls = 0;
    const allStarted = gate();
    const api = async (): Promise<OwnApiResponse> => {
      if (++calls === 4) allStarted.open();
      await allStarted.opened;
      return answer();
    };
    const batch = batchOf(6);
    await store.create(batch, inputOf(6));
    // Four lines start before any answers (the results are empty until then); the file takes two answers.
    const runner = new BatchRunner(batchesSchema.parse({ enabled: true, pollMs: 50, concurrency: 4 }), store, files, api, new InternalCallCredential(), LOGGER, undefined, { resultBytes: 1, fileBytes: 2_500 });
    runner.start();
    try {
      await until(async () => (await store.byId(batch.id))?.status === 'completed', 'the batch to complete');
    } finally {
      await runner.close();
    }
    const ended = await store.byId(batch.id);
    expect(calls).toBe(4);
    // The four answers were billed: their tokens count, whether or not their body is kept.
    expect(ended).toMatchObject({ status: 'completed', requestCounts: { total: 6, completed: 2, failed: 4 }, usage: { input: 4, output: 4 } });
    const output = await linesOf(files, ended?.outputFileId);
    expect(output).toHaveLength(2);
    expect((await files.get(OWNER, ended?.outputFileId ?? ''))?.bytes).toBeLessThanOrEqual(2_500);
    const errors = await linesOf(files, ended?.errorFileId);
    expect(errors.map((l) => [l.response, l.error?.code])).toEqual(Array.from({ length: 4 }, () => [null, 'batch_output_too_large']));
    // The two answered lines left out keep their request's id (their usage records are found by it), the two unrun get new ones.
    const answered = errors.filter((l) => l.error?.message.includes('was answered'));
    expect(answered).toHaveLength(2);
    expect(new Set([...output, ...errors].map((l) => l.custom_id))).toEqual(new Set(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']));
    for (const l of [...output, ...errors]) expect(l.id).toMatch(/^batch_req_[0-9A-Za-z]{24}$/);
  });
});

describe('BatchRunner: a batch that cannot be finalized', () => {
  /** A file store that cannot take a file, and counts its tries. */
  class FullFileStore extends MemoryFileStore {
    puts = 0;
    override async put(): Promise<void> {
      this.puts++;
      throw new Error('the file cannot be stored');
    }
  }

  async function runUntil(batch: BatchRecord, files: FullFileStore, store: MemoryBatchStore, done: () => Promise<boolean>): Promise<void> {
    await store.create(batch, inputOf(2));
    const api = async (): Promise<OwnApiResponse> => answer();
    const runner = new BatchRunner(batchesSchema.parse({ enabled: true, pollMs: 50, leaseMs: 60_000 }), store, files, api, new InternalCallCredential(), LOGGER);
    runner.start();
    try {
      await until(done, 'the runner to be done with the batch');
    } finally {
      await runner.close();
    }
  }

  it('ends failed (batch_not_finalized) once its window and graceSeconds have passed, rather than being tried every lease until its results expire', async () => {
    const now = Math.floor(Date.now() / 1000);
    const batch = batchOf(2, { status: 'in_progress', createdAt: now - 86_400 - OUTPUT_LIMITS.graceSeconds - 60, expiresAt: now - OUTPUT_LIMITS.graceSeconds - 60 });
    const store = new MemoryBatchStore();
    const files = new FullFileStore();
    await runUntil(batch, files, store, async () => (await store.byId(batch.id))?.status === 'failed');
    expect(await store.byId(batch.id)).toMatchObject({ status: 'failed', failedAt: expect.any(Number), errors: [{ code: 'batch_not_finalized', message: expect.any(String), param: null, line: null }] });
    expect(await store.active()).toEqual([]);
    expect(files.puts).toBe(1);
  });

  it('is tried again while within its grace: still finalizing, still active', async () => {
    const now = Math.floor(Date.now() / 1000);
    const batch = batchOf(2, { status: 'in_progress', createdAt: now - 86_400 - 60, expiresAt: now - 60 });
    const store = new MemoryBatchStore();
    const files = new FullFileStore();
    await runUntil(batch, files, store, async () => files.puts >= 1);
    expect((await store.byId(batch.id))?.status).toBe('finalizing');
    expect(await store.active()).toEqual([batch.id]);
  });
});

describe('BatchRunner: a replica running as many batches as it may', () => {
  it('ends a waiting batch that is cancelled, or whose window has passed, at once: not once a run slot frees', async () => {
    const store = new MemoryBatchStore();
    const files = new MemoryFileStore();
    const { api, answers: release, calls } = heldApi();
    // Four batches (as many as a replica runs), each with a line that answers only at the end of the case.
    const running = Array.from({ length: 4 }, () => batchOf(1));
    for (const b of running) await store.create(b, inputOf(1));
    const runner = new BatchRunner(batchesSchema.parse({ enabled: true, pollMs: 50 }), store, files, api, new InternalCallCredential(), LOGGER);
    runner.start();
    try {
      await until(() => calls() === 4, 'the four batches to run a line each');
      const cancelled = batchOf(3);
      const late = batchOf(2, { expiresAt: Math.floor(Date.now() / 1000) - 1 });
      await store.create(cancelled, inputOf(3));
      await store.create(late, inputOf(2));
      expect((await cancelBatch(store, cancelled.id, Math.floor(Date.now() / 1000)))?.status).toBe('cancelling');
      await until(async () => (await store.byId(cancelled.id))?.status === 'cancelled' && (await store.byId(late.id))?.status === 'expired', 'the cancelled and the late batch to end');
      // Neither ran a line; the four are still running theirs.
      expect(calls()).toBe(4);
      const ended = await store.byId(cancelled.id);
      expect(ended?.requestCounts).toEqual({ total: 3, completed: 0, failed: 3 });
      expect((await linesOf(files, ended?.errorFileId)).map((l) => l.error?.code)).toEqual(['batch_cancelled', 'batch_cancelled', 'batch_cancelled']);
      expect((await linesOf(files, (await store.byId(late.id))?.errorFileId)).map((l) => l.error?.code)).toEqual(['batch_expired', 'batch_expired']);
      for (const b of running) expect((await store.byId(b.id))?.status).toBe('in_progress');
      release.open();
      await until(async () => (await store.active()).length === 0, 'the four batches to complete');
    } finally {
      release.open();
      await runner.close();
    }
  });
});

describe("BatchRunner: a batch's app", () => {
  it("is sent with each line when a header can carry it; a key's own app outside Latin-1 is left to the line's key", async () => {
    const store = new MemoryBatchStore();
    const files = new MemoryFileStore();
    const calls: OwnApiRequest[] = [];
    const api = async (request: OwnApiRequest): Promise<OwnApiResponse> => {
      // As undici (and fetch) take them: a value outside Latin-1 throws, and the line would never run.
      new Headers(request.headers);
      calls.push(request);
      return answer();
    };
    const runner = new BatchRunner(batchesSchema.parse({ enabled: true, pollMs: 50, concurrency: 1 }), store, files, api, new InternalCallCredential(), LOGGER);
    const plain = batchOf(1, { app: 'nightly-eval' });
    const wide = batchOf(1, { app: 'chat\u2615' });
    await store.create(plain, inputOf(1));
    await store.create(wide, inputOf(1));
    runner.start();
    try {
      await until(async () => (await store.byId(plain.id))?.status === 'completed' && (await store.byId(wide.id))?.status === 'completed', 'both batches to complete');
    } finally {
      await runner.close();
    }
    expect(await store.byId(wide.id)).toMatchObject({ requestCounts: { total: 1, completed: 1, failed: 0 } });
    const sent = (id: string) => calls.find((c) => c.headers['x-openrouter-tags']?.startsWith(`batch=${id}`))?.headers;
    expect(sent(plain.id)?.['x-openrouter-app']).toBe('nightly-eval');
    expect(sent(wide.id)).toBeDefined();
    expect(sent(wide.id)).not.toHaveProperty('x-openrouter-app');
  });
});

describe('batchTagsHeader', () => {
  const id = randomId('batch_');

  it('puts the batch first: the receiving side reads batch=<id> however many and however long the request’s tags are', () => {
    const tags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`tag${i}`, 'v'.repeat(128)]));
    const header = batchTagsHeader(id, tags);
    expect(header.startsWith(`batch=${id},`)).toBe(true);
    expect(header.length).toBeLessThanOrEqual(256);
    const read = trafficAttributes({ 'x-openrouter-tags': header }, undefined).tags ?? {};
    expect(read['batch']).toBe(id);
    // Whole pairs only: each tag read is as it was sent.
    for (const [name, value] of Object.entries(read)) if (name !== 'batch') expect(value).toBe(tags[name]);
  });

  it('keeps 15 of the request’s tags at most, next to the batch’s, and never lets the request’s own batch tag or a comma change it', () => {
    const tags = { batch: 'not-this-one', odd: 'a,batch=forged', ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`t${i}`, `${i}`])) };
    const read = trafficAttributes({ 'x-openrouter-tags': batchTagsHeader(id, tags) }, undefined).tags ?? {};
    expect(read['batch']).toBe(id);
    expect(Object.keys(read)).toHaveLength(16);
    expect(read).not.toHaveProperty('odd');
    expect(batchTagsHeader(id, {})).toBe(`batch=${id}`);
  });
});

describe('BatchRunner: a replica whose claim lapsed while its lines ran', () => {
  it('changes nothing of the batch another replica has ended meanwhile: neither its counts and usage, nor its results (gone with it)', async () => {
    const store = new (class extends MemoryBatchStore {
      stalled = false;
      refused = 0;
      // The replica stalled past its lease: its claim is no longer its own.
      override async renew(id: string, holder: string, ms: number): Promise<boolean> {
        if (!this.stalled) return super.renew(id, holder, ms);
        this.refused++;
        return false;
      }
    })();
    const files = new MemoryFileStore();
    const { api, answers, calls } = heldApi();
    const batch = batchOf(2);
    await store.create(batch, inputOf(2));
    const runner = new BatchRunner(batchesSchema.parse({ enabled: true, pollMs: 50, leaseMs: 1_000 }), store, files, api, new InternalCallCredential(), LOGGER);
    runner.start();
    const final = { status: 'completed', requestCounts: { total: 2, completed: 1, failed: 1 }, usage: { input: 5, cached: 0, output: 7, reasoning: 0 } } as const;
    try {
      await until(() => calls() === 2, 'both lines to be in flight');
      store.stalled = true;
      await until(() => store.refused > 0, 'the claim to be found lost');
      // Another replica took the batch over, ran its lines and ended it.
      await store.update(batch.id, (b) => ({ ...b, ...final, completedAt: Math.floor(Date.now() / 1000) }));
      await store.finish(batch.id);
    } finally {
      answers.open();
      // Waits for the run to end: its lines' answers kept (or not) and its progress written (or not).
      await runner.close(60_000);
    }
    expect(calls()).toBe(2);
    expect(await store.byId(batch.id)).toMatchObject(final);
    expect(await store.results(batch.id)).toEqual(new Map());
  });
});

describe('BatchRunner: a cancel while a batch is finalized', () => {
  it('is either refused (409: the batch is finalizing) or ends the batch cancelled, never acknowledged and ignored', async () => {
    const now = (): number => Math.floor(Date.now() / 1000);
    const store = new (class extends MemoryBatchStore {
      resultReads = 0;
      armed = false;
      acknowledged: boolean | undefined;
      override async results(id: string): Promise<Map<number, string>> {
        // The second read is the finalizing one (the first, the run's).
        if (++this.resultReads === 2) this.armed = true;
        return super.results(id);
      }
      // The cancel lands just after the finalizing's first read of the batch.
      override async update(id: string, change: (batch: BatchRecord) => BatchRecord | undefined): Promise<BatchRecord | undefined> {
        const stored = await super.update(id, change);
        if (this.armed) {
          this.armed = false;
          try {
            this.acknowledged = (await cancelBatch(this, id, now()))?.status === 'cancelling';
          } catch {
            this.acknowledged = false;
          }
        }
        return stored;
      }
    })();
    const files = new MemoryFileStore();
    const batch = batchOf(2);
    await store.create(batch, inputOf(2));
    const runner = new BatchRunner(batchesSchema.parse({ enabled: true, pollMs: 50 }), store, files, async () => answer(), new InternalCallCredential(), LOGGER);
    runner.start();
    try {
      await until(async () => (await store.active()).length === 0, 'the batch to end');
    } finally {
      await runner.close();
    }
    const ended = await store.byId(batch.id);
    expect(store.acknowledged).toBeDefined();
    if (store.acknowledged) expect(ended).toMatchObject({ status: 'cancelled', cancellingAt: expect.any(Number) });
    else {
      expect(ended).toMatchObject({ status: 'completed', requestCounts: { total: 2, completed: 2, failed: 0 } });
      expect(ended?.cancellingAt).toBeUndefined();
    }
  });
});

describe('BatchRunner: the memory a running batch holds', () => {
  it('keeps neither its input (up to 100 MiB) nor the results read at its start (up to 256 MiB) while its lines run', async () => {
    // What is no longer reachable goes at the next collection: asked for here, rather than waited for.
    setFlagsFromString('--expose-gc');
    const collect = runInNewContext('gc') as () => void;
    const store = new (class extends MemoryBatchStore {
      inputRead: WeakRef<Buffer> | undefined;
      resultsRead: WeakRef<Map<number, string>> | undefined;
      // A copy each time, as Redis reads it: this store keeps its own.
      override async input(id: string): Promise<Buffer | undefined> {
        const stored = await super.input(id);
        const input = stored && Buffer.from(stored);
        if (input) this.inputRead ??= new WeakRef(input);
        return input;
      }
      override async results(id: string): Promise<Map<number, string>> {
        const results = await super.results(id);
        this.resultsRead ??= new WeakRef(results);
        return results;
      }
    })();
    const { api, answers, calls } = heldApi();
    const batch = batchOf(2);
    await store.create(batch, inputOf(2));
    // Its first line ran on a replica that stopped: this one runs the second.
    await store.saveResult(batch.id, 0, JSON.stringify({ ok: true, line: '{"custom_id":"r0"}' }));
    const runner = new BatchRunner(batchesSchema.parse({ enabled: true, pollMs: 50 }), store, new MemoryFileStore(), api, new InternalCallCredential(), LOGGER);
    runner.start();
    try {
      await until(() => calls() === 1, 'its second line to be in flight');
      await until(() => {
        collect();
        return store.inputRead?.deref() === undefined && store.resultsRead?.deref() === undefined;
      }, 'the input and the results read to be collected');
      answers.open();
      await until(async () => (await store.byId(batch.id))?.status === 'completed', 'the batch to complete');
    } finally {
      answers.open();
      await runner.close();
    }
    expect(store.inputRead).toBeDefined();
    expect(store.resultsRead).toBeDefined();
    expect((await store.byId(batch.id))?.requestCounts).toEqual({ total: 2, completed: 2, failed: 0 });
  });
});
