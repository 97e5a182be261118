import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32, deflateSync } from 'node:zlib';
import { providerSchema, type ProviderConfigOf } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { toOpenAIError } from '@openrouter/openai-wire';
import { GPT_IMAGE_OUTPUT_TOKENS, type ObservedRequest, type RunningSimulator, SecretVolume, startSimulator } from '@openrouter/provider-simulator';
import { createAzureAdapter } from '../azure/azure.adapter';
import { failure } from '../gateway-failure.testing';
import { ImageSource } from '../image-source';
import type { ProviderAdapter } from '../provider-adapter';
import { countTextTokens } from '../text-tokens';
import { createOpenAIAdapter } from './openai.adapter';

/** A real PNG: `width` × `height` pixels of one colour (the simulator reads its size from the header). */
function png(width: number, height: number, rgb: readonly [number, number, number] = [200, 40, 40]): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'ascii');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(8, 8); // bit depth
  ihdr.writeUInt8(2, 9); // truecolour
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3).map((_, i) => rgb[i % 3] ?? 0)]);
  const pixels = deflateSync(Buffer.concat(Array.from({ length: height }, () => row)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', pixels), chunk('IEND', Buffer.alloc(0))]);
}

const upload = (filename: string, data: Buffer = png(16, 16), contentType = 'image/png'): chatv1.UploadedFile => ({ data, filename, contentType });

/** An image edit as ingress makes it from a client's form. */
function edit(fields: Partial<chatv1.ImageGenerationRequest> = {}): chatv1.ImageGenerationRequest {
  return { model: 'public-images', prompt: 'add a red hat', extraJson: '', images: [upload('photo.png')], ...fields };
}

const call = (upstreamModel: string, request: chatv1.ImageGenerationRequest, timeoutMs = 5_000, signal: AbortSignal = new AbortController().signal) => ({ requestId: 'req-edit-1', upstreamModel, request, timeoutMs, signal });

function editWith(adapter: ProviderAdapter, upstreamModel: string, request: chatv1.ImageGenerationRequest, timeoutMs?: number, signal?: AbortSignal): Promise<chatv1.ImageGenerationResponse> {
  if (!adapter.generateImages) throw new Error('the adapter offers no image generation');
  return adapter.generateImages(call(upstreamModel, request, timeoutMs, signal));
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

const KEY = 'sk-edits-key';
const isPng = (b64: string | undefined): boolean => Buffer.from(b64 ?? '', 'base64').subarray(1, 4).toString('ascii') === 'PNG';
/** What GPT Image bills for one input image of at most 512×512 pixels (one tile) and for a 1024×1024 one (four): OpenAI's vision tiles. */
const ONE_TILE_TOKENS = 65 + 129;
const FOUR_TILE_TOKENS = 65 + 4 * 129;

/** The OpenAI family's and Azure OpenAI's image edits against the simulated provider: real HTTP and multipart, real auth, real checks of the files. */
describe('image edits against the simulated provider', () => {
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
    const config = providerSchema.parse({ type: 'azure', baseUrl: sim.url, apiKey: KEY, apiVersion: '2025-04-01-preview', timeoutMs: 5_000, ...fields }) as ProviderConfigOf<'azure'>;
    const adapter = createAzureAdapter('sim-azure', config, { images });
    open.push(adapter);
    return adapter;
  };
  const editCalls = (): ObservedRequest[] => sim.requests().filter((r) => r.path.endsWith('/images/edits'));
  const lastForm = (): Record<string, unknown> => (editCalls().at(-1)?.body ?? {}) as Record<string, unknown>;
  const described = (file: chatv1.UploadedFile) => ({ name: file.filename, type: file.contentType, size: file.data.length });

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
    it("edits one image with GPT Image: sent as `image` in a multipart form with the carried fields, answered b64_json with the provider's usage, the image's tokens in the input", async () => {
      const photo = upload('photo.png', png(16, 16));
      const prompt = 'add a red hat';
      const answer = await editWith(adapterFor(), 'gpt-image-1', edit({ prompt, images: [photo], n: 2, user: 'u-7', extraJson: JSON.stringify({ quality: 'low', size: '1024x1024' }) }));
      expect(answer.data).toHaveLength(2);
      expect(answer.data.every((image) => isPng(image.b64Json) && image.url === undefined)).toBe(true);
      const input = countTextTokens(prompt) + ONE_TILE_TOKENS;
      const output = 2 * (GPT_IMAGE_OUTPUT_TOKENS.low['1024x1024'] ?? 0);
      expect(answer.usage).toEqual({ promptTokens: input, completionTokens: output, totalTokens: input + output, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false });
      expect(JSON.parse(answer.extraJson)).toEqual({ background: 'opaque', output_format: 'png', quality: 'low', size: '1024x1024' });

      expect(editCalls()).toHaveLength(1);
      expect(editCalls()[0]).toMatchObject({ path: '/v1/images/edits', outcome: 'completed', headers: expect.objectContaining({ authorization: 'present', 'content-type': expect.stringMatching(/^multipart\/form-data; boundary=/) }) });
      expect(lastForm()).toEqual({ model: 'gpt-image-1', prompt, image: described(photo), n: '2', user: 'u-7', quality: 'low', size: '1024x1024' });
    });

    it('sends several images each as `image[]`, with the mask, and GPT Image bills every input image', async () => {
      const room = upload('room.png', png(16, 16));
      const lamp = upload('lamp.png', png(1024, 1024, [250, 220, 90]));
      const mask = upload('mask.png', png(16, 16, [0, 0, 0]));
      const answer = await editWith(adapterFor(), 'gpt-image-1', edit({ prompt: 'put the lamp in the room', images: [room, lamp], mask, extraJson: JSON.stringify({ input_fidelity: 'high', background: 'transparent', output_compression: '50' }) }));
      expect(isPng(answer.data[0]?.b64Json)).toBe(true);
      expect(answer.usage?.promptTokens).toBe(countTextTokens('put the lamp in the room') + ONE_TILE_TOKENS + FOUR_TILE_TOKENS);
      expect(JSON.parse(answer.extraJson)).toMatchObject({ background: 'transparent' });
      expect(lastForm()).toEqual({
        model: 'gpt-image-1',
        prompt: 'put the lamp in the room',
        'image[]': [described(room), described(lamp)],
        mask: described(mask),
        input_fidelity: 'high',
        background: 'transparent',
        output_compression: '50',
      });
    });

    it('never sends GPT Image a response_format, and refuses an edit asking it for URLs before any call', async () => {
      await editWith(adapterFor(), 'gpt-image-1', edit({ responseFormat: 'b64_json' }));
      expect(lastForm()).not.toHaveProperty('response_format');
      const refused = await failure(editWith(adapterFor(), 'gpt-image-1', edit({ responseFormat: 'url' })));
      expect(refused).toMatchObject({ kind: 'bad_request', param: 'response_format', retryable: false });
      expect(editCalls()).toHaveLength(1);
    });

    it("edits with DALL·E 2 as asked (a URL), metered on the gateway's estimate of the prompt", async () => {
      const answer = await editWith(adapterFor(), 'dall-e-2', edit({ prompt: 'a sunnier sky', responseFormat: 'url', extraJson: JSON.stringify({ size: '256x256' }) }));
      expect(answer.data[0]?.url).toMatch(new RegExp(`^${sim.url}/_sim/images/`));
      const tokens = countTextTokens('a sunnier sky');
      expect(answer.usage).toEqual({ promptTokens: tokens, completionTokens: 0, totalTokens: tokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true });
      expect(lastForm()).toMatchObject({ model: 'dall-e-2', response_format: 'url', size: '256x256' });
    });

    it("leaves out the provider's dropParams", async () => {
      await editWith(adapterFor({ dropParams: ['user', 'input_fidelity'] }), 'gpt-image-1', edit({ user: 'u', extraJson: JSON.stringify({ input_fidelity: 'high', quality: 'low' }) }));
      expect(lastForm()).toEqual({ model: 'gpt-image-1', prompt: 'add a red hat', image: expect.objectContaining({ name: 'photo.png' }), quality: 'low' });
    });

    it("passes the provider's refusal of an edit on as a 400 naming its param (image, mask, model)", async () => {
      const adapter = adapterFor();
      const two = await failure(editWith(adapter, 'dall-e-2', edit({ images: [upload('a.png'), upload('b.png')] })));
      expect(two).toMatchObject({ kind: 'bad_request', param: 'image', upstreamStatus: 400, retryable: false });
      expect(toOpenAIError(two).status).toBe(400);
      const text = await failure(editWith(adapter, 'gpt-image-1', edit({ images: [upload('notes.txt', Buffer.from('hello'), 'text/plain')] })));
      expect(text).toMatchObject({ kind: 'bad_request', param: 'image', code: 'invalid_image_format' });
      const mask = await failure(editWith(adapter, 'gpt-image-1', edit({ mask: upload('mask.png', png(32, 32)) })));
      expect(mask).toMatchObject({ kind: 'bad_request', param: 'mask' });
      const dalle3 = await failure(editWith(adapter, 'dall-e-3', edit()));
      expect(dalle3).toMatchObject({ kind: 'bad_request', param: 'model' });
    });

    it('maps a 429 with Retry-After, a 500, a refused key and a cut answer as a generation\'s', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 4, path: 'images', remaining: 1 }, { kind: 'http_error', status: 500, path: 'images', remaining: 1 }] });
      const adapter = adapterFor();
      await expect(failure(editWith(adapter, 'gpt-image-1', edit()))).resolves.toMatchObject({ kind: 'rate_limited', retryable: true, retryAfterMs: 4_000, upstreamStatus: 429 });
      await expect(failure(editWith(adapter, 'gpt-image-1', edit()))).resolves.toMatchObject({ kind: 'upstream_error', retryable: true, upstreamStatus: 500 });
      const refused = await failure(editWith(adapterFor({ apiKey: 'sk-wrong' }), 'gpt-image-1', edit()));
      expect(refused).toMatchObject({ kind: 'auth_failed', upstreamStatus: 401 });
      expect(refused.message).not.toContain('sk-wrong');
      sim.configure({ faults: [{ kind: 'drop_mid_stream', path: 'images', remaining: 1 }] });
      await expect(failure(editWith(adapter, 'gpt-image-1', edit()))).resolves.toMatchObject({ kind: 'upstream_error', retryable: true });
      expect((await editWith(adapter, 'gpt-image-1', edit())).data).toHaveLength(1);
    });

    it('stops the provider call when the caller cancels', async () => {
      sim.configure({ latencyMs: 10_000 });
      const controller = new AbortController();
      const pending = failure(editWith(adapterFor(), 'gpt-image-1', edit(), 20_000, controller.signal));
      await sim.waitForRequest((r) => r.path === '/v1/images/edits');
      controller.abort();
      await expect(pending).resolves.toMatchObject({ kind: 'cancelled' });
      await sim.waitForRequest((r) => r.path === '/v1/images/edits' && r.outcome === 'aborted');
    });
  });

  describe('Azure OpenAI', () => {
    it('edits through the deployment path with its api-version and api-key, images as `image[]`', async () => {
      const [a, b] = [upload('a.png'), upload('b.png', png(16, 16, [9, 9, 9]))];
      const answer = await editWith(azureFor(), 'gpt-image-1', edit({ images: [a, b], extraJson: JSON.stringify({ quality: 'medium' }) }));
      expect(isPng(answer.data[0]?.b64Json)).toBe(true);
      expect(answer.usage).toMatchObject({ promptTokens: countTextTokens('add a red hat') + 2 * ONE_TILE_TOKENS, completionTokens: GPT_IMAGE_OUTPUT_TOKENS.medium['1024x1024'], estimated: false });
      expect(editCalls()[0]).toMatchObject({ path: '/openai/deployments/gpt-image-1/images/edits', outcome: 'completed', headers: expect.objectContaining({ 'api-key': 'present' }) });
      expect(lastForm()).toMatchObject({ 'image[]': [described(a), described(b)], prompt: 'add a red hat', quality: 'medium' });
    });

    it("passes the deployment's refusal on as a 400 naming its param", async () => {
      await expect(failure(editWith(azureFor(), 'dall-e-2', edit({ images: [upload('wide.png', png(32, 16))] })))).resolves.toMatchObject({ kind: 'bad_request', param: 'image', provider: 'sim-azure' });
    });
  });
});

