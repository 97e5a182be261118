import OpenAI from 'openai';
import { hashApiKey } from '@openrouter/ingress';
import { apiError } from '../support/api-error';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const SECRET = 'end-user-limits-e2e-secret';
const BOT_KEY = 'sk-or-v1-end-user-limits-bot-key-00000000000000';
const DESK_KEY = 'sk-or-v1-end-user-limits-desk-key-0000000000000';

interface Json {
  [key: string]: unknown;
}

/*
 * A chat application serving many people with one key: each person (its end user, sent as
 * `x-openrouter-user` or OpenAI's `user`) has a limit of their own, so one of them cannot use up
 * what the application has for all.
 */
describe('end-user rate limits', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = {
          ...(doc['access'] as object),
          keyHashSecret: SECRET,
          rateLimits: { endUser: { rpm: 50 } },
          orgs: [
            { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
            { id: 'chatco', teams: [{ id: 'apps', projects: [{ id: 'bot', endUserLimits: { rpm: 2 } }, { id: 'desk' }] }] },
          ],
          keys: [
            { id: 'bot', hash: hashApiKey(SECRET, BOT_KEY), org: 'chatco', project: 'bot' },
            { id: 'desk', hash: hashApiKey(SECRET, DESK_KEY), org: 'chatco', project: 'desk' },
          ],
        };
      },
    });
  }, 120_000);
  afterAll(async () => gw?.close());

  const ask = (apiKey: string, user?: string, headers: Record<string, string> = {}) =>
    new OpenAI({ baseURL: gw.baseURL, apiKey, maxRetries: 0, defaultHeaders: headers }).chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...(user === undefined ? {} : { user }) })
      .withResponse();

  it("limits each end user of a project on its own, whichever way the user is named, and leaves the others and the key's own traffic alone", async () => {
    // The project's 2 a minute: the body's user and the header name the same person.
    const first = await ask(BOT_KEY, 'alice');
    expect(first.response.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    await ask(BOT_KEY, undefined, { 'x-openrouter-user': 'alice' });
    const third = await apiError(() => ask(BOT_KEY, 'alice'));
    expect(third).toBeInstanceOf(OpenAI.RateLimitError);
    expect(third.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });
    expect(third.message).toContain('on the end user (x-openrouter-user or user) in project chatco/bot: limit 2');
    // The user's own id is not echoed: it may be an e-mail address.
    expect(third.message).not.toContain('alice');
    expect(Number(third.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // Another person, and requests that name no end user, still go through.
    expect((await ask(BOT_KEY, 'bob')).response.status).toBe(200);
    expect((await ask(BOT_KEY)).response.status).toBe(200);
    // Another project of the organisation counts its own users, under the default (50 a minute).
    const desk = await ask(DESK_KEY, 'alice');
    expect(desk.response.headers.get('x-ratelimit-limit-requests')).toBe('50');
  });

  it('shows a key the limits each of its end users has (GET /v1/key)', async () => {
    const shown = await new OpenAI({ baseURL: gw.baseURL, apiKey: BOT_KEY, maxRetries: 0 }).get<Json>('/key');
    expect(shown).toMatchObject({ limits: { end_user: { rpm: 2, tpm: null } } });
  });

  it('sets and changes end-user limits of tenants added at run time through the admin API', async () => {
    const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> => {
      const response = await fetch(`${gw.url}/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, json: (await response.json()) as Json };
    };
    const created = await admin('POST', '/tenants', { id: 'newco', end_user_limits: { rpm: 1 } });
    expect(created).toMatchObject({ status: 201, json: { end_user_limits: { rpm: 1, tpm: null } } });
    const issued = await admin('POST', '/keys', { org: 'newco' });
    const key = String(issued.json['key']);
    await ask(key, 'carol');
    expect((await apiError(() => ask(key, 'carol'))).message).toContain('in organisation newco: limit 1');

    const patched = await admin('PATCH', '/tenants/newco', { end_user_limits: { rpm: 3 } });
    expect(patched).toMatchObject({ status: 200, json: { end_user_limits: { rpm: 3, tpm: null } } });
    // The next request is judged by the new limit (one already spent keeps its place in the window).
    for (let i = 0; i < 3; i++) expect((await ask(key, 'dave')).response.status).toBe(200);
    expect((await apiError(() => ask(key, 'dave'))).message).toContain('in organisation newco: limit 3');
    const audit = await admin('GET', '/audit?action=org.update&limit=1');
    expect((audit.json['data'] as Json[])[0]).toMatchObject({ target: 'newco', details: { changes: { end_user_limits: { from: { rpm: 1, tpm: null }, to: { rpm: 3, tpm: null } } } } });
    expect((await admin('PATCH', '/tenants/newco', { end_user_limits: { rpm: 0 } })).status).toBe(400);
  });
});
