import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { waitFor } from '../support/infra/wait-for';
import { apiError } from '../support/api-error';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/*
 * The gateway behind a load balancer: this test process is that balancer (ingress trusts
 * 127.0.0.1 and ::1), so each client's address is the `X-Forwarded-For` it sends.
 */

interface Json {
  [key: string]: unknown;
}

const OFFICE = '198.51.100.7';
const ELSEWHERE = '203.0.113.9';
const ADMIN_NETWORK = '10.9.0.4';

describe('network allow lists', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['ingress'] = { ...(doc['ingress'] as object), trustedProxies: ['127.0.0.1', '::1'] };
        const access = doc['access'] as Record<string, unknown>;
        doc['access'] = { ...access, admin: { ...(access['admin'] as object), allowedIps: ['10.9.0.0/16', '2001:db8:9::/48'] } };
      },
    });
  }, 120_000);
  afterAll(async () => gw?.close());

  async function admin(method: string, path: string, body?: unknown, from = ADMIN_NETWORK): Promise<{ status: number; json: Json }> {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'x-forwarded-for': from, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Json };
  }

  /** The official SDK, as an application at `from` uses it. */
  function client(apiKey: string, from: string): OpenAI {
    return new OpenAI({ baseURL: gw.baseURL, apiKey, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': from } });
  }

  const ask = (openai: OpenAI) => openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });

  async function metric(api: string): Promise<number> {
    const ingress = gw.gateway.services.find((s) => s.name === 'ingress');
    if (!ingress) throw new Error('no ingress service');
    const text = await (await fetch(`http://127.0.0.1:${ingress.httpPort}/metrics`)).text();
    // The series carry the service's own label too: `{api="v1",service="ingress"}`.
    const line = text.split('\n').find((l) => l.startsWith('openrouter_address_refused_requests_total{') && l.includes(`api="${api}"`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  let orgKey = '';
  let keyId = '';

  it('serves a key from the addresses its organisation allows and refuses it from any other with 403 ip_not_allowed, on every endpoint', async () => {
    expect((await admin('POST', '/tenants', { id: 'netco', policy: { allowed_ips: ['198.51.100.0/24', '2001:db8::/32'] } })).status).toBe(201);
    const issued = await admin('POST', '/keys', { name: 'office', org: 'netco' });
    expect(issued.status).toBe(201);
    orgKey = String(issued.json['key']);
    keyId = String(issued.json['id']);
    const refusedBefore = await metric('v1');

    const answer = await ask(client(orgKey, OFFICE));
    expect(answer.choices[0]?.message.content).toBeTruthy();
    expect((await ask(client(orgKey, '2001:db8::17'))).choices).toHaveLength(1);

    const outside = client(orgKey, ELSEWHERE);
    const chat = await apiError(() => ask(outside));
    expect(chat).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(chat.status).toBe(403);
    expect(chat.error).toMatchObject({ type: 'permission_error', code: 'ip_not_allowed', message: `This API key may not be used from the address ${ELSEWHERE}: it is not in its organisation's allowed_ips.` });
    const stream = await apiError(async () => {
      for await (const _ of await outside.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true })) void _;
    });
    expect(stream.status).toBe(403);
    expect((await apiError(() => outside.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }))).status).toBe(403);
    expect((await apiError(() => outside.responses.create({ model: 'gpt-4o-mini', input: 'hi' }))).status).toBe(403);
    expect((await apiError(() => outside.models.list())).status).toBe(403);
    expect((await apiError(() => outside.get('/key'))).status).toBe(403);
    // Anthropic's SDK gets Anthropic's error shape.
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: orgKey, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': ELSEWHERE } });
    const messages = await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(messages).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect((messages as InstanceType<typeof Anthropic.PermissionDeniedError>).error).toMatchObject({ type: 'error', error: { type: 'permission_error' } });

    await waitFor(async () => (await metric('v1')) === refusedBefore + 7, { what: 'seven refusals counted' });
  });

  it('shows the key where it is called from and the lists it must pass (GET /v1/key)', async () => {
    await expect(client(orgKey, OFFICE).get('/key')).resolves.toMatchObject({ network: { client_ip: OFFICE, allowed_ips: [{ level: 'org', ranges: ['198.51.100.0/24', '2001:db8::/32'] }] } });
  });

  it('applies a key allow list and an organisation change made at run time, and a client cannot pass for another address', async () => {
    expect((await admin('PATCH', `/keys/${keyId}`, { policy: { allowed_ips: ['198.51.100.0/28'] } })).status).toBe(200);
    // In the organisation's range, out of the key's own.
    await waitFor(async () => (await apiError(() => ask(client(orgKey, '198.51.100.100'))).catch(() => undefined))?.status === 403, { what: 'the key allow list applied' });
    const own = await apiError(() => ask(client(orgKey, '198.51.100.100')));
    expect(own.error).toMatchObject({ code: 'ip_not_allowed', message: expect.stringContaining('its own allowed_ips') as string });
    expect((await ask(client(orgKey, OFFICE))).choices).toHaveLength(1);
    // A client naming an allowed address before its real one: the real one, appended by the balancer, is the one judged.
    expect((await apiError(() => ask(client(orgKey, `${OFFICE}, ${ELSEWHERE}`)))).error).toMatchObject({ message: expect.stringContaining(ELSEWHERE) as string });

    // The organisation moves its office: the key's list no longer helps.
    expect((await admin('PATCH', '/tenants/netco', { policy: { allowed_ips: ['192.0.2.0/24'] } })).status).toBe(200);
    await waitFor(async () => (await ask(client(orgKey, OFFICE)).then(() => 200, (e: unknown) => (e instanceof OpenAI.APIError ? e.status : 0))) === 403, { what: 'the organisation change applied' });
    expect((await apiError(() => ask(client(orgKey, OFFICE)))).error).toMatchObject({ message: expect.stringContaining("its organisation's allowed_ips") as string });
    // Every level allows nothing but what all allow: both lists now share no address.
    expect((await apiError(() => ask(client(orgKey, '192.0.2.1')))).error).toMatchObject({ message: expect.stringContaining('its own allowed_ips') as string });
    expect((await admin('PATCH', `/keys/${keyId}`, { policy: null })).status).toBe(200);
    await waitFor(async () => (await ask(client(orgKey, '192.0.2.1')).then(() => true, () => false)), { what: 'the key list removed' });
  });

  it('checks an address against a key and its tenants before any client is moved (GET /admin/v1/keys/{id}/network)', async () => {
    const check = async (ip: string) => admin('GET', `/keys/${keyId}/network?ip=${encodeURIComponent(ip)}`);
    // The organisation allows 192.0.2.0/24 now, and the key has no list of its own.
    await expect(check('192.0.2.9')).resolves.toMatchObject({ status: 200, json: { object: 'network_check', key: keyId, ip: '192.0.2.9', allowed: true, refused_by: null, allowed_ips: [{ level: 'org', ranges: ['192.0.2.0/24'] }] } });
    await expect(check('::ffff:198.51.100.7')).resolves.toMatchObject({ status: 200, json: { ip: '198.51.100.7', allowed: false, refused_by: 'org' } });
    for (const bad of ['10.0.0.0/8', 'example.com', '']) {
      await expect(check(bad)).resolves.toMatchObject({ status: 400, json: { error: { type: 'invalid_request_error', param: 'ip' } } });
    }
    await expect(admin('GET', '/keys/key_unknown/network?ip=192.0.2.9')).resolves.toMatchObject({ status: 404 });
  });

  it('refuses a bad allow list with a 400 naming the entry', async () => {
    const bad = await admin('PATCH', '/tenants/netco', { policy: { allowed_ips: ['192.0.2.0/24', '192.0.2.0/99'] } });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: { type: 'invalid_request_error', param: 'policy.allowed_ips[1]' } });
  });

  it('refuses a WebSocket from elsewhere at the upgrade, and closes one whose address a new allow list leaves out', async () => {
    const url = `${gw.url.replace(/^http/, 'ws')}/v1/ws`;
    const open = (from: string) =>
      new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(url, ['openrouter.v1'], { headers: { authorization: `Bearer ${orgKey}`, 'x-forwarded-for': from } });
        socket.once('open', () => resolve(socket));
        socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error('refused'), { status: res.statusCode })));
        socket.once('error', reject);
      });
    await expect(open(ELSEWHERE)).rejects.toMatchObject({ status: 403 });
    const socket = await open('192.0.2.1');
    const frames: Json[] = [];
    socket.on('message', (data) => frames.push(JSON.parse(data.toString()) as Json));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send(JSON.stringify({ type: 'chat.completions', id: 'a', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } }));
    await waitFor(async () => frames.some((f) => f['id'] === 'a' && f['type'] === 'completion'), { what: 'the first answer' });
    // The key is narrowed: its sockets check it again, and this one's address is no longer allowed.
    expect((await admin('PATCH', `/keys/${keyId}`, { policy: { allowed_ips: ['192.0.2.200'] } })).status).toBe(200);
    expect(await closed).toBe(1008);
    expect(frames.find((f) => f['type'] === 'error')).toMatchObject({ status: 403, error: { error: { code: 'ip_not_allowed' } } });
  });

  it('refuses the admin API from outside access.admin.allowedIps, before looking at the credential', async () => {
    const refusedBefore = await metric('admin');
    const outside = await admin('GET', '/keys', undefined, ELSEWHERE);
    expect(outside.status).toBe(403);
    expect(outside.json).toMatchObject({ error: { type: 'permission_error', code: 'ip_not_allowed' } });
    expect((await admin('GET', '/keys', undefined, '2001:db8:9::1')).status).toBe(200);
    await waitFor(async () => (await metric('admin')) === refusedBefore + 1, { what: 'the admin refusal counted' });
  });

  it('records where each admin change came from in its audit entry, and shows the caller its address', async () => {
    expect((await admin('GET', '/whoami', undefined, '2001:db8:9::5')).json).toMatchObject({ id: 'dev-admin', client_ip: '2001:db8:9::5' });
    expect((await admin('PATCH', '/tenants/netco', { name: 'Net Co' }, '10.9.8.7')).status).toBe(200);
    const audit = await admin('GET', '/audit?action=org.update&limit=1');
    expect(audit.json['data']).toEqual([expect.objectContaining({ action: 'org.update', target: 'netco', details: expect.objectContaining({ role: 'admin', source_ip: '10.9.8.7' }) as unknown })]);
  });
});
