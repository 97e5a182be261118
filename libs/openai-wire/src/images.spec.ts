import type { chatv1 } from '@openrouter/contracts';
import { errorOf } from './gateway-error.testing';
import { parseImageGenerationRequest, parseOpenAIImageGenerationResponse, toOpenAIImageGenerationBody, toOpenAIImageGenerationResponse } from './images';

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
    });
  });

  it("reads a missing or null model as '' and null parameters as not given", () => {
    expect(parseImageGenerationRequest({ prompt: 'x' })).toEqual({ model: '', prompt: 'x', n: undefined, responseFormat: undefined, user: undefined, extraJson: '' });
    expect(parseImageGenerationRequest({ prompt: 'x', model: null, n: null, response_format: null, user: null, stream: null })).toEqual({
      model: '',
      prompt: 'x',
      n: undefined,
      responseFormat: undefined,
      user: undefined,
      extraJson: '',
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

describe('toOpenAIImageGenerationBody', () => {
  it('sends the prompt under the upstream model with the modelled and the carried parameters', () => {
    const request = parseImageGenerationRequest({ model: 'public-images', prompt: 'a cat', n: 2, response_format: 'url', user: 'u', size: '512x512', style: 'vivid' });
    expect(toOpenAIImageGenerationBody(request, 'dall-e-2')).toEqual({ model: 'dall-e-2', prompt: 'a cat', n: 2, response_format: 'url', user: 'u', size: '512x512', style: 'vivid' });
  });

  it('sends only model and prompt when nothing else was given', () => {
    expect(toOpenAIImageGenerationBody(parseImageGenerationRequest({ prompt: 'a cat' }), 'gpt-image-1')).toEqual({ model: 'gpt-image-1', prompt: 'a cat' });
  });

  it("never lets a carried field replace the model or prompt, and leaves out the provider's dropParams", () => {
    const request: chatv1.ImageGenerationRequest = { model: 'p', prompt: 'real', n: 1, responseFormat: 'b64_json', user: 'u', extraJson: '{"model":"other","prompt":"fake","quality":"hd","keep":1}' };
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
    });
  });

  it("reads DALL·E 3's answer: a URL with its revised prompt and no usage", () => {
    expect(parseOpenAIImageGenerationResponse({ created: 1, data: [{ url: 'https://files.example/a.png', revised_prompt: 'A calm cat.' }] })).toEqual({
      created: 1,
      data: [{ b64Json: undefined, url: 'https://files.example/a.png', revisedPrompt: 'A calm cat.' }],
      usage: undefined,
      extraJson: '',
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
    };
    expect(toOpenAIImageGenerationResponse(response, 'public-images')).toEqual({
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
    };
    expect(toOpenAIImageGenerationResponse(response)).toEqual({ created: 11, data: [{ url: 'https://x/a.png', revised_prompt: 'A cat.' }] });
  });

  it('round-trips a provider answer', () => {
    const answer = { created: 3, data: [{ b64_json: 'AA==' }], background: 'opaque', usage: { input_tokens: 1, input_tokens_details: { text_tokens: 1, image_tokens: 0 }, output_tokens: 2, total_tokens: 3 } };
    expect(toOpenAIImageGenerationResponse(parseOpenAIImageGenerationResponse(answer))).toEqual(answer);
  });
});
