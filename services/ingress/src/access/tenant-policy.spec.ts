import { effectivePolicy } from './tenant-policy';

describe('effectivePolicy', () => {
  it('is undefined when no level restricts anything', () => {
    expect(effectivePolicy([undefined, undefined, undefined, undefined])).toBeUndefined();
    expect(effectivePolicy([{}, { excludeProviders: [] }])).toBeUndefined();
  });

  it('takes a single level as it is', () => {
    expect(effectivePolicy([{ residency: ['eu'] }])).toEqual({ excludeProviders: [], guardrails: [], residency: { values: ['eu'] } });
    expect(effectivePolicy([undefined, { providers: ['a', 'b'] }])).toEqual({ providers: { values: ['a', 'b'] }, excludeProviders: [], guardrails: [] });
  });

  it('intersects allow lists and adds up exclusions: each level only narrows', () => {
    const org = { residency: ['eu', 'us'], providers: ['a', 'b', 'c'] };
    const team = { residency: ['eu', 'eu-west'], excludeProviders: ['c'] };
    const project = { providers: ['b', 'c', 'd'] };
    const key = { excludeProviders: ['x'] };
    expect(effectivePolicy([org, team, project, key])).toEqual({ providers: { values: ['b', 'c'] }, excludeProviders: ['c', 'x'], guardrails: [], residency: { values: ['eu'] } });
  });

  it('keeps an empty intersection as a list that allows nothing, never as no restriction', () => {
    expect(effectivePolicy([{ residency: ['eu'] }, undefined, undefined, { residency: ['us'] }])).toEqual({ excludeProviders: [], guardrails: [], residency: { values: [] } });
    expect(effectivePolicy([{ providers: ['a'] }, { providers: ['b'] }])).toEqual({ providers: { values: [] }, excludeProviders: [], guardrails: [] });
  });

  it('cannot be widened by a lower level', () => {
    // A key listing more labels than its org allows still gets the org's only.
    expect(effectivePolicy([{ residency: ['eu'] }, undefined, undefined, { residency: ['eu', 'us'] }])?.residency).toEqual({ values: ['eu'] });
    // A level that sets no residency leaves the one above in force.
    expect(effectivePolicy([{ residency: ['eu'] }, {}, { providers: ['a'] }])).toEqual({ providers: { values: ['a'] }, excludeProviders: [], guardrails: [], residency: { values: ['eu'] } });
  });

  it('adds guardrail rules up: the configured default, then every level\'s, without repeats', () => {
    const guardrails = { rules: [{ id: 'a', detect: 'email' as const, action: 'redact' as const, screen: ['input' as const] }, { id: 'b', detect: 'secret' as const, action: 'block' as const, screen: ['input' as const] }, { id: 'c', terms: ['x'], action: 'block' as const, screen: ['input' as const] }], default: ['a'] };
    const policy = effectivePolicy([{ guardrails: ['b'] }, undefined, { residency: ['eu'] }, { guardrails: ['c', 'a'] }], guardrails);
    expect(policy).toMatchObject({ excludeProviders: [], residency: { values: ['eu'] }, guardrails: ['a', 'b', 'c'] });
    expect(policy?.guardrailsDigest).toMatch(/^[0-9a-f]{64}$/);
    // A lower level cannot take a rule away: an empty list adds nothing.
    expect(effectivePolicy([{ guardrails: ['b'] }, { guardrails: [] }], guardrails)?.guardrails).toEqual(['a', 'b']);
  });

  it('is a policy when only guardrails apply, from a level or from the default alone', () => {
    expect(effectivePolicy([undefined, { guardrails: ['g'] }])).toEqual({ excludeProviders: [], guardrails: ['g'] });
    const defaults = { rules: [{ id: 'a', detect: 'email' as const, action: 'redact' as const, screen: ['input' as const] }], default: ['a'] };
    expect(effectivePolicy([undefined, undefined], defaults)).toMatchObject({ excludeProviders: [], guardrails: ['a'], guardrailsDigest: expect.any(String) });
    expect(effectivePolicy([undefined], { rules: defaults.rules, default: [] })).toBeUndefined();
  });
});
