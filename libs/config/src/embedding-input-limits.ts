import type { ModelConfig } from './catalog.schema';

/**
 * The most tokens one embeddings input may hold on the upstream models whose limit is known, by
 * the provider's documentation. OpenAI refuses a longer input (400); Gemini, Vertex AI and Bedrock
 * truncate it silently (or refuse it), so the gateway refuses it itself before any call.
 */
const KNOWN_LIMITS: ReadonlyArray<readonly [RegExp, number]> = [
  // OpenAI (and Azure deployments named after the model): text-embedding-3-small/-large, ada-002.
  [/^text-embedding-(3-(small|large)|ada-002)$/, 8192],
  // Gemini API (`models/…` or bare) and Vertex AI: text-embedding-004/005, text-multilingual-embedding-002, gemini-embedding-001.
  [/^(models\/)?(text-embedding-00[45]|text-multilingual-embedding-002|gemini-embedding-001)(@.*)?$/, 2048],
  // Bedrock: Titan Text Embeddings v1 and v2, Cohere Embed v3.
  [/^amazon\.titan-embed-text-v[12](:\d+)?$/, 8192],
  [/^cohere\.embed-(english|multilingual)-v3(:\d+)?$/, 512],
];

/** The known input limit of an upstream embedding model, if any. */
export function knownEmbeddingInputTokens(upstreamModel: string): number | undefined {
  return KNOWN_LIMITS.find(([pattern]) => pattern.test(upstreamModel))?.[1];
}

/**
 * The most tokens one embeddings input may hold on a catalog model: its `maxInputTokens`, else the
 * smallest known limit of its deployments (the router may call any of them), else none.
 */
export function embeddingInputTokenLimit(model: Pick<ModelConfig, 'maxInputTokens' | 'deployments'>): number | undefined {
  if (model.maxInputTokens !== undefined) return model.maxInputTokens;
  const known = model.deployments.map((d) => knownEmbeddingInputTokens(d.model)).filter((limit): limit is number => limit !== undefined);
  return known.length > 0 ? Math.min(...known) : undefined;
}
