import { chatv1 } from '@openrouter/contracts';
import { errorOf } from './gateway-error.testing';
import { parseModerationRequest, parseOpenAIModerationResponse, toOpenAIModerationBody, toOpenAIModerationResponse } from './moderations';

const PNG = 'data:image/png;base64,iVBORw0KGgo=';

describe('parseModerationRequest', () => {
  it.each([
    ['a string', 'hello', { texts: ['hello'], parts: [] }],
    ['an empty string, as OpenAI takes it', '', { texts: [''], parts: [] }],
    ['a list of strings', ['a', 'b', ''], { texts: ['a', 'b', ''], parts: [] }],
    [
      'a list of parts as one input',
      [
        { type: 'text', text: 'look' },
        { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
        { type: 'image_url', image_url: { url: PNG } },
      ],
      { texts: [], parts: [{ text: 'look' }, { imageUrl: 'https://example.com/a.png' }, { imageUrl: PNG }] },
    ],
  ])('reads input as %s', (_name, input, expected) => {
    expect(parseModerationRequest({ model: 'omni-moderation-latest', input })).toMatchObject(expected);
  });

  it("keeps the model, reads a missing or null one as '' and carries unknown fields", () => {
    expect(parseModerationRequest({ model: 'omni-moderation-latest', input: 'x', vendor_knob: { a: 1 } })).toEqual({
      model: 'omni-moderation-latest',
      texts: ['x'],
      parts: [],
      extraJson: '{"vendor_knob":{"a":1}}',
    });
    expect(parseModerationRequest({ input: 'x' })).toEqual({ model: '', texts: ['x'], parts: [], extraJson: '' });
    expect(parseModerationRequest({ input: 'x', model: null }).model).toBe('');
  });

  it('takes 2048 texts', () => {
    expect(parseModerationRequest({ input: Array<string>(2048).fill('a') }).texts).toHaveLength(2048);
  });

  it.each([
    ['no input', { model: 'm' }, 'input', 'missing_required_parameter'],
    ['a null input', { input: null }, 'input', 'invalid_type'],
    ['input of the wrong type', { input: 5 }, 'input', 'invalid_type'],
    ['an empty list', { input: [] }, 'input', 'invalid_value'],
    ['more than 2048 strings', { input: Array<string>(2049).fill('a') }, 'input', 'invalid_value'],
    ['strings mixed with parts', { input: ['a', { type: 'text', text: 'b' }] }, 'input', 'invalid_type'],
    ['parts mixed with strings', { input: [{ type: 'text', text: 'b' }, 'a'] }, 'input', 'invalid_type'],
    ['a number in a list of strings', { input: ['a', 3] }, 'input[1]', 'invalid_type'],
    ['an unknown part type', { input: [{ type: 'input_audio', input_audio: {} }] }, 'input[0].type', 'invalid_value'],
    ['a text part without text', { input: [{ type: 'text' }] }, 'input[0].text', 'missing_required_parameter'],
    ['an image part without a url', { input: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: {} }] }, 'input[1].image_url.url', 'missing_required_parameter'],
    ['an http image url', { input: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }, { type: 'image_url', image_url: { url: 'http://example.com/a.png' } }] }, 'input[2].image_url.url', 'invalid_value'],
    ['a file image url', { input: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }, 'input[0].image_url.url', 'invalid_value'],
    ['a model of the wrong type', { input: 'x', model: 7 }, 'model', 'invalid_type'],
  ])('rejects %s with 400', (_name, body, param, code) => {
    expect(errorOf(() => parseModerationRequest(body))).toMatchObject({ kind: 'bad_request', param, code });
  });

  it('names what is wrong in the words OpenAI uses', () => {
    expect(errorOf(() => parseModerationRequest({ input: [{ type: 'image_url', image_url: { url: 'http://x/a.png' } }] })).message).toBe(
      "Invalid value for 'input[0].image_url.url': expected an https: or data: URL.",
    );
    expect(errorOf(() => parseModerationRequest({})).message).toBe("Missing required parameter: 'input'.");
    expect(errorOf(() => parseModerationRequest('input')).kind).toBe('bad_request');
  });
});

describe('toOpenAIModerationBody', () => {
  it('sends texts as a list under the upstream model, with the unknown fields', () => {
    const request = parseModerationRequest({ model: 'public', input: 'hello', vendor_knob: true });
    expect(toOpenAIModerationBody(request, 'omni-moderation-2024-09-26')).toEqual({ model: 'omni-moderation-2024-09-26', input: ['hello'], vendor_knob: true });
  });

  it('sends parts as OpenAI takes them', () => {
    const request = parseModerationRequest({ input: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: PNG } }] });
    expect(toOpenAIModerationBody(request, 'omni-moderation-latest')).toEqual({
      model: 'omni-moderation-latest',
      input: [
        { type: 'text', text: 'look' },
        { type: 'image_url', image_url: { url: PNG } },
      ],
    });
  });

  it("never lets an unknown field replace the model or input, and leaves out the provider's dropParams", () => {
    const request: chatv1.ModerationRequest = { model: 'p', texts: ['a'], parts: [], extraJson: '{"model":"other","input":"z","user":"u","keep":1}' };
    expect(toOpenAIModerationBody(request, 'up', { dropParams: ['user', 'model', 'input'] })).toEqual({ model: 'up', input: ['a'], keep: 1 });
  });
});

