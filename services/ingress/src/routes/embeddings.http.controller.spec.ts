import { usagev1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import type { UsagePublisher } from '@openrouter/usage';
import { MemoryResponseCacheStore } from '../cache/response-cache.store';
import { startIngress, type IngressHandle } from '../index';
import type { RouterCalls } from '../router.port';
import { ingressTestConfig } from '../test-config.testing';

const KEY = 'sk-or-dev-embed-0123456789abcdef';

/** Usage events are not looked at here: nothing is metered before a provider answers. */
const publisher: UsagePublisher = {
  publish: async () => undefined,
  status: () => ({ mode: 'direct', pending: 0, outboxBytes: 0 }),
  close: async () => undefined,
};

describe('the embeddings input limit at ingress', () => {
  let ingress: IngressHandle;
  let base: string;
  const embedded: unknown[] = [];

  beforeAll(async () => {
    const config = ingressTestConfig({
      ingress: { http: { host: '127.0.0.1', port: 0 }, router: '127.0.0.1:1', devKey: KEY },
      // Two requests a minute for the key: the third is over its limit.
      access: { rateLimits: { key: { rpm: 2 } } },
      models: [{ id: 'e', capabilities: ['embeddings'], maxInputTokens: 5, pricing: { input: '1' }, deployments: [{ id: 'd', provider: 'sim', model: 'u' }] }],
    });
    const router = {
      embed: () => {
        embedded.push(true);
        throw new Error('no provider is reached in these tests');
      },
    } as Partial<RouterCalls> as RouterCalls;
    ingress = await startIngress(config, createLogger('ingress', 'silent'), { router, usagePublisher: publisher });
    base = `http://127.0.0.1:${ingress.httpPort}`;
  });
  afterAll(async () => {
    await ingress?.close();
  });

  const embed = (input: unknown, key = KEY): Promise<Response> =>
    fetch(`${base}/v1/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'e', input }) });

  it('counts inputs only for an admitted request: a key over its rate limit is refused 429 before any input is tokenized', async () => {
    const long = 'one two three four five six seven';
    const first = await embed(['short', long]);
    expect(first.status).toBe(400);
    expect(((await first.json()) as { error: { code: string; param: string } }).error).toMatchObject({ code: 'context_length_exceeded', param: 'input' });
    // Admitted first: the refusal carries the key's rate-limit headers, the request counted.
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    expect((await embed([long])).status).toBe(400);
    const limited = await embed([long]);
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { error: { type: string } }).error.type).toBe('requests');
    expect(embedded).toEqual([]);
  });
});

describe('an embeddings request whose client leaves while the response cache is consulted', () => {
  let ingress: IngressHandle | undefined;
  afterEach(async () => {
    jest.restoreAllMocks();
    await ingress?.close();
  });

  it('is recorded as cancelled and never reaches the provider: no call is made for nobody, none billed at nothing', async () => {
    // The cache store answers only when the test lets it: the client leaves while it is consulted.
    let answerLookup!: () => void;
    const lookupMayAnswer = new Promise<void>((resolve) => (answerLookup = resolve));
    let lookupAsked!: () => void;
    const lookupStarted = new Promise<void>((resolve) => (lookupAsked = resolve));
    const get = MemoryResponseCacheStore.prototype.get;
    jest.spyOn(MemoryResponseCacheStore.prototype, 'get').mockImplementation(async function (this: MemoryResponseCacheStore, id: string) {
      lookupAsked();
      await lookupMayAnswer;
      return get.call(this, id);
    });
    const calls: unknown[] = [];
    const router = {
      embed: (request: unknown) => {
        calls.push(request);
        return Promise.reject(new Error('no provider is reached in this test'));
      },
    } as Partial<RouterCalls> as RouterCalls;
    const events: usagev1.UsageEvent[] = [];
    let metered!: () => void;
    const recorded = new Promise<void>((resolve) => (metered = resolve));
    const recording: UsagePublisher = { ...publisher, publish: async (event) => void (events.push(event), metered()) };
    const config = ingressTestConfig({
      ingress: { http: { host: '127.0.0.1', port: 0 }, router: '127.0.0.1:1', devKey: KEY },
      cache: { enabled: true, mode: 'always' },
      models: [{ id: 'e', capabilities: ['embeddings'], pricing: { input: '1' }, deployments: [{ id: 'd', provider: 'sim', model: 'u' }] }],
    });
    ingress = await startIngress(config, createLogger('ingress', 'silent'), { router, usagePublisher: recording });

    const client = new AbortController();
    const sent = fetch(`http://127.0.0.1:${ingress.httpPort}/v1/embeddings`, {
      method: 'POST',
      signal: client.signal,
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'e', input: 'hello' }),
    });
    await lookupStarted;
    client.abort();
    await expect(sent).rejects.toThrow();
    // The request is recorded as the client leaves; only then does the cache answer (a miss).
    await recorded;
    answerLookup();
    await ingress.close();
    ingress = undefined;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: usagev1.Status.STATUS_CANCELLED, cancelled: true, cost: { amount: '0' } });
    expect(calls).toEqual([]);
  });
});
