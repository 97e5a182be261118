import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { toOpenAIEmbeddingResponse } from '@openrouter/openai-wire';
import { baseModelId, cohereBodies, embeddingFamily, embeddingResponse, parseCohereResponse, parseTitanResponse, titanBodies } from './bedrock-embeddings';

const request = (over: Partial<chatv1.EmbeddingRequest> = {}): chatv1.EmbeddingRequest => ({ model: 'e', texts: ['a', 'b'], tokenInputs: [], dimensions: undefined, user: undefined, extraJson: '', ...over });

function thrown(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error('expected a GatewayError');
}

describe('Bedrock embeddings', () => {
  it('picks the family by model id, including ARNs and cross-region profiles', () => {
    expect(embeddingFamily('amazon.titan-embed-text-v2:0')).toBe('titan');
    expect(embeddingFamily('us.cohere.embed-v4:0')).toBe('cohere');
    expect(embeddingFamily('arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-english-v3')).toBe('cohere');
    expect(baseModelId('eu.amazon.titan-embed-text-v2:0')).toBe('amazon.titan-embed-text-v2:0');
    expect(thrown(() => embeddingFamily('anthropic.claude-3-haiku-20240307-v1:0'))).toMatchObject({ kind: 'bad_request', param: 'model' });
  });

  it('builds one Titan v2 body per text with dimensions and normalisation', () => {
    expect(titanBodies(request({ dimensions: 512 }), 'amazon.titan-embed-text-v2:0')).toEqual([
      { inputText: 'a', dimensions: 512, normalize: true },
      { inputText: 'b', dimensions: 512, normalize: true },
    ]);
    expect(titanBodies(request({ texts: ['x'], extraJson: '{"normalize":false}' }), 'amazon.titan-embed-text-v2:0')).toEqual([{ inputText: 'x', normalize: false }]);
    expect(titanBodies(request({ texts: ['x'] }), 'amazon.titan-embed-text-v1')).toEqual([{ inputText: 'x' }]);
  });

  it('refuses dimensions Titan cannot produce and token-id input', () => {
    expect(thrown(() => titanBodies(request({ dimensions: 300 }), 'amazon.titan-embed-text-v2:0'))).toMatchObject({ param: 'dimensions' });
    expect(thrown(() => titanBodies(request({ dimensions: 256 }), 'amazon.titan-embed-text-v1'))).toMatchObject({ param: 'dimensions' });
    expect(thrown(() => titanBodies(request({ texts: [], tokenInputs: [{ ids: [1, 2] }] }), 'amazon.titan-embed-text-v2:0'))).toMatchObject({ param: 'input' });
  });

  it('batches Cohere texts by 96 with input_type, embedding_types and output_dimension', () => {
    const texts = Array.from({ length: 100 }, (_, i) => `t${i}`);
    const bodies = cohereBodies(request({ texts, dimensions: 256, extraJson: '{"input_type":"classification","truncate":"END"}' }), 'cohere.embed-v4:0');
    expect(bodies.map((b) => (b['texts'] as string[]).length)).toEqual([96, 4]);
    expect(bodies[0]).toMatchObject({ input_type: 'classification', truncate: 'END', embedding_types: ['float'], output_dimension: 256 });
    expect(cohereBodies(request(), 'cohere.embed-english-v3')[0]).toEqual({ texts: ['a', 'b'], input_type: 'search_document', embedding_types: ['float'] });
    expect(cohereBodies(request({ dimensions: 1024 }), 'cohere.embed-english-v3')[0]).not.toHaveProperty('output_dimension');
    expect(thrown(() => cohereBodies(request({ dimensions: 512 }), 'cohere.embed-multilingual-v3'))).toMatchObject({ param: 'dimensions' });
    expect(thrown(() => cohereBodies(request({ extraJson: '{"input_type":"poetry"}' }), 'cohere.embed-v4:0'))).toMatchObject({ param: 'input_type' });
  });

  it('reads Titan and Cohere answers into little-endian float32 vectors with usage', () => {
    const titan = parseTitanResponse({ embedding: [0.5, -0.25], inputTextTokenCount: 4, embeddingsByType: { float: [0.5, -0.25] } }, 99, 'b');
    expect(titan.tokens).toBe(4);
    expect(parseTitanResponse({ embedding: [1] }, 7, 'b').tokens).toBe(7);
    const cohere = parseCohereResponse({ id: 'x', texts: ['a', 'b'], embeddings: { float: [[1, 2], [3, 4]] }, response_type: 'embeddings_by_type' }, 2, 'b');
    const plain = parseCohereResponse({ id: 'x', texts: ['a', 'b'], embeddings: [[1, 2], [3, 4]], response_type: 'embeddings_floats' }, 2, 'b');
    expect(plain).toEqual(cohere);
    const wire = toOpenAIEmbeddingResponse(embeddingResponse('m', [titan.vector, ...cohere], 6), 'public', 'float');
    expect(wire).toEqual({
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: [0.5, -0.25] },
        { object: 'embedding', index: 1, embedding: [1, 2] },
        { object: 'embedding', index: 2, embedding: [3, 4] },
      ],
      model: 'public',
      usage: { prompt_tokens: 6, total_tokens: 6 },
    });
  });

  it('rejects malformed embedding answers as upstream_error', () => {
    expect(thrown(() => parseTitanResponse({ vector: [] }, undefined, 'b'))).toMatchObject({ kind: 'upstream_error' });
    expect(thrown(() => parseCohereResponse({ embeddings: [[1]] }, 2, 'b'))).toMatchObject({ kind: 'upstream_error' });
  });
});
