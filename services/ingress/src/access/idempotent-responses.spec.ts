import { GatewayError } from '@openrouter/errors';
import { MemoryIdempotencyStore, type IdempotencyStore } from './idempotency.store';
import { IdempotentResponses, type Attempt } from './idempotent-responses';

const SECRET = 'idempotency-spec-secret';
interface Answer {
  status: number;
  body: unknown;
}
const issued: Answer = { status: 201, body: { object: 'api_key', id: 'key_1', key: 'sk-or-v1-the-secret-part-000000000000' } };

function first(attempt: Attempt<Answer>) {
  if (attempt.kind !== 'first') throw new Error(`expected the first attempt, got a ${attempt.kind}`);
  return attempt;
}

/** A store that keeps every value written, to see what reaches it. */
class RecordingStore extends MemoryIdempotencyStore {
  readonly written: string[] = [];
  override async claim(id: string, claim: string, leaseMs: number) {
    this.written.push(id, claim);
    return super.claim(id, claim, leaseMs);
  }
  override async complete(id: string, claim: string, answer: string, keepMs: number) {
    this.written.push(answer);
    return super.complete(id, claim, answer, keepMs);
  }
}

describe('IdempotentResponses', () => {
  it('replays the first answer to the same caller, key and request', async () => {
    const responses = new IdempotentResponses<Answer>(new MemoryIdempotencyStore(), SECRET);
    await first(await responses.begin('ops', 'retry-1', 'fp')).complete(issued);
    await expect(responses.begin('ops', 'retry-1', 'fp')).resolves.toEqual({ kind: 'replay', answer: issued });
    await expect(responses.begin('ops', 'retry-1', 'fp')).resolves.toEqual({ kind: 'replay', answer: issued });
  });

  it('refuses the key with another request (422 idempotency_key_reused), and while the first is in progress (409 idempotency_key_in_use)', async () => {
    const responses = new IdempotentResponses<Answer>(new MemoryIdempotencyStore(), SECRET);
    const attempt = first(await responses.begin('ops', 'k', 'fp'));
    await expect(responses.begin('ops', 'k', 'fp')).rejects.toMatchObject({ kind: 'conflict', code: 'idempotency_key_in_use' });
    await expect(responses.begin('ops', 'k', 'other-body')).rejects.toMatchObject({ kind: 'bad_request', code: 'idempotency_key_reused' });
    await attempt.complete(issued);
    await expect(responses.begin('ops', 'k', 'other-body')).rejects.toMatchObject({ kind: 'bad_request', code: 'idempotency_key_reused' });
  });

  it('frees the key of a request that failed: the retry runs again', async () => {
    const responses = new IdempotentResponses<Answer>(new MemoryIdempotencyStore(), SECRET);
    await first(await responses.begin('ops', 'k', 'fp')).release();
    expect((await responses.begin('ops', 'k', 'fp')).kind).toBe('first');
  });

  it("keeps each caller's keys apart", async () => {
    const responses = new IdempotentResponses<Answer>(new MemoryIdempotencyStore(), SECRET);
    await first(await responses.begin('ops', 'k', 'fp')).complete(issued);
    expect((await responses.begin('oidc:alice@example.com', 'k', 'fp')).kind).toBe('first');
  });

  it('stores neither the key nor the answer in the clear, and cannot open it under another secret', async () => {
    const store = new RecordingStore();
    const responses = new IdempotentResponses<Answer>(store, SECRET);
    await first(await responses.begin('ops', 'visible-idempotency-key', 'fp')).complete(issued);
    const everything = store.written.join('\n');
    expect(everything).not.toContain('the-secret-part');
    expect(everything).not.toContain('visible-idempotency-key');
    expect(everything).not.toContain('key_1');
    const rotated = new IdempotentResponses<Answer>(store, 'another-secret');
    // Another secret derives another record id: nothing found, a first attempt.
    expect((await rotated.begin('ops', 'visible-idempotency-key', 'fp')).kind).toBe('first');
  });

  it('forgets an answer after its time, and a claim after its lease', async () => {
    let now = 1_000;
    const responses = new IdempotentResponses<Answer>(new MemoryIdempotencyStore(() => now), SECRET, { keepMs: 100, leaseMs: 10 });
    first(await responses.begin('ops', 'abandoned', 'fp'));
    await first(await responses.begin('ops', 'done', 'fp')).complete(issued);
    now += 50;
    expect((await responses.begin('ops', 'abandoned', 'fp')).kind).toBe('first');
    expect((await responses.begin('ops', 'done', 'fp')).kind).toBe('replay');
    now += 100;
    expect((await responses.begin('ops', 'done', 'fp')).kind).toBe('first');
  });

  it('answers 503 idempotency_store_unavailable when the store cannot be reached, and still answers a request whose answer could not be stored', async () => {
    const failures: unknown[] = [];
    const down: IdempotencyStore = {
      claim: () => Promise.reject(new Error('ECONNREFUSED')),
      complete: () => Promise.reject(new Error('ECONNREFUSED')),
      release: () => Promise.reject(new Error('ECONNREFUSED')),
    };
    const unreachable = new IdempotentResponses<Answer>(down, SECRET);
    await expect(unreachable.begin('ops', 'k', 'fp')).rejects.toMatchObject({ kind: 'unavailable', code: 'idempotency_store_unavailable' });

    const memory = new MemoryIdempotencyStore();
    const flaky: IdempotencyStore = { claim: (...a) => memory.claim(...a), complete: down.complete, release: down.release };
    const responses = new IdempotentResponses<Answer>(flaky, SECRET, { onStoreFailure: (e) => failures.push(e) });
    await expect(first(await responses.begin('ops', 'k', 'fp')).complete(issued)).resolves.toBeUndefined();
    expect(failures).toHaveLength(1);
    // Still claimed until the lease ends: a retry is told it is in progress, never issued a second key.
    await expect(responses.begin('ops', 'k', 'fp')).rejects.toBeInstanceOf(GatewayError);
  });
});
