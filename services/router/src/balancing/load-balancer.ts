import type { BalancingMethod } from '@openrouter/config';
import type { Random } from '../stats/clock';

export interface BalancedDeployment {
  id: string;
  weight: number;
  outstanding: number;
  /** Expected latency (EWMA or prior), ms. */
  latencyMs: number;
}

/**
 * Orders equivalent deployments (of one model) for this request: the first is the one to call,
 * the rest are where a retry goes.
 */
export function balance<T extends BalancedDeployment>(method: BalancingMethod, items: readonly T[], random: Random): T[] {
  if (items.length <= 1) return [...items];
  const weighted = weightedOrder(items, random);
  switch (method) {
    case 'weighted':
      return weighted;
    case 'least_outstanding': {
      const rank = new Map(weighted.map((item, i) => [item, i]));
      return [...items].sort((a, b) => load(a) - load(b) || (rank.get(a) ?? 0) - (rank.get(b) ?? 0));
    }
    case 'p2c': {
      // Power of two choices: draw two by weight, keep the one with the lower expected wait.
      const [first, second] = weighted;
      if (!first || !second) return weighted;
      const pick = cost(second) < cost(first) ? second : first;
      return [pick, ...weighted.filter((item) => item !== pick)];
    }
  }
}

/** Weighted random order without replacement (Efraimidis–Spirakis keys u^(1/w)). */
export function weightedOrder<T extends { weight: number }>(items: readonly T[], random: Random): T[] {
  return items
    .map((item) => ({ item, key: Math.pow(random(), 1 / item.weight) }))
    .sort((a, b) => b.key - a.key)
    .map((entry) => entry.item);
}

function load(item: BalancedDeployment): number {
  return (item.outstanding + 1) / item.weight;
}

function cost(item: BalancedDeployment): number {
  return item.latencyMs * (item.outstanding + 1);
}
