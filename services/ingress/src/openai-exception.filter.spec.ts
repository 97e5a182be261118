import { GatewayError } from '@openrouter/errors';
import { inAdminTerms } from './openai-exception.filter';

describe('inAdminTerms', () => {
  it('gives every admin 404 the code not_found, keeping its message and param', () => {
    const missing = new GatewayError('not_found', 'The project "missing" does not exist in the organisation "acme".', { param: 'project' });
    expect(inAdminTerms('/admin/v1/keys', missing)).toMatchObject({ kind: 'not_found', code: 'not_found', param: 'project', message: missing.message });
  });

  it('keeps a more specific code, and leaves the traffic API and other kinds alone', () => {
    const unknownUrl = new GatewayError('not_found', 'Unknown request URL.', { code: 'unknown_url' });
    expect(inAdminTerms('/admin/v1/nope', unknownUrl).code).toBe('unknown_url');
    const model = new GatewayError('not_found', "The model 'x' does not exist.", { param: 'model' });
    expect(inAdminTerms('/v1/models/x', model).code).toBeUndefined();
    const bad = new GatewayError('bad_request', 'Invalid.', { param: 'id' });
    expect(inAdminTerms('/admin/v1/keys', bad)).toBe(bad);
  });
});
