import type { chatv1 } from '@openrouter/contracts';
import { markFormBody, type AudioUpload } from './audio-upload';
import { errorOf } from './gateway-error.testing';
import {
  imageEditInputCount,
  MAX_IMAGE_EDIT_INPUTS,
  parseImageEditRequest,
  parseImageGenerationRequest,
  parseOpenAIImageGenerationResponse,
  sniffedImageType,
  toOpenAIImageGenerationBody,
  toOpenAIImageGenerationResponse,
} from './images';

describe('parseImageGenerationRequest', () => {
  it('reads the fields the gateway models and carries every other one as it is', () => {
    expect(
      parseImageGenerationRequest({
        model: 'gpt-image-1',
        prompt: 'a lighthouse at dusk',
        n: 2,
        response_format: 'b64_json',
        user: 'u-1',
        size: '1024x1536',
        quality: 'high',
        background: 'transparent',
        output_format: 'webp',
        output_compression: 80,
        moderation: 'low',
        stream: false,
      }),
    ).toEqual({
      model: 'gpt-image-1',
      prompt: 'a lighthouse at dusk',
      n: 2,
      responseFormat: 'b64_json',
      user: 'u-1',
      extraJson: '{"size":"1024x1536","quality":"high","background":"transparent","output_format":"webp","output_compression":80,"moderation":"low"}',
      images: [],
    });
  });

  it("reads a missing or null model as '' and null parameters as not given", () => {
    expect(parseImageGenerationRequest({ prompt: 'x' })).toEqual({ model: '', prompt: 'x', n: undefined, responseFormat: undefined, user: undefined, extraJson: '', images: [] });
    expect(parseImageGenerationRequest({ prompt: 'x', model: null, n: null, response_format: null, user: null, stream: null })).toEqual({
      model: '',
      prompt: 'x',
      n: undefined,
      responseFormat: undefined,
      user: undefined,
      extraJson: '',
      images: [],
    });
  });

  it('takes a prompt of exactly 32000 characters and 10 images', () => {
    const request = parseImageGenerationRequest({ prompt: 'a'.repeat(32_000), n: 10, response_format: 'url' });
    expect(request.prompt).toHaveLength(32_000);
    expect(request.n).toBe(10);
    expect(request.responseFormat).toBe('url');
  });

  it.each([
    ['no prompt', { model: 'dall-e-3' }, 'prompt', 'missing_required_parameter'],
    ['a null prompt', { prompt: null }, 'prompt', 'invalid_type'],
    ['a prompt of the wrong type', { prompt: ['a'] }, 'prompt', 'invalid_type'],
    ['an empty prompt', { prompt: '' }, 'prompt', 'invalid_value'],
    ['a prompt longer than 32000 characters', { prompt: 'a'.repeat(32_001) }, 'prompt', 'invalid_value'],
    ['n of 0', { prompt: 'x', n: 0 }, 'n', 'invalid_value'],
    ['n above 10', { prompt: 'x', n: 11 }, 'n', 'invalid_value'],
    ['a fractional n', { prompt: 'x', n: 1.5 }, 'n', 'invalid_type'],
    ['n as a string', { prompt: 'x', n: '2' }, 'n', 'invalid_type'],
    ['an unknown response_format', { prompt: 'x', response_format: 'png' }, 'response_format', 'invalid_value'],
    ['a model of the wrong type', { prompt: 'x', model: 3 }, 'model', 'invalid_type'],
    ['a user of the wrong type', { prompt: 'x', user: 42 }, 'user', 'invalid_type'],
    ['stream of the wrong type', { prompt: 'x', stream: 'yes' }, 'stream', 'invalid_type'],
  ])('rejects %s with 400 naming the param', (_name, body, param, code) => {
    expect(errorOf(() => parseImageGenerationRequest(body))).toMatchObject({ kind: 'bad_request', param, code });
  });

  it('refuses a streamed generation by name', () => {
    const error = errorOf(() => parseImageGenerationRequest({ model: 'gpt-image-1', prompt: 'x', stream: true, partial_images: 2 }));
    expect(error).toMatchObject({ kind: 'bad_request', param: 'stream', code: 'unsupported_parameter' });
    expect(error.message).toBe("'stream' is not supported by this gateway: streamed image generation is not served.");
  });

  it('names what is wrong in the words OpenAI uses', () => {
    expect(errorOf(() => parseImageGenerationRequest({})).message).toBe("Missing required parameter: 'prompt'.");
    expect(errorOf(() => parseImageGenerationRequest({ prompt: 'a'.repeat(32_001) })).message).toBe(
      "Invalid value for 'prompt': expected at most 32000 characters, but got 32001 characters instead.",
    );
    expect(errorOf(() => parseImageGenerationRequest('a cat')).kind).toBe('bad_request');
  });
});

