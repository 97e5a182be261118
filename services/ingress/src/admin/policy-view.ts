import { z } from 'zod';
import type { TenantPolicyConfig } from '@openrouter/config';

/** A routing policy (with its guardrail rules and allowed addresses) as the admin API shows it (snake_case); the OpenAPI document's `Policy`. */
export const policyViewSchema = z
  .strictObject({
    providers: z.array(z.string()).nullable().describe('Only these provider ids; null: any provider'),
    exclude_providers: z.array(z.string()).describe('Never these provider ids'),
    residency: z.array(z.string()).nullable().describe("Only providers whose residency label is one of these (a provider without one is excluded); null: any residency"),
    guardrails: z.array(z.string()).describe('Input guardrail rule ids added to the requests (docs/guardrails.md), on top of guardrails.default and those of the levels above'),
    allowed_ips: z.array(z.string()).nullable().describe('Only requests from these client addresses (IP addresses, CIDR ranges), besides the allow lists of the levels above (docs/access.md#network-allow-lists); null: any address'),
    store_responses: z
      .boolean()
      .nullable()
      .describe('false: the Responses API keeps nothing of these requests, and continuing a stored response is refused (docs/responses-api.md#stored-responses); null or true: as each request asks (a level below one set to false cannot turn it back on)'),
  })
  .nullable();
export type PolicyView = z.infer<typeof policyViewSchema>;

export function policyView(policy: TenantPolicyConfig | undefined): PolicyView {
  if (!policy) return null;
  return { providers: policy.providers ?? null, exclude_providers: policy.excludeProviders ?? [], residency: policy.residency ?? null, guardrails: policy.guardrails ?? [], allowed_ips: policy.allowedIps ?? null, store_responses: policy.storeResponses ?? null };
}
