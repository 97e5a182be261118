import OpenAI from 'openai';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const model = (id: string, upstream: string[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id,
  capabilities: ['chat', 'tools', 'json_object'],
  deployments: upstream.map((u) => ({ id: u, provider: 'simulated', model: u })),
  ...extra,
});

/** Models whose upstream names the simulator's faults can target one by one. */
const MODELS = [
  model('primary', ['primary-a', 'primary-b'], { fallbacks: ['backup'], pricing: { input: '1', output: '2' } }),
  model('backup', ['backup-a'], { pricing: { input: '1', output: '2' } }),
  model('solo', ['solo-a']),
  model('budget', ['budget-a'], { pricing: { input: '0.10', output: '0.40' }, quality: { default: 0.4, chat: 0.8, creative: 0.75 } }),
  model('frontier', ['frontier-a'], { pricing: { input: '5', output: '15' }, quality: { default: 0.9 } }),
  model('base', ['base-a']),
  model('canary', ['canary-a']),
  model('tiny', ['tiny-a'], { contextWindow: 64, excludeFromAuto: true }),
  model('steady', ['steady-a'], { excludeFromAuto: true }),
  model('flaky', ['flaky-a'], { excludeFromAuto: true }),
  { id: 'text-embedding-3-small', capabilities: ['embeddings'], deployments: [{ provider: 'simulated', model: 'embed-upstream' }] },
];

/** How long an open circuit keeps its deployment out before a probe goes to it. */
const COOLDOWN_MS = 3_000;

const ROUTING = {
  seed: 3,
  balancing: 'weighted',
  aliases: { smart: { models: ['budget', 'frontier'] }, rollout: { models: ['base'] }, duo: { models: ['budget'] }, split: { models: ['steady'] } },
  experiments: [
    { id: 'duo-split', target: 'duo', arms: [{ name: 'budget', model: 'budget', weight: 1 }, { name: 'frontier', model: 'frontier', weight: 1 }] },
    { id: 'arm-down', target: 'split', arms: [{ name: 'up', model: 'steady', weight: 1 }, { name: 'down', model: 'flaky', weight: 1 }] },
  ],
  // Timeouts far above a slow answer on a loaded machine, which must not fail over; the test of a
  // deployment that never answers waits one out.
  retry: { maxAttempts: 4, deadlineMs: 10_000, attemptTimeoutMs: 5_000, completionTimeoutMs: 5_000, baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 3_000 },
  breaker: { consecutiveFailures: 3, cooldownMs: COOLDOWN_MS, minRequests: 100 },
  grayReleases: [{ id: 'canary-rollout', target: 'rollout', baseline: 'base', canary: 'canary', steps: [{ afterMinutes: 0, percent: 50 }], rollback: { minRequests: 3, errorRateMargin: 0.2 } }],
};

const user = (text: string): OpenAI.ChatCompletionMessageParam[] => [{ role: 'user', content: text }];

