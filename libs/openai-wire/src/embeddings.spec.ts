import { errorOf } from './gateway-error.testing';
import { chatv1 } from '@openrouter/contracts';
import { parseEmbeddingRequest, parseOpenAIEmbeddingResponse, toOpenAIEmbeddingBody, toOpenAIEmbeddingResponse } from './embeddings';

const f32le = (values: number[]): Buffer => {
  const out = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => out.writeFloatLE(v, i * 4));
  return out;
};

describe('parseEmbeddingRequest', () => {
  it.each([
    ['a string', 'hello', { texts: ['hello'], tokenInputs: [] }],
    ['a list of strings', ['a', 'b'], { texts: ['a', 'b'], tokenInputs: [] }],
    ['a token array', [1, 2, 3], { texts: [], tokenInputs: [{ ids: [1, 2, 3] }] }],
    ['a list of token arrays', [[1], [2, 3]], { texts: [], tokenInputs: [{ ids: [1] }, { ids: [2, 3] }] }],
  ])('reads input as %s', (_name, input, expected) => {
    expect(parseEmbeddingRequest({ model: 'e', input }).request).toMatchObject(expected);
  });

  it('defaults to float and carries dimensions, user and unknown fields', () => {
    const { request, encodingFormat } = parseEmbeddingRequest({ model: 'e', input: 'x', dimensions: 256, user: 'u', input_type: 'query' });
    expect(encodingFormat).toBe('float');
    expect(request).toEqual({ model: 'e', texts: ['x'], tokenInputs: [], dimensions: 256, user: 'u', extraJson: '{"input_type":"query"}' });
    expect(parseEmbeddingRequest({ model: 'e', input: 'x', encoding_format: 'base64' }).encodingFormat).toBe('base64');
    expect(parseEmbeddingRequest({ model: 'e', input: 'x', encoding_format: null }).encodingFormat).toBe('float');
  });

  it.each([
    ['no input', { model: 'e' }, 'input', 'missing_required_parameter'],
    ['an empty string', { model: 'e', input: '' }, 'input', 'invalid_value'],
    ['an empty list', { model: 'e', input: [] }, 'input', 'invalid_value'],
    ['an empty string in the list', { model: 'e', input: ['a', ''] }, 'input', 'invalid_value'],
    ['an empty token array in the list', { model: 'e', input: [[1], []] }, 'input[1]', 'invalid_value'],
    ['a negative token', { model: 'e', input: [1, -2] }, 'input[1]', 'invalid_value'],
    ['more than 2048 strings', { model: 'e', input: Array<string>(2049).fill('a') }, 'input', 'invalid_value'],
    ['more than 2048 token arrays', { model: 'e', input: Array<number[]>(2049).fill([1]) }, 'input', 'invalid_value'],
    ['input of the wrong type', { model: 'e', input: 5 }, 'input', 'invalid_type'],
    ['no model', { input: 'x' }, 'model', 'missing_required_parameter'],
    ['dimensions zero', { model: 'e', input: 'x', dimensions: 0 }, 'dimensions', 'invalid_value'],
    ['an unknown encoding_format', { model: 'e', input: 'x', encoding_format: 'int8' }, 'encoding_format', 'invalid_value'],
  ])('rejects %s with 400', (_name, body, param, code) => {
    expect(errorOf(() => parseEmbeddingRequest(body))).toMatchObject({ kind: 'bad_request', param, code });
  });
});

describe('toOpenAIEmbeddingBody', () => {
  it('always asks for base64 and keeps the rest of the request', () => {
    const { request } = parseEmbeddingRequest({ model: 'public', input: ['a'], dimensions: 8, user: 'u', encoding_format: 'float', truncate: 'END' });
    expect(toOpenAIEmbeddingBody(request, 'text-embedding-3-small')).toEqual({ model: 'text-embedding-3-small', input: ['a'], encoding_format: 'base64', dimensions: 8, user: 'u', truncate: 'END' });
  });

  it("leaves out the provider's dropParams, as on chat, but never the model or the input", () => {
    const { request } = parseEmbeddingRequest({ model: 'public', input: ['a'], user: 'u', truncate: 'END' });
    const body = toOpenAIEmbeddingBody(request, 'up', { dropParams: ['user', 'encoding_format', 'truncate', 'model', 'input'] });
    expect(body).toEqual({ model: 'up', input: ['a'] });
  });

  it('sends token inputs as lists of ids', () => {
    const { request } = parseEmbeddingRequest({ model: 'public', input: [5, 6] });
    expect(toOpenAIEmbeddingBody(request, 'up')['input']).toEqual([[5, 6]]);
  });
});