/** A form part as a server received it: a text, or a file as its name, type, size and digest. */
type ReceivedPart = [string, string | { name: string; type: string; size: number; sha256: string }];

/** A compatible server's answers to edits the simulator does not give (malformed, withheld, a key rotated under it), recording every form part it is sent, in order. */
describe('image edits against other servers', () => {
  let server: Server;
  let base: string;
  const open: ProviderAdapter[] = [];
  /** Every call received: its path, authorization, content type and form parts in order. */
  const received: Array<{ path: string; authorization: string | undefined; contentType: string | undefined; parts: ReceivedPart[] }> = [];
  /** Calls that arrived at `hang`, whose answer never comes: each resolves when its connection closes. */
  const hanging: Array<Promise<unknown>> = [];
  let arrived: (() => void) | undefined;
  /** The key the `keyed` server takes now. */
  let currentKey = 'sk-first';

  const json = (res: ServerResponse, body: unknown, status = 200): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const IMAGE = png(4, 4).toString('base64');
  /** GPT Image's answer to an edit: the input images billed as input image tokens. */
  const GPT_IMAGE_EDIT = {
    created: 1_760_000_000,
    background: 'opaque',
    data: [{ b64_json: IMAGE }],
    output_format: 'png',
    quality: 'high',
    size: '1024x1024',
    usage: { input_tokens: 1_331, input_tokens_details: { text_tokens: 8, image_tokens: 1_323 }, output_tokens: 4_160, total_tokens: 5_491 },
  };
  /** Each answer is picked by the first segment of the path (`/empty/images/edits`). */
  const answers: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    'gpt-image': (_req, res) => json(res, GPT_IMAGE_EDIT),
    empty: (_req, res) => json(res, { created: 1, data: [] }),
    'no-image': (_req, res) => json(res, { created: 1, data: [{ revised_prompt: 'x' }] }),
    'not-json': (_req, res) => json(res, '{"created": 1, "data": ['),
    'no-usage': (_req, res) => json(res, { created: 2, data: [{ url: 'https://files.example/edit.png' }] }),
    keyed: (req, res) => (req.headers.authorization === `Bearer ${currentKey}` ? json(res, GPT_IMAGE_EDIT) : json(res, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' } }, 401)),
    hang: (req) => {
      hanging.push(once(req.socket, 'close'));
    },
  };

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        void (async () => {
          const contentType = req.headers['content-type'];
          const form = await new Response(Buffer.concat(chunks), { headers: { 'content-type': contentType ?? '' } }).formData();
          const parts: ReceivedPart[] = [];
          for (const [name, value] of form.entries()) {
            parts.push([name, typeof value === 'string' ? value : { name: value.name, type: value.type, size: value.size, sha256: sha256(new Uint8Array(await value.arrayBuffer())) }]);
          }
          received.push({ path: req.url ?? '', authorization: req.headers.authorization, contentType, parts });
          const name = /^\/([a-z-]+)\//.exec(req.url ?? '')?.[1] ?? '';
          const answer = answers[name];
          if (answer) answer(req, res);
          else json(res, null);
          arrived?.();
        })();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((a) => a.close()));
    received.length = 0;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await Promise.all(hanging);
  });

  const adapterAt = (name: string, fields: { apiKeyFile?: string; dropParams?: string[]; timeoutMs?: number } = {}): ProviderAdapter => {
    const config = providerSchema.parse({
      type: 'openai',
      baseUrl: `${base}/${name}`,
      ...(fields.apiKeyFile === undefined ? { apiKey: 'k' } : { apiKeyFile: fields.apiKeyFile, credentialFileCheckIntervalMs: 3_600_000 }),
      dropParams: fields.dropParams ?? [],
      timeoutMs: fields.timeoutMs ?? 5_000,
    }) as ProviderConfigOf<'openai'>;
    const adapter = createOpenAIAdapter('compat', config);
    open.push(adapter);
    return adapter;
  };
  const fileOf = (file: chatv1.UploadedFile) => ({ name: file.filename, type: file.contentType, size: file.data.length, sha256: sha256(file.data) });

  it("sends the form's parts in order: model, prompt, the images, the mask, n, response_format, user, then the client's other fields (a list repeated, numbers and booleans as text)", async () => {
    const images = [upload('room.png', png(32, 32)), upload('lamp.webp', Buffer.from('RIFF\0\0\0\0WEBPVP8 '), 'image/webp')];
    const mask = upload('mask.png', png(32, 32, [0, 0, 0]));
    const extraJson = JSON.stringify({ size: '1024x1024', 'tags[]': ['a', 'b'], output_compression: 80, partial: false, meta: { k: 1 }, skipped: null, model: 'smuggled', 'image[]': 'smuggled' });
    await editWith(adapterAt('no-usage'), 'dall-e-2', edit({ images, mask, n: 2, responseFormat: 'url', user: 'u-7', extraJson }));
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ path: '/no-usage/images/edits', authorization: 'Bearer k', contentType: expect.stringMatching(/^multipart\/form-data; boundary=/) });
    expect(received[0]?.parts).toEqual([
      ['model', 'dall-e-2'],
      ['prompt', 'add a red hat'],
      ['image[]', fileOf(images[0] as chatv1.UploadedFile)],
      ['image[]', fileOf(images[1] as chatv1.UploadedFile)],
      ['mask', fileOf(mask)],
      ['n', '2'],
      ['response_format', 'url'],
      ['user', 'u-7'],
      ['size', '1024x1024'],
      ['tags[]', 'a'],
      ['tags[]', 'b'],
      ['output_compression', '80'],
      ['partial', 'false'],
      ['meta', '{"k":1}'],
    ]);
  });

  it('sends one image as `image`, and a file the client sent untyped and unnamed as bytes', async () => {
    const bare = upload('', png(8, 8), '');
    await editWith(adapterAt('no-usage'), 'some-image-model', edit({ images: [bare] }));
    expect(received[0]?.parts).toEqual([
      ['model', 'some-image-model'],
      ['prompt', 'add a red hat'],
      ['image', { name: 'image', type: 'application/octet-stream', size: bare.data.length, sha256: sha256(bare.data) }],
    ]);
  });

  it("leaves out the provider's dropParams (a repeated field by its bare name, the mask too), never the prompt or the images", async () => {
    const extraJson = JSON.stringify({ 'tags[]': ['a'], quality: 'low', size: '256x256' });
    await editWith(adapterAt('no-usage', { dropParams: ['tags', 'quality', 'mask', 'user', 'prompt', 'image'] }), 'dall-e-2', edit({ mask: upload('mask.png'), user: 'u', extraJson }));
    expect(received[0]?.parts.map(([name]) => name)).toEqual(['model', 'prompt', 'image', 'size']);
  });

  it("reads GPT Image's answer as a generation's: its images, its fields, and its usage, the input images counted in the input tokens", async () => {
    const answer = await editWith(adapterAt('gpt-image'), 'gpt-image-1', edit());
    expect(answer).toEqual({
      created: 1_760_000_000,
      data: [{ b64Json: IMAGE, url: undefined, revisedPrompt: undefined }],
      usage: { promptTokens: 1_331, completionTokens: 4_160, totalTokens: 5_491, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false },
      extraJson: JSON.stringify({ background: 'opaque', output_format: 'png', quality: 'high', size: '1024x1024' }),
      inputImageTokens: 1_323,
    });
  });

  it("meters an answer without usage on the gateway's count of the prompt, as a generation's", async () => {
    const answer = await editWith(adapterAt('no-usage'), 'dall-e-2', edit({ prompt: 'make the sky a deep violet' }));
    const tokens = countTextTokens('make the sky a deep violet');
    expect(answer.usage).toEqual({ promptTokens: tokens, completionTokens: 0, totalTokens: tokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true });
    expect(answer.data).toEqual([{ b64Json: undefined, url: 'https://files.example/edit.png', revisedPrompt: undefined }]);
  });

  it.each([
    ['empty', /no images/],
    ['no-image', /malformed image generation/],
    ['not-json', /malformed response/],
  ])('refuses a malformed answer (%s) as a retryable upstream error', async (name, message) => {
    const error = await failure(editWith(adapterAt(name), 'gpt-image-1', edit()));
    expect(error).toMatchObject({ kind: 'upstream_error', retryable: true });
    expect(error.message).toMatch(message);
  });

  it('reads a key file again after the provider refused the old key, and sends the whole form again', async () => {
    const volume = new SecretVolume({ secret: 'sk-first' });
    try {
      currentKey = 'sk-first';
      const adapter = adapterAt('keyed', { apiKeyFile: volume.path('secret') });
      const request = edit({ images: [upload('a.png', png(64, 64)), upload('b.png', png(48, 48, [1, 2, 3]))], mask: upload('m.png'), extraJson: '{"size":"auto"}' });
      await editWith(adapter, 'gpt-image-1', request);
      currentKey = 'sk-second';
      volume.write({ secret: 'sk-second' });
      await expect(editWith(adapter, 'gpt-image-1', request)).resolves.toMatchObject({ usage: { promptTokens: 1_331 } });
      expect(received.map((r) => r.authorization)).toEqual(['Bearer sk-first', 'Bearer sk-first', 'Bearer sk-second']);
      expect(received[1]?.parts).toEqual(received[0]?.parts);
      expect(received[2]?.parts).toEqual(received[0]?.parts);
      expect(received[0]?.parts.filter(([name]) => name === 'image[]')).toHaveLength(2);
    } finally {
      volume.remove();
    }
  });

  it("gives up after the call's timeout (else the provider's), and stops the upload when the caller cancels", async () => {
    await expect(failure(editWith(adapterAt('hang', { timeoutMs: 10_000 }), 'gpt-image-1', edit(), 200))).resolves.toMatchObject({ kind: 'timeout', retryable: true });
    await expect(failure(editWith(adapterAt('hang', { timeoutMs: 200 }), 'gpt-image-1', edit(), 0))).resolves.toMatchObject({ kind: 'timeout', retryable: true });

    const controller = new AbortController();
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    const pending = failure(editWith(adapterAt('hang'), 'gpt-image-1', edit(), 20_000, controller.signal));
    await reached;
    arrived = undefined;
    controller.abort();
    await expect(pending).resolves.toMatchObject({ kind: 'cancelled' });
    // The server saw the connection go.
    await hanging.at(-1);
  });
});
