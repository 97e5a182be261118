import { crc32, deflateSync } from 'node:zlib';
import { toFile } from 'openai';
import { gptImageInputTokens } from '@openrouter/provider-simulator';
import { Money, moneyText } from '@openrouter/usage';
import { apiError } from '../support/api-error';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { usageRowOf } from '../support/usage-rows';

/**
 * `POST /v1/images/edits` through the whole gateway with the official SDK: one image or several
 * uploaded in a multipart form, with a mask, edited by GPT Image (token usage, the input images
 * among its input tokens) or DALL·E 2 (a URL, priced per request), and every way it can fail.
 */
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A valid PNG of one colour, `side` × `side` pixels, as a client would upload it. */
function png(rgb: readonly [number, number, number], side = 8): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const framed = Buffer.alloc(8 + data.length + 4);
    framed.writeUInt32BE(data.length, 0);
    typed.copy(framed, 4);
    framed.writeUInt32BE(crc32(typed), 8 + data.length);
    return framed;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header[8] = 8;
  header[9] = 2;
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: side }, () => [...rgb]).flat())]);
  const pixels = Buffer.concat(Array.from({ length: side }, () => row));
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(pixels)), chunk('IEND', Buffer.alloc(0))]);
}

const photo = (name = 'photo.png', rgb: readonly [number, number, number] = [200, 30, 30]) => toFile(png(rgb), name, { type: 'image/png' });
/** What GPT Image bills an 8×8 input image (the simulator's figure, in the manner of OpenAI's tiles). */
const SMALL_IMAGE_TOKENS = gptImageInputTokens({ width: 8, height: 8 });

function imageModels(doc: Record<string, unknown>): void {
  const models = doc['models'] as Array<Record<string, unknown>>;
  models.push(
    { id: 'gpt-image-1', capabilities: ['images'], pricing: { input: '5', imageInput: '10', output: '40' }, deployments: [{ id: 'sim-gpt-image', provider: 'simulated', model: 'gpt-image-1' }] },
    { id: 'dall-e-2', capabilities: ['images'], excludeFromAuto: true, pricing: { input: '0', output: '0', perImage: '0.02' }, deployments: [{ id: 'sim-dalle-2', provider: 'simulated', model: 'dall-e-2' }] },
  );
}

interface ImageRow {
  operation: string;
  served_model: string;
  status: string;
  cost: string;
  prompt_tokens: number;
  completion_tokens: number;
  image_prompt_tokens: number;
  tokens_estimated: boolean;
  images: number;
}

