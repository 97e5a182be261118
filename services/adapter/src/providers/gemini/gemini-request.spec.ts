import { GatewayError } from '@openrouter/errors';
import { parseChatRequest } from '@openrouter/openai-wire';
import { ImageSource, type InlineImage } from '../image-source';
import { allowsJsonWithFunctions, alwaysThinks, type GeminiRequestBody, JSON_RESPONSE_FUNCTION, modelResource, toGeminiRequest } from './gemini-request';
import { toGeminiSchema } from './gemini-schema';

const PNG: InlineImage = { mediaType: 'image/png', base64: 'iVBORw0KGgo=' };
const fetched: string[] = [];
const loader = async (url: string): Promise<InlineImage> => {
  fetched.push(url);
  return PNG;
};
const translation = (body: Record<string, unknown>, upstreamModel = 'gemini-2.5-flash') =>
  toGeminiRequest(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], ...body }), loader, upstreamModel);
const translate = async (body: Record<string, unknown>) => (await translation(body)).body;
async function refusal(body: Record<string, unknown>): Promise<GatewayError> {
  const error = await translate(body).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

describe('toGeminiRequest', () => {
  it('merges every system and developer message into systemInstruction, wherever they stand', async () => {
    const body = await translate({
      messages: [
        { role: 'system', content: 'One.' },
        { role: 'user', content: 'Hi' },
        { role: 'developer', content: 'Two.' },
      ],
    });
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'One.' }, { text: 'Two.' }] });
    expect(body.contents).toEqual([{ role: 'user', parts: [{ text: 'Hi' }] }]);
  });

  it('merges consecutive messages of one role into one turn and skips empty ones', async () => {
    const body = await translate({
      messages: [
        { role: 'user', content: 'a' },
        { role: 'user', content: [{ type: 'text', text: '' }] },
        { role: 'user', content: 'b' },
        { role: 'assistant', content: 'c' },
        { role: 'assistant', content: 'd' },
      ],
    });
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'a' }, { text: 'b' }] },
      { role: 'model', parts: [{ text: 'c' }, { text: 'd' }] },
    ]);
  });

  it('sends an assistant turn with tool calls and empty content as function calls only', async () => {
    const body = await translate({
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: '', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '' } }] },
        { role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: '[1,' }, { type: 'text', text: '2]' }] },
      ],
    });
    expect(body.contents[1]).toEqual({ role: 'model', parts: [{ functionCall: { name: 'f', args: {} }, thoughtSignature: 'skip_thought_signature_validator' }] });
    expect(body.contents[2]).toEqual({ role: 'user', parts: [{ functionResponse: { name: 'f', response: { result: '[1,2]' } } }] });
  });

  it('answers results of parallel calls in one turn, function responses before other user parts, images after', async () => {
    const body = await translate({
      messages: [
        { role: 'user', content: 'x' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'a', type: 'function', function: { name: 'first', arguments: '{}' } },
            { id: 'b', type: 'function', function: { name: 'second', arguments: '{"n":1}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'b', content: [{ type: 'text', text: 'chart' }, { type: 'image_url', image_url: { url: 'https://example.com/c.png' } }] },
        { role: 'user', content: 'and now?' },
        { role: 'tool', tool_call_id: 'a', content: '{"ok":true}' },
      ],
    });
    expect(body.contents[2]).toEqual({
      role: 'user',
      parts: [
        // In the order of the calls, whatever the order of the tool messages.
        { functionResponse: { name: 'first', response: { ok: true } } },
        { functionResponse: { name: 'second', response: { result: 'chart' } } },
        { inlineData: { mimeType: 'image/png', data: PNG.base64 } },
        { text: 'and now?' },
      ],
    });
    expect(fetched).toContain('https://example.com/c.png');
  });

  it('answers two calls of one function in the order of the calls, though the results came the other way round', async () => {
    const call = (id: string, city: string) => ({ id, type: 'function', function: { name: 'get_weather', arguments: JSON.stringify({ city }) } });
    const body = await translate({
      messages: [
        { role: 'user', content: 'Weather in Paris and London?' },
        { role: 'assistant', content: null, tool_calls: [call('paris', 'Paris'), call('london', 'London')] },
        { role: 'tool', tool_call_id: 'london', content: 'rain' },
        { role: 'tool', tool_call_id: 'paris', content: 'sun' },
      ],
    });
    expect(body.contents[1]?.parts.map((p) => p.functionCall?.args)).toEqual([{ city: 'Paris' }, { city: 'London' }]);
    expect(body.contents[2]?.parts).toEqual([{ functionResponse: { name: 'get_weather', response: { result: 'sun' } } }, { functionResponse: { name: 'get_weather', response: { result: 'rain' } } }]);
  });

  it('keeps unicode text exactly', async () => {
    const text = 'Grüße — 你好 👋🏽 \u0000 \u{1F9EA}';
    const body = await translate({ messages: [{ role: 'user', content: text }] });
    expect(body.contents[0]?.parts[0]?.text).toBe(text);
  });

  it.each([
    ['none', { mode: 'NONE' }],
    ['auto', { mode: 'AUTO' }],
    ['required', { mode: 'ANY' }],
    [{ type: 'function', function: { name: 'f' } }, { mode: 'ANY', allowedFunctionNames: ['f'] }],
  ])('translates tool_choice %j', async (choice, config) => {
    const body = await translate({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: choice });
    expect(body.toolConfig).toEqual({ functionCallingConfig: config });
    expect(body.tools).toEqual([{ functionDeclarations: [{ name: 'f' }] }]);
  });

  it.each([
    ['gemini-2.5-flash', 'xhigh', 24576],
    ['gemini-2.5-flash', 'max', 24576],
    ['gemini-2.5-flash-lite', 'max', 24576],
    ['gemini-2.5-pro', 'high', 24576],
    ['gemini-2.5-pro', 'xhigh', 32768],
    ['gemini-2.5-pro', 'max', 32768],
    ['gemini-3-pro-preview', 'max', 32768],
    ['gemini-2.5-flash', 'none', 0],
    // Pro models cannot stop thinking (Gemini refuses a budget of 0): none thinks as little as they can.
    ['gemini-2.5-pro', 'none', 128],
    ['publishers/google/models/gemini-2.5-pro-preview-06-05', 'none', 128],
  ])('on %s maps reasoning_effort %s to the thinking budget %i', async (upstreamModel, effort, budget) => {
    const { body } = await translation({ reasoning_effort: effort }, upstreamModel);
    expect(body.generationConfig?.thinkingConfig).toEqual({ thinkingBudget: budget });
  });

  it('tells the Pro models, which cannot switch thinking off, by their name', () => {
    expect(['gemini-2.5-pro', 'models/gemini-2.5-pro', 'gemini-3-pro-preview', 'gemini-2.5-pro-preview-06-05'].map(alwaysThinks)).toEqual([true, true, true, true]);
    expect(['gemini-2.5-flash', 'gemini-2.5-flash-lite', 'tunedModels/pro-tune', 'gemini-2.5-professional'].map(alwaysThinks)).toEqual([false, false, false, false]);
  });

  it('sends json_object as the JSON mime type alone and maps reasoning_effort to a thinking budget', async () => {
    const body = await translate({ response_format: { type: 'json_object' }, reasoning_effort: 'none' });
    expect(body.generationConfig).toEqual({ responseMimeType: 'application/json', thinkingConfig: { thinkingBudget: 0 } });
  });

  describe('JSON mode next to tools', () => {
    const tool = { type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { q: { type: 'string' } } } } };
    const schema = { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: { ok: { type: 'boolean' } } } } };
    const answerOf = (body: GeminiRequestBody) => body.tools?.[0]?.functionDeclarations.find((d) => d.name === JSON_RESPONSE_FUNCTION);

    it('forces the answer through a function on models before Gemini 3, which refuse the JSON mime type next to functions', async () => {
      const { body, answerTool } = await translation({ tools: [tool], response_format: schema });
      expect(answerTool).toBe(JSON_RESPONSE_FUNCTION);
      expect(body.generationConfig).toBeUndefined();
      expect(answerOf(body)?.parameters).toEqual({ type: 'OBJECT', properties: { ok: { type: 'BOOLEAN' } }, propertyOrdering: ['ok'] });
      expect(body.toolConfig).toEqual({ functionCallingConfig: { mode: 'ANY' } });
      const none = await translation({ tools: [tool], tool_choice: 'none', response_format: { type: 'json_object' } });
      expect(none.body.toolConfig).toEqual({ functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [JSON_RESPONSE_FUNCTION] } });
      expect(answerOf(none.body)?.parametersJsonSchema).toEqual({ type: 'object' });
    });

    it('leaves the format unenforced when a function call is required anyway', async () => {
      for (const choice of ['required', { type: 'function', function: { name: 'f' } }]) {
        const { body, answerTool } = await translation({ tools: [tool], tool_choice: choice, response_format: schema });
        expect(answerTool).toBeUndefined();
        expect(answerOf(body)).toBeUndefined();
        expect(body.generationConfig).toBeUndefined();
      }
    });

    it('keeps the JSON mime type and schema next to tools on Gemini 3, and without tools on any model', async () => {
      const three = await translation({ tools: [tool], response_format: schema }, 'models/gemini-3-pro-preview');
      expect(three.answerTool).toBeUndefined();
      expect(three.body.generationConfig).toMatchObject({ responseMimeType: 'application/json' });
      const alone = await translation({ response_format: schema });
      expect(alone.answerTool).toBeUndefined();
      expect(alone.body.generationConfig).toMatchObject({ responseMimeType: 'application/json', responseSchema: expect.any(Object) as unknown });
    });

    it.each([
      ['gemini-2.5-flash', false],
      ['models/gemini-2.0-flash-001', false],
      ['gemini-flash-latest', false],
      ['tunedModels/my-model', false],
      ['gemini-3-pro-preview', true],
      ['gemini-3.1-flash', true],
    ])('reads %s as %s for JSON next to functions', (model, allowed) => {
      expect(allowsJsonWithFunctions(model)).toBe(allowed);
    });

    it('refuses a client tool named like the answer function and a schema whose root is not an object', async () => {
      const reserved = await refusal({ tools: [{ type: 'function', function: { name: JSON_RESPONSE_FUNCTION } }], response_format: schema });
      expect(reserved).toMatchObject({ kind: 'bad_request', param: 'tools' });
      const list = await refusal({ tools: [tool], response_format: { type: 'json_schema', json_schema: { name: 'l', schema: { type: 'array', items: { type: 'string' } } } } });
      expect(list).toMatchObject({ kind: 'bad_request', param: 'response_format.json_schema.schema' });
    });
  });

  it('sends a tool schema Gemini\'s subset cannot express as parametersJsonSchema', async () => {
    const parameters = { type: 'object', properties: { tags: { type: 'object', additionalProperties: { type: 'string' } } } };
    const body = await translate({ tools: [{ type: 'function', function: { name: 'f', parameters: { $schema: 'x', ...parameters } } }] });
    expect(body.tools?.[0]?.functionDeclarations[0]).toEqual({ name: 'f', parametersJsonSchema: parameters });
  });

  it('sends n as candidateCount and stop as stopSequences up to Gemini\'s limits', async () => {
    const body = await translate({ n: 8, stop: ['a', 'b', 'c', 'd', 'e'] });
    expect(body.generationConfig).toEqual({ candidateCount: 8, stopSequences: ['a', 'b', 'c', 'd', 'e'] });
  });

  it('drops presence_penalty and frequency_penalty, which Gemini 2.5 refuses ("Penalty is not enabled")', async () => {
    for (const upstreamModel of ['gemini-2.5-flash', 'gemini-2.0-flash', 'gemini-3-pro-preview']) {
      const { body } = await translation({ presence_penalty: 0.3, frequency_penalty: 0.5, temperature: 0.2 }, upstreamModel);
      expect(body.generationConfig).toEqual({ temperature: 0.2 });
    }
  });

  it('drops user, safety_identifier, metadata, store, service_tier, parallel_tool_calls, prediction and unknown extras', async () => {
    const body = await translate({ user: 'u', safety_identifier: 's', metadata: { a: 'b' }, store: true, service_tier: 'flex', parallel_tool_calls: false, prediction: { type: 'content', content: 'x' }, verbosity: 'low' });
    expect(body).toEqual({ contents: [{ role: 'user', parts: [{ text: 'Hi' }] }] });
  });

  it.each([
    [{ logit_bias: { '1': 5 } }, 'logit_bias'],
    [{ modalities: ['text', 'audio'] }, 'modalities'],
    [{ audio: { voice: 'alloy', format: 'mp3' } }, 'audio'],
    [{ web_search_options: {} }, 'web_search_options'],
    [{ reasoning_effort: 'extreme' }, 'reasoning_effort'],
    // Names every object inherits are no effort and no audio format.
    [{ reasoning_effort: 'constructor' }, 'reasoning_effort'],
    [{ reasoning_effort: '__proto__' }, 'reasoning_effort'],
    [{ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AA==', format: 'constructor' } }] }] }, 'messages[0].content[0]'],
    [{ seed: 2 ** 40 }, 'seed'],
    // Beyond Gemini's limits (candidateCount 1–8, five stop sequences), which it refuses naming no parameter of the client's.
    [{ n: 9 }, 'n'],
    [{ stop: ['a', 'b', 'c', 'd', 'e', 'f'] }, 'stop'],
    [{ tool_choice: 'required' }, 'tool_choice'],
    [{ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } }, 'tool_choice'],
    [{ tools: [{ type: 'custom', custom: { name: 'c' } }] }, 'tools[0]'],
    [{ messages: [{ role: 'tool', tool_call_id: 'nope', content: 'x' }] }, 'messages[0].tool_call_id'],
    [{ messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '[1]' } }] }] }, 'messages[0].tool_calls[0].function.arguments'],
    [{ messages: [{ role: 'system', content: 'only system' }] }, 'messages'],
    [{ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AA==', format: 'flac' } }] }] }, 'messages[0].content[0]'],
    [{ messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file-1' } }] }] }, 'messages[0].content[0]'],
    // Function names Gemini refuses, named as the client sent them.
    [{ tools: [{ type: 'function', function: { name: 'get weather ✨' } }] }, 'tools[0].function.name'],
    [{ tools: [{ type: 'function', function: { name: 'f' } }, { type: 'function', function: { name: '1st' } }] }, 'tools[1].function.name'],
    [{ tools: [{ type: 'function', function: { name: 'f'.repeat(65) } }] }, 'tools[0].function.name'],
    [{ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: '', arguments: '{}' } }] }] }, 'messages[1].tool_calls[0].function.name'],
    // A file whose data is not base64, which Gemini refuses naming no part.
    [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }, { type: 'file', file: { file_data: 'data:application/pdf;base64,%%%' } }] }] }, 'messages[0].content[1]'],
  ])('refuses %j with a 400 naming %s', async (body, param) => {
    const error = await refusal(body);
    expect(error).toMatchObject({ kind: 'bad_request', param, retryable: false });
  });

  it('refuses a tool call reusing an earlier call\'s id, in its turn or a later one, naming the id (one tool message cannot answer two calls)', async () => {
    const call = (id: string) => ({ id, type: 'function', function: { name: 'get_weather', arguments: '{}' } });
    const tools = [{ type: 'function', function: { name: 'get_weather' } }];
    const sameTurn = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null, tool_calls: [call('c1'), call('c1')] }, { role: 'tool', tool_call_id: 'c1', content: 'x' }];
    await expect(refusal({ messages: sameTurn, tools })).resolves.toMatchObject({ kind: 'bad_request', param: 'messages[1].tool_calls[1].id' });
    const laterTurn = [...sameTurn.slice(0, 1), { role: 'assistant', content: null, tool_calls: [call('c1')] }, { role: 'tool', tool_call_id: 'c1', content: 'x' }, { role: 'assistant', content: null, tool_calls: [call('c1')] }];
    await expect(refusal({ messages: laterTurn, tools })).resolves.toMatchObject({ param: 'messages[3].tool_calls[0].id' });
    const distinct = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null, tool_calls: [call('c1'), call('c2')] }, { role: 'tool', tool_call_id: 'c1', content: 'x' }, { role: 'tool', tool_call_id: 'c2', content: 'y' }];
    await expect(translate({ messages: distinct, tools })).resolves.toBeDefined();
  });

  it('refuses an image data URL that is not base64, naming the part, before the call', async () => {
    const loadImage = new ImageSource().loader({ signal: new AbortController().signal });
    const image = (url: string) => ({ type: 'image_url', image_url: { url } });
    const request = (url: string) => parseChatRequest({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }, image(url)] }] });
    await expect(toGeminiRequest(request('data:image/png;base64,%%%not-base64'), loadImage, 'gemini-2.5-flash')).rejects.toMatchObject({ kind: 'bad_request', param: 'messages[0].content[1]', code: 'invalid_image_url' });
    const { body } = await toGeminiRequest(request('data:image/png;base64,iVBORw0KGgo='), loadImage, 'gemini-2.5-flash');
    expect(body.contents[0]?.parts[1]).toEqual({ inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } });
  });

  it('refuses images over the byte budget of the call, naming the part that goes over it', async () => {
    const png = { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } };
    const budget = () => new ImageSource().loader({ signal: new AbortController().signal, maxTotalBytes: 20 });
    const messages = [{ role: 'user', content: [{ type: 'text', text: 'x' }, png, png] }, { role: 'assistant', content: 'ok' }, { role: 'user', content: [{ ...png, cache_control: { type: 'ephemeral' } }] }];
    await expect(toGeminiRequest(parseChatRequest({ model: 'm', messages }), budget(), 'gemini-2.5-flash')).rejects.toMatchObject({ kind: 'bad_request', param: 'messages[2].content[0]', code: 'invalid_image_url', message: expect.stringMatching(/total more than 20 bytes/) });
    await expect(toGeminiRequest(parseChatRequest({ model: 'm', messages: messages.slice(0, 1) }), budget(), 'gemini-2.5-flash')).resolves.toBeDefined();
  });
});

