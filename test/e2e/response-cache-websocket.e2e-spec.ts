import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

interface Frame {
  type: string;
  id: string | null;
  data?: {
    id?: string;
    model?: string;
    choices?: Array<{ delta?: { content?: string }; message?: { content?: string }; finish_reason?: string | null }>;
    usage?: { prompt_tokens?: number; completion_tokens?: number; cost?: number };
  };
  status?: number;
  error?: { error?: { code?: string; param?: string; type?: string } };
  headers?: Record<string, string>;
}

interface Row {
  request_id: string;
  cache_hit: boolean;
  cost: string;
  cache_saved_cost: string;
  status: string;
}

/** A socket that queues every frame it receives, so tests wait on frames by condition. */
class Socket {
  readonly frames: Frame[] = [];
  private wake: Array<() => void> = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      for (const wake of this.wake.splice(0)) wake();
    });
  }

  static open(url: string, options: { headers?: Record<string, string>; protocolKey?: string }): Promise<Socket> {
    const protocols = ['openrouter.v1', ...(options.protocolKey ? [`bearer.${options.protocolKey}`] : [])];
    const socket = new WebSocket(url, protocols, { headers: options.headers });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new Socket(socket)));
      socket.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** The frames of request `id` once it ended (`completion`, `done` or `error`). */
  async ended(id: string, timeoutMs = 15_000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    const of = (): Frame[] => this.frames.filter((f) => f.id === id);
    while (!of().some((f) => ['completion', 'done', 'error'].includes(f.type))) {
      if (Date.now() > deadline) throw new Error(`request ${id} did not end; its frames so far: ${JSON.stringify(of()).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        this.wake.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return of();
  }

  close(): void {
    this.socket.close();
  }
}

/** A streamed request's frames read as its answer: the start's headers, the text, the finish, the chunks' ids and the usage chunk. */
function streamOf(frames: Frame[]) {
  const chunks = frames.filter((f) => f.type === 'chunk').map((f) => f.data ?? {});
  return {
    types: frames.map((f) => f.type),
    headers: frames.find((f) => f.type === 'start')?.headers ?? {},
    text: chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join(''),
    finish: chunks.map((c) => c.choices?.[0]?.finish_reason).find((r) => r),
    ids: new Set(chunks.map((c) => c.id)),
    usage: chunks.find((c) => c.usage)?.usage,
  };
}

const use = { 'x-openrouter-cache': 'use' };

describe('the response cache for chat requests on a WebSocket (GET /v1/ws), beside the official openai SDK', () => {
  let gw: TestGateway;
  let client: OpenAI;
  let url: string;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['cache'] = { enabled: true, defaultTtlSeconds: 60, maxTtlSeconds: 600 };
      },
    });
    client = gw.client();
    url = `${gw.url.replace('http', 'ws')}/v1/ws`;
  }, 120_000);
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await gw?.close();
  });
  beforeEach(() => gw.sim.reset());

  const upstreamChats = (): number => gw.sim.requests().filter((r) => r.path.endsWith('/chat/completions')).length;
  const bodyOf = (text: string): { model: string; messages: Array<{ role: 'user'; content: string }> } => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `${text} (${randomBytes(4).toString('hex')})` }] });
  async function open(options: { headers?: Record<string, string>; protocolKey?: string }): Promise<Socket> {
    const socket = await Socket.open(url, options);
    sockets.push(socket);
    return socket;
  }

  /** The usage rows of the requests with these ids, once every one is stored. */
  function rowsOf(ids: string[]): Promise<Map<string, Row>> {
    return waitFor(
      async () => {
        const rows = await queryRows<Row>(
          gw.gateway.billing.usage.store,
          `SELECT request_id, cache_hit, toString(cost) AS cost, toString(cache_saved_cost) AS cache_saved_cost, status FROM {db:Identifier}.usage_events FINAL WHERE has({ids:Array(String)}, request_id)`,
          { ids },
        );
        return rows.length === ids.length ? new Map(rows.map((r) => [r.request_id, r])) : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `the usage rows of ${ids.join(', ')}` },
    );
  }

  async function waiting(): Promise<number> {
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    return Number(/^openrouter_cache_waiting(?:\{[^}]*\})? (\d+)$/m.exec(metrics)?.[1] ?? Number.NaN);
  }

  it('answers a socket opted in at its upgrade from the entry an HTTP request stored, whole and streamed, at a cost of 0, recorded as hits', async () => {
    const body = bodyOf('Name three colours of the rainbow.');
    const first = await client.chat.completions.create(body, { headers: { ...use, 'x-request-id': `ws-cache-first-${randomBytes(3).toString('hex')}` } }).withResponse();
    expect(first.response.headers.get('x-openrouter-cache')).toBe('miss');
    const firstCost = first.response.headers.get('x-openrouter-cost') ?? '';
    const content = first.data.choices[0]?.message.content ?? '';
    expect(content.length).toBeGreaterThan(0);

    const socket = await open({ headers: { authorization: `Bearer ${gw.apiKey}`, ...use } });
    socket.send({ type: 'chat.completions', id: 'whole', body });
    const [whole] = await socket.ended('whole');
    expect(whole).toMatchObject({ type: 'completion', headers: { 'x-openrouter-cache': 'hit', 'x-openrouter-cost': '0', 'x-openrouter-model': first.response.headers.get('x-openrouter-model') } });
    expect(Number(whole?.headers?.['age'])).toBeGreaterThanOrEqual(0);
    expect(whole?.data?.choices?.[0]?.message?.content).toBe(content);
    expect(whole?.data?.id).toMatch(/^chatcmpl-/);
    expect(whole?.data?.id).not.toBe(first.data.id);
    expect(whole?.data?.usage).toMatchObject({ prompt_tokens: first.data.usage?.prompt_tokens, completion_tokens: first.data.usage?.completion_tokens, cost: 0 });

    socket.send({ type: 'chat.completions', id: 'streamed', body: { ...body, stream: true, stream_options: { include_usage: true } } });
    const streamed = streamOf(await socket.ended('streamed'));
    expect(streamed.types[0]).toBe('start');
    expect(streamed.types.at(-1)).toBe('done');
    expect(streamed.headers).toMatchObject({ 'x-openrouter-cache': 'hit', 'x-openrouter-cost': '0' });
    expect(streamed.text).toBe(content);
    expect(streamed.finish).toBe(first.data.choices[0]?.finish_reason);
    expect(streamed.ids.size).toBe(1);
    expect([...streamed.ids][0]).not.toBe(first.data.id);
    expect(streamed.usage).toMatchObject({ prompt_tokens: first.data.usage?.prompt_tokens, completion_tokens: first.data.usage?.completion_tokens, cost: 0 });
    expect(upstreamChats()).toBe(1);

    const ids = [whole?.headers?.['x-request-id'] ?? '', streamed.headers['x-request-id'] ?? ''];
    const rows = await rowsOf(ids);
    for (const id of ids) expect(rows.get(id)).toMatchObject({ cache_hit: true, cost: '0', cache_saved_cost: firstCost, status: 'ok' });
  });

  it('keeps an answer asked for with store true on a socket as a stored completion of its own, fresh or from the cache, whole and streamed', async () => {
    const run = randomBytes(4).toString('hex');
    const body = { ...bodyOf('Store my socket answer.'), store: true, metadata: { run } };
    const socket = await open({ headers: { authorization: `Bearer ${gw.apiKey}`, ...use } });
    socket.send({ type: 'chat.completions', id: 'fresh', body });
    const [fresh] = await socket.ended('fresh');
    expect(fresh?.headers?.['x-openrouter-cache']).toBe('miss');
    socket.send({ type: 'chat.completions', id: 'whole', body });
    const [whole] = await socket.ended('whole');
    expect(whole?.headers?.['x-openrouter-cache']).toBe('hit');
    socket.send({ type: 'chat.completions', id: 'streamed', body: { ...body, stream: true } });
    const streamed = streamOf(await socket.ended('streamed'));
    expect(streamed.headers['x-openrouter-cache']).toBe('hit');
    expect(streamed.ids.size).toBe(1);
    const ids = [fresh?.data?.id, whole?.data?.id, ...streamed.ids];
    for (const id of ids) expect(id).toMatch(/^chatcmpl-[A-Za-z0-9_-]{32}$/);
    expect(new Set(ids).size).toBe(3);
    // One provider call for the three, sent neither store nor metadata.
    const calls = gw.sim.requests().filter((r) => JSON.stringify(r.body).includes('Store my socket answer.'));
    expect(calls).toHaveLength(1);
    expect(calls[0]?.body).not.toHaveProperty('store');
    expect(calls[0]?.body).not.toHaveProperty('metadata');
    // Each answer kept as its own, once its keeping (after the answer went out) is written.
    const kept = await waitFor(
      async () => {
        const page = await client.chat.completions.list({ metadata: { run } });
        return page.data.length === 3 ? page.data : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'the three answers to be kept' },
    );
    expect(kept.map((completion) => completion.id).sort()).toEqual([...ids].sort());
    const text = fresh?.data?.choices?.[0]?.message?.content;
    expect(streamed.text).toBe(text);
    for (const completion of kept) expect(completion.choices[0]?.message.content).toBe(text);
    expect((await client.chat.completions.messages.list(ids[0] ?? '')).data.map((message) => message.content)).toEqual([body.messages[0]?.content]);
  });

  it('opts a request in by its frame\'s headers (as a browser must), and answers an HTTP request from the entry the socket stored', async () => {
    const body = bodyOf('Count from one to five.');
    // The browser way: the key in the subprotocol, no header on the upgrade.
    const socket = await open({ protocolKey: gw.apiKey });
    socket.send({ type: 'chat.completions', id: 'plain', body });
    const [plain] = await socket.ended('plain');
    expect(plain).toMatchObject({ type: 'completion', headers: { 'x-openrouter-cache': 'bypass' } });

    socket.send({ type: 'chat.completions', id: 'opted', headers: { 'X-OpenRouter-Cache': 'use', 'x-openrouter-cache-ttl': '600' }, body: { ...body, stream: true } });
    const opted = streamOf(await socket.ended('opted'));
    expect(opted.headers).toMatchObject({ 'x-openrouter-cache': 'miss' });
    expect(opted.types.at(-1)).toBe('done');
    expect(upstreamChats()).toBe(2);

    // Stored once the socket's stream completed (an identical request arriving while it is being stored waits for it): an HTTP request is answered from it.
    const http = await client.chat.completions.create(body, { headers: use }).withResponse();
    expect(http.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(http.data.choices[0]?.message.content).toBe(opted.text);
    expect(upstreamChats()).toBe(2);

    // A frame's own header wins over the upgrade's.
    const optedIn = await open({ headers: { authorization: `Bearer ${gw.apiKey}`, ...use } });
    optedIn.send({ type: 'chat.completions', id: 'off', headers: { 'x-openrouter-cache': 'off' }, body });
    const [off] = await optedIn.ended('off');
    expect(off).toMatchObject({ type: 'completion', headers: { 'x-openrouter-cache': 'bypass' } });
    expect(upstreamChats()).toBe(3);
  });

  it('refuses a bad cache header, or any other header in a frame, with a 400 error frame naming it, and keeps serving the socket', async () => {
    const body = bodyOf('hi');
    const socket = await open({ headers: { authorization: `Bearer ${gw.apiKey}` } });
    socket.send({ type: 'chat.completions', id: 'bad-mode', headers: { 'x-openrouter-cache': 'sometimes' }, body });
    socket.send({ type: 'chat.completions', id: 'bad-ttl', headers: { ...use, 'x-openrouter-cache-ttl': '601' }, body });
    socket.send({ type: 'chat.completions', id: 'route', headers: { ...use, 'x-openrouter-route': '{"policy":"cheapest"}' }, body });
    for (const [id, param] of [
      ['bad-mode', 'x-openrouter-cache'],
      ['bad-ttl', 'x-openrouter-cache-ttl'],
      ['route', 'headers'],
    ] as const) {
      const [refused] = await socket.ended(id);
      expect(refused).toMatchObject({ type: 'error', status: 400, error: { error: { type: 'invalid_request_error', param, code: 'invalid_value' } } });
    }
    // A header that is not text is no frame at all: the message shows what a frame may hold.
    socket.send({ type: 'chat.completions', id: 'not-text', headers: { 'x-openrouter-cache': 1 }, body });
    const [malformed] = await socket.ended('not-text');
    expect(malformed).toMatchObject({ type: 'error', status: 400, error: { error: { code: 'invalid_frame', message: expect.stringContaining('"headers":{"x-openrouter-cache":"…"}') as string } } });
    socket.send({ type: 'chat.completions', id: 'fine', headers: use, body });
    expect((await socket.ended('fine'))[0]).toMatchObject({ type: 'completion', headers: { 'x-openrouter-cache': 'miss' } });
    expect(upstreamChats()).toBe(1);
  });

  it('coalesces identical requests arriving together over HTTP and sockets, and bills a socket\'s request cancelled while it waited nothing', async () => {
    // Long enough for the socket to open, its two requests to be seen waiting and one cancelled while
    // the first one's provider call is still out, on a slow machine too.
    gw.sim.configure({ latencyMs: 5_000 });
    const body = bodyOf('Name a prime between 10 and 20.');
    const leader = client.chat.completions.create(body, { headers: use }).withResponse();
    await gw.sim.waitForRequest((r) => r.path.endsWith('/chat/completions'), 10_000);
    const socket = await open({ headers: { authorization: `Bearer ${gw.apiKey}`, ...use } });
    socket.send({ type: 'chat.completions', id: 'waits', body });
    socket.send({ type: 'chat.completions', id: 'leaves', body: { ...body, stream: true } });
    await waitFor(async () => (await waiting()) === 2, { what: 'both socket requests waiting for the HTTP one' });
    socket.send({ type: 'cancel', id: 'leaves' });
    const [left] = await socket.ended('leaves');
    expect(left).toMatchObject({ type: 'error', status: 499 });

    const first = await leader;
    expect(first.response.headers.get('x-openrouter-cache')).toBe('miss');
    const [waited] = await socket.ended('waits');
    expect(waited).toMatchObject({ type: 'completion', headers: { 'x-openrouter-cache': 'hit', 'x-openrouter-cost': '0' } });
    expect(waited?.data?.choices?.[0]?.message?.content).toBe(first.data.choices[0]?.message.content);
    expect(upstreamChats()).toBe(1);

    const waitedId = waited?.headers?.['x-request-id'] ?? '';
    // The cancelled request's id is the socket's (that of its other requests) and its own.
    const leftId = waitedId.replace(/:waits$/, ':leaves');
    const rows = await rowsOf([waitedId, leftId]);
    expect(rows.get(waitedId)).toMatchObject({ cache_hit: true, cost: '0', status: 'ok' });
    expect(rows.get(leftId)).toMatchObject({ cache_hit: false, cost: '0', status: 'cancelled' });
  });
});