describe('parseOpenAIEmbeddingResponse', () => {
  const values = [0.1, -2.5, 3.4028234663852886e38, 1e-45, 0];

  it('reads base64 vectors as the same little-endian float32 bytes', () => {
    const bytes = f32le(values);
    const r = parseOpenAIEmbeddingResponse({ object: 'list', model: 'm', data: [{ object: 'embedding', index: 0, embedding: bytes.toString('base64') }], usage: { prompt_tokens: 4, total_tokens: 4 } });
    expect(Buffer.from(r.data[0]?.vectorF32le ?? []).equals(bytes)).toBe(true);
    expect(r.usage).toMatchObject({ promptTokens: 4, totalTokens: 4 });
    expect(r.model).toBe('m');
  });

  it('reads float vectors into the same bytes', () => {
    const r = parseOpenAIEmbeddingResponse({ data: [{ index: 0, embedding: values }, { index: 1, embedding: [1] }] });
    expect(Buffer.from(r.data[0]?.vectorF32le ?? []).equals(f32le(values))).toBe(true);
    expect(r.data[1]?.index).toBe(1);
    expect(r.usage).toBeUndefined();
  });

  it('puts the vectors in input order by their index, whatever order they were listed in', () => {
    const r = parseOpenAIEmbeddingResponse({ data: [{ index: 2, embedding: [2] }, { index: 0, embedding: [0] }, { index: 1, embedding: [1] }] });
    expect(r.data.map((d) => [d.index, Buffer.from(d.vectorF32le).readFloatLE(0)])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
    ]);
  });

  it.each([
    ['an index twice', { data: [{ index: 0, embedding: [1] }, { index: 0, embedding: [2] }] }],
    ['an index past the list', { data: [{ index: 0, embedding: [1] }, { index: 2, embedding: [2] }] }],
    ['no data', { model: 'm' }],
    ['a vector of the wrong length', { data: [{ index: 0, embedding: Buffer.from([1, 2, 3]).toString('base64') }] }],
    ['a non-number value', { data: [{ index: 0, embedding: [1, 'x'] }] }],
    ['no vector', { data: [{ index: 0 }] }],
  ])('rejects %s as an upstream error', (_name, json) => {
    expect(errorOf(() => parseOpenAIEmbeddingResponse(json)).kind).toBe('upstream_error');
  });
});

describe('toOpenAIEmbeddingResponse', () => {
  const bytes = f32le([0.5, -1, 0.1]);
  const response: chatv1.EmbeddingResponse = {
    model: 'upstream',
    data: [{ index: 0, vectorF32le: bytes }],
    usage: { promptTokens: 3, completionTokens: 0, totalTokens: 3, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false },
  };

  it('writes float vectors', () => {
    expect(toOpenAIEmbeddingResponse(response, 'public', 'float')).toEqual({
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.5, -1, Math.fround(0.1)] }],
      model: 'public',
      usage: { prompt_tokens: 3, total_tokens: 3 },
    });
  });

  it('writes base64 exactly as the bytes OpenAI sent', () => {
    const out = toOpenAIEmbeddingResponse(response, 'public', 'base64');
    expect((out['data'] as Array<{ embedding: string }>)[0]?.embedding).toBe(bytes.toString('base64'));
  });

  it('reads vectors that are not 4-byte aligned in memory (a protobuf decode slices its buffer)', () => {
    const backing = Buffer.alloc(bytes.length + 1);
    bytes.copy(backing, 1);
    const unaligned = backing.subarray(1);
    const out = toOpenAIEmbeddingResponse({ ...response, data: [{ index: 0, vectorF32le: unaligned }] }, 'p', 'float');
    expect((out['data'] as Array<{ embedding: number[] }>)[0]?.embedding).toEqual([0.5, -1, Math.fround(0.1)]);
  });

  it('keeps the bytes exact across the gRPC encoding', () => {
    const decoded = chatv1.EmbeddingResponse.decode(chatv1.EmbeddingResponse.encode(response).finish());
    expect(toOpenAIEmbeddingResponse(decoded, 'p', 'base64')).toEqual(toOpenAIEmbeddingResponse(response, 'p', 'base64'));
  });
});
