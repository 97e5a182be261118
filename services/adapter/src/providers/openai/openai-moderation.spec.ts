import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig, providerSchema, type GatewayConfig, type ProviderConfigOf } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { parseModerationRequest, toOpenAIError } from '@openrouter/openai-wire';
import { type RunningSimulator, SecretVolume, startSimulator } from '@openrouter/provider-simulator';
import { AdapterService } from '../../adapter.service';
import { createAzureAdapter } from '../azure/azure.adapter';
import { failure } from '../gateway-failure.testing';
import { ImageSource } from '../image-source';
import type { ProviderAdapter } from '../provider-adapter';
import { PROVIDER_REGISTRY } from '../provider.registry';
import { countTextTokens } from '../text-tokens';
import { createOpenAIAdapter } from './openai.adapter';

const KEY = 'sk-moderation-key';
const MODEL = 'omni-moderation-latest';

const call = (body: Record<string, unknown>, timeoutMs = 5_000) => ({
  requestId: 'req-mod-1',
  upstreamModel: MODEL,
  request: parseModerationRequest({ model: 'public-moderation', ...body }),
  timeoutMs,
  signal: new AbortController().signal,
});

/** The OpenAI family's moderations against the simulated OpenAI: real HTTP, real auth, real faults. */
describe('OpenAI adapter moderations against the simulated provider', () => {
  let sim: RunningSimulator;
  const open: ProviderAdapter[] = [];

  const openaiConfig = (fields: Record<string, unknown> = {}): ProviderConfigOf<'openai'> =>
    providerSchema.parse({ type: 'openai', baseUrl: `${sim.url}/v1`, apiKey: KEY, timeoutMs: 5_000, ...fields }) as ProviderConfigOf<'openai'>;
  const adapterFor = (fields: Record<string, unknown> = {}): ProviderAdapter => {
    const adapter = createOpenAIAdapter('sim-openai', openaiConfig(fields));
    open.push(adapter);
    return adapter;
  };
  const moderate = (adapter: ProviderAdapter, body: Record<string, unknown>, timeoutMs?: number): Promise<chatv1.ModerationResponse> => {
    if (!adapter.moderate) throw new Error('the adapter offers no moderations');
    return adapter.moderate(call(body, timeoutMs));
  };
  const moderationCalls = () => sim.requests().filter((r) => r.path === '/v1/moderations');

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: KEY });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((a) => a.close()));
    sim.reset();
  });
  afterAll(() => sim.close());

  it('judges each text, sends the upstream model and the texts, and bills its own estimate of their tokens', async () => {
    const texts = ['I will kill you', 'What a lovely picnic'];
    const answer = await moderate(adapterFor(), { input: texts, vendor_knob: 1 });
    expect(answer.id).toMatch(/^modr-/);
    expect(answer.model).toBe(MODEL);
    expect(answer.results.map((r) => r.flagged)).toEqual([true, false]);
    expect(answer.results[0]?.categories['violence']).toBe(true);
    expect(answer.results[0]?.categoryScores['violence']).toBeGreaterThanOrEqual(0.9);
    expect(JSON.parse(answer.results[0]?.extraJson ?? '{}')).toMatchObject({ category_applied_input_types: { violence: ['text'] } });
    const tokens = countTextTokens(texts[0] ?? '') + countTextTokens(texts[1] ?? '');
    expect(tokens).toBeGreaterThan(5);
    expect(answer.usage).toEqual({ promptTokens: tokens, completionTokens: 0, totalTokens: tokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true });

    expect(moderationCalls()).toHaveLength(1);
    expect(moderationCalls()[0]).toMatchObject({ outcome: 'completed', model: MODEL, headers: expect.objectContaining({ authorization: 'present' }) });
    expect(moderationCalls()[0]?.body).toEqual({ model: MODEL, input: texts, vendor_knob: 1 });
  });

  it('judges a list of parts as one input and counts only its text parts (an image counts no tokens)', async () => {
    const parts = [
      { type: 'text', text: 'hello there, friend' },
      { type: 'image_url', image_url: { url: 'https://example.com/gore.png' } },
    ];
    const answer = await moderate(adapterFor(), { input: parts });
    expect(answer.results).toHaveLength(1);
    expect(answer.results[0]?.categories['violence/graphic']).toBe(true);
    expect(JSON.parse(answer.results[0]?.extraJson ?? '{}').category_applied_input_types.violence).toEqual(['text', 'image']);
    expect(answer.usage).toMatchObject({ promptTokens: countTextTokens('hello there, friend'), estimated: true });
    expect(moderationCalls()[0]?.body).toEqual({ model: MODEL, input: parts });
    // An image alone: nothing to count.
    expect((await moderate(adapterFor(), { input: [parts[1]] })).usage).toMatchObject({ promptTokens: 0, totalTokens: 0, estimated: true });
  });

  it("leaves out the provider's dropParams and top-level nulls", async () => {
    await moderate(adapterFor({ dropParams: ['user'] }), { input: 'x', user: 'u', vendor_knob: null });
    expect(moderationCalls()[0]?.body).toEqual({ model: MODEL, input: ['x'] });
  });

  it('maps a 429 with Retry-After to a retryable rate limit that says when to come back', async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 7, path: 'moderations' }] });
    const error = await failure(moderate(adapterFor(), { input: 'x' }));
    expect(error).toMatchObject({ kind: 'rate_limited', retryable: true, retryAfterMs: 7_000, upstreamStatus: 429, provider: 'sim-openai', code: 'rate_limit_exceeded' });
  });

  it('maps a 500 to a retryable upstream error and a 503 to overloaded', async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'moderations', remaining: 1 }, { kind: 'http_error', status: 503, path: 'moderations', remaining: 1 }] });
    const adapter = adapterFor();
    await expect(failure(moderate(adapter, { input: 'x' }))).resolves.toMatchObject({ kind: 'upstream_error', retryable: true, upstreamStatus: 500 });
    await expect(failure(moderate(adapter, { input: 'x' }))).resolves.toMatchObject({ kind: 'overloaded', retryable: true, upstreamStatus: 503 });
    expect((await moderate(adapter, { input: 'x' })).results).toHaveLength(1);
  });

  it('maps a provider that does not answer in time to a timeout, and a refused key to a failed authentication', async () => {
    sim.configure({ faults: [{ kind: 'timeout', path: 'moderations', remaining: 1 }] });
    await expect(failure(moderate(adapterFor(), { input: 'x' }, 200))).resolves.toMatchObject({ kind: 'timeout', retryable: true });
    const refused = await failure(moderate(adapterFor({ apiKey: 'sk-wrong' }), { input: 'x' }));
    expect(refused).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', upstreamStatus: 401 });
    expect(refused.message).not.toContain('sk-wrong');
  });

  it('maps an answer whose connection was cut midway to a retryable failure of the provider, which was reached', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream', path: 'moderations' }] });
    await expect(failure(moderate(adapterFor(), { input: 'x' }))).resolves.toMatchObject({ kind: 'upstream_error', retryable: true, provider: 'sim-openai' });
  });

  it('reads a key file again after the provider refused the old key, as embeddings do', async () => {
    const volume = new SecretVolume({ secret: KEY });
    try {
      const adapter = adapterFor({ apiKey: undefined, apiKeyFile: volume.path('secret'), credentialFileCheckIntervalMs: 3_600_000 });
      expect((await moderate(adapter, { input: 'x' })).results).toHaveLength(1);
      sim.setApiKey('sk-moderation-rotated');
      volume.write({ secret: 'sk-moderation-rotated' });
      expect((await moderate(adapter, { input: 'x' })).results).toHaveLength(1);
      expect(moderationCalls().map((r) => r.outcome)).toEqual(['completed', 'error', 'completed']);
    } finally {
      volume.remove();
    }
  });

  describe('through the adapter service', () => {
    let service: AdapterService;

    beforeAll(() => {
      const config: GatewayConfig = parseConfig(
        {
          version: 1,
          ingress: { http: { port: 8080 }, router: '127.0.0.1:1' },
          router: { grpc: { port: 1 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
          adapter: { grpc: { port: 2 }, http: { port: 0 } },
          billing: { http: { port: 0 } },
          alerting: { http: { port: 0 } },
          providers: {
            openai: { type: 'openai', baseUrl: `${sim.url}/v1`, apiKey: KEY },
            azure: { type: 'azure', baseUrl: sim.url, apiKey: KEY },
            anthropic: { type: 'anthropic', baseUrl: sim.url, apiKey: KEY },
          },
          models: [{ id: 'm', deployments: [{ provider: 'openai', model: 'up' }] }],
        },
        {},
      );
      service = new AdapterService(config, PROVIDER_REGISTRY);
    });
    afterAll(() => service.close());

    const serviceCall = (provider: string) => ({ ...call({ input: 'I hate mondays' }), provider });

    it('dispatches to the provider that serves moderations', async () => {
      const answer = await service.moderate(serviceCall('openai'), new AbortController().signal);
      expect(answer.results[0]?.categories['hate']).toBe(true);
      expect(answer.usage?.estimated).toBe(true);
    });

    it.each(['azure', 'anthropic'])('refuses moderations on a %s provider as unsupported (400, not retried) before any call', async (provider) => {
      const error = await failure(Promise.resolve().then(() => service.moderate(serviceCall(provider), new AbortController().signal)));
      expect(error).toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'model', retryable: false });
      expect(error.message).toBe(`The provider "${provider}" offers no moderations API.`);
      expect(toOpenAIError(error).status).toBe(400);
      expect(moderationCalls()).toEqual([]);
      expect(sim.requests()).toEqual([]);
    });

    it('refuses a call for a provider this instance does not serve as unavailable', async () => {
      await expect(failure(Promise.resolve().then(() => service.moderate(serviceCall('other'), new AbortController().signal)))).resolves.toMatchObject({ kind: 'unavailable' });
    });
  });

  it('is not offered by Azure OpenAI, which has no moderations endpoint', async () => {
    const images = new ImageSource();
    const azure = createAzureAdapter('azure', providerSchema.parse({ type: 'azure', baseUrl: sim.url, apiKey: KEY }) as ProviderConfigOf<'azure'>, { images });
    open.push(azure);
    expect(azure.moderate).toBeUndefined();
    await images.close();
  });
});