describe('parseOpenAIModerationResponse', () => {
  const openai = {
    id: 'modr-1',
    model: 'omni-moderation-2024-09-26',
    results: [
      {
        flagged: true,
        categories: { violence: true, hate: false, illicit: null },
        category_scores: { violence: 0.91, hate: 0.0001, illicit: null },
        category_applied_input_types: { violence: ['text', 'image'], hate: ['text'] },
      },
    ],
  };

  it("reads OpenAI's answer, keeping the result's other fields and leaving out categories the model does not judge", () => {
    expect(parseOpenAIModerationResponse(openai)).toEqual({
      id: 'modr-1',
      model: 'omni-moderation-2024-09-26',
      results: [
        {
          flagged: true,
          categories: { violence: true, hate: false },
          categoryScores: { violence: 0.91, hate: 0.0001 },
          extraJson: '{"category_applied_input_types":{"violence":["text","image"],"hate":["text"]}}',
        },
      ],
      usage: undefined,
    });
  });

  it("reads Mistral's answer: its own categories, and flagged when any category is", () => {
    const mistral = {
      id: 'e4b5e2d4',
      model: 'mistral-moderation-latest',
      results: [
        { categories: { sexual: false, violence_and_threats: true, pii: false }, category_scores: { sexual: 0.001, violence_and_threats: 0.8, pii: 0.01 } },
        { categories: { sexual: false, violence_and_threats: false, pii: false }, category_scores: { sexual: 0.001, violence_and_threats: 0.02, pii: 0.01 } },
      ],
    };
    const r = parseOpenAIModerationResponse(mistral);
    expect(r.results.map((x) => x.flagged)).toEqual([true, false]);
    expect(r.results[0]).toMatchObject({ categories: { violence_and_threats: true }, categoryScores: { violence_and_threats: 0.8 }, extraJson: '' });
  });

  it('takes an answer without id or model', () => {
    expect(parseOpenAIModerationResponse({ results: [] })).toEqual({ id: '', model: '', results: [], usage: undefined });
  });

  it.each([
    ['no results', { id: 'x', model: 'm' }],
    ['results that are not a list', { results: {} }],
    ['a result without categories', { results: [{ flagged: false, category_scores: {} }] }],
    ['a result without scores', { results: [{ flagged: false, categories: {} }] }],
    ['a score that is not a number', { results: [{ categories: { hate: false }, category_scores: { hate: 'low' } }] }],
    ['a category that is not a boolean', { results: [{ categories: { hate: 'no' }, category_scores: { hate: 0 } }] }],
    ['a non-object', 'modr'],
    ['null', null],
  ])('rejects %s as an upstream error', (_name, json) => {
    const error = errorOf(() => parseOpenAIModerationResponse(json));
    expect(error.kind).toBe('upstream_error');
    expect(error.message).toMatch(/^The provider returned a malformed moderation/);
  });
});

describe('toOpenAIModerationResponse', () => {
  const response: chatv1.ModerationResponse = {
    id: 'modr-7',
    model: 'omni-moderation-2024-09-26',
    results: [
      {
        flagged: true,
        categories: { hate: false, violence: true },
        categoryScores: { hate: 0.0002, violence: 0.93 },
        extraJson: '{"category_applied_input_types":{"hate":["text"],"violence":["text"]},"flagged":false}',
      },
      { flagged: false, categories: { hate: false }, categoryScores: { hate: 0.01 }, extraJson: '' },
    ],
    usage: { promptTokens: 4, completionTokens: 0, totalTokens: 4, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true },
  };

  it("writes OpenAI's moderation object under the public model, with each result's other fields (never over its own)", () => {
    expect(toOpenAIModerationResponse(response, 'moderation')).toEqual({
      id: 'modr-7',
      model: 'moderation',
      results: [
        {
          flagged: true,
          categories: { hate: false, violence: true },
          category_scores: { hate: 0.0002, violence: 0.93 },
          category_applied_input_types: { hate: ['text'], violence: ['text'] },
        },
        { flagged: false, categories: { hate: false }, category_scores: { hate: 0.01 } },
      ],
    });
  });

  it('writes the same object after the gRPC encoding', () => {
    const decoded = chatv1.ModerationResponse.decode(chatv1.ModerationResponse.encode(response).finish());
    expect(toOpenAIModerationResponse(decoded, 'm')).toEqual(toOpenAIModerationResponse(response, 'm'));
  });

  it('round-trips a provider answer to the client in the same shape', () => {
    const upstream = {
      id: 'modr-2',
      model: 'omni-moderation-latest',
      results: [{ flagged: false, categories: { sexual: false }, category_scores: { sexual: 0.02 }, category_applied_input_types: { sexual: ['text'] } }],
    };
    expect(toOpenAIModerationResponse(parseOpenAIModerationResponse(upstream), 'omni-moderation-latest')).toEqual(upstream);
  });
});
