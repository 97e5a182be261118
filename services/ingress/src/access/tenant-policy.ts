import { effectiveGuardrails, guardrailsDigest, type GuardrailsConfig, type TenantPolicyConfig } from '@openrouter/config';
import type { routerv1 } from '@openrouter/contracts';

/**
 * The policy a request is routed under: the intersection of its organisation's, team's, project's
 * and key's (`levels`, any of them unset). Each level can only narrow: allow lists of providers and
 * of residency labels are intersected (an empty intersection allows nothing), excluded providers
 * add up, and so do guardrail rules, with `guardrails.default` (when `guardrails` is given) before
 * them. With rules, the digest of their definitions travels too (the response cache keys on it).
 * Undefined when nothing restricts the request.
 */
export function effectivePolicy(levels: ReadonlyArray<TenantPolicyConfig | undefined>, guardrails?: Pick<GuardrailsConfig, 'rules' | 'default'>): routerv1.TenantPolicy | undefined {
  let providers: string[] | undefined;
  let residency: string[] | undefined;
  const excluded = new Set<string>();
  let restricted = false;
  for (const level of levels) {
    if (!level) continue;
    if (level.providers) providers = intersect(providers, level.providers);
    if (level.residency) residency = intersect(residency, level.residency);
    for (const id of level.excludeProviders ?? []) excluded.add(id);
    restricted ||= level.providers !== undefined || level.residency !== undefined || (level.excludeProviders?.length ?? 0) > 0;
  }
  const rules = effectiveGuardrails(guardrails, levels.map((level) => level?.guardrails));
  if (!restricted && rules.length === 0) return undefined;
  return {
    ...(providers && { providers: { values: providers } }),
    excludeProviders: [...excluded],
    ...(residency && { residency: { values: residency } }),
    guardrails: rules,
    ...(rules.length > 0 && guardrails && { guardrailsDigest: guardrailsDigest(guardrails, rules) }),
  };
}

/** `next` narrowed to what `current` allows (unset: everything), without repeats, in `next`'s order. */
function intersect(current: readonly string[] | undefined, next: readonly string[]): string[] {
  return [...new Set(next)].filter((v) => current === undefined || current.includes(v));
}
