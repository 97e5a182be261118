import { randomBytes } from 'node:crypto';
import { hashApiKey } from '@openrouter/ingress';
import { apiError } from '../support/api-error';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { freePort } from '../support/ports';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Purging a project's stored Responses-API data through the admin API
 * (docs/admin-api.md, docs/responses-api.md#purging-a-projects-stored-responses): responses and
 * conversations made with the official SDK are gone for every key of the project at once, another
 * project's stay, the purge is audited; and every way it is refused.
 */

const SECRET = 'responses-purge-e2e-secret';
const SEARCH_KEY = 'sk-or-v1-purge-e2e-search-00000000000000';
const ADS_KEY = 'sk-or-v1-purge-e2e-ads-000000000000000000';
const VIEWER_ADMIN_KEY = 'sk-or-admin-purge-e2e-viewer-00000000000';
const PROJECT_ADMIN_KEY = 'sk-or-admin-purge-e2e-project-0000000000';
const PURGE_PATH = '/tenants/acme/teams/platform/projects/search/responses';

type Json = Record<string, unknown>;

function configure(redis: { url: string; keyPrefix: string } | undefined) {
  return (doc: Record<string, unknown>): void => {
    doc['access'] = {
      ...(doc['access'] as object),
      keyHashSecret: SECRET,
      ...(redis ? { redis } : {}),
      admin: {
        devKey: TEST_ADMIN_KEY,
        keys: [
          { id: 'watcher', hash: hashApiKey(SECRET, VIEWER_ADMIN_KEY), role: 'viewer' },
          { id: 'search-admin', hash: hashApiKey(SECRET, PROJECT_ADMIN_KEY), role: 'admin', org: 'acme', project: 'search' },
        ],
      },
      orgs: [
        { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
        { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }] },
      ],
      keys: [
        { id: 'search-1', hash: hashApiKey(SECRET, SEARCH_KEY), prefix: 'sk-or-v1-pur', org: 'acme', project: 'search' },
        { id: 'ads-1', hash: hashApiKey(SECRET, ADS_KEY), prefix: 'sk-or-v1-pur', org: 'acme', project: 'ads' },
      ],
    };
  };
}

/** Polls `condition` until it holds, failing after 10 s. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((done) => setImmediate(done));
  }
}

function adminOf(gw: () => TestGateway) {
  return async (method: string, path: string, key = TEST_ADMIN_KEY): Promise<{ status: number; json: Json }> => {
    const response = await fetch(`${gw().url}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${key}` } });
    return { status: response.status, json: (await response.json()) as Json };
  };
}

describe.each([
  ['in this process', false],
  ['in Redis', true],
])("purging a project's stored responses, kept %s", (_, withRedis) => {
  let gw: TestGateway;
  const admin = adminOf(() => gw);

  beforeAll(async () => {
    gw = await startTestGateway({ configure: configure(withRedis ? { url: sharedRedisUrl(), keyPrefix: `purge-e2e-${randomBytes(4).toString('hex')}:` } : undefined) });
  });
  afterAll(async () => gw?.close());

  it("deletes every stored response and conversation of the project for all its keys, leaves another project's, and audits it", async () => {
    const search = gw.client({ apiKey: SEARCH_KEY });
    const ads = gw.client({ apiKey: ADS_KEY });
    const first = await search.responses.create({ model: 'gpt-4o-mini', input: 'Name a colour.' });
    const second = await search.responses.create({ model: 'gpt-4o-mini', input: 'Another?', previous_response_id: first.id });
    const conversation = await search.conversations.create({ items: [{ type: 'message', role: 'user', content: 'I like blue.' }] });
    const kept = await ads.responses.create({ model: 'gpt-4o-mini', input: 'Keep me.' });
    const keptConversation = await ads.conversations.create({ metadata: { topic: 'kept' } });
    // Stored chat completions go with them (docs/chat-completions-store.md); each is kept once its answer was sent.
    const completion = await search.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Purge me.' }], store: true });
    const keptCompletion = await ads.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Keep me.' }], store: true });
    await until(async () => (await search.chat.completions.list()).data.length === 1 && (await ads.chat.completions.list()).data.length === 1);

    const purged = await admin('DELETE', PURGE_PATH);
    expect(purged).toEqual({ status: 200, json: { object: 'responses.purge', org: 'acme', team: 'platform', project: 'search', responses_deleted: 2, conversations_deleted: 1, chat_completions_deleted: 1 } });
    for (const gone of [() => search.responses.retrieve(first.id), () => search.responses.retrieve(second.id), () => search.conversations.retrieve(conversation.id), () => search.chat.completions.retrieve(completion.id)]) {
      expect((await apiError(gone)).status).toBe(404);
    }
    expect((await apiError(() => search.responses.create({ model: 'gpt-4o-mini', input: 'Go on.', previous_response_id: second.id }))).status).toBe(404);
    expect((await ads.responses.retrieve(kept.id)).id).toBe(kept.id);
    expect((await ads.conversations.retrieve(keptConversation.id)).metadata).toEqual({ topic: 'kept' });
    expect((await ads.chat.completions.retrieve(keptCompletion.id)).id).toBe(keptCompletion.id);

    // Audited with what it deleted; a second purge finds nothing, and the project stores anew.
    const audit = await admin('GET', '/audit?target=search&limit=1');
    expect((audit.json['data'] as Json[])[0]).toMatchObject({ actor: 'dev-admin', action: 'project.responses_purge', details: { org: 'acme', team: 'platform', project: 'search', responses_deleted: 2, conversations_deleted: 1, chat_completions_deleted: 1, role: 'admin' } });
    expect((await admin('DELETE', PURGE_PATH)).json).toMatchObject({ responses_deleted: 0, conversations_deleted: 0, chat_completions_deleted: 0 });
    const later = await search.responses.create({ model: 'gpt-4o-mini', input: 'Fresh start.' });
    expect((await search.responses.retrieve(later.id)).id).toBe(later.id);
  });

  it('answers 404 for an unknown project, team or org, and refuses a role or scope that may not change projects', async () => {
    for (const path of ['/tenants/acme/teams/platform/projects/nope/responses', '/tenants/acme/teams/nope/projects/search/responses', '/tenants/nope/teams/platform/projects/search/responses']) {
      expect(await admin('DELETE', path)).toMatchObject({ status: 404, json: { error: { type: 'invalid_request_error', code: 'not_found' } } });
    }
    expect(await admin('DELETE', PURGE_PATH, VIEWER_ADMIN_KEY)).toMatchObject({ status: 403, json: { error: { code: 'insufficient_role' } } });
    expect(await admin('DELETE', PURGE_PATH, PROJECT_ADMIN_KEY)).toMatchObject({ status: 403, json: { error: { code: 'insufficient_scope' } } });
    expect(await admin('DELETE', PURGE_PATH, 'sk-or-admin-wrong')).toMatchObject({ status: 401 });
  });
});

describe("purging a project's stored responses while Redis cannot be reached", () => {
  let gw: TestGateway;
  const admin = adminOf(() => gw);

  beforeAll(async () => {
    // Nothing listens there: every store the gateway keeps in Redis fails.
    gw = await startTestGateway({ configure: configure({ url: `redis://127.0.0.1:${await freePort()}`, keyPrefix: 'purge-e2e-down:' }) });
  });
  afterAll(async () => gw?.close());

  it("answers 503 in OpenAI's error format, and writes nothing", async () => {
    expect(await admin('DELETE', PURGE_PATH)).toMatchObject({ status: 503, json: { error: { code: 'response_store_unavailable', message: expect.any(String) } } });
  });
});
