import { vertexClaudeError, vertexGoogleError } from './vertex-errors';

/** Vertex AI's front-end refusals, in Google's error JSON. */
const google = (code: number, status: string, message: string, details?: unknown[]): string => JSON.stringify({ error: { code, message, status, ...(details ? { details } : {}) } });
const EXPIRED = google(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', [
  { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_EXPIRED', domain: 'googleapis.com' },
]);
const DENIED = google(403, 'PERMISSION_DENIED', "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash'.", [
  { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'IAM_PERMISSION_DENIED', domain: 'aiplatform.googleapis.com' },
]);
const QUOTA = google(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model with base model: gemini-2.5-flash.');
const MISSING = google(404, 'NOT_FOUND', 'Publisher Model `projects/p/locations/us-central1/publishers/anthropic/models/claude-x@1` was not found or your project does not have access to it.');
/** A Claude model's own error, in Anthropic's shape. */
const OVERLOADED = JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
const TOO_LONG = JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long: 210000 tokens > 200000 maximum' } });

describe('Vertex AI errors', () => {
  it('names a refused access token, not an API key, and keeps Google’s text out of the message', () => {
    const error = vertexGoogleError(401, EXPIRED, 'vertex', undefined);
    expect(error).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', retryable: true, upstreamStatus: 401, provider: 'vertex' });
    expect(error.message).toBe('The provider "vertex" rejected the gateway\'s access token.');
    expect(String((error.cause as Error).message)).toContain('ACCESS_TOKEN_EXPIRED');
  });

  it.each([
    ['a missing role', DENIED, 403, { kind: 'permission_denied', code: 'upstream_access_denied', retryable: true }],
    ['a quota', QUOTA, 429, { kind: 'rate_limited', code: 'rate_limit_exceeded', retryAfterMs: 5000 }],
    ['an unknown model', MISSING, 404, { kind: 'not_found', retryable: true }],
    ['an empty 502', '', 502, { kind: 'upstream_error', retryable: true }],
    ['an empty 503', '', 503, { kind: 'unavailable', retryable: true }],
  ])('maps %s as the Gemini family does', (_what, body, status, expected) => {
    expect(vertexGoogleError(status, body, 'vertex', 5000)).toMatchObject({ ...expected, upstreamStatus: status });
  });

  it('reads a Claude error in whichever shape it came: Anthropic’s from the model, Google’s from the front end', () => {
    expect(vertexClaudeError(529, {}, OVERLOADED, 'vertex')).toMatchObject({ kind: 'overloaded', code: 'overloaded' });
    expect(vertexClaudeError(400, {}, TOO_LONG, 'vertex')).toMatchObject({ kind: 'context_length_exceeded' });
    expect(vertexClaudeError(429, { retryAfter: '12' }, QUOTA, 'vertex')).toMatchObject({ kind: 'rate_limited', retryAfterMs: 12_000 });
    expect(vertexClaudeError(401, {}, EXPIRED, 'vertex')).toMatchObject({ kind: 'auth_failed', message: 'The provider "vertex" rejected the gateway\'s access token.' });
    expect(vertexClaudeError(404, {}, MISSING, 'vertex')).toMatchObject({ kind: 'not_found' });
    expect(vertexClaudeError(500, {}, 'upstream connect error', 'vertex')).toMatchObject({ kind: 'upstream_error', upstreamStatus: 500 });
  });
});

describe('Vertex AI errors keep the gateway project out of what clients read', () => {
  it('redacts the project and location Google names in a message', () => {
    const missing = JSON.stringify({ error: { code: 404, status: 'NOT_FOUND', message: 'Publisher Model `projects/acme-prod-4711/locations/europe-west4/publishers/google/models/gemini-x` was not found or your project does not have access to it.' } });
    const error = vertexGoogleError(404, missing, 'vertex', undefined);
    expect(error.kind).toBe('not_found');
    expect(error.message).not.toContain('acme-prod-4711');
    expect(error.message).not.toContain('europe-west4');
    expect(error.message).toContain('projects/…/publishers/google/models/gemini-x');
  });
});
