import { GatewayError } from '@openrouter/errors';
import { parseInput, rotateKeyBody, updateKeyInput } from './admin-input';

function refusal(run: () => unknown): GatewayError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected a refusal');
}

describe('key change input', () => {
  it('takes the fields of an issue that may change, with their rules, and null to remove the expiry', () => {
    expect(updateKeyInput({ name: 'ci', allowed_models: ['m'], limits: { rpm: 5 }, expires_at: null, metadata: { a: 'b' }, tags: { env: 'prod' } })).toEqual({
      name: 'ci',
      allowed_models: ['m'],
      limits: { rpm: 5 },
      expires_at: null,
      metadata: { a: 'b' },
      tags: { env: 'prod' },
    });
    // Fields not given stay absent: they are left as they are, never reset to the defaults.
    expect(updateKeyInput({ tags: {} })).toEqual({ tags: {} });
    expect(refusal(() => updateKeyInput({ limits: { rpm: 0 } }))).toMatchObject({ kind: 'bad_request', param: 'limits.rpm', code: 'invalid_value' });
    expect(refusal(() => updateKeyInput({ expires_at: 'tomorrow' }))).toMatchObject({ kind: 'bad_request', param: 'expires_at' });
    expect(refusal(() => updateKeyInput({ nmae: 'typo' }))).toMatchObject({ kind: 'bad_request', param: 'nmae' });
    expect(refusal(() => updateKeyInput({}))).toMatchObject({ kind: 'bad_request', code: 'invalid_value' });
    expect(refusal(() => updateKeyInput(undefined))).toMatchObject({ kind: 'bad_request', code: 'invalid_value' });
    // A tag is named as reports can group by it (group_by=tag:<name>); metadata keys are free.
    const badTag = refusal(() => updateKeyInput({ tags: { 'owner/team': 'x' } }));
    expect(badTag).toMatchObject({ kind: 'bad_request', code: 'invalid_value' });
    expect(badTag.message).toContain('a tag name is 1 to 64 letters, digits, _ . : or -');
    expect(updateKeyInput({ metadata: { 'owner/team': 'x' }, tags: { 'cost.center:eu-1': 'x' } })).toEqual({ metadata: { 'owner/team': 'x' }, tags: { 'cost.center:eu-1': 'x' } });
  });

  it('explains why where a key sits, and its secret, cannot be changed', () => {
    expect(refusal(() => updateKeyInput({ project: 'other', name: 'x' }))).toMatchObject({ kind: 'bad_request', param: 'project', code: 'immutable_field' });
    expect(refusal(() => updateKeyInput({ org: 'other' })).message).toContain('Issue a new key');
    expect(refusal(() => updateKeyInput({ key: 'sk-or-v1-x' })).message).toContain('rotate');
  });

  it('reads a rotation: a grace of 0 to 7 days, a day by default', () => {
    expect(parseInput(rotateKeyBody, undefined)).toEqual({ grace_seconds: 86_400 });
    expect(parseInput(rotateKeyBody, { grace_seconds: 0 })).toEqual({ grace_seconds: 0 });
    expect(parseInput(rotateKeyBody, { grace_seconds: 604_800 })).toEqual({ grace_seconds: 604_800 });
    for (const grace_seconds of [-1, 604_801, 1.5, '60']) expect(refusal(() => parseInput(rotateKeyBody, { grace_seconds }))).toMatchObject({ param: 'grace_seconds', code: 'invalid_value' });
  });
});
