import Decimal from 'decimal.js';
import { routerv1, usagev1, type chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { callUnaryInProcess } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import type { UsagePublisher } from '@openrouter/usage';
import { startIngress, type IngressHandle } from '../index';
import type { RouterCalls } from '../router.port';
import { ingressTestConfig } from '../test-config.testing';

const KEY = 'sk-or-dev-images-0123456789abcdef';
const IMAGE_EDIT_BYTES = 96 * 1024;
const AUDIO_BYTES = 48 * 1024;
const BODY_BYTES = 32 * 1024;

const decision: routerv1.RouteDecision = { model: 'm', provider: 'sim', deployment: 'd', upstreamModel: 'u', attempts: 1, taskType: '', reason: '', experiment: '', experimentArm: '', attemptDetails: [], strategy: '' };
const usage = (prompt: number, completion: number, estimated = false): chatv1.Usage => ({ promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated });

/** A PNG's signature and header chunk's start, then `bytes` more: an image as far as its type goes. */
function png(bytes = 64): Buffer {
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]), Buffer.alloc(bytes)]);
}
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1]);

/** Usage events as ingress publishes them, awaited by the request id their client saw. */
class Published implements UsagePublisher {
  private readonly events = new Map<string, usagev1.UsageEvent>();
  private readonly waiting = new Map<string, (event: usagev1.UsageEvent) => void>();

  async publish(event: usagev1.UsageEvent): Promise<void> {
    this.events.set(event.requestId, event);
    this.waiting.get(event.requestId)?.(event);
  }

  /** The event of the request answered with `response` (its `x-request-id`), once it is published. */
  of(response: { headers: Headers }): Promise<usagev1.UsageEvent> {
    const id = response.headers.get('x-request-id') ?? '';
    const event = this.events.get(id);
    return event ? Promise.resolve(event) : new Promise((resolve) => this.waiting.set(id, resolve));
  }

  status(): ReturnType<UsagePublisher['status']> {
    return { mode: 'direct', pending: 0, outboxBytes: 0 };
  }

  async close(): Promise<void> {}
}

/** The router in this process, answering as the test tells it and keeping what it was asked. */
class FakeRouter {
  readonly asked: routerv1.GenerateImagesRequest[] = [];
  answer: () => routerv1.GenerateImagesResponse = () => ({ decision, response: { created: 7, data: [{ b64Json: 'AAA=' }], usage: usage(300, 272), extraJson: '{"size":"1024x1024"}', inputImageTokens: 194 } });

  calls(): RouterCalls {
    return {
      generateImages: (request, signal) =>
        callUnaryInProcess(async () => {
          this.asked.push(request);
          return this.answer();
        }, signal),
    } as RouterCalls;
  }
}

interface ErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

async function errorOf(response: Response): Promise<{ status: number; headers: Headers; error: ErrorBody }> {
  const body = (await response.json()) as { error: ErrorBody };
  return { status: response.status, headers: response.headers, error: body.error };
}

/** An edit form: `files` as `[field, bytes, filename, type]`, then the text fields in order (a list: the field repeated). */
function form(files: Array<[string, Buffer, string, string]>, fields: Record<string, string | string[]> = {}): FormData {
  const data = new FormData();
  for (const [name, bytes, filename, type] of files) data.append(name, new Blob([bytes], type ? { type } : {}), filename);
  for (const [name, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) data.append(name, v);
  return data;
}

async function start(router: FakeRouter, published: Published, sections: Record<string, unknown> = {}): Promise<{ ingress: IngressHandle; post: (path: string, body: FormData | string, headers?: Record<string, string>) => Promise<Response> }> {
  const config = ingressTestConfig({
    ingress: { http: { host: '127.0.0.1', port: 0 }, router: '127.0.0.1:1', devKey: KEY, limits: { imageEditBytes: IMAGE_EDIT_BYTES, audioBytes: AUDIO_BYTES, bodyBytes: BODY_BYTES } },
    models: [{ id: 'm', capabilities: ['images'], imageTokens: { max: 1_000 }, pricing: { input: '1', output: '2' }, deployments: [{ id: 'd', provider: 'sim', model: 'u' }] }],
    ...sections,
  });
  const ingress = await startIngress(config, createLogger('ingress', 'silent'), { router: router.calls(), usagePublisher: published });
  const base = `http://127.0.0.1:${ingress.httpPort}`;
  const post = (path: string, body: FormData | string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, ...(typeof body === 'string' ? { 'content-type': 'application/json' } : {}), ...headers }, body });
  return { ingress, post };
}

