import { inflateSync } from 'node:zlib';
import { colourHex, imageColour, solidPng } from '../core/png-image';
import { countTokens } from '../core/token-counter';
import { type RunningSimulator, startSimulator } from '../index';

/** OpenAI's image edits over real HTTP: multipart uploads built with the platform's FormData, both dialects. */
describe('OpenAI image edits over HTTP', () => {
  const SEED = 5;
  let sim: RunningSimulator;

  beforeAll(async () => {
    sim = await startSimulator({ seed: SEED });
  });
  afterEach(() => sim.reset());
  afterAll(() => sim.close());

  interface Answer {
    status: number;
    headers: Headers;
    text: string;
  }

  type Fields = Record<string, string | File | (string | File)[] | undefined>;

  const pngFile = (rgb: readonly [number, number, number] = [200, 10, 10], name = 'photo.png', width = 8, height = width): File =>
    new File([solidPng(rgb, width, height)], name, { type: 'image/png' });
  const upload = async (path: string, fields: Fields, headers: Record<string, string> = {}): Promise<Answer> => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) form.append(name, item);
    }
    const response = await fetch(`${sim.url}${path}`, { method: 'POST', body: form, headers });
    return { status: response.status, headers: response.headers, text: await response.text() };
  };
  const edit = (fields: Fields, headers?: Record<string, string>) => upload('/v1/images/edits', { model: 'gpt-image-1', prompt: 'add a red hat', image: pngFile(), ...fields }, headers);
  const json = async (fields: Fields) => {
    const response = await edit(fields);
    expect(response.status).toBe(200);
    return JSON.parse(response.text);
  };
  const errorOf = (response: Answer): unknown => (JSON.parse(response.text) as { error: unknown }).error;
  /** The one colour of a simulated PNG, read back from the first pixel of its IDAT (right after the 25-byte IHDR chunk). */
  const pngColour = (b64: string): string => {
    const png = Buffer.from(b64, 'base64');
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    const pixels = inflateSync(png.subarray(41, 41 + png.readUInt32BE(33)));
    return colourHex([pixels[1] ?? 0, pixels[2] ?? 0, pixels[3] ?? 0]);
  };

  it('answers a GPT Image edit as a generation, its usage counting the input images, its colours chosen by the prompt and the first image', async () => {
    const prompt = 'add a red hat';
    const first = solidPng([200, 10, 10]);
    const body = await json({ image: undefined, 'image[]': [new File([first], 'a.png', { type: 'image/png' }), pngFile([0, 0, 255], 'b.png', 1024, 1024)], mask: pngFile([0, 0, 0], 'mask.png'), n: '2', quality: 'low', size: '1536x1024', background: 'transparent' });
    expect(body).toEqual({
      created: expect.any(Number),
      background: 'transparent',
      data: [{ b64_json: expect.any(String) }, { b64_json: expect.any(String) }],
      output_format: 'png',
      quality: 'low',
      size: '1536x1024',
      usage: {
        input_tokens: countTokens(prompt) + 194 + 581,
        input_tokens_details: { text_tokens: countTokens(prompt), image_tokens: 194 + 581 },
        output_tokens: 2 * 400,
        total_tokens: countTokens(prompt) + 194 + 581 + 800,
      },
    });
    expect(pngColour(body.data[0].b64_json)).toBe(colourHex(imageColour(SEED, prompt, 0, first)));
    expect(pngColour(body.data[1].b64_json)).toBe(colourHex(imageColour(SEED, prompt, 1, first)));
    expect(pngColour(body.data[0].b64_json)).not.toBe(colourHex(imageColour(SEED, prompt, 0)));

    const same = await json({ image: new File([first], 'again.png', { type: 'image/png' }) });
    expect(same.data[0].b64_json).toBe(body.data[0].b64_json);
    const other = await json({ image: pngFile([10, 200, 10]) });
    expect(other.data[0].b64_json).not.toBe(body.data[0].b64_json);
  });

  it('takes JPEG and WebP images, by their bytes or their Content-Type, and counts an unmeasured one as 1024×1024', async () => {
    const jpeg = new File([Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 8, 0x00, 0x10, 0x00, 0x10, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])], 'a.jpg', { type: 'application/octet-stream' });
    const webp = new File([Buffer.from('not decoded')], 'b.webp', { type: 'image/webp' });
    const body = await json({ image: undefined, 'image[]': [jpeg, webp] });
    expect(body.usage.input_tokens_details.image_tokens).toBe(194 + 581);
  });

  it('answers DALL·E 2 (the default model) from one square PNG with URLs to images the simulator serves', async () => {
    const response = await upload('/v1/images/edits', { prompt: 'a hat', image: pngFile([1, 2, 3], 'photo.png', 16), mask: pngFile([0, 0, 0], 'mask.png', 16), n: '2', size: '512x512' });
    expect(response.status).toBe(200);
    const body = JSON.parse(response.text);
    expect(body).toEqual({ created: expect.any(Number), data: [{ url: expect.any(String) }, { url: expect.any(String) }] });
    const served = await fetch(body.data[0].url);
    expect([served.status, served.headers.get('content-type')]).toEqual([200, 'image/png']);
    expect(body.data[0].url).toMatch(new RegExp(`-${colourHex(imageColour(SEED, 'a hat', 0, solidPng([1, 2, 3], 16)))}\\.png$`));
    const inline = JSON.parse((await upload('/v1/images/edits', { prompt: 'a hat', image: pngFile([1, 2, 3], 'photo.png', 16), response_format: 'b64_json' })).text);
    expect(Buffer.from(inline.data[0].b64_json, 'base64')).toEqual(Buffer.from(await served.arrayBuffer()));
    expect(inline).not.toHaveProperty('usage');
  });

  it('logs the form fields and each file as its name, type and size, never its bytes', async () => {
    const [image, second, mask] = [pngFile(), pngFile([1, 1, 1], 'second.png'), pngFile([0, 0, 0], 'mask.png')];
    await edit({ image: undefined, 'image[]': [image, second], mask, size: '1024x1536' });
    const [logged] = sim.requests();
    expect(logged).toMatchObject({
      path: '/v1/images/edits',
      model: 'gpt-image-1',
      stream: false,
      outcome: 'completed',
      body: {
        model: 'gpt-image-1',
        prompt: 'add a red hat',
        'image[]': [
          { name: 'photo.png', type: 'image/png', size: image.size },
          { name: 'second.png', type: 'image/png', size: second.size },
        ],
        mask: { name: 'mask.png', type: 'image/png', size: mask.size },
        size: '1024x1536',
      },
    });
    expect(JSON.stringify(logged)).not.toContain('IHDR');
  });

  it.each<[string, Fields, string, string]>([
    ['no image', { image: undefined }, 'image', 'missing_required_parameter'],
    ['a text field for the image', { image: 'photo.png' }, 'image', 'invalid_type'],
    ['an empty image', { image: new File([], 'photo.png', { type: 'image/png' }) }, 'image', 'empty_file'],
    ['a text file', { image: new File(['hello'], 'notes.txt', { type: 'text/plain' }) }, 'image', 'invalid_image_format'],
    ['a GIF among the images', { image: undefined, 'image[]': [pngFile(), new File(['GIF89a'], 'a.gif', { type: 'image/gif' })] }, 'image', 'invalid_image_format'],
    ['17 images for GPT Image', { image: undefined, 'image[]': Array.from({ length: 17 }, () => pngFile()) }, 'image', 'array_above_max_length'],
    ['two images for DALL·E 2', { model: 'dall-e-2', image: undefined, 'image[]': [pngFile(), pngFile()] }, 'image', 'invalid_value'],
    ['a JPEG for DALL·E 2', { model: 'dall-e-2', image: new File([Buffer.from([0xff, 0xd8, 0xff, 0xd9])], 'a.jpg', { type: 'image/jpeg' }) }, 'image', 'invalid_image_format'],
    ['a PNG that is not square for DALL·E 2', { model: 'dall-e-2', image: pngFile([1, 1, 1], 'wide.png', 16, 8) }, 'image', 'invalid_image'],
    ['a mask that is not a PNG', { mask: new File(['hello'], 'mask.txt', { type: 'text/plain' }) }, 'mask', 'invalid_image_format'],
    ['a mask sent as text', { mask: 'mask.png' }, 'mask', 'invalid_type'],
    ['a mask of another size', { mask: pngFile([0, 0, 0], 'mask.png', 16) }, 'mask', 'invalid_value'],
    ['no prompt', { prompt: undefined }, 'prompt', 'missing_required_parameter'],
    ['an empty prompt', { prompt: '' }, 'prompt', 'invalid_value'],
    ['a GPT Image prompt over 32000 characters', { prompt: 'a'.repeat(32_001) }, 'prompt', 'string_above_max_length'],
    ['a DALL·E 2 prompt over 1000 characters', { model: 'dall-e-2', prompt: 'a'.repeat(1001) }, 'prompt', 'string_above_max_length'],
    ['DALL·E 3', { model: 'dall-e-3' }, 'model', 'invalid_value'],
    ['n of 0', { n: '0' }, 'n', 'integer_below_min_value'],
    ['n of 11', { n: '11' }, 'n', 'integer_above_max_value'],
    ['n that is not a number', { n: 'two' }, 'n', 'invalid_type'],
    ['a size GPT Image does not take', { size: '1792x1024' }, 'size', 'invalid_value'],
    ['a size DALL·E 2 does not take', { model: 'dall-e-2', size: '1024x1536' }, 'size', 'invalid_value'],
    ['a quality GPT Image does not take', { quality: 'hd' }, 'quality', 'invalid_value'],
    ['response_format for GPT Image', { response_format: 'url' }, 'response_format', 'unknown_parameter'],
    ['an unknown background', { background: 'green' }, 'background', 'invalid_value'],
    ['an unknown output_format', { output_format: 'gif' }, 'output_format', 'invalid_value'],
    ['output_compression over 100', { output_compression: '101' }, 'output_compression', 'integer_above_max_value'],
    ['partial_images over 3', { partial_images: '4' }, 'partial_images', 'integer_above_max_value'],
    ['an unknown input_fidelity', { input_fidelity: 'medium' }, 'input_fidelity', 'invalid_value'],
    ['stream=true', { stream: 'true' }, 'stream', 'unsupported_parameter'],
    ['a field sent twice', { quality: ['low', 'high'] }, 'quality', 'invalid_type'],
  ])("refuses %s with OpenAI's 400", async (_name, fields, param, code) => {
    const response = await edit(fields);
    expect(response.status).toBe(400);
    expect(errorOf(response)).toEqual({ message: expect.any(String), type: 'invalid_request_error', param, code });
    expect(sim.requests()[0]?.outcome).toBe('error');
  });

  it('refuses a DALL·E 2 image of 4 MB or more', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024);
    solidPng([0, 0, 0]).copy(big);
    const response = await edit({ model: 'dall-e-2', image: new File([big], 'big.png', { type: 'image/png' }) });
    expect(response.status).toBe(400);
    expect(errorOf(response)).toEqual({ message: 'Uploaded image must be a PNG and less than 4 MB.', type: 'invalid_request_error', param: 'image', code: 'file_too_large' });
  });

  it('refuses a body that is not a multipart form, naming the content type it got', async () => {
    const json = await fetch(`${sim.url}/v1/images/edits`, { method: 'POST', body: JSON.stringify({ model: 'gpt-image-1', prompt: 'x' }), headers: { 'content-type': 'application/json' } });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { error: unknown }).error).toEqual({
      message: expect.stringContaining('Invalid Content-Type header (application/json), expected multipart/form-data'),
      type: 'invalid_request_error',
      param: null,
      code: null,
    });
    const broken = await fetch(`${sim.url}/v1/images/edits`, { method: 'POST', body: 'not a form', headers: { 'content-type': 'multipart/form-data; boundary=abc' } });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: unknown }).error).toMatchObject({ message: 'Could not parse multipart form.' });
  });

  describe('Azure OpenAI deployments', () => {
    const azure = (deployment: string) => `/openai/deployments/${deployment}/images/edits?api-version=2025-04-01-preview`;

    it("serves edits under Azure's auth, the deployment's name telling the model", async () => {
      sim.setApiKey('sk-azure');
      const key = { 'api-key': 'sk-azure' };
      const fields = { prompt: 'add a red hat', image: pngFile() };
      expect((await upload(azure('gpt-image-1'), fields)).status).toBe(401);
      const gpt = await upload(azure('gpt-image-1'), { ...fields, model: 'dall-e-2' }, key);
      expect(gpt.status).toBe(200);
      expect(JSON.parse(gpt.text)).toMatchObject({ data: [{ b64_json: expect.any(String) }], usage: { input_tokens_details: { image_tokens: 194 } } });
      const dalle = await upload(azure('dalle2'), fields, key);
      expect(JSON.parse(dalle.text).data[0]).toEqual({ url: expect.any(String) });
      expect(errorOf(await upload(azure('dall-e-3'), fields, key))).toMatchObject({ param: 'model', code: 'invalid_value' });
      expect(errorOf(await upload(azure('gpt-image-1'), { ...fields, response_format: 'b64_json' }, key))).toMatchObject({ param: 'response_format' });
      expect(errorOf(await upload(azure('gpt-image-1'), { prompt: 'x' }, key))).toMatchObject({ param: 'image', code: 'missing_required_parameter' });
      expect(sim.requests().map((r) => r.path)).toEqual([
        '/openai/deployments/gpt-image-1/images/edits',
        '/openai/deployments/gpt-image-1/images/edits',
        '/openai/deployments/dalle2/images/edits',
        '/openai/deployments/dall-e-3/images/edits',
        '/openai/deployments/gpt-image-1/images/edits',
        '/openai/deployments/gpt-image-1/images/edits',
      ]);
    });

    it('answers a request without api-version with 404, as Azure does', async () => {
      expect((await upload('/openai/deployments/gpt-image-1/images/edits', { prompt: 'x', image: pngFile() })).status).toBe(404);
    });
  });

  describe('auth, faults and usage', () => {
    it('checks the bearer key', async () => {
      sim.setApiKey('sk-img');
      expect((await edit({})).status).toBe(401);
      expect((await edit({}, { authorization: 'Bearer sk-img' })).status).toBe(200);
    });

    it("applies faults aimed at images to edits, by model too, and no other path's", async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 2, path: 'images' }] });
      const limited = await edit({});
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('2');
      expect(errorOf(limited)).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
      sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'audio' }] });
      expect((await edit({})).status).toBe(200);
      sim.configure({ faults: [{ kind: 'http_error', status: 503, path: 'images', model: 'dall-e-2' }] });
      expect((await edit({})).status).toBe(200);
      expect((await edit({ model: 'dall-e-2' })).status).toBe(503);
    });

    it('drops an answer midway for drop_mid_stream', async () => {
      sim.configure({ faults: [{ kind: 'drop_mid_stream', path: 'images' }] });
      await expect(edit({})).rejects.toThrow();
      await expect(sim.waitForRequest((r) => r.outcome === 'dropped')).resolves.toMatchObject({ path: '/v1/images/edits' });
    });

    it('leaves usage out with omitUsage', async () => {
      sim.configure({ omitUsage: true });
      expect(await json({})).not.toHaveProperty('usage');
    });
  });
});
