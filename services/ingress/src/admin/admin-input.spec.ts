import { GatewayError } from '@openrouter/errors';
import { issueKeyBody, parseInput } from './admin-input';

describe('parseInput', () => {
  it('names a list entry the way OpenAI names params', () => {
    expect(() => parseInput(issueKeyBody, { org: 'acme', allowed_models: ['gpt-4o', ''] })).toThrow(
      expect.objectContaining({ kind: 'bad_request', param: 'allowed_models[1]', code: 'invalid_value' }) as GatewayError,
    );
  });

  it('names an unknown field', () => {
    expect(() => parseInput(issueKeyBody, { org: 'acme', colour: 'red' })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'colour' }) as GatewayError);
  });
});
