import { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { countEmbeddingInputTokens, embeddingResponse, embedInCalls, reportedTokens } from './embedding-response';
import { countTextTokens } from './text-tokens';

const request = (over: Partial<chatv1.EmbeddingRequest> = {}): chatv1.EmbeddingRequest => ({ model: 'public-embed', texts: ['hello world', 'hi'], tokenInputs: [], dimensions: undefined, user: undefined, extraJson: '', ...over });
const vector = (length: number): Buffer => Buffer.alloc(length * 4);

describe('embeddingResponse', () => {
  it('numbers the vectors in input order and keeps the usage the provider reported', () => {
    const answer = embeddingResponse(request(), { model: 'up', vectors: [vector(2), vector(2)], reportedTokens: 9 }, 'p');
    expect(answer.data.map((d) => d.index)).toEqual([0, 1]);
    expect(answer.model).toBe('up');
    expect(answer.usage).toEqual({ promptTokens: 9, completionTokens: 0, totalTokens: 9, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false });
  });

  it.each([undefined, 0])('counts the input itself, estimated, when the provider reported %s tokens', (reported) => {
    const answer = embeddingResponse(request(), { model: 'up', vectors: [vector(2), vector(2)], reportedTokens: reported }, 'p');
    expect(answer.usage).toMatchObject({ promptTokens: countEmbeddingInputTokens(request()), estimated: true });
    expect(answer.usage?.promptTokens).toBeGreaterThan(0);
  });

  it('counts token-id inputs exactly', () => {
    expect(countEmbeddingInputTokens(request({ texts: [], tokenInputs: [{ ids: [1, 2, 3] }, { ids: [4] }] }))).toBe(4);
  });

  it('refuses vectors of another length than `dimensions` asked as the parameter being unsupported', () => {
    expect(() => embeddingResponse(request({ dimensions: 2 }), { model: 'up', vectors: [vector(2), vector(3)], reportedTokens: 1 }, 'p')).toThrow(
      expect.objectContaining({ kind: 'bad_request', param: 'dimensions', code: 'unsupported_parameter', message: expect.stringContaining('vectors of 3 dimensions for 2') }),
    );
  });

  it('refuses an answer with another number of vectors than inputs as malformed', () => {
    expect(() => embeddingResponse(request(), { model: 'up', vectors: [vector(2)], reportedTokens: 1 }, 'p')).toThrow(expect.objectContaining({ kind: 'upstream_error', message: expect.stringContaining('1 vectors for 2 inputs') }));
  });
});

describe('reportedTokens', () => {
  it('adds the counts of every call, or gives none when one call reported none', () => {
    expect(reportedTokens([2, 3])).toBe(5);
    expect(reportedTokens([2, undefined])).toBeUndefined();
  });
});

describe('embedInCalls', () => {
  const request = chatv1.EmbeddingRequest.fromPartial({ model: 'm', texts: ['one two three', 'four', 'five six'] });
  const calls = [
    { body: 'a', inputs: 2 },
    { body: 'b', inputs: 1 },
  ];

  it('rethrows a failure after some calls answered with their tokens billed, not retryable', async () => {
    const failure = await embedInCalls(
      request,
      calls,
      1,
      async (body) => {
        if (body === 'b') throw new GatewayError('upstream_error', 'boom', { provider: 'p' });
        return { tokens: undefined };
      },
      (a) => a.tokens,
    ).then(
      () => undefined,
      (e: unknown) => e as GatewayError,
    );
    expect(failure).toMatchObject({ kind: 'upstream_error', message: 'boom', provider: 'p', retryable: false });
    expect(failure?.billed).toEqual({ promptTokens: countTextTokens('one two three') + countTextTokens('four'), estimated: true });
  });

  it('bills what the answered calls reported, once the calls in flight have ended', async () => {
    let release: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const failure = embedInCalls(
      request,
      calls,
      2,
      async (body) => {
        if (body === 'b') throw new GatewayError('timeout', 'late');
        await slow;
        return { tokens: 7 };
      },
      (a) => a.tokens,
    ).then(
      () => undefined,
      (e: unknown) => e as GatewayError,
    );
    // Answers on a later turn than the failure: it is billed only if the failure waits for it.
    setImmediate(release);
    expect((await failure)?.billed).toEqual({ promptTokens: 7, estimated: false });
  });

  it('rethrows the failure as it was when nothing answered', async () => {
    const error = new GatewayError('upstream_error', 'first');
    await expect(embedInCalls(request, calls, 1, () => Promise.reject(error), () => 1)).rejects.toBe(error);
  });
});