/** The first bytes of each image format the edits take, and of one they do not (GIF). */
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46]);
const WEBP = Buffer.concat([Buffer.from('RIFF'), Buffer.from([36, 0, 0, 0]), Buffer.from('WEBPVP8 ')]);
const GIF = Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1');

const file = (data: Buffer, filename = 'a.png', contentType = 'image/png'): AudioUpload => ({ data: new Uint8Array(data), filename, contentType });
/** A body as ingress reads a multipart form. */
const form = (fields: Record<string, unknown>): Record<string, unknown> => markFormBody({ ...fields });

describe('parseImageEditRequest', () => {
  it('reads the images, the mask and the modelled fields, and carries every other field as its text', () => {
    const request = parseImageEditRequest(
      form({
        image: file(PNG, 'room.png'),
        mask: file(PNG, 'mask.png'),
        prompt: 'add a plant by the window',
        model: 'gpt-image-1',
        n: '2',
        user: 'u-1',
        size: '1024x1536',
        quality: 'high',
        input_fidelity: 'high',
        output_compression: '80',
        stream: 'false',
      }),
    );
    expect(request).toEqual({
      model: 'gpt-image-1',
      prompt: 'add a plant by the window',
      n: 2,
      responseFormat: undefined,
      user: 'u-1',
      extraJson: '{"size":"1024x1536","quality":"high","input_fidelity":"high","output_compression":"80"}',
      images: [{ data: PNG, filename: 'room.png', contentType: 'image/png' }],
      mask: { data: PNG, filename: 'mask.png', contentType: 'image/png' },
    });
    expect(Buffer.isBuffer(request.images[0]?.data)).toBe(true);
  });

  it("takes several images, from 'image' and 'image[]' in that order, and a repeated text field as its list of texts", () => {
    const request = parseImageEditRequest(
      form({
        image: [file(PNG, 'a.png'), file(JPEG, 'b.jpg', 'image/jpeg')],
        'image[]': file(WEBP, 'c.webp', 'image/webp'),
        prompt: 'one picture of all three',
        response_format: 'b64_json',
        'tags[]': ['x', 'y'],
      }),
    );
    expect(request.images.map((i) => [i.filename, i.contentType])).toEqual([
      ['a.png', 'image/png'],
      ['b.jpg', 'image/jpeg'],
      ['c.webp', 'image/webp'],
    ]);
    expect(request).toMatchObject({ model: '', n: undefined, responseFormat: 'b64_json', mask: undefined, extraJson: '{"tags[]":["x","y"]}' });
  });

  it('takes an untyped image by its bytes, sent on under the type they tell, and its media type with parameters', () => {
    const request = parseImageEditRequest(form({ 'image[]': [file(JPEG, 'a', 'application/octet-stream'), file(PNG, 'b', 'text/plain'), file(WEBP, 'c', 'Image/WebP; q=1')], prompt: 'x' }));
    expect(request.images.map((i) => i.contentType)).toEqual(['image/jpeg', 'image/png', 'image/webp']);
  });

  it(`takes ${MAX_IMAGE_EDIT_INPUTS} images and a prompt of 32000 characters`, () => {
    const request = parseImageEditRequest(form({ 'image[]': Array.from({ length: MAX_IMAGE_EDIT_INPUTS }, () => file(PNG)), prompt: 'a'.repeat(32_000), n: '10' }));
    expect(request.images).toHaveLength(MAX_IMAGE_EDIT_INPUTS);
    expect(request.n).toBe(10);
  });

  it.each([
    ['no image', { prompt: 'x' }, 'image', 'missing_required_parameter'],
    ['an image sent as text', { image: 'https://example.com/a.png', prompt: 'x' }, 'image', 'invalid_type'],
    ['a text among the images', { 'image[]': [file(PNG), 'b.png'], prompt: 'x' }, 'image', 'invalid_type'],
    ['an empty image file', { image: file(Buffer.alloc(0)), prompt: 'x' }, 'image', 'invalid_value'],
    [`more than ${MAX_IMAGE_EDIT_INPUTS} images`, { 'image[]': Array.from({ length: MAX_IMAGE_EDIT_INPUTS + 1 }, () => file(PNG)), prompt: 'x' }, 'image', 'invalid_value'],
    ['a GIF', { image: file(GIF, 'a.gif', 'image/gif'), prompt: 'x' }, 'image', 'unsupported_file_mimetype'],
    ['a text file', { image: file(Buffer.from('hello'), 'a.txt', 'text/plain'), prompt: 'x' }, 'image', 'unsupported_file_mimetype'],
    ['a mask sent as text', { image: file(PNG), mask: 'm', prompt: 'x' }, 'mask', 'invalid_type'],
    ['two masks', { image: file(PNG), mask: [file(PNG), file(PNG)], prompt: 'x' }, 'mask', 'invalid_value'],
    ['an empty mask', { image: file(PNG), mask: file(Buffer.alloc(0)), prompt: 'x' }, 'mask', 'invalid_value'],
    ['a JPEG mask', { image: file(PNG), mask: file(JPEG, 'm.jpg', 'image/jpeg'), prompt: 'x' }, 'mask', 'unsupported_file_mimetype'],
    ['no prompt', { image: file(PNG) }, 'prompt', 'missing_required_parameter'],
    ['an empty prompt', { image: file(PNG), prompt: '' }, 'prompt', 'invalid_value'],
    ['a prompt longer than 32000 characters', { image: file(PNG), prompt: 'a'.repeat(32_001) }, 'prompt', 'invalid_value'],
    ['a prompt sent twice', { image: file(PNG), prompt: ['a', 'b'] }, 'prompt', 'invalid_type'],
    ['a prompt sent as a file', { image: file(PNG), prompt: file(PNG) }, 'prompt', 'invalid_type'],
    ['n of 0', { image: file(PNG), prompt: 'x', n: '0' }, 'n', 'invalid_value'],
    ['n above 10', { image: file(PNG), prompt: 'x', n: '11' }, 'n', 'invalid_value'],
    ['a fractional n', { image: file(PNG), prompt: 'x', n: '1.5' }, 'n', 'invalid_type'],
    ['n that is not a number', { image: file(PNG), prompt: 'x', n: 'two' }, 'n', 'invalid_type'],
    ['an unknown response_format', { image: file(PNG), prompt: 'x', response_format: 'png' }, 'response_format', 'invalid_value'],
    ['stream that is not a boolean', { image: file(PNG), prompt: 'x', stream: 'yes' }, 'stream', 'invalid_value'],
    ['a file in a field the gateway does not read', { image: file(PNG), prompt: 'x', size: file(PNG) }, 'size', 'invalid_type'],
  ])('rejects %s with 400 naming the param', (_name, fields, param, code) => {
    expect(errorOf(() => parseImageEditRequest(form(fields)))).toMatchObject({ kind: 'bad_request', param, code });
  });

  it('names what is wrong in the words OpenAI uses', () => {
    expect(errorOf(() => parseImageEditRequest(form({ prompt: 'x' }))).message).toBe("Missing required parameter: 'image'.");
    expect(errorOf(() => parseImageEditRequest(form({ image: file(Buffer.from('hello'), 'a.txt', 'text/plain'), prompt: 'x' }))).message).toBe(
      "Invalid file 'image': unsupported mimetype ('text/plain'). Supported file formats are 'image/png', 'image/jpeg', 'image/webp'.",
    );
    expect(errorOf(() => parseImageEditRequest(form({ image: file(PNG), mask: file(JPEG, 'm', '') }))).message).toBe(
      "Invalid file 'mask': unsupported mimetype ('none'). Supported file formats are 'image/png'.",
    );
  });

  it('refuses a streamed edit by name', () => {
    const error = errorOf(() => parseImageEditRequest(form({ image: file(PNG), prompt: 'x', stream: 'true', partial_images: '2' })));
    expect(error).toMatchObject({ kind: 'bad_request', param: 'stream', code: 'unsupported_parameter' });
    expect(error.message).toBe("'stream' is not supported by this gateway: streamed image edits are not served.");
  });

  it('refuses a body that is not a multipart form, naming the image field', () => {
    for (const body of [{ image: 'aGVsbG8=', prompt: 'x' }, { image: file(PNG), prompt: 'x' }, 'a cat', null]) {
      const error = errorOf(() => parseImageEditRequest(body));
      expect(error).toMatchObject({ kind: 'bad_request', param: 'image', code: 'invalid_content_type' });
      expect(error.message).toBe("The request body must be multipart/form-data, with the images to edit in the 'image' field.");
    }
  });
});

