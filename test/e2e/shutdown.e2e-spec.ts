import WebSocket from 'ws';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const GRACE_MS = 1_000;

describe('ingress shutdown', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (document) => {
        const ingress = document['ingress'] as Record<string, unknown>;
        ingress['limits'] = { shutdownGraceMs: GRACE_MS };
      },
    });
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
  });

  it('cuts a stream still running when the grace is over, and records its usage as cancelled', async () => {
    // A stream that would run for minutes: two tokens a second.
    gw.sim.configure({ tokensPerSecond: 2, completionTokens: 1_000 });
    const requestId = `shutdown-${Date.now()}`;
    const response = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Tell me a long story.' }] }),
    });
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('"content"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended before its first token');
      text += new TextDecoder().decode(value);
    }

    // A WebSocket stream in flight as well, on a socket that will also send a request during the shutdown.
    const frames: Array<{ type: string; id: string | null; status?: number; error?: { error: { code: string | null } } }> = [];
    const socket = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/ws`, ['openrouter.v1', `bearer.${gw.apiKey}`]);
    const socketClosed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.on('message', (data) => frames.push(JSON.parse(data.toString()) as (typeof frames)[number]));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.send(JSON.stringify({ type: 'chat.completions', id: 'long', body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Another long story.' }] } }));
    await waitFor(async () => frames.some((f) => f.id === 'long' && f.type === 'chunk'), { what: 'the socket stream started' });

    const started = Date.now();
    const closing = gw.gateway.ingress.close();
    socket.send(JSON.stringify({ type: 'chat.completions', id: 'late', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } }));
    await waitFor(async () => frames.some((f) => f.id === 'late'), { what: 'the answer to a request sent during the shutdown' });
    expect(frames.find((f) => f.id === 'late')).toMatchObject({ type: 'error', status: 503, error: { error: { code: 'shutting_down' } } });
    await closing;
    const tookMs = Date.now() - started;
    // The socket's stream was given the grace too, then cancelled with its 499 frame before the close.
    expect(await socketClosed).toBe(1001);
    expect(frames.filter((f) => f.id === 'long').at(-1)).toMatchObject({ type: 'error', status: 499 });
    expect(tookMs).toBeGreaterThanOrEqual(GRACE_MS - 50);
    expect(tookMs).toBeLessThan(GRACE_MS + 5_000);
    // The client's stream ended without the answer's end.
    for (;;) {
      const read = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (read.done) break;
      text += new TextDecoder().decode(read.value);
    }
    expect(text).not.toContain('[DONE]');

    const row = await waitFor(async () => {
      const rows = await queryRows<{ status: string; stream: boolean }>(
        gw.gateway.billing.usage.store,
        'SELECT status, stream FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}',
        { id: requestId },
      );
      return rows[0];
    }, { what: 'the usage event of the stream cut at shutdown' });
    expect(row).toEqual({ status: 'cancelled', stream: true });
  }, 60_000);
});
