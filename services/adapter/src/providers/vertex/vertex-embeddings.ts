import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { malformed } from '../gemini/gemini-response';
import { countTextTokens } from '../text-tokens';

/** Texts one `:predict` call takes at most; Gemini's embedding models take one. */
export const PREDICT_BATCH = 250;
/**
 * Vertex refuses a call whose inputs total more than 20,000 tokens. Texts are grouped by the
 * gateway's own count, whose tokenizer differs from Google's, with a margin.
 */
const BATCH_TOKEN_BUDGET = 15_000;

/** The task types Vertex's text-embedding models take, as `task_type` in an instance. */
const TASK_TYPES = ['RETRIEVAL_QUERY', 'RETRIEVAL_DOCUMENT', 'SEMANTIC_SIMILARITY', 'CLASSIFICATION', 'CLUSTERING', 'QUESTION_ANSWERING', 'FACT_VERIFICATION', 'CODE_RETRIEVAL_QUERY'] as const;
const extras = z.looseObject({ task_type: z.enum(TASK_TYPES).optional() });

export interface PredictInstance {
  content: string;
  task_type?: string;
}

export interface PredictBody {
  instances: PredictInstance[];
  parameters?: { outputDimensionality: number };
}

/** One `:predict` call: its body and the positions of its texts in the request. */
export interface PredictBatch {
  body: PredictBody;
  first: number;
  count: number;
}

/** How many texts a model takes per call: `gemini-embedding-…` one, the `text-embedding-…` family 250. */
export function batchLimit(model: string): number {
  return /^gemini-embedding/i.test(model) ? 1 : PREDICT_BATCH;
}

/**
 * The canonical request as `:predict` bodies. Text only (token-id input is refused); a
 * `task_type` the client sent as an extra field goes on every instance; `user` is dropped.
 */
export function predictBatches(r: chatv1.EmbeddingRequest, model: string): PredictBatch[] {
  if (r.tokenInputs.length > 0) throw new GatewayError('bad_request', 'This model embeds text only; token-id input is not supported.', { param: 'input', code: 'unsupported_parameter' });
  const taskType = readTaskType(r.extraJson);
  const limit = batchLimit(model);
  const batches: PredictBatch[] = [];
  let current: PredictBatch | undefined;
  let tokens = 0;
  r.texts.forEach((text, index) => {
    const cost = limit === 1 ? 0 : countTextTokens(text);
    if (current === undefined || current.count >= limit || (current.count > 0 && tokens + cost > BATCH_TOKEN_BUDGET)) {
      current = { body: { instances: [] }, first: index, count: 0 };
      if (r.dimensions !== undefined) current.body.parameters = { outputDimensionality: r.dimensions };
      batches.push(current);
      tokens = 0;
    }
    current.body.instances.push(taskType === undefined ? { content: text } : { content: text, task_type: taskType });
    current.count += 1;
    tokens += cost;
  });
  return batches;
}

function readTaskType(extraJson: string): string | undefined {
  if (extraJson === '') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(extraJson);
  } catch {
    return undefined;
  }
  const parsed = extras.safeParse(json);
  if (!parsed.success) throw new GatewayError('bad_request', `"task_type" must be one of ${TASK_TYPES.join(', ')}.`, { param: 'task_type', code: 'invalid_value' });
  return parsed.data.task_type;
}

const predictResponse = z.looseObject({
  predictions: z.array(z.looseObject({ embeddings: z.looseObject({ values: z.array(z.number()), statistics: z.looseObject({ token_count: z.number().nonnegative() }).optional() }) })),
});

export interface PredictedVectors {
  vectors: Buffer[];
  /** Tokens Vertex counted; undefined when a prediction carried no statistics. */
  tokens: number | undefined;
}

/**
 * One `:predict` answer as little-endian float32 vectors, in input order, and its token count.
 * With `normalize` (the request set `outputDimensionality`) each vector is scaled to unit length,
 * as OpenAI's always are: a truncated Gemini vector is not.
 */
export function parsePredictResponse(json: unknown, expected: number, provider: string, normalize: boolean): PredictedVectors {
  const parsed = predictResponse.safeParse(json);
  if (!parsed.success) throw malformed(provider, 'embedding response', parsed.error);
  const predictions = parsed.data.predictions;
  if (predictions.length !== expected) throw malformed(provider, `embedding response (${predictions.length} vectors for ${expected} inputs)`);
  let tokens: number | undefined = 0;
  const vectors = predictions.map(({ embeddings }) => {
    const counted = embeddings.statistics?.token_count;
    tokens = tokens === undefined || counted === undefined ? undefined : tokens + counted;
    const scale = normalize ? inverseNorm(embeddings.values) : 1;
    const bytes = Buffer.allocUnsafe(embeddings.values.length * 4);
    for (let i = 0; i < embeddings.values.length; i++) bytes.writeFloatLE((embeddings.values[i] ?? 0) * scale, i * 4);
    return bytes;
  });
  return { vectors, tokens };
}

/** 1 / the vector's L2 norm; 1 for a zero vector, which has no direction to keep. */
function inverseNorm(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v * v;
  return sum > 0 ? 1 / Math.sqrt(sum) : 1;
}
