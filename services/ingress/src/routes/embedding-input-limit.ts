import { embeddingInputTokenLimit, type GatewayConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import type { chatv1 } from '@openrouter/contracts';
import { exactTokens } from '../access/prompt-tokens';

export const EMBEDDING_INPUT_LIMITS = Symbol('EMBEDDING_INPUT_LIMITS');

/**
 * The most tokens one embeddings input may hold, by the name a request gives: a model's limit
 * (`embeddingInputTokenLimit`), an alias the smallest of its embedding members' (the router may
 * call any of them). Gemini and Vertex AI truncate a longer input silently, so it is refused here,
 * as OpenAI refuses it, before the request reserves anything or reaches a provider.
 */
export class EmbeddingInputLimits {
  private readonly limits = new Map<string, number>();
  private readonly capable = new Set<string>();
  private readonly aliases: ReadonlyMap<string, { models: string[] }>;

  constructor(config: Pick<GatewayConfig, 'models' | 'routing'>) {
    for (const model of config.models) {
      if (!model.capabilities.includes('embeddings')) continue;
      this.capable.add(model.id);
      const limit = embeddingInputTokenLimit(model);
      if (limit !== undefined) this.limits.set(model.id, limit);
    }
    this.aliases = new Map(Object.entries(config.routing.aliases));
  }

  /** The limit for a requested name; undefined when none applies (`auto`, an unknown name, a model without one). */
  limitFor(name: string): number | undefined {
    // Own entries only, as the router reads names: a request naming `constructor` names no alias.
    const members = this.capable.has(name) ? [name] : (this.aliases.get(name)?.models.filter((id) => this.capable.has(id)) ?? []);
    const limits = members.map((id) => this.limits.get(id));
    // A member without a known limit takes any input: only a limit every member shares binds.
    if (limits.length === 0 || limits.some((l) => l === undefined)) return undefined;
    return Math.min(...(limits as number[]));
  }

  /** Refuses (400 `context_length_exceeded`, `input`) the first input over the requested model's limit. */
  check(request: chatv1.EmbeddingRequest): void {
    const limit = this.limitFor(request.model);
    if (limit === undefined) return;
    const counts = request.texts.length > 0 ? request.texts.map((text) => ({ tokens: () => exactTokens(text), bound: text.length })) : request.tokenInputs.map((t) => ({ tokens: () => t.ids.length, bound: t.ids.length }));
    for (const [index, input] of counts.entries()) {
      // A token takes at least one character: an input no longer than the limit in characters fits without counting.
      if (input.bound <= limit) continue;
      const tokens = input.tokens();
      if (tokens > limit) {
        throw new GatewayError('context_length_exceeded', `This model's maximum context length is ${limit} tokens per input, however input ${index} has ${tokens} tokens. Please reduce the length of the input.`, {
          param: 'input',
          code: 'context_length_exceeded',
        });
      }
    }
  }
}
