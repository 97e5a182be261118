import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { toOpenAIUsage } from './chat-response';
import { validate } from './validation';

export interface LegacyCompletionRequest {
  model: string;
  prompts: string[];
  stream: boolean;
  includeUsage: boolean;
  /** Template for each prompt's chat request; `messages` is filled per prompt. */
  chat: chatv1.ChatRequest;
}

const legacyBody = z.looseObject({
  model: z.string().min(1),
  prompt: z.union([z.string(), z.array(z.string()).min(1)]),
  max_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  n: z.number().int().min(1).max(128).nullable().optional(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  user: z.string().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  logit_bias: z.record(z.string(), z.number()).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
});

const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

/** The legacy completions body; features the chat path cannot reproduce are refused by name. */
export function parseLegacyCompletionRequest(body: unknown): LegacyCompletionRequest {
  const b = validate(legacyBody, body);
  const raw = body as Record<string, unknown>;
  if (raw['echo'] === true) throw new GatewayError('bad_request', "'echo' is not supported by this gateway.", { param: 'echo', code: 'unsupported_parameter' });
  if (raw['suffix'] != null) throw new GatewayError('bad_request', "'suffix' is not supported by this gateway.", { param: 'suffix', code: 'unsupported_parameter' });
  if (typeof raw['best_of'] === 'number' && raw['best_of'] > 1) throw new GatewayError('bad_request', "'best_of' is not supported by this gateway.", { param: 'best_of', code: 'unsupported_parameter' });
  if (raw['logprobs'] != null) throw new GatewayError('bad_request', "'logprobs' is not supported on legacy completions by this gateway.", { param: 'logprobs', code: 'unsupported_parameter' });
  return {
    model: b.model,
    prompts: typeof b.prompt === 'string' ? [b.prompt] : b.prompt,
    stream: b.stream === true,
    includeUsage: b.stream_options?.include_usage === true,
    chat: {
      model: b.model,
      messages: [],
      tools: [],
      stop: b.stop == null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop,
      maxTokens: b.max_tokens ?? 16,
      temperature: opt(b.temperature),
      topP: opt(b.top_p),
      n: opt(b.n),
      seed: opt(b.seed),
      user: b.user,
      stream: b.stream === true,
      presencePenalty: opt(b.presence_penalty),
      frequencyPenalty: opt(b.frequency_penalty),
      logitBias: b.logit_bias ?? {},
      metadata: {},
      modalities: [],
      extraJson: '',
    },
  };
}

/** Chat completions (one per prompt) as one text_completion; choice indexes run across prompts. */
export function toLegacyCompletion(completions: chatv1.ChatCompletion[], model: string, choicesPerPrompt: number): Record<string, unknown> {
  const usage: chatv1.Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };
  for (const c of completions) {
    usage.promptTokens += c.usage?.promptTokens ?? 0;
    usage.completionTokens += c.usage?.completionTokens ?? 0;
    usage.totalTokens += c.usage?.totalTokens ?? 0;
  }
  return {
    id: completions[0]?.id.replace(/^chatcmpl-/, 'cmpl-') ?? '',
    object: 'text_completion',
    created: completions[0]?.created || Math.floor(Date.now() / 1000),
    model,
    choices: completions.flatMap((c, p) => c.choices.map((ch) => ({ text: ch.message?.content ?? '', index: p * choicesPerPrompt + ch.index, logprobs: null, finish_reason: ch.finishReason || null }))),
    usage: toOpenAIUsage(usage),
  };
}

export function toLegacyChunk(chunk: chatv1.ChatChunk, model: string, indexOffset: number): Record<string, unknown> {
  return {
    id: chunk.id.replace(/^chatcmpl-/, 'cmpl-'),
    object: 'text_completion',
    created: chunk.created || Math.floor(Date.now() / 1000),
    model,
    choices: chunk.choices.map((ch) => ({ text: ch.delta?.content ?? '', index: indexOffset + ch.index, logprobs: null, finish_reason: ch.finishReason ?? null })),
  };
}
