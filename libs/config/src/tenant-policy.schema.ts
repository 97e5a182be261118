import { z } from 'zod';
import { unknownRuleMessage } from './guardrails.schema';
import { ipRange, strictObject } from './primitives';

/**
 * Where a provider's deployments process data (`eu`, `us`, `eu-west`): a tenant's policy allows
 * residency labels, and a deployment is judged by its provider's. Not `region`, which Bedrock uses
 * for the AWS region it calls.
 */
export const residencyLabel = z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'lower-case letters, digits and - (such as eu, us, eu-west)');

/**
 * Which deployments a tenant's requests may reach, by their provider. An organisation, team,
 * project or key may each have one; what applies to a request is their intersection: each level
 * can only narrow what the one above allows (docs/access.md#routing-policies).
 */
export function tenantPolicySchema(object: typeof strictObject) {
  return object({
    /** Only these provider ids (an empty list allows none). Unset: any provider. */
    providers: z.array(z.string().min(1)).optional(),
    /** Never these provider ids. */
    excludeProviders: z.array(z.string().min(1)).optional(),
    /** Only providers whose `residency` is one of these; a provider without one is excluded. Unset: any residency. */
    residency: z.array(residencyLabel).optional(),
    /** Input guardrail rule ids (guardrails.rules) applied to the requests, on top of those above (docs/guardrails.md). */
    guardrails: z.array(z.string().min(1)).optional(),
    /**
     * Only requests from these client addresses: IP addresses and CIDR ranges (an empty list allows
     * none). Unset: any address. Enforced by ingress, not a routing matter (docs/access.md#network-allow-lists).
     */
    allowedIps: z.array(ipRange).optional(),
    /**
     * `false`: the Responses API keeps nothing of these requests (as if each sent `store: false`),
     * and continuing a stored response is refused. Unset or `true`: as the request asks. A level
     * cannot turn storing back on below one that turned it off (docs/responses-api.md#stored-responses).
     */
    storeResponses: z.boolean().optional(),
  });
}

export type TenantPolicyConfig = z.infer<ReturnType<typeof tenantPolicySchema>>;

type Issue = { path: Array<string | number>; message: string };

/** What a policy is checked against: the configured providers and their residency labels, and the guardrail rules. */
export interface PolicyProviders {
  /** Provider id → its `residency` label (undefined: none). */
  readonly residency: ReadonlyMap<string, string | undefined>;
  /** The configured guardrail rule ids. */
  readonly guardrails: readonly string[];
}

export function policyProvidersOf(providers: Readonly<Record<string, { residency?: string | undefined }>>, guardrails?: { rules: ReadonlyArray<{ id: string }> }): PolicyProviders {
  return { residency: new Map(Object.entries(providers).map(([id, p]) => [id, p.residency])), guardrails: (guardrails?.rules ?? []).map((r) => r.id) };
}

/**
 * Why a policy cannot mean what it says, each with the path (under `path`) of the entry: a
 * provider id that is not configured (a typo would allow nothing, or exclude nothing), or a
 * residency label no provider has (a typo would leave the tenant with no deployment at all), or a
 * guardrail rule id that is not configured (a typo would leave the tenant's text unscreened).
 */
export function tenantPolicyIssues(policy: TenantPolicyConfig | undefined, known: PolicyProviders, path: Array<string | number>): Issue[] {
  if (!policy) return [];
  const issues: Issue[] = [];
  const ids = [...known.residency.keys()];
  for (const field of ['providers', 'excludeProviders'] as const) {
    policy[field]?.forEach((id, i) => {
      if (!known.residency.has(id)) issues.push({ path: [...path, field, i], message: `unknown provider "${id}": name a provider id (providers: ${ids.join(', ') || 'none'})` });
    });
  }
  const labels = [...new Set([...known.residency.values()].filter((l): l is string => l !== undefined))];
  policy.residency?.forEach((label, i) => {
    // A malformed label has its own issue.
    if (!labels.includes(label) && residencyLabel.safeParse(label).success) issues.push({ path: [...path, 'residency', i], message: `no provider has the residency "${label}": set providers.<id>.residency, or name one of ${labels.length ? labels.map((l) => `"${l}"`).join(', ') : 'none (no provider has a residency yet)'}` });
  });
  policy.guardrails?.forEach((id, i) => {
    if (!known.guardrails.includes(id)) issues.push({ path: [...path, 'guardrails', i], message: unknownRuleMessage(id, known.guardrails) });
  });
  return issues;
}

/** Every tenant and configured key policy of `access`, checked against the configured providers and guardrail rules. */
export function accessPolicyIssues(
  access: { orgs: ReadonlyArray<{ policy?: TenantPolicyConfig | undefined; teams: ReadonlyArray<{ policy?: TenantPolicyConfig | undefined; projects: ReadonlyArray<{ policy?: TenantPolicyConfig | undefined }> }> }>; keys: ReadonlyArray<{ policy?: TenantPolicyConfig | undefined }> },
  providers: Readonly<Record<string, { residency?: string | undefined }>>,
  guardrails?: { rules: ReadonlyArray<{ id: string }> },
): Issue[] {
  const known = policyProvidersOf(providers, guardrails);
  const issues: Issue[] = [];
  access.orgs.forEach((org, o) => {
    issues.push(...tenantPolicyIssues(org.policy, known, ['access', 'orgs', o, 'policy']));
    org.teams.forEach((team, t) => {
      issues.push(...tenantPolicyIssues(team.policy, known, ['access', 'orgs', o, 'teams', t, 'policy']));
      team.projects.forEach((project, p) => issues.push(...tenantPolicyIssues(project.policy, known, ['access', 'orgs', o, 'teams', t, 'projects', p, 'policy'])));
    });
  });
  access.keys.forEach((key, k) => issues.push(...tenantPolicyIssues(key.policy, known, ['access', 'keys', k, 'policy'])));
  return issues;
}
