import WebSocket from 'ws';
import { RedisServer } from '../support/infra/redis';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';

const PREFIX = 'ws-key-rotation:';
const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

interface Frame {
  type: string;
  id: string | null;
  status?: number;
  error?: { error?: { code?: string } };
}

/** A client socket recording its frames and how it closed. */
class Socket {
  readonly frames: Frame[] = [];
  /** Its close (code, reason, when), or a rejection when it is still open after `timeoutMs`. */
  private closed: Promise<{ code: number; reason: string; at: number }> | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.frames.push(JSON.parse(data.toString()) as Frame));
  }

  static open(url: string, key: string): Promise<Socket> {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/ws`, ['openrouter.v1'], { headers: { authorization: `Bearer ${key}` } });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Socket(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Waits for the close event (never a fixed sleep); fails when the socket is still open after `timeoutMs`. */
  close(timeoutMs = 20_000): Promise<{ code: number; reason: string; at: number }> {
    this.closed ??= new Promise((resolve, reject) => {
      if (this.ws.readyState === WebSocket.CLOSED) return reject(new Error('closed before its close was awaited'));
      const timer = setTimeout(() => reject(new Error(`the socket is still open after ${timeoutMs} ms`)), timeoutMs);
      this.ws.once('close', (code, reason) => {
        clearTimeout(timer);
        resolve({ code, reason: reason.toString(), at: Date.now() });
      });
    });
    return this.closed;
  }

  /** Sends a request and waits for its answer frame (`completion` or `error`). */
  async ask(id: string, body: unknown = chat): Promise<Frame> {
    this.ws.send(JSON.stringify({ type: 'chat.completions', id, body }));
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
      const answer = this.frames.find((f) => f.id === id && (f.type === 'completion' || f.type === 'error' || f.type === 'done'));
      if (answer) return answer;
      // Woken by the next frame, or after a moment to look at the deadline again.
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.ws.off('message', wake);
          resolve();
        };
        const timer = setTimeout(wake, 200);
        this.ws.once('message', wake);
      });
    }
    throw new Error(`no answer to ${id}`);
  }
}

async function adminPost(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${url}/admin/v1${path}`, { method: 'POST', headers: admin, body: JSON.stringify(body) });
  const json = (await response.json()) as Record<string, unknown>;
  expect(response.status).toBeLessThan(300);
  return json;
}

const REVOKED = { code: 1008, reason: 'api key revoked or expired' };
const REFUSED = { id: null, type: 'error', status: 401, error: { error: { code: 'invalid_api_key' } } };
/**
 * A rotation's grace: short, as the tests wait it out, yet seconds longer than the requests that
 * must come within it on a slow machine (the rotation's answer names the grace's end only while it
 * is in the future; a socket is opened with the old secret after it).
 */
const GRACE_SECONDS = 5;

