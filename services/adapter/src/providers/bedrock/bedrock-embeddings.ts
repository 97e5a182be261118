import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';

/** The embedding model families Bedrock serves through InvokeModel, told apart by model id. */
export type EmbeddingFamily = 'titan' | 'cohere';

const TITAN_V2_DIMENSIONS = new Set([256, 512, 1024]);
/** Cohere's InvokeModel takes at most this many texts per call. */
export const COHERE_BATCH = 96;
const COHERE_INPUT_TYPES = new Set(['search_document', 'search_query', 'classification', 'clustering']);

/**
 * The bare model id: ARNs (`…:foundation-model/amazon.titan-embed-text-v2:0`) lose their prefix and
 * cross-region inference profiles (`us.cohere.embed-v4:0`) their geography.
 */
export function baseModelId(modelId: string): string {
  const afterSlash = modelId.startsWith('arn:') ? (modelId.split('/').pop() ?? modelId) : modelId;
  return afterSlash.replace(/^(?:us|eu|apac|us-gov|ca|jp|au|global)\./, '');
}

export function embeddingFamily(modelId: string): EmbeddingFamily {
  const id = baseModelId(modelId);
  if (id.startsWith('amazon.titan-embed-text')) return 'titan';
  if (id.startsWith('cohere.embed')) return 'cohere';
  throw new GatewayError('bad_request', `The model "${modelId}" is not a Bedrock text embedding model this gateway supports (amazon.titan-embed-text-*, cohere.embed-*).`, { param: 'model' });
}

function extraOf(r: chatv1.EmbeddingRequest): Record<string, unknown> {
  if (!r.extraJson) return {};
  const value: unknown = JSON.parse(r.extraJson);
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function checkInput(r: chatv1.EmbeddingRequest): void {
  if (r.tokenInputs.length > 0) throw new GatewayError('bad_request', 'Bedrock embedding models take text; token-id input is not supported.', { param: 'input', code: 'unsupported_parameter' });
}

/** One InvokeModel body per text: Titan embeds a single input per call. */
export function titanBodies(r: chatv1.EmbeddingRequest, modelId: string): Record<string, unknown>[] {
  checkInput(r);
  const v2 = baseModelId(modelId).startsWith('amazon.titan-embed-text-v2');
  if (r.dimensions !== undefined && (!v2 || !TITAN_V2_DIMENSIONS.has(r.dimensions))) {
    throw new GatewayError('bad_request', v2 ? "Titan Text Embeddings v2 supports 'dimensions' of 256, 512 or 1024." : `The model "${modelId}" does not support 'dimensions'.`, {
      param: 'dimensions',
      code: 'unsupported_parameter',
    });
  }
  const normalize = extraOf(r)['normalize'];
  return r.texts.map((inputText) => {
    const body: Record<string, unknown> = { inputText };
    if (v2) {
      if (r.dimensions !== undefined) body['dimensions'] = r.dimensions;
      // OpenAI's vectors are unit length; Titan's are too unless the client says otherwise.
      body['normalize'] = typeof normalize === 'boolean' ? normalize : true;
    }
    return body;
  });
}

/** Cohere bodies in batches of 96; `input_type` (required by Cohere) defaults to search_document. */
export function cohereBodies(r: chatv1.EmbeddingRequest, modelId: string): Record<string, unknown>[] {
  checkInput(r);
  const extra = extraOf(r);
  const inputType = extra['input_type'] ?? 'search_document';
  if (typeof inputType !== 'string' || !COHERE_INPUT_TYPES.has(inputType)) {
    throw new GatewayError('bad_request', `'input_type' must be one of ${[...COHERE_INPUT_TYPES].join(', ')}.`, { param: 'input_type' });
  }
  const v3 = /embed-(english|multilingual)-v3/.test(baseModelId(modelId));
  // v3 models have a fixed 1024-dimension output; later models take output_dimension.
  if (v3 && r.dimensions !== undefined && r.dimensions !== 1024) {
    throw new GatewayError('bad_request', `The model "${modelId}" returns 1024 dimensions; other 'dimensions' are not supported.`, { param: 'dimensions', code: 'unsupported_parameter' });
  }
  const bodies: Record<string, unknown>[] = [];
  for (let start = 0; start < r.texts.length; start += COHERE_BATCH) {
    const body: Record<string, unknown> = { texts: r.texts.slice(start, start + COHERE_BATCH), input_type: inputType, embedding_types: ['float'] };
    if (typeof extra['truncate'] === 'string') body['truncate'] = extra['truncate'];
    if (!v3 && r.dimensions !== undefined) body['output_dimension'] = r.dimensions;
    bodies.push(body);
  }
  return bodies;
}

const vector = z.array(z.number());
const titanResponse = z.looseObject({ embedding: vector, inputTextTokenCount: z.number().int().nonnegative().optional() });
const cohereResponse = z.looseObject({
  embeddings: z.union([z.array(vector), z.looseObject({ float: z.array(vector) })]),
});

function malformed(provider: string, cause: unknown): GatewayError {
  return new GatewayError('upstream_error', `The provider "${provider}" returned a malformed embedding.`, { provider, cause });
}

export function vectorBytes(values: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i] ?? 0, i * 4);
  return out;
}

/** One Titan answer: its vector and the input tokens it reports (the header count if the body has none; undefined if neither). */
export function parseTitanResponse(json: unknown, headerTokens: number | undefined, provider: string): { vector: Buffer; tokens: number | undefined } {
  const parsed = titanResponse.safeParse(json);
  if (!parsed.success) throw malformed(provider, parsed.error);
  return { vector: vectorBytes(parsed.data.embedding), tokens: parsed.data.inputTextTokenCount ?? headerTokens };
}

/** One Cohere answer: vectors in input order (plain or by-type form). */
export function parseCohereResponse(json: unknown, expected: number, provider: string): Buffer[] {
  const parsed = cohereResponse.safeParse(json);
  if (!parsed.success) throw malformed(provider, parsed.error);
  const vectors = Array.isArray(parsed.data.embeddings) ? parsed.data.embeddings : parsed.data.embeddings.float;
  if (vectors.length !== expected) throw malformed(provider, new Error(`expected ${expected} vectors, got ${vectors.length}`));
  return vectors.map(vectorBytes);
}
