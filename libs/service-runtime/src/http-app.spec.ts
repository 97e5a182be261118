import { connect, type Socket } from 'node:net';
import { Controller, Get, Module, Param, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { closeWithinGrace, jsonTooDeep, startHttpApp, type INestApplication } from './http-app';

describe('jsonTooDeep', () => {
  it.each([
    ['a flat object', '{"a":1,"b":[1,2]}', 2, false],
    ['arrays exactly at the limit', '[[[1]]]', 3, false],
    ['arrays one past the limit', '[[[[1]]]]', 3, true],
    ['objects past the limit', '{"a":{"a":{"a":{}}}}', 3, true],
    ['brackets inside strings', '{"a":"[[[[{{{{"}', 1, false],
    ['escaped quotes inside strings', '{"a":"\\"[[[["}', 1, false],
    ['an escaped backslash before the closing quote', '{"a":"\\\\","b":[[1]]}', 2, true],
    ['siblings that each stay under the limit', '[[1],[2],[3]]', 2, false],
  ])('%s', (_name, text, limit, expected) => {
    expect(jsonTooDeep(text, limit)).toBe(expected);
  });

  it('scans 100,000 levels without recursion', () => {
    expect(jsonTooDeep('['.repeat(100_000) + ']'.repeat(100_000), 128)).toBe(true);
  });
});

/** A handler the test holds open, to have a request in flight while the server closes. */
class Gate {
  entered!: () => void;
  readonly inside = new Promise<void>((resolve) => (this.entered = resolve));
  open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
}
const gate = { current: new Gate() };

@Controller()
class ProbeController {
  @Get('ping')
  ping(): { ok: true } {
    return { ok: true };
  }

  @Get('named/:id')
  named(@Param('id') id: string): { id: string } {
    return { id };
  }

  @Get('held')
  async held(): Promise<{ ok: true }> {
    gate.current.entered();
    await gate.current.opened;
    return { ok: true };
  }

  /** A stream that runs until the shutdown ends it, with the shutdown's error code as its last event. */
  @Get('stream')
  stream(@Req() request: FastifyRequest, @Res() reply: FastifyReply): void {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
    reply.raw.write('data: first\n\n');
    const signal = request.shutdownSignal;
    signal.addEventListener('abort', () => reply.raw.end(`data: ${signal.reason instanceof GatewayError ? signal.reason.code : 'none'}\n\n`), { once: true });
    gate.current.entered();
  }
}

@Module({ controllers: [ProbeController] })
class ProbeModule {}

/** Writes raw bytes and collects everything the server sends until it closes the connection. */
function exchange(port: number, write: (socket: Socket) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', (error) => (received ? resolve(received) : reject(error)));
    socket.on('close', () => resolve(received));
    socket.on('connect', () => write(socket));
  });
}

function errorBodyOf(raw: string): unknown {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as unknown;
}

