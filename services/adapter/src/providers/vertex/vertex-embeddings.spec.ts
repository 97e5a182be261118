import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { embeddingResponse, reportedTokens } from '../embedding-response';
import { batchLimit, parsePredictResponse, predictBatches } from './vertex-embeddings';

const request = (texts: string[], more: Partial<chatv1.EmbeddingRequest> = {}): chatv1.EmbeddingRequest => ({ model: 'm', texts, tokenInputs: [], dimensions: undefined, user: undefined, extraJson: '', ...more });
const prediction = (values: number[], tokenCount?: number) => ({ embeddings: { values, ...(tokenCount === undefined ? {} : { statistics: { token_count: tokenCount, truncated: false } }) } });

describe('Vertex :predict embeddings', () => {
  it('takes 250 texts per call for the text-embedding models and one for Gemini’s', () => {
    expect(batchLimit('text-embedding-005')).toBe(250);
    expect(batchLimit('text-multilingual-embedding-002')).toBe(250);
    expect(batchLimit('gemini-embedding-001')).toBe(1);
    const texts = Array.from({ length: 251 }, (_, i) => `t${i}`);
    expect(predictBatches(request(texts), 'text-embedding-005').map((b) => [b.first, b.count])).toEqual([
      [0, 250],
      [250, 1],
    ]);
    expect(predictBatches(request(['a', 'b']), 'gemini-embedding-001').map((b) => b.body)).toEqual([{ instances: [{ content: 'a' }] }, { instances: [{ content: 'b' }] }]);
  });

  it('starts a new call before the texts of one would pass the token budget', () => {
    const long = 'word '.repeat(9_000);
    expect(predictBatches(request([long, long, 'short']), 'text-embedding-005').map((b) => b.count)).toEqual([1, 2]);
  });

  it('sends dimensions as outputDimensionality and a task_type extra on every instance', () => {
    const [batch] = predictBatches(request(['a', 'b'], { dimensions: 128, extraJson: '{"task_type":"CLUSTERING","other":1}' }), 'text-embedding-005');
    expect(batch?.body).toEqual({ instances: [{ content: 'a', task_type: 'CLUSTERING' }, { content: 'b', task_type: 'CLUSTERING' }], parameters: { outputDimensionality: 128 } });
  });

  it('refuses token-id input and an unknown task type', () => {
    expect(() => predictBatches(request([], { tokenInputs: [{ ids: [1] }] }), 'text-embedding-005')).toThrow(GatewayError);
    expect(() => predictBatches(request(['a'], { extraJson: '{"task_type":"retrieval"}' }), 'text-embedding-005')).toThrow(/task_type/);
  });

  it('reads vectors as float32 (unit length when truncated) and sums Vertex’s token counts', () => {
    const answer = parsePredictResponse({ predictions: [prediction([3, 4], 2), prediction([0, 2], 5)] }, 2, 'vertex', true);
    expect(answer.tokens).toBe(7);
    const first = answer.vectors[0] ?? Buffer.alloc(8);
    expect([first.readFloatLE(0), first.readFloatLE(4)]).toEqual([expect.closeTo(0.6, 6), expect.closeTo(0.8, 6)]);
    const response = embeddingResponse(request(['a', 'b']), { model: 'text-embedding-005', vectors: answer.vectors, reportedTokens: reportedTokens([answer.tokens]) }, 'vertex');
    expect(response.usage).toMatchObject({ promptTokens: 7, totalTokens: 7, estimated: false });
    expect(response.data.map((d) => d.index)).toEqual([0, 1]);
  });

  it('estimates usage when a prediction carries no statistics, and refuses a wrong number of vectors', () => {
    const answer = parsePredictResponse({ predictions: [prediction([1])] }, 1, 'vertex', false);
    expect(answer.tokens).toBeUndefined();
    expect(embeddingResponse(request(['hello world']), { model: 'm', vectors: answer.vectors, reportedTokens: reportedTokens([answer.tokens]) }, 'vertex').usage).toMatchObject({ estimated: true });
    expect(() => parsePredictResponse({ predictions: [] }, 1, 'vertex', false)).toThrow('The provider "vertex" returned a malformed embedding response (0 vectors for 1 inputs).');
    expect(() => parsePredictResponse({ embeddings: [] }, 1, 'vertex', false)).toThrow(GatewayError);
  });
});
