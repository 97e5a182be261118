import { z } from 'zod';
import type { TenantPolicyConfig } from '@openrouter/config';

/** A routing policy as the admin API shows it (snake_case); the OpenAPI document's `Policy`. */
export const policyViewSchema = z
  .strictObject({
    providers: z.array(z.string()).nullable().describe('Only these provider ids; null: any provider'),
    exclude_providers: z.array(z.string()).describe('Never these provider ids'),
    residency: z.array(z.string()).nullable().describe("Only providers whose residency label is one of these (a provider without one is excluded); null: any residency"),
  })
  .nullable();
export type PolicyView = z.infer<typeof policyViewSchema>;

export function policyView(policy: TenantPolicyConfig | undefined): PolicyView {
  if (!policy) return null;
  return { providers: policy.providers ?? null, exclude_providers: policy.excludeProviders ?? [], residency: policy.residency ?? null };
}
