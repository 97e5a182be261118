import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { malformed } from './gemini-response';

/** batchEmbedContents takes at most this many requests per call. */
export const EMBED_BATCH = 100;

export interface GeminiEmbedRequest {
  model: string;
  content: { parts: { text: string }[] };
  outputDimensionality?: number;
}

export interface GeminiBatchEmbedBody {
  requests: GeminiEmbedRequest[];
}

const batchEmbedResponse = z.looseObject({ embeddings: z.array(z.looseObject({ values: z.array(z.number()) })) });

/**
 * The canonical request as batchEmbedContents bodies of at most EMBED_BATCH texts each.
 * Gemini embeds text only; token-id input is refused, `user` is dropped.
 */
export function batchEmbedBodies(r: chatv1.EmbeddingRequest, modelResource: string): GeminiBatchEmbedBody[] {
  if (r.tokenInputs.length > 0) throw new GatewayError('bad_request', 'This model embeds text only; token-id input is not supported.', { param: 'input', code: 'unsupported_parameter' });
  const model = decodeURIComponent(modelResource);
  const bodies: GeminiBatchEmbedBody[] = [];
  for (let at = 0; at < r.texts.length; at += EMBED_BATCH) {
    bodies.push({
      requests: r.texts.slice(at, at + EMBED_BATCH).map((text) => {
        const request: GeminiEmbedRequest = { model, content: { parts: [{ text }] } };
        if (r.dimensions !== undefined) request.outputDimensionality = r.dimensions;
        return request;
      }),
    });
  }
  return bodies;
}

/**
 * The vectors of one batchEmbedContents answer as little-endian float32 bytes, in input order.
 * With `normalize` (the request sent `outputDimensionality`) each vector is scaled to unit
 * length: Gemini only normalises its full-size vectors, and a truncated one is not unit length,
 * where OpenAI's always are (clients compare them by dot product).
 */
export function parseBatchEmbedResponse(json: unknown, expected: number, provider: string, normalize = false): Buffer[] {
  const parsed = batchEmbedResponse.safeParse(json);
  if (!parsed.success) throw malformed(provider, 'embedding response', parsed.error);
  if (parsed.data.embeddings.length !== expected) throw malformed(provider, `embedding response (${parsed.data.embeddings.length} vectors for ${expected} inputs)`);
  return parsed.data.embeddings.map(({ values }) => {
    const scale = normalize ? inverseNorm(values) : 1;
    const bytes = Buffer.allocUnsafe(values.length * 4);
    for (let i = 0; i < values.length; i++) bytes.writeFloatLE((values[i] ?? 0) * scale, i * 4);
    return bytes;
  });
}

/** 1 / the vector's L2 norm; 1 for a zero vector, which has no direction to keep. */
function inverseNorm(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v * v;
  return sum > 0 ? 1 / Math.sqrt(sum) : 1;
}
