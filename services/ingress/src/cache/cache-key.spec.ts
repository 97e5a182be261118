import { routerv1 } from '@openrouter/contracts';
import { canonicalJson, keyMaterial, scopeIds, servingConstraints } from './cache-key';

describe('cache key', () => {
  const context = { orgId: 'acme', projectId: 'search', keyId: 'k1' };

  it('writes JSON with sorted keys at every depth, keeping array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null }, e: undefined })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson([2, 1])).toBe('[2,1]');
  });

  it('keeps a `__proto__` key as a field: two bodies that differ only there never share an entry', () => {
    const planted = JSON.parse('{"model":"m","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"properties":{"__proto__":{"type":"string"}}}}}}') as unknown;
    const plain = JSON.parse('{"model":"m","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"properties":{}}}}}') as unknown;
    expect(canonicalJson(planted)).toContain('"__proto__":{"type":"string"}');
    expect(keyMaterial(scopeIds('org', context), '/v1/chat/completions', planted, {})).not.toBe(keyMaterial(scopeIds('org', context), '/v1/chat/completions', plain, {}));
  });

  it('is the same for the same request in another field order, streamed or not', () => {
    const a = keyMaterial(scopeIds('project', context), '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: 0 }, {});
    const b = keyMaterial(scopeIds('project', context), '/v1/chat/completions', { temperature: 0, stream: true, stream_options: { include_usage: true }, messages: [{ content: 'hi', role: 'user' }], model: 'm' }, {});
    expect(a).toBe(b);
  });

  it('differs for anything that changes the answer: a field, the message order, the endpoint, a routing header', () => {
    const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }, { role: 'user', content: 'there' }] };
    const base = keyMaterial(scopeIds('project', context), '/v1/chat/completions', body, {});
    const variants = [
      keyMaterial(scopeIds('project', context), '/v1/chat/completions', { ...body, temperature: 1 }, {}),
      keyMaterial(scopeIds('project', context), '/v1/chat/completions', { ...body, user: 'someone' }, {}),
      keyMaterial(scopeIds('project', context), '/v1/chat/completions', { ...body, messages: [...body.messages].reverse() }, {}),
      keyMaterial(scopeIds('project', context), '/v1/embeddings', body, {}),
      keyMaterial(scopeIds('project', context), '/v1/chat/completions', body, { 'x-openrouter-models': 'other' }),
      keyMaterial(scopeIds('project', context), '/v1/chat/completions', body, { 'x-openrouter-route': '{"strategy":"cost"}' }),
    ];
    for (const variant of variants) expect(variant).not.toBe(base);
    // Headers that do not steer routing are not part of it.
    expect(keyMaterial(scopeIds('project', context), '/v1/chat/completions', body, { 'x-request-id': 'abc', 'x-openrouter-cache': 'use' })).toBe(base);
  });

  it('keeps what limits where a request may be served (allowed models, tags), never who asked', () => {
    const full = routerv1.RequestContext.fromPartial({ requestId: 'r1', orgId: 'acme', projectId: 'search', teamId: 't', keyId: 'k1', appId: 'app', costCenter: 'cc', endUser: 'u', allowedModels: ['gpt-4o-mini'], tags: { env: 'prod' } });
    expect(servingConstraints(full)).toEqual({ allowedModels: ['gpt-4o-mini'], tags: { env: 'prod' } });
    const body = { model: 'gpt-4o-mini', messages: [] };
    const scope = scopeIds('project', full);
    expect(keyMaterial(scope, '/v1/chat/completions', body, {}, servingConstraints(full))).not.toBe(keyMaterial(scope, '/v1/chat/completions', body, {}, servingConstraints({ ...full, allowedModels: [] })));
  });

  it('keeps the guardrail rules that screen a request and the digest of their definitions', () => {
    const base = routerv1.RequestContext.fromPartial({ orgId: 'acme', projectId: 'search', keyId: 'k1', policy: { excludeProviders: [], guardrails: ['secrets'], guardrailsDigest: 'd1' } });
    expect(servingConstraints(base)).toEqual({ allowedModels: [], tags: {}, policy: { excludeProviders: [], guardrails: ['secrets'], guardrailsDigest: 'd1' } });
    const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    const scope = scopeIds('project', base);
    const key = (context: routerv1.RequestContext): string => keyMaterial(scope, '/v1/chat/completions', body, {}, servingConstraints(context));
    // Another rule added (a new default, a key's own), or a rule's definition changed: another entry.
    expect(key({ ...base, policy: { excludeProviders: [], guardrails: ['secrets', 'pii'], guardrailsDigest: 'd2' } })).not.toBe(key(base));
    expect(key({ ...base, policy: { excludeProviders: [], guardrails: ['secrets'], guardrailsDigest: 'd3' } })).not.toBe(key(base));
    expect(key({ ...base, policy: undefined })).not.toBe(key(base));
    expect(key({ ...base, requestId: 'other' })).toBe(key(base));
  });

  it('scopes entries to the project, the organisation or the key, never across organisations', () => {
    expect(scopeIds('project', context)).toEqual(['project', 'acme', 'search']);
    expect(scopeIds('org', context)).toEqual(['org', 'acme']);
    expect(scopeIds('key', context)).toEqual(['key', 'acme', 'k1']);
    // A key in no project shares with no other key.
    expect(scopeIds('project', { ...context, projectId: '' })).toEqual(['key', 'acme', 'k1']);
    expect(scopeIds('org', { ...context, orgId: 'other' })).not.toEqual(scopeIds('org', context));
  });
});