describe("WebSocket sockets of a rotated key, on a replica that hears of the rotation through Redis", () => {
  let redis: RedisServer;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    redis = await RedisServer.start();
    // Keys cached a minute: what replica b does, it does on the rotation's notice and the grace's end, not the cache expiring.
    const shared = (doc: Record<string, unknown>): void => {
      doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: PREFIX }, keyCacheMs: 60_000 };
    };
    [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });
  beforeEach(() => b.sim.reset());

  it("closes the sockets of the old secret when the grace ends, cutting their streams as a revocation does; the new secret's socket is served on", async () => {
    const issued = (await adminPost(a.url, '/keys', { org: 'default', project: 'default', name: 'ws rotation' })) as { id: string; key: string };
    const before = await Socket.open(b.url, issued.key);
    const beforeClosed = before.close();
    // A 20 s stream, still running when the grace ends.
    b.sim.configure({ tokensPerSecond: 20, completionTokens: 400 });
    before.ws.send(JSON.stringify({ type: 'chat.completions', id: 'long', body: { ...chat, stream: true } }));

    const rotated = (await adminPost(a.url, `/keys/${issued.id}/rotate`, { grace_seconds: GRACE_SECONDS })) as { key: string; previous_key_expires_at: string };
    // Opened with the old secret during the grace, on the replica that did not rotate it.
    const during = await Socket.open(b.url, issued.key);
    const duringClosed = during.close();
    const fresh = await Socket.open(b.url, rotated.key);

    for (const [socket, closed] of [[before, await beforeClosed], [during, await duringClosed]] as const) {
      expect(closed).toMatchObject(REVOKED);
      expect(closed.at).toBeGreaterThanOrEqual(Date.parse(rotated.previous_key_expires_at));
      expect(socket.frames.find((f) => f.type === 'error' && f.id === null)).toMatchObject(REFUSED);
    }
    // The stream in flight was cut down to the provider, not answered to the end.
    expect(before.frames.some((f) => f.id === 'long' && f.type === 'done')).toBe(false);
    await expect(b.sim.waitForRequest((r) => r.outcome === 'aborted', 5_000)).resolves.toMatchObject({ outcome: 'aborted' });

    b.sim.reset();
    expect(fresh.ws.readyState).toBe(WebSocket.OPEN);
    expect(await fresh.ask('after')).toMatchObject({ type: 'completion' });
    fresh.ws.close();
  });

  it('closes a socket when its key expires, at the expiry, and when a change brings the expiry forward', async () => {
    // Seconds ahead, as the test waits it out: the key is issued and its socket opened before it (a past expiry is refused).
    const expiresAt = new Date(Date.now() + 5_000).toISOString();
    const issued = (await adminPost(a.url, '/keys', { org: 'default', project: 'default', name: 'ws expiring', expires_at: expiresAt })) as { id: string; key: string };
    const expiring = await Socket.open(b.url, issued.key);
    const expired = expiring.close();
    const kept = (await adminPost(a.url, '/keys', { org: 'default', project: 'default', name: 'ws expiry moved' })) as { id: string; key: string };
    const moved = await Socket.open(b.url, kept.key);
    // Open through both expiries.
    const movedClosed = moved.close(30_000);
    expect(await moved.ask('before')).toMatchObject({ type: 'completion' });

    const closed = await expired;
    expect(closed).toMatchObject(REVOKED);
    expect(closed.at).toBeGreaterThanOrEqual(Date.parse(expiresAt));
    expect(expiring.frames.find((f) => f.type === 'error' && f.id === null)).toMatchObject(REFUSED);

    // An expiry set by a change on the other replica, heard of through Redis; seconds ahead, as above.
    const soon = new Date(Date.now() + 4_000).toISOString();
    const patched = await fetch(`${a.url}/admin/v1/keys/${kept.id}`, { method: 'PATCH', headers: admin, body: JSON.stringify({ expires_at: soon }) });
    expect(patched.status).toBe(200);
    const movedClose = await movedClosed;
    expect(movedClose).toMatchObject(REVOKED);
    expect(movedClose.at).toBeGreaterThanOrEqual(Date.parse(soon));
  });

  it('after a second rotation: the first secret is cut at once, the second when its own grace ends, the third is served', async () => {
    const issued = (await adminPost(a.url, '/keys', { org: 'default', project: 'default', name: 'ws rotated twice' })) as { id: string; key: string };
    const first = await Socket.open(b.url, issued.key);
    const firstClosed = first.close();
    const second = (await adminPost(a.url, `/keys/${issued.id}/rotate`, { grace_seconds: 3_600 })) as { key: string };
    const onSecond = await Socket.open(b.url, second.key);
    const secondClosed = onSecond.close();
    // Within the first grace both secrets serve.
    expect(await first.ask('in-grace')).toMatchObject({ type: 'completion' });
    expect(await onSecond.ask('current')).toMatchObject({ type: 'completion' });

    // Rotating again ends the first grace at once; the second secret now has its own.
    const third = (await adminPost(a.url, `/keys/${issued.id}/rotate`, { grace_seconds: GRACE_SECONDS })) as { key: string; previous_key_expires_at: string };
    const onThird = await Socket.open(b.url, third.key);
    expect(await firstClosed).toMatchObject(REVOKED);
    const closed = await secondClosed;
    expect(closed).toMatchObject(REVOKED);
    expect(closed.at).toBeGreaterThanOrEqual(Date.parse(third.previous_key_expires_at));
    expect(onSecond.frames.find((f) => f.type === 'error' && f.id === null)).toMatchObject(REFUSED);

    expect(onThird.ws.readyState).toBe(WebSocket.OPEN);
    expect(await onThird.ask('after')).toMatchObject({ type: 'completion' });
    onThird.ws.close();
  });
});
