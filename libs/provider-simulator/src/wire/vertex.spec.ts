import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { request } from 'undici';
import { type RunningSimulator, startSimulator } from '../index';

const EMAIL = 'gateway@sim-project.iam.gserviceaccount.com';
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const PREFIX = '/v1/projects/sim-project/locations/us-central1/publishers';
const USER = { role: 'user', parts: [{ text: 'Hello there' }] };

const pair = (): { publicPem: string; privateKey: KeyObject } => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey };
};
const ACCOUNT = pair();

function jwt(claims: Record<string, unknown>, key: KeyObject = ACCOUNT.privateKey, alg = 'RS256'): string {
  const head = Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${head}.${body}.${sign('RSA-SHA256', Buffer.from(`${head}.${body}`), key).toString('base64url')}`;
}

/** Google's OAuth token endpoint, its metadata server and Vertex AI's prediction routes, over raw HTTP. */
describe('Vertex AI and Google OAuth wire formats over HTTP', () => {
  let sim: RunningSimulator;
  const now = (): number => Math.floor(Date.now() / 1000);
  const claims = (more: Record<string, unknown> = {}): Record<string, unknown> => ({ iss: EMAIL, scope: SCOPE, aud: `${sim.url}/token`, iat: now(), exp: now() + 3600, ...more });

  beforeAll(async () => {
    sim = await startSimulator({ googleServiceAccounts: [{ clientEmail: EMAIL, publicKey: ACCOUNT.publicPem }] });
  });
  afterEach(() => sim.reset());
  afterAll(() => sim.close());

  const send = async (method: 'GET' | 'POST', path: string, body: string | undefined, headers: Record<string, string>) => {
    const response = await request(`${sim.url}${path}`, { method, headers, body });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };
  const token = (assertion: string, grantType = GRANT) => send('POST', '/token', new URLSearchParams({ grant_type: grantType, assertion }).toString(), { 'content-type': 'application/x-www-form-urlencoded' });
  const accessToken = async (): Promise<string> => String((await token(jwt(claims()))).json()['access_token']);
  const vertex = (path: string, body: unknown, bearer?: string) =>
    send('POST', `${PREFIX}/${path}`, JSON.stringify(body), { 'content-type': 'application/json', ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }) });
  const claude = (bearer: string, body: Record<string, unknown> = {}, method = 'rawPredict') =>
    vertex(`anthropic/models/claude-sonnet-4-5@20250929:${method}`, { anthropic_version: 'vertex-2023-10-16', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }], ...body }, bearer);

  describe('the token endpoint', () => {
    it('exchanges a signed assertion for a token with the configured lifetime, logging no credential', async () => {
      const answer = await token(jwt(claims()));
      expect(answer.status).toBe(200);
      expect(answer.json()).toEqual({ access_token: expect.stringMatching(/^ya29\.sim-\w{40}$/), expires_in: 3600, token_type: 'Bearer' });
      sim.configure({ accessTokenExpiresInSeconds: 120 });
      expect((await token(jwt(claims()))).json()['expires_in']).toBe(120);
      expect(sim.requests()[0]?.body).toEqual({ grant_type: GRANT, assertion: 'present' });
    });

    it.each([
      ['a signature by another key', () => jwt(claims(), pair().privateKey), 'invalid_grant', 'Invalid JWT Signature.'],
      ['an unknown account', () => jwt(claims({ iss: 'someone@else.iam.gserviceaccount.com' })), 'invalid_grant', 'Invalid grant: account not found'],
      ['another audience', () => jwt(claims({ aud: 'https://oauth2.googleapis.com/token' })), 'invalid_grant', expect.stringContaining('Failed audience check')],
      ['an expired assertion', () => jwt(claims({ iat: now() - 7200, exp: now() - 3600 })), 'invalid_grant', expect.stringContaining('short-lived token')],
      ['an assertion for longer than an hour', () => jwt(claims({ exp: now() + 7200 })), 'invalid_grant', expect.stringContaining('short-lived token')],
      ['no cloud-platform scope', () => jwt(claims({ scope: 'https://www.googleapis.com/auth/userinfo.email' })), 'invalid_scope', expect.any(String)],
      ['another algorithm', () => jwt(claims(), ACCOUNT.privateKey, 'HS256'), 'invalid_grant', expect.stringContaining('RS256')],
      ['no JWT at all', () => 'not-a-jwt', 'invalid_grant', expect.stringContaining('malformed')],
    ])('refuses %s with 400', async (_what, assertion, error, description) => {
      const answer = await token(assertion());
      expect(answer.status).toBe(400);
      expect(answer.json()).toEqual({ error, error_description: description });
    });

    it('refuses another grant type', async () => {
      const answer = await token(jwt(claims()), 'client_credentials');
      expect(answer.json()).toMatchObject({ error: 'unsupported_grant_type' });
    });

    it('trusts an account added through the control route, until reset', async () => {
      const other = pair();
      const assertion = jwt(claims({ iss: 'late@sim-project.iam.gserviceaccount.com' }), other.privateKey);
      expect((await token(assertion)).status).toBe(400);
      const added = await send('POST', '/_sim/google/service-accounts', JSON.stringify({ clientEmail: 'late@sim-project.iam.gserviceaccount.com', publicKey: other.publicPem }), { 'content-type': 'application/json' });
      expect(added.status).toBe(200);
      expect((await token(assertion)).status).toBe(200);
      sim.reset();
      expect((await token(assertion)).status).toBe(400);
      const bad = await send('POST', '/_sim/google/service-accounts', JSON.stringify({ clientEmail: 'x', publicKey: 'nope' }), {});
      expect(bad.status).toBe(400);
    });
  });

  describe('the metadata server', () => {
    it('issues the default service account’s token only with Metadata-Flavor: Google', async () => {
      const path = '/computeMetadata/v1/instance/service-accounts/default/token';
      expect((await send('GET', path, undefined, {})).status).toBe(403);
      const answer = await send('GET', path, undefined, { 'metadata-flavor': 'Google' });
      expect(answer.status).toBe(200);
      const issued = String(answer.json()['access_token']);
      expect((await vertex('google/models/gemini-2.5-flash:generateContent', { contents: [USER] }, issued)).status).toBe(200);
    });
  });

  describe('the prediction routes', () => {
    it('answers 401 UNAUTHENTICATED without a bearer token and for an expired one', async () => {
      const missing = await vertex('google/models/gemini-2.5-flash:generateContent', { contents: [USER] });
      expect(missing.status).toBe(401);
      expect(missing.json()['error']).toMatchObject({ code: 401, status: 'UNAUTHENTICATED', details: [{ reason: 'CREDENTIALS_MISSING' }] });
      const issued = await accessToken();
      expect((await vertex('google/models/gemini-2.5-flash:generateContent', { contents: [USER] }, issued)).status).toBe(200);
      await send('POST', '/_sim/google/expire-tokens', undefined, {});
      const expired = await vertex('google/models/gemini-2.5-flash:generateContent', { contents: [USER] }, issued);
      expect(expired.status).toBe(401);
      expect(expired.json()['error']).toMatchObject({ status: 'UNAUTHENTICATED', details: [{ reason: 'ACCESS_TOKEN_EXPIRED' }] });
    });

    it('takes only the static key as an unknown token once the simulator has one', async () => {
      const keyed = await startSimulator({ apiKey: 'ya29.static' });
      try {
        const call = (bearer: string) => request(`${keyed.url}${PREFIX}/google/models/gemini-2.5-flash:generateContent`, { method: 'POST', headers: { authorization: `Bearer ${bearer}` }, body: JSON.stringify({ contents: [USER] }) });
        expect((await call('ya29.static')).statusCode).toBe(200);
        expect((await call('ya29.other')).statusCode).toBe(401);
      } finally {
        await keyed.close();
      }
    });

    it('serves Gemini’s JSON and SSE for publisher google', async () => {
      const issued = await accessToken();
      const answer = await vertex('google/models/gemini-2.5-flash:generateContent', { contents: [USER] }, issued);
      expect(answer.json()).toMatchObject({ candidates: [{ finishReason: 'STOP' }], modelVersion: 'gemini-2.5-flash' });
      const stream = await send('POST', `${PREFIX}/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, JSON.stringify({ contents: [USER] }), { authorization: `Bearer ${issued}` });
      expect(stream.status).toBe(200);
      expect(stream.headers['content-type']).toBe('text/event-stream');
    });

    it('counts a Gemini stream’s usage on its last event only: an empty usageMetadata first, none between', async () => {
      const issued = await accessToken();
      const whole = (await vertex('google/models/gemini-2.5-flash:generateContent', { contents: [USER] }, issued)).json();
      const stream = await send('POST', `${PREFIX}/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, JSON.stringify({ contents: [USER] }), { authorization: `Bearer ${issued}` });
      const events = stream.text
        .split('\r\n\r\n')
        .filter((e) => e.startsWith('data: '))
        .map((e) => JSON.parse(e.slice('data: '.length)) as Record<string, unknown>);
      expect(events.length).toBeGreaterThan(2);
      expect(events.map((e) => e['usageMetadata'])).toEqual([{}, ...events.slice(1, -1).map(() => undefined), whole['usageMetadata']]);
    });

    it('serves Claude with anthropic_version in the body and the model in the URL, streamed or not', async () => {
      const issued = await accessToken();
      const answer = await claude(issued);
      expect(answer.status).toBe(200);
      expect(answer.json()).toMatchObject({ type: 'message', model: 'claude-sonnet-4-5@20250929', stop_reason: 'end_turn' });
      const streamed = await claude(issued, { stream: true }, 'streamRawPredict');
      expect(streamed.status).toBe(200);
      expect(streamed.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    });

    it.each([
      ['no anthropic_version', { anthropic_version: undefined }, 'rawPredict', /anthropic_version/],
      ['a model in the body', { model: 'claude-sonnet-4-5' }, 'rawPredict', /model: Extra inputs/],
      ['stream: true to rawPredict', { stream: true }, 'rawPredict', /stream/],
      ['no stream to streamRawPredict', {}, 'streamRawPredict', /stream/],
    ])('refuses a Claude body with %s in Anthropic’s shape', async (_what, body, method, message) => {
      const answer = await claude(await accessToken(), body, method);
      expect(answer.status).toBe(400);
      expect(answer.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringMatching(message) } });
    });

    it('embeds through :predict with Vertex’s statistics, one instance only for Gemini’s embedding model', async () => {
      const issued = await accessToken();
      const answer = await vertex('google/models/text-embedding-005:predict', { instances: [{ content: 'alpha beta', task_type: 'RETRIEVAL_QUERY' }, { content: 'gamma' }], parameters: { outputDimensionality: 8 } }, issued);
      expect(answer.status).toBe(200);
      const predictions = answer.json()['predictions'] as Array<{ embeddings: { values: number[]; statistics: { token_count: number; truncated: boolean } } }>;
      expect(predictions.map((p) => [p.embeddings.values.length, p.embeddings.statistics.truncated])).toEqual([
        [8, false],
        [8, false],
      ]);
      expect(predictions[0]?.embeddings.statistics.token_count).toBeGreaterThan(0);
      const two = await vertex('google/models/gemini-embedding-001:predict', { instances: [{ content: 'a' }, { content: 'b' }] }, issued);
      expect(two.status).toBe(400);
      expect(two.json()['error']).toMatchObject({ status: 'INVALID_ARGUMENT' });
      const unknown = await vertex('google/models/text-embedding-005:predict', { instances: [{ text: 'a' }] }, issued);
      expect(unknown.status).toBe(400);
      expect((await vertex('anthropic/models/claude-sonnet-4-5:predict', { instances: [{ content: 'a' }] }, issued)).status).toBe(400);
    });

    it('refuses a method the publisher does not serve', async () => {
      const answer = await vertex('google/models/gemini-2.5-flash:rawPredict', {}, await accessToken());
      expect(answer.status).toBe(400);
    });

    it('answers faults in Google’s shape for the front end and Anthropic’s for Claude’s own errors', async () => {
      const issued = await accessToken();
      sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 3, remaining: 1 }] });
      const quota = await claude(issued);
      expect(quota.status).toBe(429);
      expect(quota.headers['retry-after']).toBe('3');
      expect(quota.json()['error']).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED' });
      sim.configure({ faults: [{ kind: 'http_error', status: 529, remaining: 1 }] });
      expect((await claude(issued)).json()).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
      sim.configure({ faults: [{ kind: 'http_error', status: 500, remaining: 1 }] });
      expect((await vertex('google/models/gemini-2.5-flash:generateContent', { contents: [USER] }, issued)).json()['error']).toMatchObject({ code: 500, status: 'INTERNAL' });
    });
  });
});
