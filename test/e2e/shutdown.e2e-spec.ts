import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

// The test waits the grace out; it is still long enough that a request sent as the shutdown starts
// is answered before the sockets close, on a slow machine too.
const GRACE_MS = 3_000;
const SHUTTING_DOWN = 'The server is shutting down; send the request again.';

/** A stream read by its SDK in the background: what it received, and how it ended. */
interface ReadStream {
  received: number;
  ended: Promise<unknown>;
}

/** Reads `events` to its end, counting the events `counts` picks; `ended` resolves with the error the SDK raised, else `undefined`. */
function read<T>(events: AsyncIterable<T>, counts: (event: T) => boolean, seen: T[] = []): ReadStream {
  const stream: ReadStream = { received: 0, ended: Promise.resolve(undefined) };
  stream.ended = (async () => {
    try {
      for await (const event of events) {
        seen.push(event);
        if (counts(event)) stream.received++;
      }
      return undefined;
    } catch (error) {
      return error;
    }
  })();
  return stream;
}

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

  it('ends the streams still running when the grace is over with a shutting_down error in their API’s format, and records their usage as cancelled', async () => {
    // Streams that would run for minutes: two tokens a second.
    gw.sim.configure({ tokensPerSecond: 2, completionTokens: 1_000 });
    const openai = gw.client();
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: gw.apiKey, maxRetries: 0 });
    const id = (api: string): string => `shutdown-${api}-${Date.now()}`;
    const ids = { chat: id('chat'), completion: id('completion'), responses: id('responses'), messages: id('messages') };
    const headers = (requestId: string) => ({ headers: { 'x-request-id': requestId } });

    const chat = read(
      await openai.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Tell me a long story.' }] }, headers(ids.chat)),
      (chunk) => Boolean(chunk.choices[0]?.delta.content),
    );
    const completion = read(await openai.completions.create({ model: 'gpt-4o-mini', stream: true, prompt: 'Once upon a time' }, headers(ids.completion)), (chunk) => Boolean(chunk.choices[0]?.text));
    const responseEvents: OpenAI.Responses.ResponseStreamEvent[] = [];
    const responses = read(
      await openai.responses.create({ model: 'gpt-4o-mini', stream: true, input: 'Tell me a long story.' }, headers(ids.responses)),
      (event) => event.type === 'response.output_text.delta',
      responseEvents,
    );
    const messages = read(
      await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 4_096, stream: true, messages: [{ role: 'user', content: 'Tell me a long story.' }] }, headers(ids.messages)),
      (event) => event.type === 'content_block_delta',
    );
    const streams = [chat, completion, responses, messages];
    await waitFor(() => streams.every((s) => s.received > 0), { what: 'every stream’s first token' });

    // A WebSocket stream in flight as well, on a socket that will also send a request during the shutdown.
    const frames: Array<{ type: string; id: string | null; status?: number; error?: { error: { code: string | null } } }> = [];
    const socket = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/ws`, ['openrouter.v1', `bearer.${gw.apiKey}`]);
    const socketClosed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.on('message', (data) => frames.push(JSON.parse(data.toString()) as (typeof frames)[number]));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.send(JSON.stringify({ type: 'chat.completions', id: 'long', body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Another long story.' }] } }));
    await waitFor(async () => frames.some((f) => f.id === 'long' && f.type === 'chunk'), { what: 'the socket stream started' });

    const closing = gw.gateway.ingress.close();
    socket.send(JSON.stringify({ type: 'chat.completions', id: 'late', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } }));
    await waitFor(async () => frames.some((f) => f.id === 'late'), { what: 'the answer to a request sent during the shutdown' });
    expect(frames.find((f) => f.id === 'late')).toMatchObject({ type: 'error', status: 503, error: { error: { code: 'shutting_down' } } });
    await closing;
    // The socket's stream was given the grace too, then cancelled with its 499 frame before the close.
    expect(await socketClosed).toBe(1001);
    expect(frames.filter((f) => f.id === 'long').at(-1)).toMatchObject({ type: 'error', status: 499 });

    // Each HTTP stream ended with its API's error event, which the SDKs raise as an API error naming
    // the shutdown (not a network error).
    for (const stream of [chat, completion]) {
      const error = await stream.ended;
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect(error).toMatchObject({ code: 'shutting_down', type: 'server_error', message: SHUTTING_DOWN });
    }
    // The Responses API's stream ends with its `error` event and `response.failed`, as the SDK yields them.
    expect(await responses.ended).toBeUndefined();
    expect(responseEvents.slice(-2)).toMatchObject([
      { type: 'error', code: 'shutting_down', message: SHUTTING_DOWN },
      { type: 'response.failed', response: { status: 'failed', error: { code: 'server_error', message: SHUTTING_DOWN } } },
    ]);
    const messagesError = await messages.ended;
    expect(messagesError).toBeInstanceOf(Anthropic.APIError);
    expect(messagesError).toMatchObject({ error: { type: 'error', error: { type: 'overloaded_error', message: SHUTTING_DOWN } } });

    for (const [operation, requestId] of [['chat', ids.chat], ['completion', ids.completion], ['chat', ids.responses], ['chat', ids.messages]]) {
      const row = await waitFor(async () => {
        const rows = await queryRows<{ status: string; stream: boolean; operation: string }>(
          gw.gateway.billing.usage.store,
          'SELECT status, stream, operation FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}',
          { id: requestId },
        );
        return rows[0];
      }, { what: `the usage event of ${requestId}` });
      expect(row).toEqual({ status: 'cancelled', stream: true, operation });
    }
  }, 60_000);
});