describe('image edits through the gateway', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({ configure: imageModels });
  });
  afterAll(async () => {
    await gw?.close();
  });
  beforeEach(() => gw.sim.reset());

  const usageRow = (id: string) => usageRowOf<ImageRow>(gw, 'operation, served_model, status, toString(cost) AS cost, prompt_tokens, completion_tokens, image_prompt_tokens, tokens_estimated, images', id);

  it('edits one image with GPT Image: base64 PNGs, billed at the token usage the provider reports, its input image among the input tokens', async () => {
    const prompt = 'add a red hat';
    const { data: answer, response } = await gw.client().images.edit({ model: 'gpt-image-1', image: await photo(), prompt, n: 2, quality: 'low', size: '1024x1024' }).withResponse();
    expect(answer.data).toHaveLength(2);
    for (const image of answer.data ?? []) expect(Buffer.from(image.b64_json ?? '', 'base64').subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(answer.usage?.input_tokens).toBeGreaterThan(SMALL_IMAGE_TOKENS);
    // Split as the provider split it: the uploaded image's tokens, the rest the prompt's text.
    expect(answer.usage?.input_tokens_details).toEqual({ image_tokens: SMALL_IMAGE_TOKENS, text_tokens: (answer.usage?.input_tokens ?? 0) - SMALL_IMAGE_TOKENS });
    expect(answer.usage?.output_tokens).toBe(2 * 272);
    expect(response.headers.get('x-openrouter-model')).toBe('gpt-image-1');
    // The provider got the upload as it was sent, and the form's other fields.
    expect(gw.sim.requests().at(-1)).toMatchObject({
      path: '/v1/images/edits',
      outcome: 'completed',
      body: { model: 'gpt-image-1', prompt, n: '2', quality: 'low', size: '1024x1024', image: { name: 'photo.png', type: 'image/png', size: png([200, 30, 30]).length } },
    });
    const row = await usageRow(response.headers.get('x-request-id') ?? '');
    expect(row).toMatchObject({ operation: 'image', served_model: 'gpt-image-1', status: 'ok', prompt_tokens: answer.usage?.input_tokens, completion_tokens: answer.usage?.output_tokens, image_prompt_tokens: SMALL_IMAGE_TOKENS, tokens_estimated: false });
    // 5 per 1M text input tokens, 10 per 1M input image tokens (imageInput), 40 per 1M image output tokens.
    const text = answer.usage?.input_tokens_details?.text_tokens ?? 0;
    const expected = moneyText(new Money(text).times(5).plus(new Money(SMALL_IMAGE_TOKENS).times(10)).plus(new Money(answer.usage?.output_tokens ?? 0).times(40)).dividedBy(1_000_000));
    expect(row.cost).toBe(expected);
    expect(response.headers.get('x-openrouter-cost')).toBe(expected);
  });

  it('edits several images with a mask: every image and the mask reach the provider, each image billed as input tokens', async () => {
    const client = gw.client();
    const prompt = 'put them in one picture';
    const one = await client.images.edit({ model: 'gpt-image-1', image: await photo(), prompt });
    const images = [await photo('a.png'), await photo('b.png', [10, 200, 10]), await photo('c.png', [10, 10, 200])];
    const { data: three, response } = await client.images.edit({ model: 'gpt-image-1', image: images, mask: await toFile(png([0, 0, 0]), 'mask.png', { type: 'image/png' }), prompt }).withResponse();
    expect(three.data).toHaveLength(1);
    // Two more input images, the mask none.
    expect(three.usage?.input_tokens).toBe((one.usage?.input_tokens ?? 0) + 2 * SMALL_IMAGE_TOKENS);
    const logged = gw.sim.requests().at(-1);
    expect(logged?.body).toMatchObject({
      'image[]': [
        { name: 'a.png', type: 'image/png' },
        { name: 'b.png', type: 'image/png' },
        { name: 'c.png', type: 'image/png' },
      ],
      mask: { name: 'mask.png', type: 'image/png' },
    });
    expect(await usageRow(response.headers.get('x-request-id') ?? '')).toMatchObject({ operation: 'image', status: 'ok', prompt_tokens: three.usage?.input_tokens });
  });

  it('sends an image uploaded without a media type under the type its bytes tell', async () => {
    await gw.client().images.edit({ model: 'gpt-image-1', image: await toFile(png([1, 2, 3]), 'photo'), prompt: 'brighter' });
    expect(gw.sim.requests().at(-1)?.body).toMatchObject({ image: { name: 'photo', type: 'image/png' } });
  });

  it('serves DALL·E 2 as a URL, priced per image made as it reports no usage', async () => {
    const { data: answer, response } = await gw.client().images.edit({ model: 'dall-e-2', image: await photo(), prompt: 'a hat', response_format: 'url', n: 3 }).withResponse();
    expect(answer.data).toHaveLength(3);
    expect(answer.data?.[0]?.url).toMatch(/^http/);
    expect(answer.usage).toBeUndefined();
    // 0.02 an image, each of the three.
    expect(await usageRow(response.headers.get('x-request-id') ?? '')).toMatchObject({ operation: 'image', served_model: 'dall-e-2', status: 'ok', cost: '0.06', images: 3, completion_tokens: 0, tokens_estimated: true });
  });

  it('refuses bad input with a 400 naming the field, before any provider call', async () => {
    const client = gw.client();
    expect(await apiError(() => client.images.edit({ model: 'gpt-image-1', prompt: 'x' } as never))).toMatchObject({ status: 400, param: 'image', code: 'missing_required_parameter' });
    expect(await apiError(async () => client.images.edit({ model: 'gpt-image-1', image: await toFile(Buffer.from('not a picture'), 'notes.txt', { type: 'text/plain' }), prompt: 'x' }))).toMatchObject({
      status: 400,
      param: 'image',
      code: 'unsupported_file_mimetype',
    });
    expect(await apiError(async () => client.images.edit({ model: 'gpt-image-1', image: await toFile(Buffer.alloc(0), 'empty.png', { type: 'image/png' }), prompt: 'x' }))).toMatchObject({ status: 400, param: 'image' });
    expect(await apiError(async () => client.images.edit({ model: 'gpt-image-1', image: await photo() } as never))).toMatchObject({ status: 400, param: 'prompt' });
    expect(await apiError(async () => client.images.edit({ model: 'gpt-image-1', image: await photo(), prompt: 'x', n: 11 }))).toMatchObject({ status: 400, param: 'n' });
    expect(await apiError(async () => client.images.edit({ model: 'gpt-image-1', image: await photo(), prompt: 'x', stream: true }))).toMatchObject({ status: 400, param: 'stream', code: 'unsupported_parameter' });
    expect(await apiError(async () => client.images.edit({ model: 'gpt-4o-mini', image: await photo(), prompt: 'x' }))).toMatchObject({ status: 400, code: 'model_not_supported', param: 'model' });
    expect(await apiError(async () => client.images.edit({ model: 'no-such-model', image: await photo(), prompt: 'x' }))).toMatchObject({ status: 404, code: 'model_not_found' });
    // A JSON body, as a client that does not upload would send it.
    const json = await fetch(`${gw.baseURL}/images/edits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-image-1', prompt: 'x', image: png([1, 1, 1]).toString('base64') }),
    });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { error: unknown }).error).toMatchObject({ type: 'invalid_request_error', param: 'image', code: 'invalid_content_type', message: expect.stringContaining('multipart/form-data') });
    expect(gw.sim.requests()).toHaveLength(0);
  });

  it('passes the provider’s refusal on, and maps its failures as for every call', async () => {
    const client = gw.client();
    // DALL·E 2 edits one square image: the provider refuses two.
    expect(await apiError(async () => client.images.edit({ model: 'dall-e-2', image: [await photo('a.png'), await photo('b.png')], prompt: 'x' }))).toMatchObject({ status: 400, param: 'image' });
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'images', remaining: 1 }] });
    const failed = await apiError(async () => client.images.edit({ model: 'gpt-image-1', image: await photo(), prompt: 'a cat' }));
    expect(failed.status).toBe(502);
    expect(await usageRow(failed.headers?.get('x-request-id') ?? '')).toMatchObject({ operation: 'image', status: 'error', cost: '0' });
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 503, path: 'images', remaining: 1 }] });
    const unavailable = await apiError(async () => client.images.edit({ model: 'gpt-image-1', image: await photo(), prompt: 'a cat' }));
    expect(unavailable.status).toBe(503);
    expect(await usageRow(unavailable.headers?.get('x-request-id') ?? '')).toMatchObject({ operation: 'image', status: 'error', cost: '0' });
  });
});

describe('image edits over ingress.limits.imageEditBytes', () => {
  let gw: TestGateway;
  const LIMIT = 64 * 1024;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        imageModels(doc);
        doc['ingress'] = { ...(doc['ingress'] as Record<string, unknown>), limits: { imageEditBytes: LIMIT } };
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('refuses an edit over the limit with a 413 before any provider call, and serves one within it', async () => {
    const client = gw.client();
    // A PNG followed by 40 KB of padding: two of them are over 64 KB, one is not.
    const large = (name: string) => toFile(Buffer.concat([png([9, 9, 9]), Buffer.alloc(40 * 1024)]), name, { type: 'image/png' });
    const tooLarge = await apiError(async () => client.images.edit({ model: 'gpt-image-1', image: [await large('a.png'), await large('b.png')], prompt: 'x' }));
    expect(tooLarge).toMatchObject({ status: 413, code: 'request_too_large' });
    expect(gw.sim.requests()).toHaveLength(0);
    const served = await client.images.edit({ model: 'gpt-image-1', image: await large('a.png'), prompt: 'x' });
    expect(served.data).toHaveLength(1);
  });
});
