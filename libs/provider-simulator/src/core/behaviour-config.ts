import { z } from 'zod';

export type FaultKind = 'http_error' | 'timeout' | 'drop_mid_stream' | 'drop_before_response';
export type FaultPath = 'chat' | 'embeddings' | 'moderations' | 'images' | 'audio';

/** A failure to inject. The first fault matching a request applies. */
export interface Fault {
  /** Only requests for this upstream model name (default: all models). */
  model?: string;
  /** Only this endpoint family (default: chat, embeddings, moderations, image generations and audio: transcriptions, translations, speech). */
  path?: FaultPath;
  kind: FaultKind;
  /** For `http_error`: the status to answer with (default 500). */
  status?: number;
  code?: string;
  message?: string;
  /** Sent as the `retry-after` header (a 429 without it gets `retry-after: 1`). */
  retryAfterSeconds?: number;
  /** Probability 0..1 that a matching request is hit, drawn from the seeded PRNG (default 1). */
  rate?: number;
  /** Hit only the next N matching requests, then stop. */
  remaining?: number;
  /** For `drop_mid_stream`: content tokens delivered before the socket is destroyed (default 0). */
  afterTokens?: number;
}

export interface Behaviour {
  /** Delay before the response headers (non-stream: before the body). */
  latencyMs: number;
  /** Stream: delay before the first content token. */
  ttftMs: number;
  /** Stream pacing; 0 = as fast as possible. */
  tokensPerSecond: number;
  /** Natural reply length in tokens, capped by max_tokens / max_completion_tokens. */
  completionTokens: number;
  /** A server that does not honour max_tokens / max_completion_tokens (OpenAI family): the natural length always. */
  ignoreMaxTokens: boolean;
  /** A server that does not honour `stream_options` (OpenAI family): a stream never ends with a usage chunk. */
  ignoreStreamOptions: boolean;
  /** A server that reports no usage in a whole answer (OpenAI family, GPT Image and transcription answers and speech's `speech.audio.done` too): no `usage` field; a stream's usage chunk is `ignoreStreamOptions`. */
  omitUsage: boolean;
  /** Embedding size unless the request sets `dimensions`. */
  embeddingDimensions: number;
  /** Prompts above this many tokens are rejected with `context_length_exceeded`. */
  contextWindow: number;
  /** `expires_in` of the access tokens the simulated Google token endpoint and metadata server issue. */
  accessTokenExpiresInSeconds: number;
  faults: Fault[];
}

export const DEFAULT_BEHAVIOUR: Readonly<Behaviour> = Object.freeze({
  latencyMs: 0,
  ttftMs: 0,
  tokensPerSecond: 0,
  completionTokens: 16,
  ignoreMaxTokens: false,
  ignoreStreamOptions: false,
  omitUsage: false,
  embeddingDimensions: 1536,
  contextWindow: 128_000,
  accessTokenExpiresInSeconds: 3600,
  faults: [],
});

export const MAX_EMBEDDING_DIMENSIONS = 65_536;

const nonNegativeMs = z.number().finite().min(0);

export const faultSchema = z.strictObject({
  model: z.string().min(1).optional(),
  path: z.enum(['chat', 'embeddings', 'moderations', 'images', 'audio']).optional(),
  kind: z.enum(['http_error', 'timeout', 'drop_mid_stream', 'drop_before_response']),
  status: z.int().min(400).max(599).optional(),
  code: z.string().optional(),
  message: z.string().optional(),
  retryAfterSeconds: z.number().finite().min(0).optional(),
  rate: z.number().min(0).max(1).optional(),
  remaining: z.int().min(0).optional(),
  afterTokens: z.int().min(0).optional(),
});

export const behaviourPatchSchema = z.strictObject({
  latencyMs: nonNegativeMs.optional(),
  ttftMs: nonNegativeMs.optional(),
  tokensPerSecond: z.number().finite().min(0).optional(),
  completionTokens: z.int().min(1).max(1_000_000).optional(),
  ignoreMaxTokens: z.boolean().optional(),
  ignoreStreamOptions: z.boolean().optional(),
  omitUsage: z.boolean().optional(),
  embeddingDimensions: z.int().min(1).max(MAX_EMBEDDING_DIMENSIONS).optional(),
  contextWindow: z.int().min(1).optional(),
  accessTokenExpiresInSeconds: z.int().min(1).max(86_400).optional(),
  faults: z.array(faultSchema).optional(),
});

export type BehaviourPatchResult = { ok: true; value: Partial<Behaviour> } | { ok: false; message: string };

export function parseBehaviourPatch(input: unknown): BehaviourPatchResult {
  const parsed = behaviourPatchSchema.safeParse(input);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, message: z.prettifyError(parsed.error) };
}

/** Returns a new behaviour; `faults` in the patch replaces the whole list. */
export function mergeBehaviour(base: Readonly<Behaviour>, patch: Partial<Behaviour>): Behaviour {
  const merged: Behaviour = { ...base, faults: base.faults.map((fault) => ({ ...fault })) };
  for (const key of Object.keys(patch) as (keyof Behaviour)[]) {
    if (patch[key] === undefined) continue;
    if (key === 'faults') merged.faults = (patch.faults ?? []).map((fault) => ({ ...fault }));
    else if (key === 'ignoreMaxTokens' || key === 'ignoreStreamOptions' || key === 'omitUsage') merged[key] = patch[key] === true;
    else merged[key] = patch[key] as number;
  }
  return merged;
}
