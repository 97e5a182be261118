import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseOpenAIUsage } from './chat-response';
import { extraJson, mergeExtra, validate } from './validation';

const tokens = z.array(z.number().int().min(0));
const embeddingBody = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string()).min(1), tokens.min(1), z.array(tokens.min(1)).min(1)]),
  dimensions: z.number().int().min(1).optional(),
  encoding_format: z.enum(['float', 'base64']).optional(),
  user: z.string().optional(),
});
const KEYS = new Set(Object.keys(embeddingBody.shape));

export function parseEmbeddingRequest(body: unknown): { request: chatv1.EmbeddingRequest; encodingFormat: 'float' | 'base64' } {
  const b = validate(embeddingBody, body);
  const input = b.input;
  if (input === '' || (Array.isArray(input) && input.some((v) => v === ''))) throw new GatewayError('bad_request', "'input' must not be empty.", { param: 'input', code: 'invalid_value' });
  const list: unknown[] = typeof input === 'string' ? [input] : input;
  const texts = list.every((v) => typeof v === 'string') ? (list as string[]) : [];
  const tokenInputs = texts.length > 0 ? [] : list.every((v) => typeof v === 'number') ? [{ ids: list as number[] }] : (list as number[][]).map((ids) => ({ ids }));
  return {
    request: { model: b.model, texts, tokenInputs, dimensions: b.dimensions, user: b.user, extraJson: extraJson(b, KEYS) },
    encodingFormat: b.encoding_format ?? 'float',
  };
}

export function toOpenAIEmbeddingBody(r: chatv1.EmbeddingRequest, upstreamModel: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    model: upstreamModel,
    input: r.texts.length > 0 ? r.texts : r.tokenInputs.map((t) => t.ids),
    encoding_format: 'base64',
  };
  if (r.dimensions !== undefined) out['dimensions'] = r.dimensions;
  if (r.user !== undefined) out['user'] = r.user;
  return mergeExtra(out, r.extraJson);
}

function toBytes(embedding: unknown): Buffer {
  if (typeof embedding === 'string') return Buffer.from(embedding, 'base64');
  if (Array.isArray(embedding)) {
    const out = Buffer.allocUnsafe(embedding.length * 4);
    embedding.forEach((v, i) => out.writeFloatLE(Number(v), i * 4));
    return out;
  }
  throw new GatewayError('upstream_error', 'The provider returned a malformed embedding.');
}

export function parseOpenAIEmbeddingResponse(json: unknown): chatv1.EmbeddingResponse {
  const r = json as { model?: unknown; data?: unknown; usage?: unknown };
  if (typeof json !== 'object' || json === null || !Array.isArray(r.data)) throw new GatewayError('upstream_error', 'The provider returned malformed embeddings.');
  return {
    model: typeof r.model === 'string' ? r.model : '',
    data: (r.data as Array<{ index?: unknown; embedding?: unknown }>).map((d, i) => ({ index: typeof d.index === 'number' ? d.index : i, vectorF32le: toBytes(d.embedding) })),
    usage: parseOpenAIUsage(r.usage) ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true },
  };
}

function toFloats(bytes: Uint8Array): number[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<number>(buf.length >> 2);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

export function toOpenAIEmbeddingResponse(r: chatv1.EmbeddingResponse, model: string, format: 'float' | 'base64'): Record<string, unknown> {
  return {
    object: 'list',
    data: r.data.map((d) => ({ object: 'embedding', index: d.index, embedding: format === 'base64' ? Buffer.from(d.vectorF32le).toString('base64') : toFloats(d.vectorF32le) })),
    model,
    usage: { prompt_tokens: r.usage?.promptTokens ?? 0, total_tokens: r.usage?.totalTokens ?? 0 },
  };
}
