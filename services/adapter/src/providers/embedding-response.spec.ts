import type { chatv1 } from '@openrouter/contracts';
import { countEmbeddingInputTokens, embeddingResponse, reportedTokens } from './embedding-response';

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
