import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig, providerSchema, type GatewayConfig, type ProviderConfigOf } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { parseImageGenerationRequest, toOpenAIError } from '@openrouter/openai-wire';
import { type RunningSimulator, SecretVolume, startSimulator } from '@openrouter/provider-simulator';
import { AdapterService } from '../../adapter.service';
import { createAzureAdapter } from '../azure/azure.adapter';
import { failure } from '../gateway-failure.testing';
import { ImageSource } from '../image-source';
import type { ProviderAdapter } from '../provider-adapter';
import { PROVIDER_REGISTRY } from '../provider.registry';
import { countTextTokens } from '../text-tokens';
import { createOpenAIAdapter } from './openai.adapter';

const KEY = 'sk-images-key';
const PNG_MAGIC = 'PNG';

const call = (upstreamModel: string, body: Record<string, unknown>, timeoutMs = 5_000) => ({
  requestId: 'req-img-1',
  upstreamModel,
  request: parseImageGenerationRequest({ model: 'public-images', ...body }),
  timeoutMs,
  signal: new AbortController().signal,
});

const isPng = (b64: string | undefined): boolean => Buffer.from(b64 ?? '', 'base64').subarray(1, 4).toString('ascii') === PNG_MAGIC;

/** The OpenAI family's and Azure OpenAI's image generation against the simulated provider: real HTTP, real auth, real faults. */
describe('image generation against the simulated provider', () => {
  let sim: RunningSimulator;
  const open: ProviderAdapter[] = [];
  const images = new ImageSource();

  const adapterFor = (fields: Record<string, unknown> = {}): ProviderAdapter => {
    const config = providerSchema.parse({ type: 'openai', baseUrl: `${sim.url}/v1`, apiKey: KEY, timeoutMs: 5_000, ...fields }) as ProviderConfigOf<'openai'>;
    const adapter = createOpenAIAdapter('sim-openai', config);
    open.push(adapter);
    return adapter;
  };
  const azureFor = (fields: Record<string, unknown> = {}): ProviderAdapter => {
    const config = providerSchema.parse({ type: 'azure', baseUrl: sim.url, apiKey: KEY, timeoutMs: 5_000, ...fields }) as ProviderConfigOf<'azure'>;
    const adapter = createAzureAdapter('sim-azure', config, { images });
    open.push(adapter);
    return adapter;
  };
  const generate = (adapter: ProviderAdapter, upstreamModel: string, body: Record<string, unknown>, timeoutMs?: number): Promise<chatv1.ImageGenerationResponse> => {
    if (!adapter.generateImages) throw new Error('the adapter offers no image generation');
    return adapter.generateImages(call(upstreamModel, body, timeoutMs));
  };
  const imageCalls = () => sim.requests().filter((r) => r.path.endsWith('/images/generations'));

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: KEY });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((a) => a.close()));
    sim.reset();
  });
  afterAll(async () => {
    await images.close();
    await sim.close();
  });

  describe('the OpenAI family', () => {
    it("answers GPT Image with b64_json and the provider's usage, sending the upstream model, the prompt and the carried parameters", async () => {
      const prompt = 'a lighthouse in a storm';
      const answer = await generate(adapterFor(), 'gpt-image-1', { prompt, n: 2, quality: 'low', size: '1536x1024', user: 'u-7', moderation: 'low' });
      expect(answer.data).toHaveLength(2);
      expect(answer.data.every((image) => isPng(image.b64Json) && image.url === undefined)).toBe(true);
      const inputTokens = countTextTokens(prompt);
      expect(answer.usage).toEqual({ promptTokens: inputTokens, completionTokens: 800, totalTokens: inputTokens + 800, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false });
      expect(JSON.parse(answer.extraJson)).toEqual({ background: 'opaque', output_format: 'png', quality: 'low', size: '1536x1024' });
      expect(answer.created).toBeGreaterThan(1_700_000_000);

      expect(imageCalls()).toHaveLength(1);
      expect(imageCalls()[0]).toMatchObject({ path: '/v1/images/generations', outcome: 'completed', model: 'gpt-image-1', headers: expect.objectContaining({ authorization: 'present' }) });
      expect(imageCalls()[0]?.body).toEqual({ model: 'gpt-image-1', prompt, n: 2, user: 'u-7', quality: 'low', size: '1536x1024', moderation: 'low' });
    });

    it('never sends GPT Image a response_format (it refuses one), and refuses a request for URLs from it before any call', async () => {
      const answer = await generate(adapterFor(), 'gpt-image-1', { prompt: 'x', response_format: 'b64_json' });
      expect(isPng(answer.data[0]?.b64Json)).toBe(true);
      expect(imageCalls()[0]?.body).toEqual({ model: 'gpt-image-1', prompt: 'x' });

      const refused = await failure(generate(adapterFor(), 'gpt-image-1', { prompt: 'x', response_format: 'url' }));
      expect(refused).toMatchObject({ kind: 'bad_request', param: 'response_format', retryable: false });
      expect(imageCalls()).toHaveLength(1);
    });

    it("answers DALL·E 3 with a URL and its revised prompt, billed on the gateway's estimate of the prompt (no output tokens)", async () => {
      const prompt = 'an isometric city made of glass';
      const answer = await generate(adapterFor(), 'dall-e-3', { prompt, style: 'vivid' });
      expect(answer.data).toHaveLength(1);
      const image = answer.data[0];
      expect(image?.url).toMatch(new RegExp(`^${sim.url}/_sim/images/`));
      expect(image?.b64Json).toBeUndefined();
      expect(image?.revisedPrompt).toContain(prompt);
      const fetched = await fetch(image?.url ?? '');
      expect(fetched.headers.get('content-type')).toBe('image/png');
      const tokens = countTextTokens(prompt);
      expect(tokens).toBeGreaterThan(3);
      expect(answer.usage).toEqual({ promptTokens: tokens, completionTokens: 0, totalTokens: tokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true });
      expect(answer.extraJson).toBe('');
    });

    it('answers DALL·E 2 with b64_json when asked, and GPT Image without usage on an estimate', async () => {
      const dalle = await generate(adapterFor(), 'dall-e-2', { prompt: 'x', n: 3, response_format: 'b64_json', size: '256x256' });
      expect(dalle.data.map((image) => isPng(image.b64Json))).toEqual([true, true, true]);
      expect(imageCalls()[0]?.body).toMatchObject({ response_format: 'b64_json', n: 3 });
      sim.configure({ omitUsage: true });
      const gpt = await generate(adapterFor(), 'gpt-image-1', { prompt: 'a small cat' });
      expect(gpt.usage).toMatchObject({ promptTokens: countTextTokens('a small cat'), completionTokens: 0, estimated: true });
    });

    it("leaves out the provider's dropParams", async () => {
      await generate(adapterFor({ dropParams: ['user', 'style'] }), 'dall-e-3', { prompt: 'x', user: 'u', style: 'natural', quality: 'hd' });
      expect(imageCalls()[0]?.body).toEqual({ model: 'dall-e-3', prompt: 'x', quality: 'hd' });
    });

    it("passes the provider's refusal of a request on as a 400 naming its param", async () => {
      const error = await failure(generate(adapterFor(), 'dall-e-3', { prompt: 'x', n: 2 }));
      expect(error).toMatchObject({ kind: 'bad_request', param: 'n', upstreamStatus: 400, retryable: false });
    });

    it('maps a 429 with Retry-After to a retryable rate limit that says when to come back', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 9, path: 'images' }] });
      const error = await failure(generate(adapterFor(), 'gpt-image-1', { prompt: 'x' }));
      expect(error).toMatchObject({ kind: 'rate_limited', retryable: true, retryAfterMs: 9_000, upstreamStatus: 429, provider: 'sim-openai', code: 'rate_limit_exceeded' });
    });

    it('maps a 500 to a retryable upstream error and a 503 to overloaded', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'images', remaining: 1 }, { kind: 'http_error', status: 503, path: 'images', remaining: 1 }] });
      const adapter = adapterFor();
      await expect(failure(generate(adapter, 'dall-e-2', { prompt: 'x' }))).resolves.toMatchObject({ kind: 'upstream_error', retryable: true, upstreamStatus: 500 });
      await expect(failure(generate(adapter, 'dall-e-2', { prompt: 'x' }))).resolves.toMatchObject({ kind: 'overloaded', retryable: true, upstreamStatus: 503 });
      expect((await generate(adapter, 'dall-e-2', { prompt: 'x' })).data).toHaveLength(1);
    });

    it("waits as long as the provider's timeoutMs when the call sets none, and no longer", async () => {
      sim.configure({ latencyMs: 300 });
      expect((await generate(adapterFor({ timeoutMs: 10_000 }), 'gpt-image-1', { prompt: 'x' }, 0)).data).toHaveLength(1);
      sim.configure({ faults: [{ kind: 'timeout', path: 'images', remaining: 1 }] });
      await expect(failure(generate(adapterFor({ timeoutMs: 200 }), 'gpt-image-1', { prompt: 'x' }, 0))).resolves.toMatchObject({ kind: 'timeout', retryable: true });
    });

    it('maps an answer cut midway to a retryable failure of the provider, and a refused key to a failed authentication', async () => {
      sim.configure({ faults: [{ kind: 'drop_mid_stream', path: 'images', remaining: 1 }] });
      await expect(failure(generate(adapterFor(), 'gpt-image-1', { prompt: 'x' }))).resolves.toMatchObject({ kind: 'upstream_error', retryable: true, provider: 'sim-openai' });
      const refused = await failure(generate(adapterFor({ apiKey: 'sk-wrong' }), 'gpt-image-1', { prompt: 'x' }));
      expect(refused).toMatchObject({ kind: 'auth_failed', upstreamStatus: 401 });
      expect(refused.message).not.toContain('sk-wrong');
    });

    it('reads a key file again after the provider refused the old key', async () => {
      const volume = new SecretVolume({ secret: KEY });
      try {
        const adapter = adapterFor({ apiKey: undefined, apiKeyFile: volume.path('secret'), credentialFileCheckIntervalMs: 3_600_000 });
        expect((await generate(adapter, 'dall-e-2', { prompt: 'x' })).data).toHaveLength(1);
        sim.setApiKey('sk-images-rotated');
        volume.write({ secret: 'sk-images-rotated' });
        expect((await generate(adapter, 'dall-e-2', { prompt: 'x' })).data).toHaveLength(1);
        expect(imageCalls().map((r) => r.outcome)).toEqual(['completed', 'error', 'completed']);
      } finally {
        volume.remove();
      }
    });
  });

  describe('Azure OpenAI', () => {
    it('generates through the deployment path with its api-version and api-key: GPT Image as b64_json with usage', async () => {
      const answer = await generate(azureFor({ apiVersion: '2025-04-01-preview' }), 'gpt-image-1', { prompt: 'a red kite', quality: 'medium' });
      expect(isPng(answer.data[0]?.b64Json)).toBe(true);
      expect(answer.usage).toMatchObject({ completionTokens: 1056, estimated: false });
      expect(imageCalls()[0]).toMatchObject({ path: '/openai/deployments/gpt-image-1/images/generations', outcome: 'completed', headers: expect.objectContaining({ 'api-key': 'present' }) });
      expect(imageCalls()[0]?.body).toEqual({ model: 'gpt-image-1', prompt: 'a red kite', quality: 'medium' });
    });

    it('generates DALL·E 3 URLs on a deployment of its own name, on the estimate', async () => {
      const answer = await generate(azureFor(), 'dall-e-3', { prompt: 'a quiet harbour', response_format: 'url' });
      expect(answer.data[0]).toMatchObject({ url: expect.stringContaining('/_sim/images/'), revisedPrompt: expect.stringContaining('a quiet harbour') });
      expect(answer.usage).toMatchObject({ promptTokens: countTextTokens('a quiet harbour'), estimated: true });
    });

    it('maps a 429 with Retry-After as on the OpenAI family', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 2, path: 'images' }] });
      await expect(failure(generate(azureFor(), 'dall-e-3', { prompt: 'x' }))).resolves.toMatchObject({ kind: 'rate_limited', retryAfterMs: 2_000, provider: 'sim-azure' });
    });

    it('keeps offering image generation when its key comes from a file', async () => {
      const volume = new SecretVolume({ secret: KEY });
      try {
        const adapter = azureFor({ apiKey: undefined, apiKeyFile: volume.path('secret') });
        expect(adapter.generateImages).toBeDefined();
        expect((await generate(adapter, 'dall-e-3', { prompt: 'x' })).data).toHaveLength(1);
      } finally {
        volume.remove();
      }
    });
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

    const serviceCall = (provider: string, upstreamModel = 'gpt-image-1') => ({ ...call(upstreamModel, { prompt: 'a fox' }, 0), provider });

    it.each(['openai', 'azure'])('dispatches to the %s provider, which serves image generation', async (provider) => {
      const answer = await service.generateImages(serviceCall(provider), new AbortController().signal);
      expect(isPng(answer.data[0]?.b64Json)).toBe(true);
      expect(answer.usage?.estimated).toBe(false);
    });

    it('refuses image generation on a family without it (Anthropic) as unsupported (400, not retried) before any call', async () => {
      const error = await failure(Promise.resolve().then(() => service.generateImages(serviceCall('anthropic'), new AbortController().signal)));
      expect(error).toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'model', provider: 'anthropic', retryable: false });
      expect(error.message).toBe('The provider "anthropic" offers no image generation API.');
      expect(toOpenAIError(error).status).toBe(400);
      expect(sim.requests()).toEqual([]);
    });

    it('refuses a call for a provider this instance does not serve as unavailable', async () => {
      await expect(failure(Promise.resolve().then(() => service.generateImages(serviceCall('other'), new AbortController().signal)))).resolves.toMatchObject({ kind: 'unavailable' });
    });
  });
});

