import { effectivePolicy } from './tenant-policy';

describe('effectivePolicy', () => {
  it('is undefined when no level restricts anything', () => {
    expect(effectivePolicy([undefined, undefined, undefined, undefined])).toBeUndefined();
    expect(effectivePolicy([{}, { excludeProviders: [] }])).toBeUndefined();
  });

  it('takes a single level as it is', () => {
    expect(effectivePolicy([{ residency: ['eu'] }])).toEqual({ excludeProviders: [], residency: { values: ['eu'] } });
    expect(effectivePolicy([undefined, { providers: ['a', 'b'] }])).toEqual({ providers: { values: ['a', 'b'] }, excludeProviders: [] });
  });

  it('intersects allow lists and adds up exclusions: each level only narrows', () => {
    const org = { residency: ['eu', 'us'], providers: ['a', 'b', 'c'] };
    const team = { residency: ['eu', 'eu-west'], excludeProviders: ['c'] };
    const project = { providers: ['b', 'c', 'd'] };
    const key = { excludeProviders: ['x'] };
    expect(effectivePolicy([org, team, project, key])).toEqual({ providers: { values: ['b', 'c'] }, excludeProviders: ['c', 'x'], residency: { values: ['eu'] } });
  });

  it('keeps an empty intersection as a list that allows nothing, never as no restriction', () => {
    expect(effectivePolicy([{ residency: ['eu'] }, undefined, undefined, { residency: ['us'] }])).toEqual({ excludeProviders: [], residency: { values: [] } });
    expect(effectivePolicy([{ providers: ['a'] }, { providers: ['b'] }])).toEqual({ providers: { values: [] }, excludeProviders: [] });
  });

  it('cannot be widened by a lower level', () => {
    // A key listing more labels than its org allows still gets the org's only.
    expect(effectivePolicy([{ residency: ['eu'] }, undefined, undefined, { residency: ['eu', 'us'] }])?.residency).toEqual({ values: ['eu'] });
    // A level that sets no residency leaves the one above in force.
    expect(effectivePolicy([{ residency: ['eu'] }, {}, { providers: ['a'] }])).toEqual({ providers: { values: ['a'] }, excludeProviders: [], residency: { values: ['eu'] } });
  });
});