/** Answers the simulator never gives: a compatible server's malformed or mis-sized moderations, and Mistral's shape. */
describe('OpenAI adapter moderation answers of other servers', () => {
  let server: Server;
  let base: string;
  const open: ProviderAdapter[] = [];
  const answers: Record<string, unknown> = {
    'no-results': { id: 'modr-x', model: 'm' },
    'no-categories': { id: 'modr-x', model: 'm', results: [{ flagged: true, category_scores: { hate: 0.9 } }] },
    'one-too-many': { id: 'modr-x', model: 'm', results: [0, 1].map(() => ({ flagged: false, categories: { hate: false }, category_scores: { hate: 0.01 } })) },
    mistral: {
      id: 'f5a8c1d2e3',
      model: 'mistral-moderation-2411',
      results: [{ categories: { violence_and_threats: true, hate_and_discrimination: false }, category_scores: { violence_and_threats: 0.81, hate_and_discrimination: 0.02 } }],
    },
    'not-json': '{"id": "modr-x", "results": [',
    'no-id': { model: 'm', results: [{ flagged: false, categories: { hate: false }, category_scores: { hate: 0.01 } }] },
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const name = /^\/([a-z-]+)\/moderations$/.exec(req.url ?? '')?.[1] ?? '';
        res.writeHead(200, { 'content-type': 'application/json' });
        const answer = answers[name];
        res.end(typeof answer === 'string' ? answer : JSON.stringify(answer ?? null));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await Promise.all(open.map((a) => a.close()));
    server.close();
  });

  function moderate(name: string, input: unknown = 'x'): Promise<chatv1.ModerationResponse> {
    const adapter = createOpenAIAdapter('compat', { type: 'openai', baseUrl: `${base}/${name}`, apiKey: 'k', outputLimit: undefined, dropParams: [], headers: {}, timeoutMs: 5_000 });
    open.push(adapter);
    if (!adapter.moderate) throw new Error('the adapter offers no moderations');
    return adapter.moderate(call({ input }));
  }

  it.each(['no-results', 'no-categories', 'one-too-many', 'not-json'])('refuses a malformed answer (%s) as an upstream error', async (name) => {
    const error = await failure(moderate(name));
    expect(error.kind).toBe('upstream_error');
    expect(error.message).toMatch(/malformed (moderation|response)/);
  });

  it("reads Mistral's categories, flagged when any is, with the estimate as usage", async () => {
    const answer = await moderate('mistral', ['we will hurt you']);
    expect(answer).toMatchObject({ id: 'f5a8c1d2e3', model: 'mistral-moderation-2411', usage: { estimated: true, promptTokens: countTextTokens('we will hurt you') } });
    expect(answer.results[0]).toMatchObject({ flagged: true, categories: { violence_and_threats: true }, categoryScores: { violence_and_threats: 0.81 } });
  });

  it("gives an answer without an id one made from the request's", async () => {
    expect((await moderate('no-id')).id).toBe('modr-req-mod-1');
  });
});