describe('image edits at ingress', () => {
  let ingress: IngressHandle;
  let post: (path: string, body: FormData | string, headers?: Record<string, string>) => Promise<Response>;
  let router: FakeRouter;
  let published: Published;

  beforeAll(async () => {
    router = new FakeRouter();
    published = new Published();
    ({ ingress, post } = await start(router, published));
  });
  afterAll(async () => {
    await ingress?.close();
  });
  beforeEach(() => {
    router.asked.length = 0;
    router.answer = () => ({ decision, response: { created: 7, data: [{ b64Json: 'AAA=' }], usage: usage(300, 272), extraJson: '{"size":"1024x1024"}', inputImageTokens: 0 } });
  });

  it('reads the uploaded form into a generation with images: the images and mask as sent, the modelled fields, the rest as their texts', async () => {
    router.answer = () => ({ decision, response: { created: 7, data: [{ b64Json: 'AAA=' }], usage: usage(300, 272), extraJson: '{"size":"1024x1024"}', inputImageTokens: 194 } });
    const room = png(200);
    const mask = png(10);
    const response = await post(
      '/v1/images/edits',
      form(
        [
          ['image[]', room, 'room.png', 'image/png'],
          ['image[]', JPEG, 'lamp.jpg', 'image/jpeg'],
          ['mask', mask, 'mask.png', 'image/png'],
        ],
        { model: 'm', prompt: 'put the lamp in the room', n: '2', user: 'u-1', size: '1024x1024', quality: 'low', input_fidelity: 'high' },
      ),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('x-openrouter-model')).toBe('m');
    const [call] = router.asked;
    expect(call?.context?.requestId).toBe(response.headers.get('x-request-id'));
    expect(call?.request).toMatchObject({ model: 'm', prompt: 'put the lamp in the room', n: 2, user: 'u-1', extraJson: '{"size":"1024x1024","quality":"low","input_fidelity":"high"}' });
    expect(call?.request?.images.map((i) => [i.filename, i.contentType, Buffer.from(i.data)])).toEqual([
      ['room.png', 'image/png', room],
      ['lamp.jpg', 'image/jpeg', JPEG],
    ]);
    expect(call?.request?.mask && [call.request.mask.filename, Buffer.from(call.request.mask.data)]).toEqual(['mask.png', mask]);
    // 300 input tokens (text and images) at 1 per 1M, 272 image tokens at 2 per 1M.
    const cost = new Decimal(300 + 272 * 2).dividedBy(1_000_000);
    expect(response.headers.get('x-openrouter-cost')).toBe(cost.toFixed());
    // An edit's input tokens are its text's and its images' together: no split is made up.
    expect(await response.json()).toEqual({ created: 7, data: [{ b64_json: 'AAA=' }], usage: { input_tokens: 300, input_tokens_details: { text_tokens: 106, image_tokens: 194 }, output_tokens: 272, total_tokens: 572, cost: cost.toNumber() }, size: '1024x1024' });
    expect(await published.of(response)).toMatchObject({
      operation: usagev1.Operation.OPERATION_IMAGE,
      requestedModel: 'm',
      servedModel: 'm',
      status: usagev1.Status.STATUS_OK,
      tokens: { prompt: 300, completion: 272, estimated: false },
      cost: { amount: cost.toFixed() },
    });
  });

  it("takes one image in 'image', an untyped one by its bytes, and a request without a model for the router's default", async () => {
    const response = await post('/v1/images/edits', form([['image', png(), 'photo', '']], { prompt: 'sepia' }));
    expect(response.status).toBe(200);
    expect(router.asked[0]?.request).toMatchObject({ model: '', prompt: 'sepia', n: undefined, extraJson: '', mask: undefined });
    expect(router.asked[0]?.request?.images.map((i) => i.contentType)).toEqual(['image/png']);
  });

  it('still serves generations from JSON, their input tokens all text', async () => {
    const response = await post('/v1/images/generations', JSON.stringify({ model: 'm', prompt: 'a fox', n: 2 }));
    expect(response.status).toBe(200);
    expect(router.asked[0]?.request).toMatchObject({ model: 'm', prompt: 'a fox', n: 2, images: [] });
    expect(await response.json()).toMatchObject({ usage: { input_tokens: 300, input_tokens_details: { text_tokens: 300, image_tokens: 0 } } });
  });

  it.each([
    ['a JSON body', () => JSON.stringify({ model: 'm', prompt: 'x', image: 'aGVsbG8=' }), 'image', 'invalid_content_type'],
    ['a form without an image', () => form([], { model: 'm', prompt: 'x' }), 'image', 'missing_required_parameter'],
    ['an empty image file', () => form([['image', Buffer.alloc(0), 'a.png', 'image/png']], { model: 'm', prompt: 'x' }), 'image', 'invalid_value'],
    ['a file that is no image', () => form([['image', Buffer.from('just text'), 'notes.txt', 'text/plain']], { model: 'm', prompt: 'x' }), 'image', 'unsupported_file_mimetype'],
    ['an image sent as text', () => form([], { model: 'm', prompt: 'x', image: 'https://example.com/a.png' }), 'image', 'invalid_type'],
    ['17 images', () => form(Array.from({ length: 17 }, (): [string, Buffer, string, string] => ['image[]', png(), 'a.png', 'image/png']), { model: 'm', prompt: 'x' }), 'image', 'invalid_value'],
    ['a JPEG mask', () => form([['image', png(), 'a.png', 'image/png'], ['mask', JPEG, 'm.jpg', 'image/jpeg']], { model: 'm', prompt: 'x' }), 'mask', 'unsupported_file_mimetype'],
    ['no prompt', () => form([['image', png(), 'a.png', 'image/png']], { model: 'm' }), 'prompt', 'missing_required_parameter'],
    ['n of 11', () => form([['image', png(), 'a.png', 'image/png']], { model: 'm', prompt: 'x', n: '11' }), 'n', 'invalid_value'],
    ['stream=true', () => form([['image', png(), 'a.png', 'image/png']], { model: 'm', prompt: 'x', stream: 'true' }), 'stream', 'unsupported_parameter'],
  ])('refuses %s with a 400 before any router call, metered as an error at no cost', async (_name, body, param, code) => {
    const refused = await errorOf(await post('/v1/images/edits', body()));
    expect(refused).toMatchObject({ status: 400, error: { type: 'invalid_request_error', param, code } });
    expect(await published.of(refused)).toMatchObject({ operation: usagev1.Operation.OPERATION_IMAGE, status: usagev1.Status.STATUS_ERROR, errorKind: 'bad_request', cost: { amount: '0' } });
    expect(router.asked).toHaveLength(0);
  });

  it('refuses an edit over ingress.limits.imageEditBytes with a 413, and takes one over the audio and JSON limits within it', async () => {
    const over = await errorOf(await post('/v1/images/edits', form([['image', png(IMAGE_EDIT_BYTES), 'big.png', 'image/png']], { model: 'm', prompt: 'x' })));
    expect(over).toMatchObject({ status: 413, error: { type: 'invalid_request_error', code: 'request_too_large' } });
    expect(router.asked).toHaveLength(0);
    const fits = await post('/v1/images/edits', form([['image', png(IMAGE_EDIT_BYTES - 2048), 'big.png', 'image/png']], { model: 'm', prompt: 'x' }));
    expect(fits.status).toBe(200);
    expect(router.asked).toHaveLength(1);
    // The same size anywhere else is over that route's own limit.
    const generation = await errorOf(await post('/v1/images/generations', form([['image', png(BODY_BYTES), 'big.png', 'image/png']], { model: 'm', prompt: 'x' })));
    expect(generation).toMatchObject({ status: 413, error: { message: `The request body is too large: at most ${BODY_BYTES} bytes are accepted.` } });
    const transcription = await errorOf(await post('/v1/audio/transcriptions', form([['file', png(AUDIO_BYTES), 'a.wav', 'audio/wav']], { model: 'm' })));
    expect(transcription).toMatchObject({ status: 413, error: { message: `The audio upload is too large: at most ${AUDIO_BYTES} bytes are accepted.` } });
    // Far over: refused on its declared length before it is read, and the client still reads the 413.
    const huge = await errorOf(await post('/v1/images/edits', form([['image', png(8 * 1024 * 1024), 'huge.png', 'image/png']], { model: 'm', prompt: 'x' })));
    expect(huge).toMatchObject({ status: 413, error: { code: 'request_too_large' } });
    expect(router.asked).toHaveLength(1);
  });

  it("maps the router's refusals and failures as for a generation, and an answer without a route as an upstream error", async () => {
    const edit = () => form([['image', png(), 'a.png', 'image/png']], { model: 'm', prompt: 'x' });
    router.answer = () => {
      throw new GatewayError('bad_request', 'The model "chat" cannot serve this request: it has no images capability.', { param: 'model', code: 'model_not_supported' });
    };
    expect(await errorOf(await post('/v1/images/edits', edit()))).toMatchObject({ status: 400, error: { param: 'model', code: 'model_not_supported' } });
    router.answer = () => {
      throw new GatewayError('unavailable', 'No deployment is available.');
    };
    const unavailable = await errorOf(await post('/v1/images/edits', edit()));
    expect(unavailable.status).toBe(503);
    expect(await published.of(unavailable)).toMatchObject({ operation: usagev1.Operation.OPERATION_IMAGE, status: usagev1.Status.STATUS_ERROR, errorKind: 'unavailable', cost: { amount: '0' } });
    router.answer = () => ({ decision: undefined, response: undefined });
    expect(await errorOf(await post('/v1/images/edits', edit()))).toMatchObject({ status: 502, error: { message: 'The router returned no images.' } });
  });
});