describe('routing end to end with injected provider faults', () => {
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['models'] = MODELS;
        doc['routing'] = ROUTING;
      },
    });
    client = gw.client();
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  async function ask(modelName: string, extra: Record<string, unknown> = {}, text = 'Hello there'): Promise<{ data: OpenAI.ChatCompletion; headers: Headers }> {
    const { data, response } = await client.chat.completions.create({ model: modelName, messages: user(text), max_tokens: 4, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming).withResponse();
    return { data, headers: response.headers };
  }

  it('serves from the next deployment when the first answers 500, and says so in the headers', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, model: 'primary-a', remaining: 1 }] });
    const { data, headers } = await ask('primary', { route: { providers: { order: ['simulated'] } } });
    expect(data.choices[0]?.message.content).toBeTruthy();
    expect(headers.get('x-openrouter-model')).toBe('primary');
    const attempts = Number(headers.get('x-openrouter-attempts'));
    const firstTried = gw.sim.requests()[0]?.model;
    if (firstTried === 'primary-a') {
      expect(attempts).toBe(2);
      expect(headers.get('x-openrouter-deployment')).toBe('primary-b');
      expect(headers.get('x-openrouter-route-reason')).toContain('failover after 1 failed attempt');
    } else {
      expect(attempts).toBe(1);
    }
    expect(headers.get('x-openrouter-task-type')).toBe('chat');
  });

  it('falls back to the fallback model when every deployment of the primary fails', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 503, model: 'primary-a' }, { kind: 'http_error', status: 500, model: 'primary-b' }] });
    const { headers } = await ask('primary');
    expect(headers.get('x-openrouter-model')).toBe('backup');
    expect(headers.get('x-openrouter-attempts')).toBe('3');
    expect(headers.get('x-openrouter-route-reason')).toContain('fallback backup');
  });

  it('waits out a 429 Retry-After on the only deployment and succeeds', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 429, model: 'solo-a', retryAfterSeconds: 1, remaining: 1 }] });
    const { headers } = await ask('solo');
    expect(headers.get('x-openrouter-attempts')).toBe('2');
    const [refused, retried] = gw.sim.requests().filter((r) => r.model === 'solo-a');
    expect(gw.sim.requests().filter((r) => r.model === 'solo-a')).toHaveLength(2);
    // The second call came a Retry-After after the first was refused, by the times the provider recorded.
    expect(refused).toMatchObject({ outcome: 'error' });
    expect((retried?.receivedAt ?? 0) - (refused?.endedAt ?? Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(900);
  });

  it('moves on from a deployment that does not answer in time', async () => {
    gw.sim.configure({ faults: [{ kind: 'timeout', model: 'backup-a' }] });
    const { headers } = await ask('backup', { models: ['solo'] });
    expect(headers.get('x-openrouter-model')).toBe('solo');
    expect(headers.get('x-openrouter-route-reason')).toContain('fallback solo');
  });

  it('fails over a stream before its first token, so the client sees only the good stream', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 502, model: 'backup-a', remaining: 1 }] });
    const { data: stream, response } = await client.chat.completions.create({ model: 'backup', models: ['solo'], messages: user('Stream please'), stream: true } as OpenAI.ChatCompletionCreateParamsStreaming).withResponse();
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(response.headers.get('x-openrouter-deployment')).toBe('solo-a');
    expect(response.headers.get('x-openrouter-attempts')).toBe('2');
  });

  it('opens the circuit after repeated failures and closes it once the deployment recovers', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, model: 'primary-a' }] });
    const served: string[] = [];
    for (let i = 0; i < 8; i++) served.push((await ask('primary', { route: { providers: { only: ['simulated'] } } })).headers.get('x-openrouter-attempts') ?? '');
    // Three failures in a row open the circuit. Once open, primary-a is tried again only by a probe, a
    // cooldown after the failure before it (on a slow machine the requests can outlast a cooldown),
    // by the times the provider recorded.
    const tried = gw.sim.requests().filter((r) => r.model === 'primary-a');
    expect(tried.length).toBeGreaterThanOrEqual(1);
    for (const [i, call] of tried.entries()) {
      if (i >= 3) expect(call.receivedAt - (tried[i - 1]?.endedAt ?? Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(COOLDOWN_MS);
    }
    // Each call to primary-a failed over to primary-b; every other request was served at the first attempt.
    expect(served.filter((attempts) => attempts === '2')).toHaveLength(tried.length);
    expect(served.filter((attempts) => attempts !== '1' && attempts !== '2')).toEqual([]);
    const triedWhileOpen = tried.length;
    gw.sim.configure({ faults: [] });
    // After the cooldown a probe goes to primary-a again, succeeds, and the circuit closes.
    let recovered = false;
    const giveUpAt = Date.now() + 20_000;
    while (!recovered && Date.now() < giveUpAt) {
      await ask('primary');
      recovered = gw.sim.requests().filter((r) => r.model === 'primary-a').length > triedWhileOpen;
    }
    expect(recovered).toBe(true);
  });

  it('picks the cheap model only where its quality reaches min_quality', async () => {
    const route = { strategy: 'cost', min_quality: 0.7 };
    const chat = await ask('smart', { route }, 'Hi! How are you doing today?');
    expect(chat.headers.get('x-openrouter-task-type')).toBe('chat');
    expect(chat.headers.get('x-openrouter-model')).toBe('budget');
    const code = await ask('smart', { route }, 'Write a Python function that merges two sorted lists.');
    expect(code.headers.get('x-openrouter-task-type')).toBe('code');
    expect(code.headers.get('x-openrouter-model')).toBe('frontier');
  });

  it('takes route controls from headers and rejects bad ones with a 400 naming the parameter', async () => {
    const headerRoute = await client.chat.completions
      .create({ model: 'smart', messages: user('Hi! How are you doing today?'), max_tokens: 4 }, { headers: { 'x-openrouter-route': JSON.stringify({ strategy: 'quality' }) } })
      .withResponse();
    expect(headerRoute.response.headers.get('x-openrouter-model')).toBe('frontier');
    // The legacy completions API reads the same headers.
    const legacy = await client.completions
      .create({ model: 'smart', prompt: 'Hi! How are you doing today?', max_tokens: 4 }, { headers: { 'x-openrouter-route': JSON.stringify({ strategy: 'quality' }) } })
      .withResponse();
    expect(legacy.response.headers.get('x-openrouter-model')).toBe('frontier');
    await expect(client.completions.create({ model: 'smart', prompt: 'Hi' }, { headers: { 'x-openrouter-route': JSON.stringify({ strategy: 'fastest' }) } })).rejects.toMatchObject({ status: 400, param: 'route.strategy' });
    await expect(ask('smart', { route: { strategy: 'fastest' } })).rejects.toMatchObject({ status: 400, param: 'route.strategy' });
    await expect(ask('ghost')).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    expect(gw.sim.requests().every((r) => (r.body as Record<string, unknown>)['route'] === undefined)).toBe(true);
  });

  it('answers 400 with the reason, not a retryable 503, when the model cannot serve the request', async () => {
    const image: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }];
    await expect(client.chat.completions.create({ model: 'solo', messages: image })).rejects.toMatchObject({ status: 400, code: 'model_not_supported', param: 'messages', error: { message: 'The model `solo` cannot serve this request: does not support vision.' } });
    const schema = { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } } as const;
    await expect(client.chat.completions.create({ model: 'solo', messages: user('Hi'), response_format: schema })).rejects.toMatchObject({ status: 400, code: 'model_not_supported', param: 'response_format' });
    await expect(client.chat.completions.create({ model: 'tiny', messages: user('word '.repeat(400)) })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'messages' });
    await expect(client.chat.completions.create({ model: 'tiny', messages: user('Hi'), max_tokens: 100 })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'max_tokens' });
    await expect(ask('smart', { route: { max_price: '0.01' } })).rejects.toMatchObject({ status: 400, code: 'max_price_exceeded', param: 'route.max_price' });
    // The SDK retries a 503 but not a 400: even with retries on, the refusal is answered once.
    await expect(gw.client({ maxRetries: 2 }).chat.completions.create({ model: 'solo', messages: image })).rejects.toMatchObject({ status: 400 });
    expect(gw.sim.requests()).toHaveLength(0);
  });

  it('rolls a gray release back when the canary fails, while every client request still succeeds', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, model: 'canary-a' }] });
    const arms: string[] = [];
    for (let i = 0; i < 40; i++) {
      const { headers } = await ask('rollout', { user: `user-${i}` });
      arms.push(headers.get('x-openrouter-experiment') ?? '');
      expect(headers.get('x-openrouter-model')).toBe('base');
    }
    // Three canary calls fail (each served by the baseline instead; then the canary's breaker
    // opens), and once the baseline has its three calls to compare with, the release rolls back.
    const canary = arms.filter((a) => a === 'canary-rollout/canary').length;
    expect(canary).toBeGreaterThanOrEqual(3);
    expect(canary).toBeLessThan(15);
    expect(arms.slice(-10).every((a) => a === 'canary-rollout/baseline')).toBe(true);
  });
  it("records every request of an experiment arm for the arm, those its open breaker refused without a call too", async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, model: 'flaky-a' }] });
    const once = gw.client({ maxRetries: 0 });
    let failed = 0;
    for (let i = 0; i < 24; i++) {
      const outcome = await once.chat.completions.create({ model: 'split', messages: user('Hi'), max_tokens: 4, user: `arm-user-${i}` }).then(
        (data) => data.model,
        (error: { status?: number }) => error.status,
      );
      if (typeof outcome === 'number') failed++;
      expect([502, 503, 'steady']).toContain(outcome);
    }
    // The flaky arm's breaker opened after its first failures: later requests were refused before any call.
    const called = gw.sim.requests().filter((r) => r.model === 'flaky-a').length;
    expect(failed).toBeGreaterThan(0);
    expect(called).toBeLessThan(failed * 4);
    const arms = await waitFor(
      async () => {
        const found = await queryRows<{ arm: string; status: string; n: string }>(
          gw.gateway.billing.usage.store,
          "SELECT experiment_arm AS arm, status, count() AS n FROM {db:Identifier}.usage_events FINAL WHERE experiment = 'arm-down' GROUP BY arm, status ORDER BY arm, status",
        );
        return found.reduce((sum, r) => sum + Number(r.n), 0) === 24 ? found : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "the experiment's 24 usage rows" },
    );
    expect(arms.map((r) => [r.arm, r.status, Number(r.n)])).toEqual([
      ['down', 'error', failed],
      ['up', 'ok', 24 - failed],
    ]);
  });

  it('serves every arm of an experiment or gray release to a key allowed only the name it asks for', async () => {
    const issued = await fetch(`${gw.url}/admin/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ org: 'default', allowed_models: ['duo', 'rollout'] }),
    });
    expect(issued.status).toBe(201);
    const limited = gw.client({ apiKey: ((await issued.json()) as { key: string }).key });
    const served = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const { response } = await limited.chat.completions.create({ model: 'duo', messages: user('Hello there'), max_tokens: 4, user: `duo-user-${i}` }).withResponse();
      served.add(`${response.headers.get('x-openrouter-experiment')} ${response.headers.get('x-openrouter-model')}`);
    }
    expect(served).toEqual(new Set(['duo-split/budget budget', 'duo-split/frontier frontier']));
    const rollout = await limited.chat.completions.create({ model: 'rollout', messages: user('Hello there'), max_tokens: 4 }).withResponse();
    expect(rollout.response.headers.get('x-openrouter-experiment')).toMatch(/^canary-rollout\//);
    // Asking for an arm's model by name is still refused, and the 404 names what was asked for.
    await expect(limited.chat.completions.create({ model: 'frontier', messages: user('Hello there'), max_tokens: 4 })).rejects.toMatchObject({
      status: 404,
      code: 'model_not_found',
      error: { message: 'The model `frontier` does not exist or you do not have access to it.' },
    });
  });
});