describe('modelResource', () => {
  it('prefixes bare model names and keeps full resource names', () => {
    expect(modelResource('gemini-2.5-flash')).toBe('models/gemini-2.5-flash');
    expect(modelResource('tunedModels/my-model')).toBe('tunedModels/my-model');
  });
});

describe('toGeminiSchema', () => {
  it('inlines $defs, merges allOf and turns oneOf into anyOf', () => {
    expect(
      toGeminiSchema({
        type: 'object',
        properties: { a: { allOf: [{ $ref: '#/definitions/base' }, { properties: { y: { type: 'integer' } } }] }, b: { oneOf: [{ type: 'string' }, { type: 'number' }] } },
        definitions: { base: { type: 'object', properties: { x: { type: 'boolean' } }, required: ['x'] } },
      }),
    ).toEqual({
      type: 'OBJECT',
      properties: {
        a: { type: 'OBJECT', properties: { x: { type: 'BOOLEAN' }, y: { type: 'INTEGER' } }, required: ['x'], propertyOrdering: ['x', 'y'] },
        b: { anyOf: [{ type: 'STRING' }, { type: 'NUMBER' }] },
      },
      propertyOrdering: ['a', 'b'],
    });
  });

  it.each([
    ['recursion', { type: 'object', properties: { next: { $ref: '#' } } }],
    ['a map', { type: 'object', properties: { m: { type: 'object', additionalProperties: { type: 'number' } } } }],
    ['an untyped property', { type: 'object', properties: { any: {} } }],
    ['a numeric enum', { type: 'object', properties: { n: { type: 'integer', enum: [1, 2] } } }],
    ['a tuple', { type: 'object', properties: { t: { type: 'array', prefixItems: [{ type: 'string' }] } } }],
    ['a $ref with malformed percent-encoding', { type: 'object', properties: { a: { $ref: '#/%E0%A4%A' } } }],
  ])('gives up on %s', (_what, schema) => {
    expect(toGeminiSchema(schema)).toBeUndefined();
  });

  it('sends a small schema whose $refs would inline exponentially as JSON Schema, at once', async () => {
    // Ten definitions, each using the next four times: inlined, 4^10 copies of the last.
    const defs: Record<string, unknown> = {};
    for (let i = 0; i < 10; i++) {
      defs[`d${i}`] = i === 9 ? { type: 'object', properties: { v: { type: 'string' } } } : { type: 'object', properties: Object.fromEntries([0, 1, 2, 3].map((k) => [`p${k}`, { $ref: `#/$defs/d${i + 1}` }])) };
    }
    const parameters = { type: 'object', properties: { root: { $ref: '#/$defs/d0' } }, $defs: defs };
    expect(toGeminiSchema(parameters)).toBeUndefined();
    const body = await translate({ tools: [{ type: 'function', function: { name: 'f', parameters } }] });
    expect(body.tools?.[0]?.functionDeclarations[0]).toEqual({ name: 'f', parametersJsonSchema: parameters });
    // Not 29 MB of copies.
    expect(JSON.stringify(body).length).toBeLessThan(10_000);
    // A schema reused a few times is still inlined.
    expect(toGeminiSchema({ type: 'object', properties: { a: { $ref: '#/$defs/x' }, b: { $ref: '#/$defs/x' } }, $defs: { x: { type: 'string' } } })).toMatchObject({ properties: { a: { type: 'STRING' }, b: { type: 'STRING' } } });
  });

  it('sends a tool schema whose $ref cannot be decoded as JSON Schema, for Gemini to judge', async () => {
    const parameters = { type: 'object', properties: { a: { $ref: '#/%' } }, required: ['a'] };
    const body = await translate({ tools: [{ type: 'function', function: { name: 'f', parameters } }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema: parameters } } });
    expect(body.tools?.[0]?.functionDeclarations[0]).toEqual({ name: 'f', parametersJsonSchema: parameters });
  });
});
