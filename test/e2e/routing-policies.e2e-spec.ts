import OpenAI from 'openai';
import WebSocket from 'ws';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

/** A provider on the simulator with a residency label; each says who it is in a header the simulator records. */
const provider = (id: string, residency: string, baseUrl: string): Record<string, unknown> => ({ type: 'openai', baseUrl, apiKey: 'sim-secret-key', residency, headers: { 'x-sim-provider': id }, timeoutMs: 10_000 });

describe('data-residency and provider policies end to end', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        const simulated = (doc['providers'] as Record<string, { baseUrl: string }>)['simulated'];
        const baseUrl = simulated?.baseUrl ?? '';
        doc['providers'] = { ...(doc['providers'] as object), 'sim-us': provider('sim-us', 'us', baseUrl), 'sim-eu': provider('sim-eu', 'eu', baseUrl), 'sim-eu-b': provider('sim-eu-b', 'eu', baseUrl) };
        doc['models'] = [
          ...(doc['models'] as unknown[]),
          {
            id: 'chat',
            // The US deployment is far cheaper, and listed first; of the EU ones, `chat-eu` is the cheaper.
            pricing: { input: '5', output: '15', deployments: { 'chat-us': { input: '0.01', output: '0.01' }, 'chat-eu': { input: '1', output: '1' } } },
            deployments: [
              { id: 'chat-us', provider: 'sim-us', model: 'chat-us-up' },
              { id: 'chat-eu', provider: 'sim-eu', model: 'chat-eu-up' },
              { id: 'chat-eu-b', provider: 'sim-eu-b', model: 'chat-eu-b-up' },
            ],
          },
          { id: 'us-only', deployments: [{ id: 'us-only-us', provider: 'sim-us', model: 'us-only-up' }] },
          { id: 'embed-us', capabilities: ['embeddings'], deployments: [{ id: 'embed-us-1', provider: 'sim-us', model: 'embed-us-up' }] },
        ];
        doc['routing'] = { ...(doc['routing'] as object), defaults: { strategy: 'cost' }, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 } };
        doc['access'] = {
          ...(doc['access'] as object),
          orgs: [
            { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
            { id: 'acme-eu', policy: { residency: ['eu'] }, teams: [{ id: 'research', projects: [{ id: 'papers' }] }] },
            // Kept on the cheap US provider, under a budget that its price fits and the dearest deployment's does not.
            { id: 'thrift', policy: { providers: ['sim-us'] }, teams: [{ id: 'ops', projects: [{ id: 'batch' }] }] },
          ],
        };
        doc['budgets'] = { ...(doc['budgets'] as object), list: [{ id: 'thrift-daily', scope: { org: 'thrift' }, period: 'daily', amount: '0.0001', enforcement: 'hard' }] };
      },
    });
  }, 120_000);
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  async function admin(method: string, path: string, body?: unknown): Promise<Answer> {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  async function keyFor(body: Record<string, unknown>): Promise<{ id: string; client: OpenAI }> {
    const issued = await admin('POST', '/keys', body);
    expect(issued.status).toBe(201);
    return { id: issued.json['id'] as string, client: gw.client({ apiKey: issued.json['key'] as string }) };
  }

  async function ask(client: OpenAI, model = 'chat'): Promise<Headers> {
    const { response } = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }).withResponse();
    return response.headers;
  }

  /** Which simulated providers the simulator saw calls from since the last reset. */
  const callers = (): string[] => [...new Set(gw.sim.requests().map((r) => r.headers['x-sim-provider'] ?? ''))];

  it("reserves a hard budget at the prices of the deployments the tenant's policy permits, not the dearest one it may never reach", async () => {
    // At chat's dearest price (5 and 15 a million tokens, chat-eu-b) the worst case of this request
    // is about 0.00017, over the 0.0001 budget; on sim-us (0.01 a million) it is 0.000001.
    const { client } = await keyFor({ org: 'thrift', project: 'batch' });
    const headers = await ask(client);
    expect(headers.get('x-openrouter-provider')).toBe('sim-us');
    const budget = await admin('GET', '/budgets/thrift-daily');
    expect(budget.status).toBe(200);
    expect(Number(budget.json['spent'])).toBeGreaterThan(0);
    expect(Number(budget.json['spent'])).toBeLessThan(0.0001);
  });

  it("serves an EU organisation's key only from the EU, even when the US deployment is cheaper and first, and when an EU one fails over", async () => {
    // Without a policy, the cheaper US deployment serves.
    expect((await ask(gw.client())).get('x-openrouter-provider')).toBe('sim-us');
    gw.sim.reset();

    const { client } = await keyFor({ org: 'acme-eu', project: 'papers' });
    const headers = await ask(client);
    expect(headers.get('x-openrouter-provider')).toBe('sim-eu');
    expect(callers()).toEqual(['sim-eu']);

    gw.sim.reset();
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, model: 'chat-eu-up' }] });
    const failedOver = await ask(client);
    expect(failedOver.get('x-openrouter-deployment')).toBe('chat-eu-b');
    expect(failedOver.get('x-openrouter-attempts')).toBe('2');
    // The failing EU deployment, then the other EU one: never the US one.
    expect(gw.sim.requests().map((r) => r.model)).toEqual(['chat-eu-up', 'chat-eu-b-up']);
    expect(callers()).toEqual(['sim-eu', 'sim-eu-b']);
  });

  it('refuses a model with no permitted deployment before any provider call, in OpenAI\'s format', async () => {
    const { client } = await keyFor({ org: 'acme-eu' });
    const refused = await client.chat.completions.create({ model: 'us-only', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.NotFoundError);
    const error = refused as InstanceType<typeof OpenAI.NotFoundError>;
    expect(error.status).toBe(404);
    expect(error.error).toMatchObject({ type: 'invalid_request_error', code: 'no_permitted_deployment', param: 'model' });
    expect(error.message).toContain('data-residency policy (allowed residency: eu)');
    const embeddings = await client.embeddings.create({ model: 'embed-us', input: 'hi' }).catch((e: unknown) => e);
    expect(embeddings).toMatchObject({ status: 404, code: 'no_permitted_deployment' });
    expect(gw.sim.requests()).toEqual([]);
  });

  it('holds a WebSocket to the policy, a change included from its next request on', async () => {
    expect((await admin('POST', '/tenants', { id: 'initech' })).status).toBe(201);
    const issued = await admin('POST', '/keys', { org: 'initech' });
    const socket = new WebSocket(`${gw.url.replace(/^http/, 'ws')}/v1/ws`, ['openrouter.v1'], { headers: { authorization: `Bearer ${issued.json['key'] as string}` } });
    const frames: Array<{ type: string; id: string | null; headers?: Record<string, string>; error?: { error?: { code?: string } } }> = [];
    socket.on('message', (data) => frames.push(JSON.parse(data.toString()) as (typeof frames)[number]));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    /** The frame that ends the request `id`: its completion, or its error. */
    const answer = async (id: string, model = 'chat') => {
      socket.send(JSON.stringify({ type: 'chat.completions', id, body: { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 } }));
      return waitFor(async () => frames.find((f) => f.id === id && (f.type === 'completion' || f.type === 'error')), { timeoutMs: 10_000, intervalMs: 20, what: `the answer to ${id}` });
    };
    try {
      expect((await answer('a')).headers?.['x-openrouter-provider']).toBe('sim-us');
      expect((await admin('PATCH', '/tenants/initech', { policy: { residency: ['eu'] } })).status).toBe(200);
      expect((await answer('b')).headers?.['x-openrouter-provider']).toBe('sim-eu');
      expect((await answer('c', 'us-only')).error?.error?.code).toBe('no_permitted_deployment');
    } finally {
      socket.close();
    }
  });

  it("holds an open WebSocket to a PATCH of its key from its next request on: allowed models, policy and limits, as HTTP's next request", async () => {
    const issued = await admin('POST', '/keys', { org: 'default' });
    const id = issued.json['id'] as string;
    const socket = new WebSocket(`${gw.url.replace(/^http/, 'ws')}/v1/ws`, ['openrouter.v1'], { headers: { authorization: `Bearer ${issued.json['key'] as string}` } });
    const frames: Array<{ type: string; id: string | null; headers?: Record<string, string>; error?: { error?: { code?: string } } }> = [];
    socket.on('message', (data) => frames.push(JSON.parse(data.toString()) as (typeof frames)[number]));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const answer = async (frameId: string, model = 'chat') => {
      socket.send(JSON.stringify({ type: 'chat.completions', id: frameId, body: { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 } }));
      return waitFor(async () => frames.find((f) => f.id === frameId && (f.type === 'completion' || f.type === 'error')), { timeoutMs: 10_000, intervalMs: 20, what: `the answer to ${frameId}` });
    };
    try {
      expect((await answer('a')).headers?.['x-openrouter-provider']).toBe('sim-us');
      expect((await admin('PATCH', `/keys/${id}`, { allowed_models: ['us-only'] })).status).toBe(200);
      expect((await answer('b')).error?.error?.code).toBe('model_not_found');
      expect((await answer('c', 'us-only')).type).toBe('completion');

      expect((await admin('PATCH', `/keys/${id}`, { allowed_models: [], policy: { residency: ['eu'] } })).status).toBe(200);
      expect((await answer('d')).headers?.['x-openrouter-provider']).toBe('sim-eu');

      expect((await admin('PATCH', `/keys/${id}`, { limits: { rpm: 1 } })).status).toBe(200);
      const [e, f] = [await answer('e'), await answer('f')];
      expect(e.type).toBe('completion');
      expect(f.error?.error?.code).toBe('rate_limit_exceeded');
      expect(socket.readyState).toBe(WebSocket.OPEN);
    } finally {
      socket.close();
    }
  });

  it("applies an admin PATCH of a tenant's policy to the next request, and a key's own policy within it", async () => {
    expect((await admin('POST', '/tenants', { id: 'globex' })).status).toBe(201);
    const { id, client } = await keyFor({ org: 'globex' });
    expect((await ask(client)).get('x-openrouter-provider')).toBe('sim-us');

    const patched = await admin('PATCH', '/tenants/globex', { policy: { residency: ['eu'] } });
    expect(patched.status).toBe(200);
    expect(patched.json['policy']).toEqual({ providers: null, exclude_providers: [], residency: ['eu'], guardrails: [], allowed_ips: null, store_responses: null });
    expect((await ask(client)).get('x-openrouter-provider')).toBe('sim-eu');

    // The key narrows it further: one EU provider left out.
    expect((await admin('PATCH', `/keys/${id}`, { policy: { exclude_providers: ['sim-eu'] } })).json['policy']).toEqual({ providers: null, exclude_providers: ['sim-eu'], residency: null, guardrails: [], allowed_ips: null, store_responses: null });
    expect((await ask(client)).get('x-openrouter-deployment')).toBe('chat-eu-b');

    // The explanation shows what the policy left out, and why.
    const explained = await fetch(`${gw.url}/admin/v1/route/explain?key=${id}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const candidates = ((await explained.json()) as { candidates: Array<{ deployment: string; filtered_reason: string }> }).candidates;
    expect(Object.fromEntries(candidates.map((c) => [c.deployment, c.filtered_reason]))).toMatchObject({
      'chat-us': 'excluded by policy: provider sim-us has residency us (allowed residency: eu)',
      'chat-eu': "excluded by policy: provider sim-eu is in the tenant policy's excluded providers",
      'chat-eu-b': '',
    });

    // An unknown provider id is refused with the field named.
    const typo = await admin('PATCH', '/tenants/globex', { policy: { providers: ['sim-eu', 'sim-uk'] } });
    expect(typo.status).toBe(400);
    expect(typo.json['error']).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value', param: 'policy.providers[1]' });

    // Cleared: the cheaper US deployment again (the key's exclusion does not cover it).
    expect((await admin('PATCH', '/tenants/globex', { policy: null })).json['policy']).toBeNull();
    expect((await ask(client)).get('x-openrouter-provider')).toBe('sim-us');
  });
});
