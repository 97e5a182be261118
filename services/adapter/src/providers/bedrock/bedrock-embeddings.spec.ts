import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { toOpenAIEmbeddingResponse } from '@openrouter/openai-wire';
import { embeddingResponse } from '../embedding-response';
import { baseModelId, cohereBodies, embeddingFamily, parseCohereResponse, parseTitanResponse, titanBodies } from './bedrock-embeddings';
import { ImageSource } from '../image-source';
import { createBedrockAdapter } from './bedrock.adapter';

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
    const wire = toOpenAIEmbeddingResponse(embeddingResponse(request({ texts: ['a', 'b', 'c'] }), { model: 'm', vectors: [titan.vector, ...cohere], reportedTokens: 6 }, 'b'), 'public', 'float');
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

describe('Bedrock embeddings whose answers carry no token count', () => {
  let server: Server;
  let base: string;
  const images = new ImageSource();

  beforeAll(async () => {
    // Titan's body without inputTextTokenCount, Cohere's, and neither with x-amzn-bedrock-input-token-count.
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        const body = JSON.parse(text) as { texts?: string[] };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body.texts ? { id: 'x', texts: body.texts, embeddings: { float: body.texts.map(() => [0.6, 0.8]) }, response_type: 'embeddings_by_type' } : { embedding: [0.6, 0.8] }));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await images.close();
    server.close();
  });

  it.each(['amazon.titan-embed-text-v2:0', 'cohere.embed-english-v3'])('%s is billed on the gateway’s own count, marked estimated', async (model) => {
    const adapter = createBedrockAdapter('b', { type: 'bedrock', region: 'us-east-1', baseUrl: base, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 's' }, thinking: 'adaptive', claudeModels: [], headers: {}, timeoutMs: 5_000 }, { images });
    try {
      const answer = await adapter.embed({ requestId: 'r', upstreamModel: model, request: request({ texts: ['hello world', 'one more sentence'] }), timeoutMs: 0, signal: new AbortController().signal });
      expect(answer.data).toHaveLength(2);
      expect(answer.usage).toMatchObject({ estimated: true });
      expect(answer.usage?.promptTokens).toBeGreaterThan(3);
    } finally {
      await adapter.close();
    }
  });
});
