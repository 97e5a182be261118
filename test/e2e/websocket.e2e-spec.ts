import { randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import WebSocket from 'ws';
import { toMicros } from '@openrouter/budgets';
import { hashApiKey } from '@openrouter/ingress';
import { queryRows } from '../support/infra/clickhouse';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

interface Frame {
  type: string;
  id: string | null;
  data?: { choices?: Array<{ delta?: { content?: string }; message?: { content?: string } }> };
  status?: number;
  error?: { error?: { code?: string; type?: string } };
  headers?: Record<string, string>;
}

const SECRET = 'ws-e2e-hash-secret-0000';
const LIMITED = 'sk-or-v1-websocket-limited-key-000000000000000';
const BUDGETED = 'sk-or-v1-websocket-budgeted-key-00000000000000';
const PAUSED_LIMITED = 'sk-or-v1-websocket-paused-limited-key-0000000';

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

  /** Opens a socket; a refused upgrade rejects with its status and (JSON) body. */
  static open(url: string, options: { key?: string; protocolKey?: string; autoPong?: boolean; headers?: Record<string, string> }): Promise<Client> {
    const protocols = ['openrouter.v1', ...(options.protocolKey ? [`bearer.${options.protocolKey}`] : [])];
    const headers = { ...(options.key ? { authorization: `Bearer ${options.key}` } : {}), ...options.headers };
    const socket = new WebSocket(url, protocols, { autoPong: options.autoPong ?? true, headers });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new Client(socket)));
      socket.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(body) as unknown })));
      });
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

