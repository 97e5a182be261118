import { orgSchema } from '@openrouter/config';
import { issueKeyBody, parseInput, policyChange, policyInput, tenantPatchInput, updateKeyInput } from './admin-input';
import { ADMIN_OPENAPI } from './openapi';
import { policyView } from './policy-view';
import { orgView } from './tenants.http.controller';

describe('routing policies in the admin API', () => {
  it('shows a policy with snake_case fields, null lists for no restriction, null for none', () => {
    expect(policyView(undefined)).toBeNull();
    expect(policyView({ residency: ['eu'] })).toEqual({ providers: null, exclude_providers: [], residency: ['eu'], guardrails: [], allowed_ips: null, store_responses: null });
    expect(policyView({ providers: [], excludeProviders: ['a'] })).toEqual({ providers: [], exclude_providers: ['a'], residency: null, guardrails: [], allowed_ips: null, store_responses: null });
    const org = orgSchema.parse({ id: 'acme', policy: { residency: ['eu'] }, teams: [{ id: 't', policy: { excludeProviders: ['x'] }, projects: [{ id: 'p' }] }] });
    expect(orgView(org)).toMatchObject({ policy: { residency: ['eu'] }, teams: [{ policy: { exclude_providers: ['x'] }, projects: [{ policy: null }] }] });
  });

  it('reads exclude_providers as excludeProviders, and null in a PATCH as removing the policy', () => {
    const issued = parseInput(issueKeyBody, { org: 'acme', policy: { exclude_providers: ['x'], residency: ['eu-west'] } });
    expect(policyInput(issued.policy)).toEqual({ excludeProviders: ['x'], residency: ['eu-west'] });
    expect(policyChange(updateKeyInput({ policy: null }).policy)).toBeNull();
    expect(policyChange(tenantPatchInput({ name: 'x' }).policy)).toBeUndefined();
    expect(policyChange(tenantPatchInput({ policy: { providers: [] } }).policy)).toEqual({ providers: [] });
  });

  it('reads and shows a policy\'s guardrail rule ids', () => {
    const issued = parseInput(issueKeyBody, { org: 'acme', policy: { guardrails: ['pii', 'secrets'] } });
    expect(policyInput(issued.policy)).toEqual({ guardrails: ['pii', 'secrets'] });
    expect(policyView({ guardrails: ['pii'] })).toEqual({ providers: null, exclude_providers: [], residency: null, guardrails: ['pii'], allowed_ips: null, store_responses: null });
    expect(() => parseInput(issueKeyBody, { org: 'acme', policy: { guardrails: [''] } })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'policy.guardrails[0]' }));
    const policy = (ADMIN_OPENAPI.components.schemas as Record<string, { properties?: Record<string, { properties?: Record<string, unknown>; anyOf?: Array<{ properties?: Record<string, unknown> }> }> }>)['ApiKey']?.properties?.['policy'];
    expect(JSON.stringify(policy)).toContain('guardrails');
  });

  it('reads and shows allowed_ips, refusing an entry that is no address or range with a 400 naming it', () => {
    const issued = parseInput(issueKeyBody, { org: 'acme', policy: { allowed_ips: ['203.0.113.7', '10.0.0.0/8', '2001:db8::/32'] } });
    expect(policyInput(issued.policy)).toEqual({ allowedIps: ['203.0.113.7', '10.0.0.0/8', '2001:db8::/32'] });
    expect(policyView({ allowedIps: [] })).toEqual({ providers: null, exclude_providers: [], residency: null, guardrails: [], allowed_ips: [], store_responses: null });
    const cases: Array<[string, string]> = [
      ['10.0.0.0/33', 'the prefix length of an IPv4 range is 0–32'],
      ['2001:db8::/129', 'the prefix length of an IPv6 range is 0–128'],
      ['10.0.0/8', 'is not an IP address or CIDR range'],
      ['example.com', 'is not an IP address or CIDR range'],
      ['10.0.0.1/', 'the prefix length'],
    ];
    for (const [bad, message] of cases) {
      expect(() => parseInput(issueKeyBody, { org: 'acme', policy: { allowed_ips: ['192.0.2.1', bad] } })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'policy.allowed_ips[1]', message: expect.stringContaining(message) as string }));
    }
    expect(() => tenantPatchInput({ policy: { allowed_ips: Array.from({ length: 257 }, (_, i) => `10.0.${i >> 8}.${i & 255}`) } })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'policy.allowed_ips' }));
  });

  it('reads and shows store_responses, refusing anything but a boolean with a 400 naming it', () => {
    const issued = parseInput(issueKeyBody, { org: 'acme', policy: { store_responses: false } });
    expect(policyInput(issued.policy)).toEqual({ storeResponses: false });
    expect(policyInput(parseInput(issueKeyBody, { org: 'acme', policy: { store_responses: true } }).policy)).toEqual({ storeResponses: true });
    expect(policyView({ storeResponses: false })).toEqual({ providers: null, exclude_providers: [], residency: null, guardrails: [], allowed_ips: null, store_responses: false });
    expect(() => parseInput(issueKeyBody, { org: 'acme', policy: { store_responses: 'no' } })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'policy.store_responses' }));
    const org = orgSchema.parse({ id: 'acme', policy: { storeResponses: false }, teams: [] });
    expect(orgView(org)).toMatchObject({ policy: { store_responses: false } });
  });

  it('refuses a malformed residency label and an unknown policy field with a 400 naming it', () => {
    expect(() => parseInput(issueKeyBody, { org: 'acme', policy: { residency: ['EU'] } })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'policy.residency[0]' }));
    expect(() => tenantPatchInput({ policy: { excludeProviders: ['x'] } })).toThrow(expect.objectContaining({ kind: 'bad_request' }));
  });

  it('describes the policy in the OpenAPI document of keys, tenants and their changes', () => {
    const schemas = ADMIN_OPENAPI.components.schemas as Record<string, { properties?: Record<string, unknown> }>;
    for (const name of ['IssueKey', 'UpdateKey', 'ApiKey', 'Tenant', 'TenantChange', 'Organization', 'Team', 'Project']) expect(Object.keys(schemas[name]?.properties ?? {})).toContain('policy');
  });
});
