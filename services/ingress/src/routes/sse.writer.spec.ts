import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SseWriter } from './sse.writer';

/** A real HTTP server whose single route hands its response to the test. */
async function serve(): Promise<{ server: Server; url: string; next: () => Promise<ServerResponse> }> {
  const waiting: Array<(response: ServerResponse) => void> = [];
  const server = createServer((_request, response) => waiting.shift()?.(response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/`, next: () => new Promise((resolve) => waiting.push(resolve)) };
}

/** Reads an SSE body, resolving `until(n)` once n events have arrived. */
function reader(body: ReadableStream<Uint8Array>): { events: string[]; until: (n: number) => Promise<void>; ended: Promise<void> } {
  const events: string[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const bytes of body) {
      buffer += decoder.decode(bytes, { stream: true });
      let at: number;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        events.push(buffer.slice(0, at).replace(/^data: /, ''));
        buffer = buffer.slice(at + 2);
      }
      for (const w of waiters.filter((w) => events.length >= w.n)) w.resolve();
    }
  })();
  return { events, ended, until: (n) => (events.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))) };
}

describe('SseWriter', () => {
  let http: Awaited<ReturnType<typeof serve>>;

  /** A request to the server, and an SSE writer on its response (headers set, nothing sent yet). */
  async function openStream(headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ response: ServerResponse; sse: SseWriter; answering: Promise<Response> }> {
    const responding = http.next();
    const answering = fetch(http.url, signal ? { signal } : {});
    const response = await responding;
    const sse = new SseWriter(response);
    sse.open(headers);
    return { response, sse, answering };
  }

  beforeEach(async () => {
    http = await serve();
  });
  afterEach(async () => {
    http.server.closeAllConnections();
    await new Promise((resolve) => http.server.close(resolve));
  });

  it('holds the events written in one turn and sends them together, without waiting for the end', async () => {
    const { response, sse, answering } = await openStream({ 'x-request-id': 'r1' });

    for (let i = 0; i < 3; i++) await sse.data({ i });
    // Still in the turn that wrote them: nothing has gone to the socket yet.
    expect(response.socket?.writableCorked).toBeGreaterThan(0);
    const answer = await answering;
    const stream = reader(answer.body!);
    await stream.until(3);
    expect(response.socket?.writableCorked).toBe(0);
    expect(stream.events).toEqual(['{"i":0}', '{"i":1}', '{"i":2}']);

    // An event written alone, later, is sent on its own.
    await new Promise((resolve) => setImmediate(resolve));
    await sse.data({ i: 3 });
    await stream.until(4);
    sse.done();
    await stream.ended;
    expect(answer.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(answer.headers.get('x-request-id')).toBe('r1');
    expect(stream.events).toEqual(['{"i":0}', '{"i":1}', '{"i":2}', '{"i":3}', '[DONE]']);
  });

  it('ends with the events written just before done, in order', async () => {
    const { sse, answering } = await openStream();
    for (let i = 0; i < 50; i++) await sse.data({ i });
    sse.fail({ error: { message: 'cut' } });
    const stream = reader((await answering).body!);
    await stream.ended;
    expect(stream.events).toHaveLength(51);
    expect(stream.events[49]).toBe('{"i":49}');
    expect(stream.events[50]).toBe('{"error":{"message":"cut"}}');
  });

  it('waits for a slow client to read a large burst, leaving no listener behind', async () => {
    const { response, sse, answering } = await openStream();
    const big = 'x'.repeat(64 * 1024);
    const listeners = (): number => response.listenerCount('close') + response.listenerCount('drain') + response.listenerCount('error');
    const before = listeners();
    // 4 MB: more than the socket takes at once, so writing waits for the client to read.
    const writing = (async () => {
      for (let i = 0; i < 64; i++) {
        await sse.data({ i, big });
        // Each wait for the client removes its listeners once over.
        expect(listeners()).toBe(before);
      }
      sse.done();
    })();
    const stream = reader((await answering).body!);
    await writing;
    await stream.ended;
    expect(stream.events).toHaveLength(65);
    expect(stream.events.slice(0, 64).map((e) => (JSON.parse(e) as { i: number }).i)).toEqual(Array.from({ length: 64 }, (_, i) => i));
  });

  it('writes named events, ending with no [DONE] when asked', async () => {
    const { sse, answering } = await openStream();
    await sse.event('response.created', { type: 'response.created', sequence_number: 0 });
    await sse.event('response.output_text.delta', { type: 'response.output_text.delta', delta: 'a\nb' });
    sse.end();
    const answer = await answering;
    expect(await answer.text()).toBe(
      'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n' + 'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"a\\nb"}\n\n',
    );
  });

  it('waits for a slow client to read a burst of named events', async () => {
    const { sse, answering } = await openStream();
    const big = 'x'.repeat(64 * 1024);
    const writing = (async () => {
      for (let i = 0; i < 64; i++) await sse.event('e', { i, big });
      sse.end();
    })();
    const text = await (await answering).text();
    await writing;
    const events = text.split('\n\n').filter(Boolean);
    expect(events).toHaveLength(64);
    expect(events.map((e) => (JSON.parse(e.replace(/^event: e\ndata: /, '')) as { i: number }).i)).toEqual(Array.from({ length: 64 }, (_, i) => i));
  });

  it('writes nothing once the client has gone', async () => {
    const controller = new AbortController();
    const { response, sse, answering } = await openStream({}, controller.signal);
    await sse.data({ i: 0 });
    const answer = await answering;
    controller.abort();
    await answer.body?.cancel().catch(() => undefined);
    await new Promise((resolve) => response.once('close', resolve));
    await expect(sse.data({ i: 1 })).resolves.toBeUndefined();
    await expect(sse.event('e', { i: 1 })).resolves.toBeUndefined();
    expect(() => sse.done()).not.toThrow();
    expect(() => sse.end()).not.toThrow();
  });
});