describe('sniffedImageType', () => {
  it('tells PNG, JPEG and WebP by their first bytes, and nothing else', () => {
    expect(sniffedImageType(PNG)).toBe('image/png');
    expect(sniffedImageType(JPEG)).toBe('image/jpeg');
    expect(sniffedImageType(WEBP)).toBe('image/webp');
    expect(sniffedImageType(GIF)).toBeUndefined();
    // A RIFF file of another kind (WAV), and bytes shorter than a signature.
    expect(sniffedImageType(Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVE')]))).toBeUndefined();
    expect(sniffedImageType(PNG.subarray(0, 7))).toBeUndefined();
    expect(sniffedImageType(new Uint8Array(0))).toBeUndefined();
  });
});

describe('imageEditInputCount', () => {
  it("counts an edit form's non-empty images in 'image' and 'image[]', never its mask", () => {
    expect(imageEditInputCount(form({ image: file(PNG), mask: file(PNG), prompt: 'x' }))).toBe(1);
    expect(imageEditInputCount(form({ image: [file(PNG), file(PNG)], 'image[]': file(PNG), prompt: 'x' }))).toBe(3);
    expect(imageEditInputCount(form({ image: [file(PNG), file(Buffer.alloc(0)), 'text'], prompt: 'x' }))).toBe(1);
  });

  it(`counts none in any other body, and one in a form of more than ${MAX_IMAGE_EDIT_INPUTS} images (refused by its parser)`, () => {
    expect(imageEditInputCount({ image: file(PNG), prompt: 'x' })).toBe(0);
    expect(imageEditInputCount(form({ prompt: 'x' }))).toBe(0);
    expect(imageEditInputCount('x')).toBe(0);
    expect(imageEditInputCount(form({ 'image[]': Array.from({ length: MAX_IMAGE_EDIT_INPUTS + 1 }, () => file(PNG)) }))).toBe(1);
  });
});

describe('toOpenAIImageGenerationBody', () => {
  it('sends the prompt under the upstream model with the modelled and the carried parameters', () => {
    const request = parseImageGenerationRequest({ model: 'public-images', prompt: 'a cat', n: 2, response_format: 'url', user: 'u', size: '512x512', style: 'vivid' });
    expect(toOpenAIImageGenerationBody(request, 'dall-e-2')).toEqual({ model: 'dall-e-2', prompt: 'a cat', n: 2, response_format: 'url', user: 'u', size: '512x512', style: 'vivid' });
  });

  it('sends only model and prompt when nothing else was given', () => {
    expect(toOpenAIImageGenerationBody(parseImageGenerationRequest({ prompt: 'a cat' }), 'gpt-image-1')).toEqual({ model: 'gpt-image-1', prompt: 'a cat' });
  });

  it("never lets a carried field replace the model or prompt, and leaves out the provider's dropParams", () => {
    const request: chatv1.ImageGenerationRequest = { model: 'p', prompt: 'real', n: 1, responseFormat: 'b64_json', user: 'u', extraJson: '{"model":"other","prompt":"fake","quality":"hd","keep":1}', images: [] };
    expect(toOpenAIImageGenerationBody(request, 'up', { dropParams: ['user', 'response_format', 'quality', 'model', 'prompt'] })).toEqual({ model: 'up', prompt: 'real', n: 1, keep: 1 });
  });
});

describe('parseOpenAIImageGenerationResponse', () => {
  const gptImage = {
    created: 1_713_833_628,
    background: 'opaque',
    data: [{ b64_json: 'iVBORw0KGgo=' }],
    output_format: 'png',
    quality: 'medium',
    size: '1024x1024',
    usage: { input_tokens: 50, input_tokens_details: { text_tokens: 50, image_tokens: 0 }, output_tokens: 1056, total_tokens: 1106 },
  };

  it("reads GPT Image's answer: the images, the usage it reports and its other top-level fields", () => {
    expect(parseOpenAIImageGenerationResponse(gptImage)).toEqual({
      created: 1_713_833_628,
      data: [{ b64Json: 'iVBORw0KGgo=', url: undefined, revisedPrompt: undefined }],
      usage: { promptTokens: 50, completionTokens: 1056, totalTokens: 1106, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false },
      extraJson: '{"background":"opaque","output_format":"png","quality":"medium","size":"1024x1024"}',
      inputImageTokens: 0,
    });
  });

  it("reads DALL·E 3's answer: a URL with its revised prompt and no usage", () => {
    expect(parseOpenAIImageGenerationResponse({ created: 1, data: [{ url: 'https://files.example/a.png', revised_prompt: 'A calm cat.' }] })).toEqual({
      created: 1,
      data: [{ b64Json: undefined, url: 'https://files.example/a.png', revisedPrompt: 'A calm cat.' }],
      usage: undefined,
      extraJson: '',
      inputImageTokens: 0,
    });
  });

  it("tolerates a compatible server's extra fields, null usage, chat-style usage names and a missing created", () => {
    const azure = parseOpenAIImageGenerationResponse({
      created: 2,
      data: [{ url: 'https://x/a.png', revised_prompt: null, content_filter_results: { hate: { filtered: false } } }],
      usage: null,
      prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }],
    });
    expect(azure.extraJson).toBe('');
    expect(azure.data).toEqual([{ b64Json: undefined, url: 'https://x/a.png', revisedPrompt: undefined }]);
    expect(azure.usage).toBeUndefined();
    const compat = parseOpenAIImageGenerationResponse({ data: [{ b64_json: 'AA==' }], usage: { prompt_tokens: 7, completion_tokens: 3 } });
    expect(compat.created).toBe(0);
    expect(compat.usage).toMatchObject({ promptTokens: 7, completionTokens: 3, totalTokens: 10, estimated: false });
    expect(parseOpenAIImageGenerationResponse({ data: [{ b64_json: 'AA==' }], usage: {} }).usage).toBeUndefined();
  });

  it('reads an empty list as it is (the adapter decides what an empty answer means)', () => {
    expect(parseOpenAIImageGenerationResponse({ created: 1, data: [] }).data).toEqual([]);
  });

  it.each([
    ['no data', { created: 1 }, /data/],
    ['data that is not a list', { created: 1, data: { url: 'x' } }, /data/],
    ['an image with neither b64_json nor url', { created: 1, data: [{ revised_prompt: 'x' }] }, /data\[0\]: expected an image with b64_json or url/],
    ['a url of the wrong type', { created: 1, data: [{ url: 5 }] }, /data\[0\]\.url/],
    ['negative usage', { created: 1, data: [{ url: 'x' }], usage: { input_tokens: -1 } }, /usage\.input_tokens/],
    ['a body that is not an object', 'oops', /malformed/],
  ])('refuses %s as an upstream error', (_name, json, message) => {
    const error = errorOf(() => parseOpenAIImageGenerationResponse(json));
    expect(error.kind).toBe('upstream_error');
    expect(error.message).toMatch(/^The provider returned a malformed image generation/);
    expect(error.message).toMatch(message);
  });
});

