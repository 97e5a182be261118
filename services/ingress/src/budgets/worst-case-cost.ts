import type { GatewayConfig } from '@openrouter/config';
import { Money, type PriceBook } from '@openrouter/usage';

/** The highest prices a request naming a model can be charged, per token, in micro-units. */
export interface WorstPrice {
  /** Micro-units per prompt token (the price per 1M tokens, read as micro-units per token). */
  inputMicros: Money;
  outputMicros: Money;
  /** Micro-units per request. */
  requestMicros: Money;
}

/** The estimate of prompt tokens is padded so a provider that counts a few more is still covered. */
export const PROMPT_MARGIN = { ratio: 1.1, tokens: 16 } as const;

/**
 * Worst-case prices for a requested model: the dearest of the deployments that may serve it.
 * An alias may pick any of its models; `auto`, a fallback list or an unknown id may pick any
 * model, so the dearest model in the catalog is assumed.
 */
export class WorstCasePricing {
  private readonly deployments = new Map<string, string[]>();
  private readonly aliases: Record<string, { models: string[] }>;

  constructor(
    private readonly config: Pick<GatewayConfig, 'models' | 'routing' | 'budgets'>,
    private readonly prices: PriceBook,
  ) {
    for (const model of config.models) this.deployments.set(model.id, model.deployments.map((d, i) => d.id ?? `${model.id}#${i}`));
    this.aliases = config.routing.aliases;
  }

  /** Every public model the request may be served by. */
  candidates(model: string, fallbacks: readonly string[]): string[] {
    const out = new Set<string>();
    for (const name of [model, ...fallbacks]) {
      if (this.deployments.has(name)) out.add(name);
      else if (this.aliases[name]) for (const m of this.aliases[name].models) out.add(m);
      else return [...this.deployments.keys()];
    }
    return [...out];
  }

  priceAt(models: readonly string[], atMs: number): WorstPrice {
    let input = new Money(0);
    let output = new Money(0);
    let fee = new Money(0);
    for (const model of models) {
      for (const deployment of this.deployments.get(model) ?? []) {
        const p = this.prices.priceAt(model, deployment, atMs);
        if (!p) continue;
        input = Money.max(input, p.input, p.cachedInput, p.cacheWrite);
        output = Money.max(output, p.output);
        fee = Money.max(fee, p.perRequest);
      }
    }
    return { inputMicros: input, outputMicros: output, requestMicros: fee.times(1_000_000) };
  }

  /** Output tokens the request may produce: what it asks for, else the models' configured maximum, else the default. */
  maxOutputTokens(models: readonly string[], body: Record<string, unknown>): number {
    const asked = positiveInt(body['max_completion_tokens']) ?? positiveInt(body['max_tokens']);
    if (asked !== undefined) return asked;
    const caps = models.map((m) => this.config.budgets.maxOutputTokens[m] ?? this.config.budgets.defaultMaxOutputTokens);
    return caps.length > 0 ? Math.max(...caps) : this.config.budgets.defaultMaxOutputTokens;
  }
}

export function paddedPromptTokens(tokens: number): number {
  return Math.ceil(tokens * PROMPT_MARGIN.ratio) + PROMPT_MARGIN.tokens;
}

export function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}