/** The close of a client's socket: its code, its reason and when it came (failing after `timeoutMs` with the socket still open). */
function closeOf(client: Client, timeoutMs = 15_000): Promise<{ code: number; reason: string; at: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the socket is still open after ${timeoutMs} ms`)), timeoutMs);
    client.socket.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString(), at: Date.now() });
    });
  });
}

/** The TCP socket under a client's WebSocket: pausing it is a client that stops reading what it is sent. */
function transportOf(client: Client): Socket {
  return (client.socket as unknown as { _socket: Socket })._socket;
}

/**
 * Has a client take in what it is sent at about `bytesPerSecond`: its socket is paused, and
 * resumed every 20 ms until it got that tick's share. `pace` changes the rate.
 */
function readAtPace(socket: Socket, bytesPerSecond: number): { pace(bytesPerSecond: number): void; received(): number; stop(): void } {
  const tickMs = 20;
  let share = (bytesPerSecond * tickMs) / 1000;
  let allowance = 0;
  let received = 0;
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    allowance -= chunk.length;
    if (allowance <= 0) socket.pause();
  };
  socket.on('data', onData);
  socket.pause();
  const timer = setInterval(() => {
    allowance = Math.min(allowance + share, share);
    if (allowance > 0) socket.resume();
  }, tickMs);
  return {
    pace: (rate) => void (share = (rate * tickMs) / 1000),
    received: () => received,
    stop: () => {
      clearInterval(timer);
      socket.off('data', onData);
      socket.resume();
    },
  };
}

/** One request over node:http with exactly these headers: its status, its body, and whether it went on a kept-alive connection. */
function plainRequest(url: string, options: { agent: Agent; method?: string; headers: Record<string, string>; body?: string }): Promise<{ status: number; body: string; reusedSocket: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: options.agent, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reusedSocket: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
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

  it('takes the key in x-api-key (as Anthropic clients send it), judging an upgrade with both headers by Authorization alone, as HTTP does', async () => {
    const client = await Client.open(url, { headers: { 'x-api-key': gw.apiKey } });
    client.send({ type: 'chat.completions', id: 'k', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
    await client.until((frames) => frames.some((f) => f.id === 'k' && f.type === 'completion'));
    client.close();
    // The Authorization header decides: its key opens the socket whatever x-api-key holds.
    (await Client.open(url, { key: gw.apiKey, headers: { 'x-api-key': 'sk-or-v1-wrong' } })).close();
    // Each refusal is the one HTTP gives the same headers: status and OpenAI's error body.
    const refusals: Array<Record<string, string>> = [
      { 'x-api-key': 'sk-or-v1-wrong' },
      { authorization: 'Bearer sk-or-v1-wrong', 'x-api-key': gw.apiKey },
      { authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': gw.apiKey },
    ];
    for (const headers of refusals) {
      const http = await fetch(`${gw.url}/v1/models`, { headers });
      const refused = (await Client.open(url, { headers }).then(
        () => undefined,
        (error: unknown) => error,
      )) as { status?: number; body?: unknown } | undefined;
      expect(refused).toMatchObject({ status: http.status, body: await http.json() });
      expect(refused?.status).toBe(401);
    }
  });

  it('answers HTTP requests offering another upgrade (h2c, as curl --http2 does) as plain HTTP, on a connection that stays usable', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const h2c = { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA', authorization: `Bearer ${gw.apiKey}` };
    try {
      const models = await plainRequest(`${gw.url}/v1/models`, { agent, headers: h2c });
      expect(models.status).toBe(200);
      expect((JSON.parse(models.body) as { data: Array<{ id: string }> }).data.map((m) => m.id)).toContain('gpt-4o-mini');
      const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      const chat = await plainRequest(`${gw.url}/v1/chat/completions`, { agent, method: 'POST', headers: { ...h2c, 'content-type': 'application/json' }, body });
      expect(chat.status).toBe(200);
      expect(JSON.parse(chat.body)).toMatchObject({ object: 'chat.completion', model: 'gpt-4o-mini' });
      // Served on the connection kept from the first request: nothing of either was left unread on it.
      expect(chat.reusedSocket).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('multiplexes two streams on one socket, authenticated the browser way', async () => {
    // Each stream takes ~400 ms: long enough that the second is under way before the first ends on a busy machine.
    gw.sim.configure({ tokensPerSecond: 40, completionTokens: 16 });
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

  it('refuses a request whose id is in flight without ending the running one: the refusal carries no id, but rejected_id', async () => {
    gw.sim.configure({ tokensPerSecond: 20, completionTokens: 10 });
    const client = await Client.open(url, { key: gw.apiKey });
    const body = { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'count' }] };
    client.send({ type: 'chat.completions', id: 'twice', body });
    await client.until((frames) => frames.some((f) => f.id === 'twice' && f.type === 'chunk'));
    client.send({ type: 'chat.completions', id: 'twice', body });
    // A frame the server cannot read that names the running request: refused the same way.
    client.send({ type: 'cancel', id: 'twice', reason: 'a field cancel frames do not have' });
    await client.until((frames) => frames.some((f) => f.id === 'twice' && f.type === 'done'));
    expect(client.frames.filter((f) => f.type === 'error')).toEqual([
      expect.objectContaining({ id: null, rejected_id: 'twice', status: 400, error: { error: expect.objectContaining({ code: 'duplicate_id', param: 'id' }) } }),
      expect.objectContaining({ id: null, rejected_id: 'twice', status: 400, error: { error: expect.objectContaining({ code: 'invalid_frame' }) } }),
    ]);
    expect(client.of('twice').some((f) => f.type === 'error')).toBe(false);
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
    // The body is held to the depth an HTTP body is (the frame around it is not counted): 128
    // levels pass the depth check (and the body's own validation answers), 129 do not.
    const nested = (id: string, levels: number) =>
      `{"type":"chat.completions","id":"${id}","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}}`;
    client.socket.send(nested('depth-128', 128));
    client.socket.send(nested('depth-129', 129));
    // The keys an HTTP body may not hold anywhere are refused here too.
    client.socket.send('{"type":"chat.completions","id":"proto","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":{"__proto__":{"x":"1"}}}}');
    await client.until((frames) => frames.some((f) => f.id === 'proto') && frames.some((f) => f.id === 'depth-128'));
    expect(client.of('depth-128')[0]).toMatchObject({ type: 'error', status: 400 });
    expect((client.of('depth-128')[0]?.error as { error: { code: string } }).error.code).not.toBe('json_too_deep');
    expect(client.frames.filter((f) => f.id === null).map((f) => (f.error as { error: { code: string } }).error.code)).toEqual(['invalid_json', 'json_too_deep', 'json_too_deep']);
    expect(client.of('proto')[0]).toMatchObject({ type: 'error', status: 400, error: { error: { code: 'forbidden_json_key' } } });
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

  it("closes a socket opened with a rotated key's old secret when its grace ends, and keeps the one opened with the new secret", async () => {
    const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
    const issued = await fetch(`${gw.url}/admin/v1/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'socket to rotate', org: 'default' }) }).then(async (r) => (await r.json()) as { id: string; key: string });
    const old = await Client.open(url, { key: issued.key });
    const oldClosed = closeOf(old);
    // A short grace, yet long enough that the answer still names its end (given only while it is
    // in the future) on a slow machine.
    const rotated = await fetch(`${gw.url}/admin/v1/keys/${issued.id}/rotate`, { method: 'POST', headers: admin, body: JSON.stringify({ grace_seconds: 5 }) });
    expect(rotated.status).toBe(200);
    const { key: next, previous_key_expires_at: graceEnd } = (await rotated.json()) as { key: string; previous_key_expires_at: string };
    const fresh = await Client.open(url, { key: next });

    const closed = await oldClosed;
    expect(closed).toMatchObject({ code: 1008, reason: 'api key revoked or expired' });
    expect(closed.at).toBeGreaterThanOrEqual(Date.parse(graceEnd));
    expect(old.frames.find((f) => f.type === 'error')).toMatchObject({ id: null, status: 401, error: { error: { code: 'invalid_api_key' } } });
    // The socket of the new secret is still open, and served.
    fresh.send({ type: 'chat.completions', id: 'after', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
    await fresh.until((frames) => frames.some((f) => f.id === 'after' && (f.type === 'completion' || f.type === 'error')));
    expect(fresh.of('after').map((f) => f.type)).toEqual(['completion']);
    expect(fresh.socket.readyState).toBe(WebSocket.OPEN);
    fresh.close();
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
    expect(denied).toMatchObject({ status: 429, error: { error: { code: 'rate_limit_exceeded', type: 'requests' } } });
    // With the headers an HTTP 429 of the same limit has, so a client can wait as long as it says.
    const retryAfterMs = Number(denied?.headers?.['retry-after-ms']);
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(denied?.headers).toMatchObject({ 'retry-after': String(Math.ceil(retryAfterMs / 1000)), 'x-ratelimit-limit-requests': '2', 'x-ratelimit-remaining-requests': '0' });
    const overHttp = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${LIMITED}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(overHttp.status).toBe(429);
    const httpNames = [...overHttp.headers.keys()].filter((name) => /^(retry-after|x-ratelimit-|x-should-retry)/.test(name)).sort();
    expect(Object.keys(denied?.headers ?? {}).sort()).toEqual(httpNames);
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

/** A gateway with these `access.requests` settings (and these configured keys) on top of the test configuration. */
function startWithRequestSettings(settings: Record<string, number>, keys: Array<Record<string, unknown>> = []): Promise<TestGateway> {
  return startTestGateway({
    configure: (doc) => {
      const access = doc['access'] as { requests?: object };
      doc['access'] = { ...access, requests: { ...access.requests, ...settings }, ...(keys.length > 0 ? { keyHashSecret: SECRET, keys } : {}) };
    },
  });
}

describe('WebSocket liveness and shutdown', () => {
  /**
   * Short, so a dead socket is cut within seconds, but longer than a stall of the loaded machine:
   * after one, Node may run the heartbeat before it reads a pong that came in meanwhile.
   */
  const HEARTBEAT_MS = 3_000;
  let gw: TestGateway;
  let url: string;

  beforeAll(async () => {
    gw = await startWithRequestSettings({ webSocketHeartbeatMs: HEARTBEAT_MS });
    url = `${gw.url.replace('http', 'ws')}/v1/ws`;
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

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

  it('keeps a socket whose client reads slowly, its pongs late behind what it reads, to the end of a long answer', async () => {
    // About 11 MB: far more than the OS socket buffers take (a few MB on loopback) before the
    // gateway holds the rest, so a ping sent once a beat waits behind megabytes.
    gw.sim.configure({ completionTokens: 40_000 });
    const client = await Client.open(url, { key: gw.apiKey });
    const reader = readAtPace(transportOf(client), 200_000);
    try {
      client.send({ type: 'chat.completions', id: 'slow', body: { model: 'gpt-4o-mini', stream: true, max_tokens: 40_000, messages: [{ role: 'user', content: 'a long answer, read slowly' }] } });
      // 200 kB/s for two heartbeats: behind the backlog, the ping of a beat takes far longer than one to come back.
      const slowBytes = (2 * HEARTBEAT_MS * 200_000) / 1000;
      await waitFor(() => reader.received() > slowBytes || client.socket.readyState !== WebSocket.OPEN || undefined, { what: `${slowBytes} bytes read slowly` });
      expect(client.socket.readyState).toBe(WebSocket.OPEN);
      // Then 3 MB a beat to the end: the megabytes the OS holds once the gateway sent everything also take longer than a beat.
      reader.pace((3_000_000 * 1000) / HEARTBEAT_MS);
      await client.until((frames) => client.socket.readyState !== WebSocket.OPEN || frames.some((f) => f.id === 'slow' && (f.type === 'done' || f.type === 'error')), 60_000);
      expect(client.of('slow').at(-1)?.type).toBe('done');
      expect(client.socket.readyState).toBe(WebSocket.OPEN);
    } finally {
      reader.stop();
      client.close();
    }
  }, 120_000);

  it('still drops a socket whose client neither reads nor answers, an answer waiting for it', async () => {
    gw.sim.configure({ completionTokens: 60_000 });
    const client = await Client.open(url, { key: gw.apiKey });
    const transport = transportOf(client);
    transport.pause();
    const closed = new Promise<number>((resolve) => client.socket.once('close', (code) => resolve(code)));
    client.send({ type: 'chat.completions', id: 'never-read', body: { model: 'gpt-4o-mini', stream: true, max_tokens: 60_000, messages: [{ role: 'user', content: 'an answer nobody reads' }] } });
    // Once the OS buffers are full nothing moves: cut at the next beats, its stream ended as cancelled
    // (the provider may have sent all of it by then: the gateway holds what the client did not take).
    const metered = await waitFor(
      async () =>
        (await queryRows<{ status: string; http_status: number }>(gw.gateway.billing.usage.store, "SELECT status, http_status FROM {db:Identifier}.usage_events FINAL WHERE request_id LIKE '%:never-read'"))[0],
      { what: 'the unread stream ended and metered' },
    );
    expect(metered).toEqual({ status: 'cancelled', http_status: 499 });
    transport.resume();
    expect(await closed).toBe(1006);
    expect(client.of('never-read').some((f) => f.type === 'done')).toBe(false);
  });
});

describe('WebSocket buffer limits', () => {
  const HIGH_WATER = 16 * 1024;
  const MAX_BUFFERED = 64 * 1024;
  let gw: TestGateway;
  let url: string;

  beforeAll(async () => {
    gw = await startWithRequestSettings({ webSocketHighWaterBytes: HIGH_WATER, webSocketMaxBufferedBytes: MAX_BUFFERED }, [
      { id: 'ws-paused-limited', hash: hashApiKey(SECRET, PAUSED_LIMITED), org: 'default', project: 'default', limits: { rpm: 2 } },
    ]);
    url = `${gw.url.replace('http', 'ws')}/v1/ws`;
  });
  afterAll(async () => gw?.close());

  it('neither admits, meters nor sends on a request cancelled while it waited behind an answer its client did not read', async () => {
    gw.sim.reset();
    gw.sim.configure({ completionTokens: 60_000 });
    const client = await Client.open(url, { key: PAUSED_LIMITED });
    const transport = transportOf(client);
    transport.pause();
    try {
      client.send({ type: 'chat.completions', id: 'paused-held', body: { model: 'gpt-4o-mini', stream: true, max_tokens: 60_000, messages: [{ role: 'user', content: 'a long answer nobody reads yet' }] } });
      await gw.sim.waitForRequest((r) => r.stream, 5_000);
      // A new request waits while the client has not read what it was sent, and is cancelled while it
      // waits. Both in one write: the cancel is read before the request could be admitted, however far
      // the stream got by then.
      transport.cork();
      client.send({ type: 'chat.completions', id: 'paused-queued', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a question cancelled before it started' }] } });
      client.send({ type: 'cancel', id: 'paused-queued' });
      transport.uncork();
      client.send({ type: 'cancel', id: 'paused-held' });
      transport.resume();
      await client.until((frames) => ['paused-held', 'paused-queued'].every((id) => frames.some((f) => f.id === id && f.type === 'error')), 30_000);
      expect(client.of('paused-queued')).toEqual([expect.objectContaining({ type: 'error', status: 499 })]);
      // Its key allows two requests a minute: the stream took one, the cancelled request none.
      client.send({ type: 'chat.completions', id: 'paused-after', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
      await client.until((frames) => frames.some((f) => f.id === 'paused-after'));
      expect(client.of('paused-after')[0]).toMatchObject({ type: 'completion', headers: { 'x-ratelimit-remaining-requests': '0' } });
    } finally {
      client.close();
    }
    // No provider call for it, and no usage record: the stream's and the next request's are there, its is not.
    expect(gw.sim.requests().filter((r) => JSON.stringify(r.body).includes('cancelled before it started'))).toEqual([]);
    const metered = async (): Promise<string[]> =>
      (await queryRows<{ request_id: string }>(gw.gateway.billing.usage.store, "SELECT request_id FROM {db:Identifier}.usage_events FINAL WHERE match(request_id, ':paused-')")).map((r) => r.request_id.split(':').at(-1) ?? '');
    await waitFor(async () => ((await metered()).length >= 2 ? true : undefined), { what: 'the stream and the next request metered' });
    expect((await metered()).sort()).toEqual(['paused-after', 'paused-held']);
  });

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

describe('WebSocket sockets after a pub/sub outage', () => {
  let redis: RedisServer;
  let gw: TestGateway;
  let url: string;

  // A Redis of its own: the test cuts every subscription on it.
  beforeAll(async () => {
    redis = await RedisServer.start();
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: 'ws-resync:' } };
      },
    });
    url = `${gw.url.replace('http', 'ws')}/v1/ws`;
  });
  afterAll(async () => {
    await gw?.close();
    await redis?.stop();
  });

  it('ends a socket whose key was revoked while its replica could not hear it, once the replica is back', async () => {
    const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
    const issued = await fetch(`${gw.url}/admin/v1/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'revoked unheard', org: 'default' }) }).then(async (r) => (await r.json()) as { id: string; key: string });
    // A 20 s stream: it must be cut well before its end.
    gw.sim.configure({ tokensPerSecond: 20, completionTokens: 400 });
    const client = await Client.open(url, { key: issued.key });
    const closed = new Promise<number>((resolve) => client.socket.once('close', (code) => resolve(code)));
    client.send({ type: 'chat.completions', id: 'long', body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'a long answer' }] } });
    await client.until((frames) => frames.some((f) => f.id === 'long' && f.type === 'chunk'));
    const control = new Redis(redis.url);
    try {
      // The replica's subscription is cut and kept out (no new connection accepted) while the key is
      // revoked: its notice reaches nobody, as when another replica revokes it during an outage.
      await control.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      const connected = String(await control.call('CLIENT', 'LIST')).trim().split('\n').length;
      await control.config('SET', 'maxclients', String(connected));
      try {
        expect((await fetch(`${gw.url}/admin/v1/keys/${issued.id}/revoke`, { method: 'POST', headers: admin, body: '{}' })).status).toBe(200);
        expect(await control.pubsub('NUMSUB', 'ws-resync:access-changes')).toEqual(['ws-resync:access-changes', 0]);
      } finally {
        await control.config('SET', 'maxclients', '10000');
      }
      // Back, the replica may have missed revocations: every open socket checks its key again.
      await client.until((frames) => client.socket.readyState === WebSocket.CLOSED || frames.some((f) => f.id === 'long' && f.type === 'done'), 30_000);
      expect(client.of('long').some((f) => f.type === 'done')).toBe(false);
      expect(await closed).toBe(1008);
      expect(client.frames.find((f) => f.type === 'error')).toMatchObject({ status: 401, error: { error: { code: 'invalid_api_key' } } });
      await expect(gw.sim.waitForRequest((r) => r.outcome === 'aborted', 5_000)).resolves.toMatchObject({ outcome: 'aborted' });
    } finally {
      control.disconnect();
      client.close();
    }
  }, 60_000);
});