describe('toOpenAIImageGenerationResponse', () => {
  const usage: chatv1.Usage = { promptTokens: 50, completionTokens: 272, totalTokens: 322, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };

  it("writes OpenAI's shape with the reported usage and the provider's other fields, never a model", () => {
    const response: chatv1.ImageGenerationResponse = {
      created: 10,
      data: [{ b64Json: 'AAA=' }, { b64Json: 'BBB=' }],
      usage,
      extraJson: '{"size":"1024x1024","quality":"low","model":"gpt-image-1","output_format":"png"}',
      inputImageTokens: 0,
    };
    expect(toOpenAIImageGenerationResponse(response)).toEqual({
      created: 10,
      data: [{ b64_json: 'AAA=' }, { b64_json: 'BBB=' }],
      usage: { input_tokens: 50, input_tokens_details: { text_tokens: 50, image_tokens: 0 }, output_tokens: 272, total_tokens: 322 },
      size: '1024x1024',
      quality: 'low',
      output_format: 'png',
    });
  });

  it('leaves out usage the gateway estimated, and writes URLs with their revised prompts', () => {
    const response: chatv1.ImageGenerationResponse = {
      created: 11,
      data: [{ url: 'https://x/a.png', revisedPrompt: 'A cat.' }],
      usage: { ...usage, completionTokens: 0, totalTokens: 50, estimated: true },
      extraJson: '',
      inputImageTokens: 0,
    };
    expect(toOpenAIImageGenerationResponse(response)).toEqual({ created: 11, data: [{ url: 'https://x/a.png', revised_prompt: 'A cat.' }] });
  });

  it("splits an edit's input tokens as the provider did: its images', the rest its prompt's text", () => {
    const response: chatv1.ImageGenerationResponse = { created: 12, data: [{ b64Json: 'AAA=' }], usage: { ...usage, promptTokens: 373, totalTokens: 645 }, extraJson: '', inputImageTokens: 323 };
    expect(toOpenAIImageGenerationResponse(response)).toEqual({
      created: 12,
      data: [{ b64_json: 'AAA=' }],
      usage: { input_tokens: 373, input_tokens_details: { text_tokens: 50, image_tokens: 323 }, output_tokens: 272, total_tokens: 645 },
    });
    // A split that does not add up (more image tokens than input) never makes text tokens negative.
    expect(toOpenAIImageGenerationResponse({ ...response, inputImageTokens: 999 })['usage']).toMatchObject({ input_tokens_details: { text_tokens: 0, image_tokens: 373 } });
  });

  it('round-trips a provider answer', () => {
    const answer = { created: 3, data: [{ b64_json: 'AA==' }], background: 'opaque', usage: { input_tokens: 1, input_tokens_details: { text_tokens: 1, image_tokens: 0 }, output_tokens: 2, total_tokens: 3 } };
    expect(toOpenAIImageGenerationResponse(parseOpenAIImageGenerationResponse(answer))).toEqual(answer);
    const edit = { created: 4, data: [{ b64_json: 'AA==' }], usage: { input_tokens: 200, input_tokens_details: { text_tokens: 6, image_tokens: 194 }, output_tokens: 2, total_tokens: 202 } };
    expect(parseOpenAIImageGenerationResponse(edit).inputImageTokens).toBe(194);
    expect(toOpenAIImageGenerationResponse(parseOpenAIImageGenerationResponse(edit))).toEqual(edit);
  });
});
