import type { RouteStrategy } from '@openrouter/config';

/** What a strategy knows of one candidate model. */
export interface StrategyInput {
  quality: number;
  /** Estimated cost of this request, in the model's currency (ranking only, never billed). */
  cost: number;
  latencyMs: number;
}

export interface BalancedWeights {
  quality: number;
  cost: number;
  latency: number;
}

export interface StrategyScore {
  /** 0–1, higher is better. */
  score: number;
  /** Breaks ties between equal scores, lower first. */
  tieBreak: number;
  /** How the score was reached, for the explain endpoint (built only when asked for). */
  detail: () => string;
}

/**
 * Scores candidates relative to each other. `cost` prefers the cheapest (quality breaks ties),
 * `quality` the best for the task (cost breaks ties), `latency` the fastest, and `balanced`
 * a weighted sum of the three, normalised over the candidates.
 */
export function scoreCandidates(strategy: RouteStrategy, inputs: readonly StrategyInput[], weights: BalancedWeights, latencySensitive: boolean): StrategyScore[] {
  const cost = normaliser(inputs.map((i) => i.cost));
  const latency = normaliser(inputs.map((i) => i.latencyMs));
  const quality = normaliser(inputs.map((i) => i.quality));
  return inputs.map((input) => {
    const cheap = 1 - cost(input.cost);
    const fast = 1 - latency(input.latencyMs);
    const good = quality(input.quality);
    switch (strategy) {
      case 'cost':
        return { score: cheap, tieBreak: -input.quality, detail: () => `cost ${fmt(input.cost)} → ${fmt(cheap)}` };
      case 'quality':
        return { score: good, tieBreak: input.cost, detail: () => `quality ${fmt(input.quality)} → ${fmt(good)}` };
      case 'latency':
        return { score: fast, tieBreak: input.cost, detail: () => `latency ${Math.round(input.latencyMs)} ms → ${fmt(fast)}` };
      case 'balanced': {
        const wl = weights.latency * (latencySensitive ? 3 : 1);
        const total = weights.quality + weights.cost + wl || 1;
        const score = (weights.quality * good + weights.cost * cheap + wl * fast) / total;
        return {
          score,
          tieBreak: input.cost,
          detail: () => `${fmt(weights.quality / total)}×quality ${fmt(good)} + ${fmt(weights.cost / total)}×cost ${fmt(cheap)} + ${fmt(wl / total)}×latency ${fmt(fast)}`,
        };
      }
    }
  });
}

/** Min–max scaling to 0–1 over the candidates; all equal scale to 0. */
function normaliser(values: readonly number[]): (value: number) => number {
  const min = Math.min(...values);
  const max = Math.max(...values);
  return (value) => (max > min ? (value - min) / (max - min) : 0);
}

function fmt(x: number): string {
  return Number(x.toPrecision(3)).toString();
}