describe('image edits under a hard budget', () => {
  let ingress: IngressHandle;
  let post: (path: string, body: FormData | string, headers?: Record<string, string>) => Promise<Response>;
  const router = new FakeRouter();
  const published = new Published();

  beforeAll(async () => {
    // Each image made at 100 output tokens × 2; each uploaded image 1,000 prompt tokens × 1.
    ({ ingress, post } = await start(router, published, { budgets: { maxOutputTokens: { m: 100 }, list: [{ id: 'b', scope: { org: 'default' }, period: 'daily', amount: '0.002', enforcement: 'hard' }] } }));
  });
  afterAll(async () => {
    await ingress?.close();
  });

  it('reserves its uploaded images as prompt tokens: refuses what they could overspend before any router call, serves what fits', async () => {
    const edit = (images: number) => form(Array.from({ length: images }, (): [string, Buffer, string, string] => ['image[]', png(), 'a.png', 'image/png']), { model: 'm', prompt: 'x' });
    // "x" and two images: 2,001 tokens, padded to 2,218; and 200 for the image made: 2,418 micro-units, over 2,000.
    const refused = await errorOf(await post('/v1/images/edits', edit(2)));
    expect(refused).toMatchObject({ status: 402, error: { code: 'budget_exceeded' } });
    expect(router.asked).toHaveLength(0);
    // One image: 1,118 + 200.
    const served = await post('/v1/images/edits', edit(1));
    expect(served.status).toBe(200);
    expect(router.asked).toHaveLength(1);
  });
});
