import type { TenantPolicyConfig } from '@openrouter/config';
import type { routerv1 } from '@openrouter/contracts';

/**
 * The policy a request is routed under: the intersection of its organisation's, team's, project's
 * and key's (`levels`, any of them unset). Each level can only narrow: allow lists of providers and
 * of residency labels are intersected (an empty intersection allows nothing), excluded providers
 * add up. Undefined when no level sets anything.
 */
export function effectivePolicy(levels: ReadonlyArray<TenantPolicyConfig | undefined>): routerv1.TenantPolicy | undefined {
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
  if (!restricted) return undefined;
  return {
    ...(providers && { providers: { values: providers } }),
    excludeProviders: [...excluded],
    ...(residency && { residency: { values: residency } }),
  };
}

/** `next` narrowed to what `current` allows (unset: everything), without repeats, in `next`'s order. */
function intersect(current: readonly string[] | undefined, next: readonly string[]): string[] {
  return [...new Set(next)].filter((v) => current === undefined || current.includes(v));
}