/** Answers the simulator never gives: a compatible server's empty, short or malformed image lists. */
describe('image generation answers of other servers', () => {
  let server: Server;
  let base: string;
  const open: ProviderAdapter[] = [];
  const answers: Record<string, unknown> = {
    empty: { created: 1, data: [] },
    'no-data': { created: 1 },
    'no-image': { created: 1, data: [{ revised_prompt: 'x' }] },
    short: { created: 5, data: [{ b64_json: 'iVBORw0KGgo=' }], usage: { input_tokens: 4, output_tokens: 272, total_tokens: 276 } },
    'no-created': { data: [{ url: 'https://files.example/a.png', content_filter_results: {} }], prompt_filter_results: [] },
    'not-json': '{"created": 1, "data": [',
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const name = /^\/([a-z-]+)\/images\/generations$/.exec(req.url ?? '')?.[1] ?? '';
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

  function generate(name: string, body: Record<string, unknown> = { prompt: 'x' }): Promise<chatv1.ImageGenerationResponse> {
    const adapter = createOpenAIAdapter('compat', { type: 'openai', baseUrl: `${base}/${name}`, apiKey: 'k', outputLimit: undefined, dropParams: [], headers: {}, timeoutMs: 5_000 });
    open.push(adapter);
    if (!adapter.generateImages) throw new Error('the adapter offers no image generation');
    return adapter.generateImages(call('some-image-model', body));
  }

  it.each([
    ['empty', /no images/],
    ['no-data', /malformed image generation/],
    ['no-image', /malformed image generation/],
    ['not-json', /malformed response/],
  ])('refuses a malformed answer (%s) as a retryable upstream error', async (name, message) => {
    const error = await failure(generate(name));
    expect(error).toMatchObject({ kind: 'upstream_error', retryable: true });
    expect(error.message).toMatch(message);
  });

  it('takes fewer images than asked for, with the usage reported', async () => {
    const answer = await generate('short', { prompt: 'x', n: 4 });
    expect(answer.data).toHaveLength(1);
    expect(answer.usage).toMatchObject({ promptTokens: 4, completionTokens: 272, totalTokens: 276, estimated: false });
    expect(answer.created).toBe(5);
  });

  it("dates an answer without a time now, and leaves out Azure's content-filter annotations", async () => {
    const before = Math.floor(Date.now() / 1000);
    const answer = await generate('no-created');
    expect(answer.created).toBeGreaterThanOrEqual(before);
    expect(answer.data).toEqual([{ b64Json: undefined, url: 'https://files.example/a.png', revisedPrompt: undefined }]);
    expect(answer.extraJson).toBe('');
  });
});