describe('startHttpApp: errors raised inside Fastify are in OpenAI’s error shape', () => {
  let app: INestApplication;
  let port: number;
  let closing: Promise<void> | undefined;

  beforeEach(async () => {
    gate.current = new Gate();
    closing = undefined;
    ({ app, port } = await startHttpApp(ProbeModule, { host: '127.0.0.1', port: 0 }, createLogger('test', 'silent')));
  });
  afterEach(async () => {
    gate.current.open();
    await (closing ?? app.close());
  });

  it('answers a malformed percent-encoding in the path with 400 invalid_url', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/%zz`);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { message: expect.stringContaining('percent-encoding') as string, type: 'invalid_request_error', param: null, code: 'invalid_url' } });
  });

  it('takes a path segment of up to 512 characters (a 128-character id, percent-encoded), and answers a longer one with 414 url_too_long', async () => {
    const id = 'experiment with a long name '.repeat(5).slice(0, 128);
    const encoded = encodeURIComponent(id).replace(/-/g, '%2D');
    expect(encoded.length).toBeGreaterThan(128);
    const response = await fetch(`http://127.0.0.1:${port}/named/${encoded}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id });
    const tooLong = await fetch(`http://127.0.0.1:${port}/named/${'a'.repeat(513)}`);
    expect(tooLong.status).toBe(414);
    expect(await tooLong.json()).toMatchObject({ error: { code: 'url_too_long' } });
  });

  it('answers headers over the size limit with 431 headers_too_large', async () => {
    const raw = await exchange(port, (socket) => socket.write(`GET /ping HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(raw).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(raw).toMatch(/\r\nContent-Type: application\/json\r\n/);
    expect(errorBodyOf(raw)).toEqual({ error: { message: 'The request headers are too large.', type: 'invalid_request_error', param: null, code: 'headers_too_large' } });
  });

  it('answers a request that is not HTTP with 400 invalid_request', async () => {
    const raw = await exchange(port, (socket) => socket.write('NOT HTTP AT ALL\r\n\r\n'));
    expect(raw).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(errorBodyOf(raw)).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_request' } });
  });

  it('answers a request arriving while the server shuts down with 503 shutting_down, and finishes the one in flight', async () => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
    socket.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n');
    await gate.current.inside;

    closing = app.close();
    // The server stops listening once the shutdown has begun.
    while (app.getHttpServer().listening) await new Promise((resolve) => setImmediate(resolve));
    socket.write('GET /ping HTTP/1.1\r\nHost: x\r\n\r\n');
    gate.current.open();
    await closing;
    await closed;

    const responses = received.split(/(?=HTTP\/1\.1 )/);
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200 /);
    expect(responses[1]).toMatch(/^HTTP\/1\.1 503 /);
    expect(responses[1]).toMatch(/\r\nconnection: close\r\n/i);
    expect(errorBodyOf(responses[1] ?? '')).toEqual({ error: { message: 'The server is shutting down; send the request again.', type: 'server_error', param: null, code: 'shutting_down' } });
  });
});

describe('startHttpApp with request ids: the errors Fastify and the HTTP parser raise carry one too', () => {
  let app: INestApplication;
  let port: number;

  beforeAll(async () => {
    ({ app, port } = await startHttpApp(ProbeModule, { host: '127.0.0.1', port: 0 }, createLogger('test', 'silent'), { requestIds: true }));
  });
  afterAll(async () => {
    await app.close();
  });

  it('names the caller’s x-request-id on a 400 invalid_url', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/%zz`, { headers: { 'x-request-id': 'caller-id-1' } });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-request-id')).toBe('caller-id-1');
  });

  it("answers in Anthropic's error shape under /v1/messages, with its request id as Anthropic's SDKs read it", async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/messages/%zz`, { headers: { 'x-request-id': 'caller-id-3' } });
    expect(response.status).toBe(400);
    expect(response.headers.get('request-id')).toBe('caller-id-3');
    expect(await response.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('percent-encoding') as string }, request_id: 'caller-id-3' });
  });

  it('gives a 431 headers_too_large a request id of its own', async () => {
    const raw = await exchange(port, (socket) => socket.write(`GET /ping HTTP/1.1\r\nHost: x\r\nx-request-id: caller-id-2\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(raw).toMatch(/^HTTP\/1\.1 431 /);
    expect(raw).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/i);
  });
});

describe('closeWithinGrace', () => {
  let app: INestApplication;
  let port: number;

  beforeEach(async () => {
    gate.current = new Gate();
    ({ app, port } = await startHttpApp(ProbeModule, { host: '127.0.0.1', port: 0 }, createLogger('test', 'silent')));
  });
  afterEach(() => gate.current.open());

  it('ends a stream still running when the grace is over through its shutdown signal, its response whole', async () => {
    const received = exchange(port, (socket) => socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n'));
    await gate.current.inside;

    await expect(closeWithinGrace(app, 10, [], 10)).resolves.toBe(true);
    const raw = await received;
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    // The stream's last event, then the end of its chunked body: nothing was cut.
    expect(raw).toContain('data: first');
    expect(raw).toMatch(/data: shutting_down\n\n\r\n0\r\n\r\n$/);
  });

  it('cuts a request that is still answering a moment after the grace', async () => {
    const received = exchange(port, (socket) => socket.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n'));
    await gate.current.inside;

    await expect(closeWithinGrace(app, 10, [], 10)).resolves.toBe(true);
    expect(await received).toBe('');
  });

  it('cuts nothing when every request finished within the grace', async () => {
    await expect(fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.json())).resolves.toEqual({ ok: true });
    await expect(closeWithinGrace(app, 60_000, [], 10)).resolves.toBe(false);
  });
});
