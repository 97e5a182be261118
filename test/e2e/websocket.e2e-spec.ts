import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { toMicros } from '@openrouter/budgets';
import { hashApiKey } from '@openrouter/ingress';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

interface Frame {
  type: string;
  id: string | null;
  data?: { choices?: Array<{ delta?: { content?: string }; message?: { content?: string } }> };
  status?: number;
  error?: { error?: { code?: string } };
  headers?: Record<string, string>;
}

const SECRET = 'ws-e2e-hash-secret-0000';
const LIMITED = 'sk-or-v1-websocket-limited-key-000000000000000';
const BUDGETED = 'sk-or-v1-websocket-budgeted-key-00000000000000';

/** A socket that queues every frame it receives, so tests can wait on frames by condition. */
class Client {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static open(url: string, options: { key?: string; protocolKey?: string; autoPong?: boolean }): Promise<Client> {
    const protocols = ['openrouter.v1', ...(options.protocolKey ? [`bearer.${options.protocolKey}`] : [])];
    const socket = new WebSocket(url, protocols, { autoPong: options.autoPong ?? true, ...(options.key ? { headers: { authorization: `Bearer ${options.key}` } } : {}) });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new Client(socket)));
      socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode })));
      socket.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.socket.send(JSON.stringify(frame));
  }

  async until(predicate: (frames: Frame[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.frames)) {
      if (Date.now() > deadline) throw new Error(`timed out; frames so far: ${JSON.stringify(this.frames).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  of(id: string): Frame[] {
    return this.frames.filter((f) => f.id === id);
  }

  close(): void {
    this.socket.close();
  }
}

describe('WebSocket API', () => {
  let gw: TestGateway;
  let url: string;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = {
          ...(doc['access'] as object),
          keyHashSecret: SECRET,
          admin: { devKey: TEST_ADMIN_KEY },
          keys: [
            { id: 'ws-limited', hash: hashApiKey(SECRET, LIMITED), org: 'default', limits: { rpm: 2 } },
            { id: 'ws-budgeted', hash: hashApiKey(SECRET, BUDGETED), org: 'default', project: 'default' },
          ],
        };
        // About two requests' worst case (gpt-4o-mini, max_tokens 50) for the budgeted key's project.
        doc['budgets'] = { list: [{ id: 'ws-project', scope: { org: 'default', project: 'default' }, period: 'daily', amount: '0.00007', enforcement: 'hard' }] };
      },
    });
    url = `${gw.url.replace('http', 'ws')}/v1/ws`;
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  it('refuses an upgrade without a valid key', async () => {
    await expect(Client.open(url, {})).rejects.toMatchObject({ status: 401 });
    await expect(Client.open(url, { key: 'sk-or-v1-wrong' })).rejects.toMatchObject({ status: 401 });
    await expect(Client.open(url, { protocolKey: 'sk-or-v1-wrong' })).rejects.toMatchObject({ status: 401 });
  });

  it('multiplexes two streams on one socket, authenticated the browser way', async () => {
    gw.sim.configure({ tokensPerSecond: 200, completionTokens: 12 });
    const client = await Client.open(url, { protocolKey: gw.apiKey });
    const body = (content: string) => ({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content }] });
    client.send({ type: 'chat.completions', id: 'a', body: body('first question') });
    client.send({ type: 'chat.completions', id: 'b', body: body('second question') });
    await client.until((frames) => ['a', 'b'].every((id) => frames.some((f) => f.id === id && f.type === 'done')));
    for (const id of ['a', 'b']) {
      const frames = client.of(id);
      expect(frames[0]).toMatchObject({ type: 'start', headers: { 'x-openrouter-model': 'gpt-4o-mini' } });
      const text = frames.map((f) => f.data?.choices?.[0]?.delta?.content ?? '').join('');
      expect(text.length).toBeGreaterThan(0);
      expect(frames.some((f) => f.type === 'chunk' && (f.data as { usage?: unknown }).usage)).toBe(true);
    }
    // Interleaved: chunks of b arrived before a finished.
    const firstDone = client.frames.findIndex((f) => f.type === 'done');
    const other = client.frames[firstDone]?.id === 'a' ? 'b' : 'a';
    expect(client.frames.slice(0, firstDone).some((f) => f.id === other && f.type === 'chunk')).toBe(true);
    client.close();
  });

  it('records each request under the end user its body names, as over HTTP', async () => {
    const client = await Client.open(url, { protocolKey: gw.apiKey });
    for (const [id, user] of [['u1', 'alice@example.com'], ['u2', 'bob']]) {
      client.send({ type: 'chat.completions', id, body: { model: 'gpt-4o-mini', user, messages: [{ role: 'user', content: 'hi' }] } });
    }
    await client.until((frames) => ['u1', 'u2'].every((id) => frames.some((f) => f.id === id && f.type === 'completion')));
    client.close();
    const rows = async () =>
      queryRows<{ request_id: string; end_user: string }>(gw.gateway.billing.usage.store, "SELECT request_id, end_user FROM {db:Identifier}.usage_events FINAL WHERE request_id LIKE '%:u1' OR request_id LIKE '%:u2' ORDER BY request_id");
    await waitFor(async () => (await rows()).length === 2, { what: 'both requests metered' });
    expect((await rows()).map((r) => [r.request_id.split(':').at(-1), r.end_user])).toEqual([
      ['u1', 'alice@example.com'],
      ['u2', 'bob'],
    ]);
  });

  it('cancels one request and keeps the other running', async () => {
    gw.sim.configure({ tokensPerSecond: 20, completionTokens: 40 });
    const client = await Client.open(url, { key: gw.apiKey });
    client.send({ type: 'chat.completions', id: 'slow', body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'long answer' }] } });
    client.send({ type: 'chat.completions', id: 'whole', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'short' }], max_tokens: 3 } });
    await client.until((frames) => frames.some((f) => f.id === 'slow' && f.type === 'chunk'));
    client.send({ type: 'cancel', id: 'slow' });
    await client.until((frames) => frames.some((f) => f.id === 'slow' && f.type === 'error') && frames.some((f) => f.id === 'whole' && f.type === 'completion'));
    expect(client.of('slow').find((f) => f.type === 'error')).toMatchObject({ status: 499 });
    expect(client.of('slow').some((f) => f.type === 'done')).toBe(false);
    expect(client.of('whole')[0]?.data?.choices?.[0]?.message?.content?.length).toBeGreaterThan(0);
    // The provider call was aborted too.
    await expect(gw.sim.waitForRequest((r) => r.outcome === 'aborted', 5_000)).resolves.toMatchObject({ outcome: 'aborted' });
    client.close();
  });

  it('charges a request cancelled while the provider works on it, before any answer, its prompt at that deployment', async () => {
    gw.sim.configure({ faults: [{ kind: 'timeout' }] });
    const client = await Client.open(url, { key: gw.apiKey });
    client.send({ type: 'chat.completions', id: 'unanswered', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a question nobody waits for' }] } });
    await gw.sim.waitForRequest(() => true, 5_000);
    client.send({ type: 'cancel', id: 'unanswered' });
    await client.until((frames) => frames.some((f) => f.id === 'unanswered' && f.type === 'error'));
    expect(client.of('unanswered').find((f) => f.type === 'error')).toMatchObject({ status: 499 });
    client.close();
    const row = await waitFor(
      async () =>
        (
          await queryRows<{ status: string; deployment: string; prompt_tokens: number; completion_tokens: number; tokens_estimated: boolean; cost: string }>(
            gw.gateway.billing.usage.store,
            "SELECT status, deployment, prompt_tokens, completion_tokens, tokens_estimated, toString(cost) AS cost FROM {db:Identifier}.usage_events FINAL WHERE request_id LIKE '%:unanswered'",
          )
        )[0],
      { what: 'the cancelled request metered' },
    );
    expect(row).toMatchObject({ status: 'cancelled', deployment: 'sim-mini', completion_tokens: 0, tokens_estimated: true });
    expect(row.prompt_tokens).toBeGreaterThan(0);
    expect(Number(row.cost)).toBeGreaterThan(0);
  });

  it('answers bad frames and bad requests with error frames, and keeps the socket open', async () => {
    const client = await Client.open(url, { key: gw.apiKey });
    client.socket.send('not json');
    client.send({ type: 'chat.completions', id: 'bad', body: { model: 'gpt-4o-mini', messages: 'nope' } });
    client.send({ type: 'dance', id: 'x' });
    client.send({ type: 'chat.completions', id: 'ok', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
    await client.until((frames) => frames.some((f) => f.id === 'ok'));
    expect(client.frames.find((f) => f.id === null)).toMatchObject({ type: 'error', status: 400, error: { error: { code: 'invalid_json' } } });
    expect(client.of('bad')[0]).toMatchObject({ type: 'error', status: 400 });
    expect(client.of('x')[0]).toMatchObject({ type: 'error', status: 400, error: { error: { code: 'invalid_frame' } } });
    expect(client.of('ok')[0]).toMatchObject({ type: 'completion' });
    // Nested deeper than an HTTP body may be (128 levels): refused before it is parsed, as over HTTP.
    const deep = `{"type":"chat.completions","id":"deep","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":${'['.repeat(200)}${']'.repeat(200)}}}`;
    client.socket.send(deep);
    client.send({ type: 'chat.completions', id: 'after-deep', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
    await client.until((frames) => frames.some((f) => f.id === 'after-deep'));
    expect(client.frames.filter((f) => f.id === null).map((f) => (f.error as { error: { code: string } }).error.code)).toEqual(['invalid_json', 'json_too_deep']);
    expect(client.of('after-deep')[0]).toMatchObject({ type: 'completion' });
    client.close();
  });

  it('applies the same budgets and usage records as HTTP: spend settles, then 402 budget_exceeded', async () => {
    const client = await Client.open(url, { key: BUDGETED });
    const ask = (id: string) => client.send({ type: 'chat.completions', id, body: { model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] } });
    ask('first');
    await client.until((frames) => frames.some((f) => f.id === 'first'));
    expect(client.of('first')[0]).toMatchObject({ type: 'completion', headers: { 'x-openrouter-cost': expect.stringMatching(/^0\.\d+$/) } });
    // The usage record of the socket's request settled the reservation with its real cost.
    const settled = await waitFor(async () => {
      const [status] = await gw.gateway.ingress.budgets.status();
      return status && status.reserved === '0' && Number(status.spent) > 0 ? status : undefined;
    });
    // Budgets count whole micro-units, rounded up.
    expect(toMicros(settled.spent)).toBe(toMicros(client.of('first')[0]?.headers?.['x-openrouter-cost'] ?? ''));
    for (const id of ['b', 'c', 'd']) ask(id);
    await client.until((frames) => ['b', 'c', 'd'].every((id) => frames.some((f) => f.id === id)));
    expect(client.frames.find((f) => f.type === 'error')).toMatchObject({ status: 402, error: { error: { code: 'budget_exceeded' } } });
    client.close();
  });

  it('ends a socket whose key is revoked, its in-flight stream included, and refuses the key at the next upgrade', async () => {
    const adminCall = async (path: string, body?: unknown): Promise<Record<string, unknown>> => {
      const response = await fetch(`${gw.url}/admin/v1${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body ?? {}),
      });
      expect(response.status).toBeLessThan(300);
      return (await response.json()) as Record<string, unknown>;
    };
    const issued = await adminCall('/keys', { name: 'socket to revoke', org: 'default' });
    const key = issued['key'] as string;
    gw.sim.configure({ tokensPerSecond: 20, completionTokens: 200 });
    const client = await Client.open(url, { key });
    const closed = new Promise<number>((resolve) => client.socket.once('close', (code) => resolve(code)));
    client.send({ type: 'chat.completions', id: 'long', body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'a long answer' }] } });
    await client.until((frames) => frames.some((f) => f.id === 'long' && f.type === 'chunk'));

    await adminCall(`/keys/${String(issued['id'])}/revoke`);
    expect(await closed).toBe(1008);
    expect(client.frames.find((f) => f.type === 'error')).toMatchObject({ status: 401, error: { error: { code: 'invalid_api_key' } } });
    expect(client.of('long').some((f) => f.type === 'done')).toBe(false);
    // The provider call of the cut stream was aborted, and the key no longer opens a socket.
    await expect(gw.sim.waitForRequest((r) => r.outcome === 'aborted', 5_000)).resolves.toMatchObject({ outcome: 'aborted' });
    await expect(Client.open(url, { key })).rejects.toMatchObject({ status: 401 });
  });

  it('ends the requests of a revoked key at once, though its client never answers the close frame', async () => {
    const issued = await fetch(`${gw.url}/admin/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'raw socket to revoke', org: 'default' }),
    }).then(async (r) => (await r.json()) as { id: string; key: string });
    // A 10 s stream: the socket's close timeout is 30 s, the provider call must end well before either.
    gw.sim.configure({ tokensPerSecond: 20, completionTokens: 200 });
    const raw = await rawSocket(url, issued.key);
    try {
      raw.sendText(JSON.stringify({ type: 'chat.completions', id: 'long', body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'a long answer' }] } }));
      await waitFor(() => gw.sim.requests().length === 1 || undefined, { what: 'the provider call' });
      const revoked = await fetch(`${gw.url}/admin/v1/keys/${issued.id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' }, body: '{}' });
      expect(revoked.status).toBe(200);
      await expect(gw.sim.waitForRequest((r) => r.outcome === 'aborted', 5_000)).resolves.toMatchObject({ outcome: 'aborted' });
      expect(raw.received()).toContain('invalid_api_key');
    } finally {
      raw.destroy();
    }
  });

  it('slows a stream down to the pace its client reads at, instead of buffering the whole answer', async () => {
    // Far more than the loopback socket buffers hold, so a client that does not read holds the stream up.
    gw.sim.configure({ completionTokens: 60_000 });
    const body = { model: 'gpt-4o-mini', stream: true, max_tokens: 60_000, messages: [{ role: 'user', content: 'a very long answer' }] };
    const paused = await Client.open(url, { key: gw.apiKey });
    const socket = (paused.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    paused.send({ type: 'chat.completions', id: 'unread', body });
    const reading = await Client.open(url, { key: gw.apiKey });
    reading.send({ type: 'chat.completions', id: 'read', body });
    await reading.until((frames) => frames.some((f) => f.id === 'read' && (f.type === 'done' || f.type === 'error')), 60_000);
    expect(reading.of('read').at(-1)?.type).toBe('done');
    // The answer read to the end is metered; the one nobody read is still held by the gateway, not finished.
    const metered = async (): Promise<string[]> =>
      (await queryRows<{ request_id: string }>(gw.gateway.billing.usage.store, "SELECT request_id FROM {db:Identifier}.usage_events FINAL WHERE request_id LIKE '%:read' OR request_id LIKE '%:unread'")).map((r) => r.request_id);
    await waitFor(async () => (await metered()).some((id) => id.endsWith(':read')), { what: 'the read stream metered' });
    expect((await metered()).filter((id) => id.endsWith(':unread'))).toEqual([]);
    // Once the client reads, its stream completes in full.
    socket.resume();
    await paused.until((frames) => frames.some((f) => f.id === 'unread' && (f.type === 'done' || f.type === 'error')), 60_000);
    expect(paused.of('unread').at(-1)?.type).toBe('done');
    const chunks = (c: Client, id: string) => c.of(id).filter((f) => f.type === 'chunk').length;
    expect(chunks(paused, 'unread')).toBe(chunks(reading, 'read'));
    paused.close();
    reading.close();
  }, 120_000);

  it('applies the same rate limits as HTTP', async () => {
    const client = await Client.open(url, { key: LIMITED });
    for (const id of ['1', '2', '3']) client.send({ type: 'chat.completions', id, body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
    await client.until((frames) => ['1', '2', '3'].every((id) => frames.some((f) => f.id === id)));
    const outcomes = ['1', '2', '3'].map((id) => client.of(id)[0]?.type);
    expect(outcomes.filter((t) => t === 'completion')).toHaveLength(2);
    const denied = client.frames.find((f) => f.type === 'error');
    expect(denied).toMatchObject({ status: 429, error: { error: { code: 'rate_limit_exceeded' } } });
    // As over HTTP, the refused request makes no usage record; the two served ones do.
    const served = ['1', '2', '3'].filter((id) => client.of(id)[0]?.type === 'completion').map((id) => String(client.of(id)[0]?.headers?.['x-request-id']));
    const socketId = served[0]?.replace(/:[^:]*$/, '') ?? '';
    const recorded = async (): Promise<string[]> =>
      (await queryRows<{ request_id: string }>(gw.gateway.billing.usage.store, 'SELECT request_id FROM {db:Identifier}.usage_events FINAL WHERE startsWith(request_id, {socket:String}) ORDER BY request_id', { socket: `${socketId}:` })).map((r) => r.request_id);
    await waitFor(async () => (await recorded()).length >= 2, { what: 'the served requests metered' });
    expect(await recorded()).toEqual([...served].sort());
    client.close();
  });
});

/** A gateway with these `access.requests` settings on top of the test configuration. */
function startWithRequestSettings(settings: Record<string, number>): Promise<TestGateway> {
  return startTestGateway({
    configure: (doc) => {
      const access = doc['access'] as { requests?: object };
      doc['access'] = { ...access, requests: { ...access.requests, ...settings } };
    },
  });
}

describe('WebSocket liveness and shutdown', () => {
  let gw: TestGateway;
  let url: string;

  beforeAll(async () => {
    gw = await startWithRequestSettings({ webSocketHeartbeatMs: 1_000 });
    url = `${gw.url.replace('http', 'ws')}/v1/ws`;
  });
  afterAll(async () => gw?.close());

  it('drops a socket whose peer stopped answering pings, and keeps one that answers', async () => {
    const silent = await Client.open(url, { protocolKey: gw.apiKey, autoPong: false });
    const alive = await Client.open(url, { protocolKey: gw.apiKey });
    const dropped = new Promise<number>((resolve) => silent.socket.once('close', (code) => resolve(code)));
    // Pinged at the first beat, found silent at the second: 1006, the connection was cut without a close frame.
    expect(await dropped).toBe(1006);
    expect(alive.socket.readyState).toBe(WebSocket.OPEN);
    alive.send({ type: 'chat.completions', id: 'still', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
    await alive.until((frames) => frames.some((f) => f.id === 'still' && f.type === 'completion'));
    alive.close();
  });
});

describe('WebSocket buffer limits', () => {
  const HIGH_WATER = 16 * 1024;
  const MAX_BUFFERED = 64 * 1024;
  let gw: TestGateway;
  let url: string;

  beforeAll(async () => {
    gw = await startWithRequestSettings({ webSocketHighWaterBytes: HIGH_WATER, webSocketMaxBufferedBytes: MAX_BUFFERED });
    url = `${gw.url.replace('http', 'ws')}/v1/ws`;
  });
  afterAll(async () => gw?.close());

  it('closes a socket whose client does not read once whole answers pile up past the maximum, cancels its requests, and serves others', async () => {
    // A slow stream stays in flight; the whole answers (about 330 KB each) cannot wait, and together
    // they hold far more than the loopback socket buffers take before bytes wait in the gateway.
    gw.sim.configure({ completionTokens: 60_000, tokensPerSecond: 5 });
    const paused = await Client.open(url, { key: gw.apiKey });
    const socket = (paused.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const closed = new Promise<{ code: number; reason: string }>((resolve) => paused.socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    paused.send({ type: 'chat.completions', id: 'held', body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'a slow answer' }] } });
    const whole = Array.from({ length: 31 }, (_, i) => `whole-${i}`);
    for (const id of whole) paused.send({ type: 'chat.completions', id, body: { model: 'gpt-4o-mini', max_tokens: 60_000, messages: [{ role: 'user', content: `a long answer ${id}` }] } });

    // Closing the socket cancelled the stream, down to the provider, while the client still reads nothing.
    await expect(gw.sim.waitForRequest((r) => r.stream && r.outcome === 'aborted', 30_000)).resolves.toMatchObject({ outcome: 'aborted' });
    socket.resume();
    expect(await closed).toEqual({ code: 1008, reason: 'client not reading: too much data waiting' });
    // What was queued before the close arrives; nothing after it, not even the 499 frames.
    expect(paused.of('held').some((f) => f.type === 'done' || f.type === 'error')).toBe(false);
    const answered = whole.filter((id) => paused.of(id).some((f) => f.type === 'completion'));
    expect(answered.length).toBeLessThan(whole.length);
    expect(paused.frames.every((f) => f.type === 'completion' || (f.id === 'held' && (f.type === 'start' || f.type === 'chunk')))).toBe(true);

    // Every request is metered once: the answers the client got as answered, the rest as cancelled.
    const ids = ['held', ...whole];
    const rows = async () =>
      (await queryRows<{ request_id: string; status: string; http_status: number }>(gw.gateway.billing.usage.store, 'SELECT request_id, status, http_status FROM {db:Identifier}.usage_events FINAL')).filter((r) =>
        ids.includes(r.request_id.split(':').at(-1) ?? ''),
      );
    await waitFor(async () => (await rows()).length === ids.length, { what: 'every request of the closed socket metered' });
    const metered = new Map((await rows()).map((r) => [r.request_id.split(':').at(-1), r]));
    expect(metered.get('held')).toMatchObject({ status: 'cancelled', http_status: 499 });
    for (const id of whole) {
      expect([id, metered.get(id)]).toEqual([id, answered.includes(id) ? expect.objectContaining({ status: 'ok', http_status: 200 }) : expect.objectContaining({ status: 'cancelled', http_status: 499 })]);
    }

    // Another client is served as usual.
    gw.sim.reset();
    const reading = await Client.open(url, { key: gw.apiKey });
    reading.send({ type: 'chat.completions', id: 'after', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
    reading.send({ type: 'chat.completions', id: 'after-stream', body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] } });
    await reading.until((frames) => frames.some((f) => f.id === 'after') && frames.some((f) => f.id === 'after-stream' && (f.type === 'done' || f.type === 'error')));
    expect(reading.of('after')[0]?.data?.choices?.[0]?.message?.content?.length).toBeGreaterThan(0);
    expect(reading.of('after-stream').at(-1)?.type).toBe('done');
    reading.close();
  }, 120_000);
});

/**
 * A WebSocket client on a bare TCP socket that sends text frames and never answers a close frame
 * (nor anything else): what a careless or hostile peer does.
 */
async function rawSocket(url: string, key: string): Promise<{ sendText(text: string): void; received(): string; destroy(): void }> {
  const target = new URL(url);
  const socket = connect(Number(target.port), target.hostname);
  let received = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(
    `GET ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${key}\r\n\r\n`,
  );
  await waitFor(() => (received.toString('latin1').includes('\r\n\r\n') ? true : undefined), { what: 'the upgrade' });
  expect(received.toString('latin1')).toMatch(/^HTTP\/1\.1 101/);
  return {
    sendText(text: string): void {
      const payload = Buffer.from(text);
      const mask = randomBytes(4);
      const length = payload.length < 126 ? Buffer.from([0x80 | payload.length]) : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
      socket.write(Buffer.concat([Buffer.from([0x81]), length, mask, Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] ?? 0)))]));
    },
    received: () => received.toString('utf8'),
    destroy: () => socket.destroy(),
  };
}