describe('WebSocket tracing', () => {
  let gw: TestGateway;
  let url: string;
  const exporter = new InMemorySpanExporter();

  beforeAll(async () => {
    gw = await startTestGateway({
      telemetry: { spanExporter: exporter },
      configure: (doc) => {
        doc['observability'] = { tracing: { enabled: true } };
      },
    });
    url = `${gw.url.replace('http', 'ws')}/v1/ws`;
  }, 120_000);
  afterAll(async () => gw?.close());

  it("makes each request on a socket a server span, child of the upgrade's traceparent and parent of the router's span", async () => {
    const traceId = '5bf92f3577b34da6a3ce929d0e0e4737';
    const parent = '10f067aa0ba902b8';
    const client = await Client.open(url, { key: gw.apiKey, headers: { traceparent: `00-${traceId}-${parent}-01` } });
    const messages = [{ role: 'user', content: 'hi' }];
    client.send({ type: 'chat.completions', id: 'whole', body: { model: 'gpt-4o-mini', messages } });
    client.send({ type: 'chat.completions', id: 'streamed', body: { model: 'gpt-4o-mini', stream: true, messages } });
    client.send({ type: 'chat.completions', id: 'invalid', body: { model: 'gpt-4o-mini' } });
    await client.until((frames) => frames.some((f) => f.id === 'whole' && f.type === 'completion') && frames.some((f) => f.id === 'streamed' && f.type === 'done') && frames.some((f) => f.id === 'invalid' && f.type === 'error'));
    client.close();

    const { requests, routers } = await waitFor(
      () => {
        const mine = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
        const requests = mine.filter((s) => s.name === 'WS /v1/ws chat.completions');
        const routers = mine.filter((s) => s.name === 'openrouter.router.v1.RouterService/Chat');
        return requests.length === 3 && routers.length === 2 ? { requests, routers } : undefined;
      },
      { what: 'the spans of the three requests and of their two router calls' },
    );
    const byId = new Map(requests.map((s) => [String(s.attributes['openrouter.request_id']).split(':').pop(), s]));
    for (const span of requests) {
      expect(span.kind).toBe(SpanKind.SERVER);
      expect(span.parentSpanContext?.spanId).toBe(parent);
    }
    expect(byId.get('whole')?.attributes['http.response.status_code']).toBe(200);
    expect(byId.get('streamed')?.attributes['http.response.status_code']).toBe(200);
    expect(byId.get('invalid')?.attributes['http.response.status_code']).toBe(400);
    // One chain per served request: client → its request span → router.
    const served = [byId.get('whole'), byId.get('streamed')].map((s) => s?.spanContext().spanId);
    expect(routers.map((s) => s.parentSpanContext?.spanId).sort()).toEqual(served.sort());
    // Their usage events carry the request spans: the consumers' spans link to them.
    const linked = await waitFor(
      () => {
        const links = exporter.getFinishedSpans().flatMap((s) => s.links.filter((l) => l.context.traceId === traceId).map((l) => l.context.spanId));
        return served.every((id) => links.includes(id ?? '')) ? links : undefined;
      },
      { what: 'consumer spans linked to the request spans' },
    );
    expect(linked.length).toBeGreaterThan(0);
  }, 30_000);

  it('starts a trace of its own for each request of a socket opened without a traceparent', async () => {
    exporter.reset();
    const client = await Client.open(url, { protocolKey: gw.apiKey });
    for (const id of ['one', 'two']) client.send({ type: 'chat.completions', id, body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
    await client.until((frames) => ['one', 'two'].every((id) => frames.some((f) => f.id === id && f.type === 'completion')));
    client.close();
    const requests = await waitFor(
      () => {
        const spans = exporter.getFinishedSpans().filter((s) => s.name === 'WS /v1/ws chat.completions');
        return spans.length === 2 ? spans : undefined;
      },
      { what: 'the spans of both requests' },
    );
    for (const span of requests) expect(span.parentSpanContext).toBeUndefined();
    expect(new Set(requests.map((s) => s.spanContext().traceId)).size).toBe(2);
  });
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
