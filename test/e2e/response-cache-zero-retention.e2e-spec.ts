import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { hashApiKey } from '@openrouter/ingress';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const SECRET = 'cache-zero-retention-e2e-secret';
/** Two keys of the project `vault`, whose policy keeps nothing of its responses, and one of `search`, which keeps as usual. */
const VAULT_KEY = 'sk-or-v1-cache-zr-vault-a-00000000000000';
const VAULT_OTHER_KEY = 'sk-or-v1-cache-zr-vault-b-00000000000000';
const SEARCH_KEY = 'sk-or-v1-cache-zr-search-000000000000000';

/** The `x-openrouter-cache` header of a chat request's `completion` frame on a WebSocket. */
async function socketCacheHeader(url: string, key: string, body: unknown): Promise<string | undefined> {
  const socket = new WebSocket(url, ['openrouter.v1'], { headers: { authorization: `Bearer ${key}` } });
  try {
    return await new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('open', () => socket.send(JSON.stringify({ type: 'chat.completions', id: 'q1', headers: { 'x-openrouter-cache': 'use' }, body })));
      socket.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string; id: string | null; headers?: Record<string, string>; error?: unknown };
        if (frame.id !== 'q1') return;
        if (frame.type === 'completion') resolve(frame.headers?.['x-openrouter-cache']);
        else if (frame.type === 'error') reject(new Error(JSON.stringify(frame.error)));
      });
    });
  } finally {
    socket.close();
  }
}

/**
 * The response cache and zero retention (docs/caching.md, docs/access.md "Keeping nothing of a
 * tenant's responses"): under `cache.mode: always`, or asked for with `x-openrouter-cache`, a request
 * of a tenant whose policy says `storeResponses: false` is neither stored nor answered from the
 * cache, on every cached endpoint; another key of its project is never answered from its answers.
 */
describe('the response cache for a tenant that keeps nothing of its responses', () => {
  let gw: TestGateway;
  const use = { 'x-openrouter-cache': 'use' };

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = {
          keyHashSecret: SECRET,
          admin: { devKey: TEST_ADMIN_KEY },
          orgs: [{ id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'vault', policy: { storeResponses: false } }] }] }],
          keys: [
            { id: 'vault-a', hash: hashApiKey(SECRET, VAULT_KEY), org: 'acme', team: 'platform', project: 'vault' },
            { id: 'vault-b', hash: hashApiKey(SECRET, VAULT_OTHER_KEY), org: 'acme', team: 'platform', project: 'vault' },
            { id: 'search', hash: hashApiKey(SECRET, SEARCH_KEY), org: 'acme', team: 'platform', project: 'search' },
          ],
        };
        doc['cache'] = { enabled: true, mode: 'always', defaultTtlSeconds: 60 };
      },
    });
  }, 120_000);
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  const upstream = (path: string): number => gw.sim.requests().filter((r) => r.path.endsWith(path)).length;
  const tagged = (text: string): string => `${text} (${randomBytes(4).toString('hex')})`;

  it('neither stores nor serves its chat completions, under cache.mode always or asked for, while another project\'s are cached', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: tagged('Name a prime.') }] };
    const vault = gw.client({ apiKey: VAULT_KEY });
    for (const [client, headers] of [[vault, {}], [vault, use], [gw.client({ apiKey: VAULT_OTHER_KEY }), use], [vault, { 'x-openrouter-cache': 'refresh' }], [vault, use]] as const) {
      const answered = await client.chat.completions.create(body, { headers }).withResponse();
      expect(answered.response.headers.get('x-openrouter-cache')).toBe('bypass');
      expect(Number(answered.response.headers.get('x-openrouter-cost'))).toBeGreaterThan(0);
    }
    expect(upstream('/chat/completions')).toBe(5);

    const search = gw.client({ apiKey: SEARCH_KEY });
    expect((await search.chat.completions.create(body).withResponse()).response.headers.get('x-openrouter-cache')).toBe('miss');
    expect((await search.chat.completions.create(body).withResponse()).response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(upstream('/chat/completions')).toBe(6);
  });

  it('bypasses the cache on its other cached endpoints: embeddings, legacy completions, the Responses API and WebSocket chat', async () => {
    const vault = gw.client({ apiKey: VAULT_KEY });
    const input = { model: 'text-embedding-3-small', input: tagged('vectors kept nowhere') };
    const legacy = { model: 'gpt-4o-mini', prompt: tagged('Say one.'), max_tokens: 8 };
    const question = tagged('Name an ocean.');
    for (let i = 0; i < 2; i++) {
      expect((await vault.embeddings.create(input, { headers: use }).withResponse()).response.headers.get('x-openrouter-cache')).toBe('bypass');
      expect((await vault.completions.create(legacy, { headers: use }).withResponse()).response.headers.get('x-openrouter-cache')).toBe('bypass');
      expect((await vault.responses.create({ model: 'gpt-4o-mini', input: question }, { headers: use }).withResponse()).response.headers.get('x-openrouter-cache')).toBe('bypass');
      expect(await socketCacheHeader(`${gw.url.replace('http', 'ws')}/v1/ws`, VAULT_KEY, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: question }] })).toBe('bypass');
    }
    expect(upstream('/embeddings')).toBe(2);
    // Legacy completions, Responses and socket requests all reach the provider's chat endpoint: each one of the six.
    expect(upstream('/chat/completions')).toBe(6);
  });
});
