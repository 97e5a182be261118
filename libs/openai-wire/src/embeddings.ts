import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseOpenAIUsage } from './chat-response';
import { badRequest, extraJson, isObject, type JsonObject, mergeExtra, modelName, opt, validate } from './validation';

export type EmbeddingEncoding = 'float' | 'base64';

const UINT32_MAX = 4_294_967_295;
/** OpenAI's limit on the inputs of one embeddings request; each input becomes provider work (a call per input on some). */
export const MAX_EMBEDDING_INPUTS = 2048;
const tokenIds = z.array(z.int().min(0).max(UINT32_MAX)).min(1);

const embeddingBody = z.looseObject({
  model: modelName,
  input: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)]),
  dimensions: z.int().min(1).max(UINT32_MAX).nullish(),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  user: z.string().nullish(),
});
const EMBEDDING_KEYS: ReadonlySet<string> = new Set(Object.keys(embeddingBody.shape));

/** A client's embeddings body as the canonical request, plus the encoding the client wants back. */
export function parseEmbeddingRequest(body: unknown): { request: chatv1.EmbeddingRequest; encodingFormat: EmbeddingEncoding } {
  const b = validate(embeddingBody, body);
  const input = b.input;
  let texts: string[] = [];
  let tokenInputs: chatv1.TokenIds[] = [];
  if (typeof input === 'string') texts = [input];
  else if (typeof input[0] === 'string') texts = input as string[];
  else if (typeof input[0] === 'number') tokenInputs = [{ ids: input as number[] }];
  else tokenInputs = (input as number[][]).map((ids) => ({ ids }));
  for (const text of texts) if (text === '') throw badRequest("'input' must not contain empty strings.", 'input', 'invalid_value');
  const inputs = texts.length + tokenInputs.length;
  if (inputs > MAX_EMBEDDING_INPUTS) throw badRequest(`'input' holds ${inputs} inputs; at most ${MAX_EMBEDDING_INPUTS} are allowed in one request.`, 'input', 'invalid_value');
  return {
    request: { model: b.model, texts, tokenInputs, dimensions: opt(b.dimensions), user: opt(b.user), extraJson: extraJson(b, EMBEDDING_KEYS) },
    encodingFormat: b.encoding_format ?? 'float',
  };
}

/** The canonical request as an OpenAI-compatible provider's body; vectors are always asked as base64 (compact, exact). */
export function toOpenAIEmbeddingBody(r: chatv1.EmbeddingRequest, upstreamModel: string, options: { dropParams?: readonly string[] } = {}): JsonObject {
  const out: JsonObject = {
    model: upstreamModel,
    input: r.texts.length > 0 ? r.texts : r.tokenInputs.map((t) => t.ids),
    encoding_format: 'base64',
  };
  if (r.dimensions !== undefined) out['dimensions'] = r.dimensions;
  if (r.user !== undefined) out['user'] = r.user;
  const body = mergeExtra(out, r.extraJson);
  // The provider's dropParams, as on chat; `model` and `input` are the request itself. Without
  // `encoding_format` a server answers float arrays, which are read as well.
  for (const key of options.dropParams ?? []) if (key !== 'model' && key !== 'input') delete body[key];
  return body;
}

function malformed(detail: string): GatewayError {
  return new GatewayError('upstream_error', `The provider returned a malformed embedding: ${detail}.`);
}

function vectorBytes(embedding: unknown, position: number): Buffer {
  if (typeof embedding === 'string') {
    const bytes = Buffer.from(embedding, 'base64');
    if (bytes.byteLength % 4 !== 0) throw malformed(`data[${position}] is not a whole number of float32 values`);
    return bytes;
  }
  if (Array.isArray(embedding)) {
    const out = Buffer.allocUnsafe(embedding.length * 4);
    for (let i = 0; i < embedding.length; i++) {
      const v: unknown = embedding[i];
      if (typeof v !== 'number') throw malformed(`data[${position}] holds a non-number`);
      out.writeFloatLE(v, i * 4);
    }
    return out;
  }
  throw malformed(`data[${position}] has no embedding`);
}

/**
 * A provider's embeddings list (base64 or float vectors) as canonical little-endian float32 bytes,
 * in input order: a server may list them in another order, each under its input's `index` (a
 * vector without one stands at its position).
 */
export function parseOpenAIEmbeddingResponse(json: unknown): chatv1.EmbeddingResponse {
  if (!isObject(json) || !Array.isArray(json['data'])) throw malformed('no data list');
  const data: unknown[] = json['data'];
  const out: chatv1.Embedding[] = new Array<chatv1.Embedding>(data.length);
  for (let i = 0; i < data.length; i++) {
    const d: unknown = data[i];
    if (!isObject(d)) throw malformed(`data[${i}] is not an object`);
    const given = d['index'];
    const index = given === undefined || given === null ? i : given;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= data.length || out[index] !== undefined) {
      throw malformed(`data[${i}] has the index ${JSON.stringify(index)} in a list of ${data.length}`);
    }
    out[index] = { index, vectorF32le: vectorBytes(d['embedding'], i) };
  }
  const model = json['model'];
  return { model: typeof model === 'string' ? model : '', data: out, usage: parseOpenAIUsage(json['usage']) };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function floats(bytes: Uint8Array): number[] {
  const length = bytes.byteLength >> 2;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, length));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<number>(length);
  for (let i = 0; i < length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** The canonical embeddings as OpenAI's list object, under the public model id, in the encoding the client asked for. */
export function toOpenAIEmbeddingResponse(r: chatv1.EmbeddingResponse, model: string, format: EmbeddingEncoding): JsonObject {
  return {
    object: 'list',
    data: r.data.map((d) => ({ object: 'embedding', index: d.index, embedding: format === 'base64' ? base64(d.vectorF32le) : floats(d.vectorF32le) })),
    model,
    usage: { prompt_tokens: r.usage?.promptTokens ?? 0, total_tokens: r.usage?.totalTokens ?? 0 },
  };
}
