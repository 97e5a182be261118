import { GatewayError } from '@openrouter/errors';
import { parseChatRequest } from '@openrouter/openai-wire';
import { createHash } from 'node:crypto';
import { ImageSource } from '../image-source';
import { type AnthropicTranslation, JSON_RESPONSE_TOOL, toAnthropicRequest } from './anthropic-request';

const loadImage = new ImageSource().loader({ signal: new AbortController().signal });
const user = (content: unknown) => ({ role: 'user', content });
const translate = (body: Record<string, unknown>, thinking: 'adaptive' | 'budget' = 'adaptive'): Promise<AnthropicTranslation> =>
  toAnthropicRequest(parseChatRequest({ model: 'claude', messages: [user('Hi')], ...body }), 'claude-sonnet-4-5', { defaultMaxTokens: 1024, thinking, loadImage });
const bodyOf = async (body: Record<string, unknown>) => (await translate(body)).body;

async function rejection(body: Record<string, unknown>, thinking: 'adaptive' | 'budget' = 'adaptive'): Promise<GatewayError> {
  try {
    await translate(body, thinking);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a GatewayError');
}

const weatherTool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
const call = (id: string, city: string) => ({ id, type: 'function', function: { name: 'get_weather', arguments: JSON.stringify({ city }) } });

describe('toAnthropicRequest', () => {
  describe('messages', () => {
    it('hoists every system and developer message, wherever it stands, into top-level system blocks in order', async () => {
      const body = await bodyOf({
        messages: [{ role: 'system', content: 'One.' }, user('Hi'), { role: 'developer', content: 'Two.' }, { role: 'system', content: [{ type: 'text', text: 'Three.' }] }],
      });
      expect(body.system).toEqual([
        { type: 'text', text: 'One.' },
        { type: 'text', text: 'Two.' },
        { type: 'text', text: 'Three.' },
      ]);
      expect(body.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }]);
    });

    it('sends a single system message as a plain string', async () => {
      expect((await bodyOf({ messages: [{ role: 'system', content: 'Be brief.' }, user('Hi')] })).system).toBe('Be brief.');
    });

    it('merges consecutive same-role messages so user and assistant alternate', async () => {
      const body = await bodyOf({
        messages: [user('a'), user([{ type: 'text', text: 'b' }]), { role: 'assistant', content: 'c' }, { role: 'assistant', content: 'd' }, user('e')],
      });
      expect(body.messages).toEqual([
        { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'c' }, { type: 'text', text: 'd' }] },
        { role: 'user', content: [{ type: 'text', text: 'e' }] },
      ]);
    });

    it('turns an assistant message with empty content and tool calls into tool_use blocks only', async () => {
      for (const content of ['', null]) {
        const body = await bodyOf({
          messages: [user('Weather?'), { role: 'assistant', content, tool_calls: [call('toolu_1', 'Oslo')] }, { role: 'tool', tool_call_id: 'toolu_1', content: 'cold' }],
          tools: [weatherTool],
        });
        expect(body.messages[1]).toEqual({ role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] });
      }
    });

    it('gathers results of parallel tool calls into one user turn, tool results before any text', async () => {
      const body = await bodyOf({
        messages: [
          user('Weather in Oslo and Rome?'),
          { role: 'assistant', content: 'Checking.', tool_calls: [call('toolu_1', 'Oslo'), call('toolu_2', 'Rome')] },
          { role: 'tool', tool_call_id: 'toolu_2', content: 'warm' },
          { role: 'tool', tool_call_id: 'toolu_1', content: 'cold' },
          user('And now?'),
        ],
        tools: [weatherTool],
      });
      expect(body.messages).toHaveLength(3);
      expect(body.messages[1]?.content).toEqual([
        { type: 'text', text: 'Checking.' },
        { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
        { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { city: 'Rome' } },
      ]);
      expect(body.messages[2]).toEqual({
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_2', content: 'warm' },
          { type: 'tool_result', tool_use_id: 'toolu_1', content: 'cold' },
          { type: 'text', text: 'And now?' },
        ],
      });
    });

    it('puts tool results first even when user text came before them', async () => {
      const body = await bodyOf({
        messages: [user('Go'), { role: 'assistant', content: null, tool_calls: [call('toolu_1', 'Oslo')] }, user('(note)'), { role: 'tool', tool_call_id: 'toolu_1', content: 'cold' }],
        tools: [weatherTool],
      });
      expect(body.messages[2]?.content.map((b) => b.type)).toEqual(['tool_result', 'text']);
    });

    it('keeps text, image and PDF document blocks of a tool result, in order', async () => {
      const pdf = 'data:application/pdf;base64,JVBERi0xLjQK';
      const png = 'data:image/png;base64,iVBORw0KGgo=';
      const body = await bodyOf({
        messages: [
          user('Read the contract'),
          { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'fetch_file', arguments: '{}' } }] },
          {
            role: 'tool',
            tool_call_id: 'toolu_1',
            content: [
              { type: 'text', text: 'Here is the file' },
              { type: 'file', file: { filename: 'contract.pdf', file_data: pdf } },
              { type: 'image_url', image_url: { url: png } },
            ],
          },
        ],
        tools: [{ type: 'function', function: { name: 'fetch_file' } }],
      });
      expect(body.messages[2]?.content).toEqual([
        {
          type: 'tool_result',
          tool_use_id: 'toolu_1',
          content: [
            { type: 'text', text: 'Here is the file' },
            { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQK' }, title: 'contract.pdf' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          ],
        },
      ]);
    });

    it('leaves out an empty tool result and keeps an empty arguments string as an empty input', async () => {
      const body = await bodyOf({
        messages: [
          user('Go'),
          { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'ping', arguments: '' } }] },
          { role: 'tool', tool_call_id: 'toolu_1', content: '' },
        ],
        tools: [{ type: 'function', function: { name: 'ping' } }],
      });
      expect(body.messages[1]?.content).toEqual([{ type: 'tool_use', id: 'toolu_1', name: 'ping', input: {} }]);
      expect(body.messages[2]?.content).toEqual([{ type: 'tool_result', tool_use_id: 'toolu_1' }]);
      expect(body.tools).toEqual([{ name: 'ping', input_schema: { type: 'object', properties: {} } }]);
    });

    it('leaves out a whitespace-only tool result, which Anthropic refuses as a blank text block', async () => {
      for (const content of ['\n', ' \t ', [{ type: 'text', text: '  ' }]]) {
        const body = await bodyOf({
          messages: [user('Go'), { role: 'assistant', content: null, tool_calls: [call('toolu_1', 'Oslo')] }, { role: 'tool', tool_call_id: 'toolu_1', content }],
          tools: [weatherTool],
        });
        expect(body.messages[2]?.content).toEqual([{ type: 'tool_result', tool_use_id: 'toolu_1' }]);
      }
    });

    it('rewrites tool call ids from other providers into the characters Anthropic accepts, on both sides', async () => {
      const body = await bodyOf({
        messages: [user('Go'), { role: 'assistant', content: null, tool_calls: [call('call:abc/1', 'Oslo')] }, { role: 'tool', tool_call_id: 'call:abc/1', content: 'ok' }],
        tools: [weatherTool],
      });
      expect(body.messages[1]?.content[0]).toMatchObject({ id: 'call_abc_1' });
      expect(body.messages[2]?.content[0]).toMatchObject({ tool_use_id: 'call_abc_1' });
    });

    it('keeps unicode text exactly', async () => {
      const text = 'Ünïcødé ✓ — 日本語 👩‍💻 \u0000 end';
      const body = await bodyOf({ messages: [{ role: 'system', content: 'Système 🧭' }, user(text)] });
      expect(body.system).toBe('Système 🧭');
      expect(body.messages[0]?.content).toEqual([{ type: 'text', text }]);
      expect(JSON.parse(JSON.stringify(body)).messages[0].content[0].text).toBe(text);
    });

    it('drops blank text and trims the whitespace a final assistant prefill may not end with', async () => {
      const body = await bodyOf({ messages: [user('Say it'), user('   '), { role: 'assistant', content: 'The answer is ' }] });
      expect(body.messages).toEqual([
        { role: 'user', content: [{ type: 'text', text: 'Say it' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'The answer is' }] },
      ]);
    });

    it('honours cache_control on text parts and turns a base64 PDF file part into a document block', async () => {
      const body = await bodyOf({
        messages: [
          { role: 'system', content: [{ type: 'text', text: 'Long policy…', cache_control: { type: 'ephemeral' } }] },
          user([{ type: 'file', file: { filename: 'terms.pdf', file_data: 'data:application/pdf;base64,JVBERi0xLjQK' } }, { type: 'text', text: 'Summarise.' }]),
        ],
      });
      expect(body.system).toEqual([{ type: 'text', text: 'Long policy…', cache_control: { type: 'ephemeral' } }]);
      expect(body.messages[0]?.content[0]).toEqual({ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQK' }, title: 'terms.pdf' });
    });

    it('honours cache_control on a tool definition, a tool message (its tool_result block) and a PDF file part', async () => {
      const ephemeral = { type: 'ephemeral' };
      const hour = { type: 'ephemeral', ttl: '1h' };
      const body = await bodyOf({
        tools: [{ ...weatherTool, cache_control: hour }, { type: 'function', function: { name: 'get_time', parameters: { type: 'object' } } }],
        messages: [
          user('Weather?'),
          { role: 'assistant', content: null, tool_calls: [call('toolu_1', 'Oslo'), call('toolu_2', 'Bergen')] },
          { role: 'tool', tool_call_id: 'toolu_1', content: '4 °C', cache_control: ephemeral },
          { role: 'tool', tool_call_id: 'toolu_2', content: [{ type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0xLjQK' }, cache_control: ephemeral }] },
          user([{ type: 'file', file: { filename: 'terms.pdf', file_data: 'data:application/pdf;base64,JVBERi0xLjQK' }, cache_control: hour }, { type: 'text', text: 'Summarise.' }]),
        ],
      });
      expect(body.tools).toEqual([
        { name: 'get_weather', input_schema: weatherTool.function.parameters, cache_control: hour },
        { name: 'get_time', input_schema: { type: 'object' } },
      ]);
      expect(body.messages[2]?.content).toEqual([
        { type: 'tool_result', tool_use_id: 'toolu_1', content: '4 °C', cache_control: ephemeral },
        { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQK' }, cache_control: ephemeral }] },
        { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQK' }, title: 'terms.pdf', cache_control: hour },
        { type: 'text', text: 'Summarise.' },
      ]);
      // A tool message's other extra keys, and a cache_control that is not an object, mark nothing.
      const plain = await bodyOf({
        tools: [weatherTool],
        messages: [user('Weather?'), { role: 'assistant', content: null, tool_calls: [call('toolu_1', 'Oslo')] }, { role: 'tool', tool_call_id: 'toolu_1', content: '4 °C', cache_control: 'ephemeral', name: 'get_weather' }],
      });
      expect(plain.messages[2]?.content).toEqual([{ type: 'tool_result', tool_use_id: 'toolu_1', content: '4 °C' }]);
    });

    it('refuses what Anthropic cannot take, naming the param', async () => {
      await expect(rejection({ messages: [{ role: 'system', content: 'only a system prompt' }] })).resolves.toMatchObject({ kind: 'bad_request', param: 'messages' });
      await expect(rejection({ messages: [user([{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }])] })).resolves.toMatchObject({ kind: 'bad_request', param: 'messages[0].content[0]' });
      await expect(rejection({ messages: [user('x'), { role: 'function', name: 'f', content: '1' }] })).resolves.toMatchObject({ param: 'messages[1].role' });
      await expect(rejection({ messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'https://x.test/a.png' } }] }, user('x')] })).resolves.toMatchObject({ param: 'messages[0].content[0]' });
      await expect(rejection({ messages: [user([{ type: 'image_url', image_url: { url: 'data:image/tiff;base64,AAAA' } }])] })).resolves.toMatchObject({ param: 'messages[0].content[0]', code: 'invalid_image_url' });
      await expect(rejection({ messages: [user('x'), { role: 'assistant', content: null, tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '[1,2' } }] }] })).resolves.toMatchObject({
        param: 'messages[1].tool_calls[0].function.arguments',
      });
      await expect(rejection({ messages: [user([{ type: 'file', file: { file_id: 'file-123' } }])] })).resolves.toMatchObject({ param: 'messages[0].content[0]' });
    });

    it('refuses image and PDF data URLs whose data is not base64, naming the part', async () => {
      const image = (url: string) => ({ type: 'image_url', image_url: { url } });
      const pdf = (data: string) => ({ type: 'file', file: { file_data: `data:application/pdf;base64,${data}`, filename: 'a.pdf' } });
      for (const bad of ['%%%not-base64', '', 'AAA=A', 'A', 'AB CD']) {
        await expect(rejection({ messages: [user([{ type: 'text', text: 'x' }, image(`data:image/png;base64,${bad}`)])] })).resolves.toMatchObject({ param: 'messages[0].content[1]', code: 'invalid_image_url' });
        await expect(rejection({ messages: [user([pdf(bad)])] })).resolves.toMatchObject({ param: 'messages[0].content[0]' });
      }
      await expect(bodyOf({ messages: [user([image('data:image/png;base64,iVBORw0KGgo'), pdf('JVBERi0xLjQK')])] })).resolves.toBeDefined();
    });

    it('refuses a tool message answering no earlier tool call, naming its tool_call_id (Anthropic would refuse an unexpected tool_use_id)', async () => {
      await expect(rejection({ messages: [user('hi'), { role: 'tool', tool_call_id: 'nope', content: 'x' }] })).resolves.toMatchObject({ kind: 'bad_request', param: 'messages[1].tool_call_id', code: 'invalid_value' });
      await expect(rejection({ messages: [user('hi'), { role: 'tool', tool_call_id: '__proto__', content: 'x' }], tools: [weatherTool] })).resolves.toMatchObject({ param: 'messages[1].tool_call_id' });
      const answeredLater = [user('hi'), { role: 'tool', tool_call_id: 'toolu_1', content: 'x' }, { role: 'assistant', content: null, tool_calls: [call('toolu_1', 'Oslo')] }];
      await expect(rejection({ messages: answeredLater, tools: [weatherTool] })).resolves.toMatchObject({ param: 'messages[1].tool_call_id' });
    });

    it('refuses an earlier tool call without a function name, naming it', async () => {
      const nameless = { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: '', arguments: '{}' } }] };
      await expect(rejection({ messages: [user('hi'), nameless, { role: 'tool', tool_call_id: 'c1', content: 'x' }] })).resolves.toMatchObject({
        kind: 'bad_request',
        param: 'messages[1].tool_calls[0].function.name',
      });
    });
  });

  describe('tools', () => {
    it.each([
      ['auto', { type: 'auto' }],
      ['none', { type: 'none' }],
      ['required', { type: 'any' }],
      [{ type: 'function', function: { name: 'get_weather' } }, { type: 'tool', name: 'get_weather' }],
    ])('maps tool_choice %j to %j', async (toolChoice, expected) => {
      const body = await bodyOf({ tools: [weatherTool], tool_choice: toolChoice });
      expect(body.tool_choice).toEqual(expected);
      expect(body.tools).toEqual([{ name: 'get_weather', input_schema: weatherTool.function.parameters }]);
    });

    it('sends no tool_choice by default and disables parallel use when parallel_tool_calls is false', async () => {
      expect((await bodyOf({ tools: [weatherTool] })).tool_choice).toBeUndefined();
      expect((await bodyOf({ tools: [weatherTool], parallel_tool_calls: false })).tool_choice).toEqual({ type: 'auto', disable_parallel_tool_use: true });
      expect((await bodyOf({ tools: [weatherTool], parallel_tool_calls: false, tool_choice: 'required' })).tool_choice).toEqual({ type: 'any', disable_parallel_tool_use: true });
      expect((await bodyOf({ tools: [weatherTool], parallel_tool_calls: false, tool_choice: 'none' })).tool_choice).toEqual({ type: 'none' });
      expect((await bodyOf({ tool_choice: 'auto' })).tool_choice).toBeUndefined();
    });

    it('declares stub tools, not to be called, for a tool history sent without tools', async () => {
      const history = [
        user('Weather in Paris and the time?'),
        { role: 'assistant', content: null, tool_calls: [call('call_1', 'Paris'), { id: 'call_2', type: 'function', function: { name: 'clock.now', arguments: '' } }, call('call_3', 'Lyon')] },
        { role: 'tool', tool_call_id: 'call_1', content: '21°C' },
        { role: 'tool', tool_call_id: 'call_2', content: '12:00' },
        { role: 'tool', tool_call_id: 'call_3', content: '19°C' },
        user('Summarise the conversation.'),
      ];
      const body = await bodyOf({ messages: history });
      const stub = (name: string) => ({ name, description: expect.stringContaining('do not call it') as unknown, input_schema: { type: 'object' } });
      expect(body.tools).toEqual([stub('get_weather'), stub('clock_now')]);
      expect(body.tool_choice).toEqual({ type: 'none' });
      expect((await bodyOf({ messages: [user('Hi')] })).tools).toBeUndefined();
      expect((await bodyOf({ messages: history, tools: [weatherTool] })).tools).toEqual([{ name: 'get_weather', input_schema: weatherTool.function.parameters }]);
    });

    it('refuses tool_choice required without tools, which no answer could honour', async () => {
      const history = [user('Weather?'), { role: 'assistant', content: null, tool_calls: [call('call_1', 'Paris')] }, { role: 'tool', tool_call_id: 'call_1', content: '21°C' }];
      await expect(rejection({ tool_choice: 'required' })).resolves.toMatchObject({ kind: 'bad_request', param: 'tool_choice' });
      await expect(rejection({ messages: history, tool_choice: 'required' })).resolves.toMatchObject({ kind: 'bad_request', param: 'tool_choice' });
      await expect(rejection({ tool_choice: 'required', response_format: { type: 'json_object' } })).resolves.toMatchObject({ kind: 'bad_request', param: 'tool_choice' });
    });

    it('refuses a named tool that is not among the tools, other tool types and other tool_choice shapes', async () => {
      await expect(rejection({ tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'nope' } } })).resolves.toMatchObject({ param: 'tool_choice' });
      await expect(rejection({ tools: [{ type: 'custom', custom: { name: 'grammar' } }] })).resolves.toMatchObject({ param: 'tools[0]' });
      await expect(rejection({ tools: [weatherTool], tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [] } } })).resolves.toMatchObject({ param: 'tool_choice' });
    });

    it.each(['get weather ✨', 'a.b', 'x'.repeat(129)])('refuses the tool name %j, outside [a-zA-Z0-9_-]{1,128}, naming tools[i].function.name', async (name) => {
      const tools = [weatherTool, { type: 'function', function: { name, parameters: { type: 'object' } } }];
      await expect(rejection({ tools })).resolves.toMatchObject({ kind: 'bad_request', param: 'tools[1].function.name', code: 'invalid_value' });
      await expect(bodyOf({ tools: [{ type: 'function', function: { name: 'x'.repeat(128) } }] })).resolves.toBeDefined();
    });
  });

  describe('response_format', () => {
    it('forces json_object answers through the answer tool', async () => {
      const t = await translate({ response_format: { type: 'json_object' } });
      expect(t.responseTool).toBe(JSON_RESPONSE_TOOL);
      expect(t.body.tools).toEqual([{ name: JSON_RESPONSE_TOOL, description: expect.any(String), input_schema: { type: 'object', additionalProperties: true } }]);
      expect(t.body.tool_choice).toEqual({ type: 'tool', name: JSON_RESPONSE_TOOL, disable_parallel_tool_use: true });
    });

    it('lets the model choose between client tools and the answer tool when tool_choice is auto', async () => {
      const t = await translate({ tools: [weatherTool], response_format: { type: 'json_object' }, parallel_tool_calls: false });
      expect(t.body.tools?.map((x) => x.name)).toEqual(['get_weather', JSON_RESPONSE_TOOL]);
      expect(t.body.tool_choice).toEqual({ type: 'any', disable_parallel_tool_use: true });
    });

    it('leaves the format unenforced when a client tool call is required anyway', async () => {
      const t = await translate({ tools: [weatherTool], tool_choice: 'required', response_format: { type: 'json_object' } });
      expect(t.responseTool).toBeUndefined();
      expect(t.body.tool_choice).toEqual({ type: 'any' });
    });

    it('sends nothing for text and refuses non-object schemas and a client tool named like the answer tool', async () => {
      expect((await translate({ response_format: { type: 'text' } })).body.tools).toBeUndefined();
      await expect(rejection({ response_format: { type: 'json_schema', json_schema: { name: 'list', schema: { type: 'array' } } } })).resolves.toMatchObject({
        param: 'response_format.json_schema.schema',
      });
      await expect(rejection({ tools: [{ type: 'function', function: { name: JSON_RESPONSE_TOOL } }], response_format: { type: 'json_object' } })).resolves.toMatchObject({ param: 'tools' });
    });
  });

  describe('parameters', () => {
    it('clamps temperature to Anthropic’s maximum of 1 and passes lower values through', async () => {
      expect((await bodyOf({ temperature: 2 })).temperature).toBe(1);
      expect((await bodyOf({ temperature: 0.3 })).temperature).toBe(0.3);
      expect((await bodyOf({ temperature: 0 })).temperature).toBe(0);
    });

    it('takes max_completion_tokens over max_tokens over the configured default', async () => {
      expect((await bodyOf({ max_tokens: 50, max_completion_tokens: 70 })).max_tokens).toBe(70);
      expect((await bodyOf({ max_tokens: 50 })).max_tokens).toBe(50);
      expect((await bodyOf({})).max_tokens).toBe(1024);
    });

    it('translates user, top_k, service_tier and stop, and drops seed, penalties, metadata and store', async () => {
      const body = await bodyOf({
        user: 'u-1',
        top_k: 40,
        service_tier: 'default',
        stop: ['STOP', 'END'],
        seed: 3,
        presence_penalty: 1,
        frequency_penalty: -1,
        metadata: { team: 'a' },
        store: true,
        prediction: { type: 'content', content: 'x' },
        n: 1,
        logprobs: false,
        modalities: ['text'],
      });
      expect(body).toEqual({
        model: 'claude-sonnet-4-5',
        max_tokens: 1024,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
        metadata: { user_id: createHash('sha256').update('u-1').digest('hex') },
        top_k: 40,
        service_tier: 'standard_only',
        stop_sequences: ['STOP', 'END'],
      });
      expect((await bodyOf({ service_tier: 'auto' })).service_tier).toBe('auto');
      expect((await bodyOf({ service_tier: 'flex' })).service_tier).toBeUndefined();
    });

    it('sends user as a SHA-256 hex digest, so an email address or a long id is never refused', async () => {
      const email = (await bodyOf({ user: 'ada@example.com' })).metadata?.user_id;
      expect(email).toMatch(/^[0-9a-f]{64}$/);
      expect(email).not.toContain('@');
      expect((await bodyOf({ user: 'ada@example.com' })).metadata?.user_id).toBe(email);
      expect((await bodyOf({ user: 'x'.repeat(1000) })).metadata?.user_id).toHaveLength(64);
      expect((await bodyOf({ user: '' })).metadata).toBeUndefined();
    });

    it('sends safety_identifier (the replacement for user) as metadata.user_id, in preference to user', async () => {
      const digest = (id: string): string => createHash('sha256').update(id).digest('hex');
      expect((await bodyOf({ safety_identifier: 'hash-7' })).metadata).toEqual({ user_id: digest('hash-7') });
      expect((await bodyOf({ user: 'u-1', safety_identifier: 'hash-7' })).metadata).toEqual({ user_id: digest('hash-7') });
      expect((await bodyOf({ user: 'u-1', safety_identifier: '' })).metadata).toEqual({ user_id: digest('u-1') });
      expect((await bodyOf({ user: 'u-1', safety_identifier: null })).metadata).toEqual({ user_id: digest('u-1') });
      expect((await bodyOf({ safety_identifier: 7 })).metadata).toBeUndefined();
    });

    it('leaves out whitespace-only stop sequences, which Anthropic refuses', async () => {
      expect((await bodyOf({ stop: ['\n', 'END', ' \t'] })).stop_sequences).toEqual(['END']);
      expect((await bodyOf({ stop: '\n' })).stop_sequences).toBeUndefined();
    });

    it.each([
      [{ n: 2 }, 'n'],
      [{ logprobs: true }, 'logprobs'],
      [{ top_logprobs: 3 }, 'top_logprobs'],
      [{ logit_bias: { '42': 10 } }, 'logit_bias'],
      [{ modalities: ['text', 'audio'] }, 'modalities'],
      [{ audio: { voice: 'alloy', format: 'mp3' } }, 'audio'],
      [{ web_search_options: {} }, 'web_search_options'],
      [{ functions: [{ name: 'get_weather', parameters: { type: 'object' } }] }, 'functions'],
      [{ function_call: 'auto' }, 'function_call'],
    ])('refuses %j with a 400 naming %s', async (params, param) => {
      await expect(rejection(params)).resolves.toMatchObject({ kind: 'bad_request', param, retryable: false });
    });
  });

  describe('extended thinking', () => {
    const thought = { type: 'thinking', thinking: 'Paris first.', signature: 'c2ln' };
    const toolLoop = (assistantExtra: Record<string, unknown>) => ({
      tools: [weatherTool],
      messages: [user('Weather in Paris?'), { role: 'assistant', content: null, tool_calls: [call('call_1', 'Paris')], ...assistantExtra }, { role: 'tool', tool_call_id: 'call_1', content: '18C' }],
    });

    it('turns reasoning_effort into adaptive thinking with its effort (none leaves thinking off)', async () => {
      expect(await bodyOf({ reasoning_effort: 'medium' })).toMatchObject({ thinking: { type: 'adaptive' }, output_config: { effort: 'medium' }, max_tokens: 1024 });
      expect(await bodyOf({ reasoning_effort: 'minimal' })).toMatchObject({ thinking: { type: 'adaptive' }, output_config: { effort: 'low' } });
      const none = await bodyOf({ reasoning_effort: 'none' });
      expect(none.thinking).toBeUndefined();
      expect(none.output_config).toBeUndefined();
      await expect(rejection({ reasoning_effort: 'extreme' })).resolves.toMatchObject({ kind: 'bad_request', param: 'reasoning_effort' });
    });

    it('budget style: a budget on top of the default limit, or within half the limit the client set, or none when the limit is too small', async () => {
      expect(await translate({ reasoning_effort: 'high' }, 'budget')).toMatchObject({ body: { thinking: { type: 'enabled', budget_tokens: 24576 }, max_tokens: 1024 + 24576 } });
      const within = (await translate({ reasoning_effort: 'high', max_completion_tokens: 4000 }, 'budget')).body;
      // Thinking takes at most half of a limit, so the answer keeps room (a hard budget's ceiling is such a limit).
      expect(within).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 2000 }, max_tokens: 4000 });
      expect((await translate({ reasoning_effort: 'medium', max_tokens: 1500 }, 'budget')).body).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 1024 }, max_tokens: 1500 });
      expect(within.output_config).toBeUndefined();
      const tooSmall = (await translate({ reasoning_effort: 'low', max_tokens: 1000, temperature: 0.3 }, 'budget')).body;
      expect(tooSmall.thinking).toBeUndefined();
      expect(tooSmall).toMatchObject({ max_tokens: 1000, temperature: 0.3 });
    });

    it('sends a thinking object the client gave itself, which wins over reasoning_effort, and refuses a malformed one', async () => {
      expect(await bodyOf({ thinking: { type: 'enabled', budget_tokens: 2048 } })).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 2048 }, max_tokens: 1024 + 2048 });
      expect(await bodyOf({ thinking: { type: 'enabled', budget_tokens: 2048 }, max_tokens: 9000 })).toMatchObject({ thinking: { budget_tokens: 2048 }, max_tokens: 9000 });
      // A budget that does not fit under the limit (a hard budget's ceiling, say) is cut to half of it, or thinking is off.
      expect(await bodyOf({ thinking: { type: 'enabled', budget_tokens: 8000 }, max_tokens: 4096 })).toMatchObject({ thinking: { budget_tokens: 2048 }, max_tokens: 4096 });
      expect((await bodyOf({ thinking: { type: 'enabled', budget_tokens: 8000 }, max_tokens: 1000 })).thinking).toBeUndefined();
      expect(await bodyOf({ thinking: { type: 'adaptive' }, reasoning_effort: 'low' })).toMatchObject({ thinking: { type: 'adaptive' }, output_config: { effort: 'low' } });
      expect((await bodyOf({ thinking: { type: 'disabled' }, reasoning_effort: 'high' })).thinking).toBeUndefined();
      await expect(rejection({ thinking: { type: 'enabled' } })).resolves.toMatchObject({ kind: 'bad_request', param: 'thinking' });
      await expect(rejection({ thinking: { type: 'on', budget_tokens: 2048 } })).resolves.toMatchObject({ kind: 'bad_request', param: 'thinking' });
    });

    it('drops the sampling parameters Anthropic refuses with thinking on, and keeps them with it off', async () => {
      const on = await bodyOf({ reasoning_effort: 'high', temperature: 0.2, top_p: 0.9, top_k: 40 });
      expect(on.temperature).toBeUndefined();
      expect(on.top_p).toBeUndefined();
      expect(on.top_k).toBeUndefined();
      // Claude refuses the two together: temperature 1, the only one thinking takes, is Claude's default and goes.
      const kept = await bodyOf({ reasoning_effort: 'high', temperature: 1, top_p: 0.97 });
      expect(kept.top_p).toBe(0.97);
      expect(kept.temperature).toBeUndefined();
      expect(await bodyOf({ temperature: 0.2, top_k: 40 })).toMatchObject({ temperature: 0.2, top_k: 40 });
    });

    it('never sends temperature and top_p together, which Claude from Opus 4.1 on refuses: top_p goes, unless temperature is 1 (the default)', async () => {
      const both = await bodyOf({ temperature: 0.2, top_p: 0.9 });
      expect(both.temperature).toBe(0.2);
      expect(both.top_p).toBeUndefined();
      const atDefault = await bodyOf({ temperature: 1, top_p: 0.9 });
      expect(atDefault.temperature).toBeUndefined();
      expect(atDefault.top_p).toBe(0.9);
      // Clamped to 1 first: the default, so top_p stays.
      expect(await bodyOf({ temperature: 1.6, top_p: 0.8 })).toMatchObject({ top_p: 0.8 });
      expect(await bodyOf({ top_p: 0.9 })).toMatchObject({ top_p: 0.9 });
      expect(await bodyOf({ temperature: 0 })).toMatchObject({ temperature: 0 });
    });

    it('refuses thinking with a tool_choice that forces a call, and with a JSON answer (which is forced through a tool)', async () => {
      await expect(rejection({ reasoning_effort: 'high', tools: [weatherTool], tool_choice: 'required' })).resolves.toMatchObject({ kind: 'bad_request', param: 'reasoning_effort' });
      await expect(rejection({ thinking: { type: 'adaptive' }, tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'get_weather' } } })).resolves.toMatchObject({ param: 'thinking' });
      const json = await rejection({ reasoning_effort: 'low', response_format: { type: 'json_object' } });
      expect(json).toMatchObject({ kind: 'bad_request', param: 'reasoning_effort' });
      expect(json.message).toContain('response_format');
      expect((await bodyOf({ reasoning_effort: 'high', tools: [weatherTool], tool_choice: 'auto' })).thinking).toEqual({ type: 'adaptive' });
    });

    it('hands thinking_blocks back first in their assistant turn, so a tool turn continues with its thinking', async () => {
      const redacted = { type: 'redacted_thinking', data: 'b3BhcXVl' };
      const body = await bodyOf({ reasoning_effort: 'high', ...toolLoop({ reasoning_content: 'Paris first.', thinking_blocks: [thought, redacted] }) });
      expect(body.thinking).toEqual({ type: 'adaptive' });
      expect(body.messages[1]).toEqual({
        role: 'assistant',
        content: [thought, redacted, { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }],
      });
    });

    it('keeps thinking through a tool loop of several steps: the turn that opened it carries the thinking, later steps need none', async () => {
      const loop = [
        user('Weather in Paris and Oslo?'),
        { role: 'assistant', content: null, tool_calls: [call('call_1', 'Paris')], thinking_blocks: [thought] },
        { role: 'tool', tool_call_id: 'call_1', content: '18C' },
        { role: 'assistant', content: null, tool_calls: [call('call_2', 'Oslo')] },
        { role: 'tool', tool_call_id: 'call_2', content: '4C' },
      ];
      const body = await bodyOf({ reasoning_effort: 'high', tools: [weatherTool], messages: loop });
      expect(body.thinking).toEqual({ type: 'adaptive' });
      expect(body.messages.map((m) => m.content.map((b) => b.type))).toEqual([['text'], ['thinking', 'tool_use'], ['tool_result'], ['tool_use'], ['tool_result']]);
      // A new question starts a new turn: the loop it opens needs thinking of its own.
      const next = [...loop, { role: 'assistant', content: 'Sunny, then cold.' }, user('And Rome?'), { role: 'assistant', content: null, tool_calls: [call('call_3', 'Rome')] }, { role: 'tool', tool_call_id: 'call_3', content: '22C' }];
      expect((await bodyOf({ reasoning_effort: 'high', tools: [weatherTool], messages: next })).thinking).toBeUndefined();
    });

    it('puts thinking first when assistant messages are joined into one turn', async () => {
      const body = await bodyOf({
        reasoning_effort: 'high',
        tools: [weatherTool],
        messages: [
          user('Weather in Paris?'),
          { role: 'assistant', content: 'Let me check.' },
          { role: 'assistant', content: null, tool_calls: [call('call_1', 'Paris')], thinking_blocks: [thought] },
          { role: 'tool', tool_call_id: 'call_1', content: '18C' },
        ],
      });
      expect(body.thinking).toEqual({ type: 'adaptive' });
      expect(body.messages[1]?.content.map((b) => b.type)).toEqual(['thinking', 'text', 'tool_use']);
    });

    it('leaves thinking off for a tool turn whose thinking was not handed back (Anthropic would refuse it), and drops blocks when thinking is off', async () => {
      const bare = await bodyOf({ reasoning_effort: 'high', temperature: 0.5, ...toolLoop({}) });
      expect(bare.thinking).toBeUndefined();
      expect(bare.output_config).toBeUndefined();
      expect(bare.temperature).toBe(0.5);
      const off = await bodyOf(toolLoop({ thinking_blocks: [thought] }));
      expect(off.messages[1]?.content).toEqual([{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }]);
    });

    it('leaves thinking off for a final assistant message (a prefill) that does not start with its thinking, which Anthropic refuses with thinking on', async () => {
      const prefill = [user('Name a colour.'), { role: 'assistant', content: 'Sure, here is' }];
      for (const style of ['adaptive', 'budget'] as const) {
        const body = (await translate({ reasoning_effort: 'high', temperature: 0.5, messages: prefill }, style)).body;
        expect(body.thinking).toBeUndefined();
        expect(body.output_config).toBeUndefined();
        // The limit stays the client's (here the default): no room is added for thinking that is not sent.
        expect(body).toMatchObject({ max_tokens: 1024, temperature: 0.5 });
        expect(body.messages[1]).toEqual({ role: 'assistant', content: [{ type: 'text', text: 'Sure, here is' }] });
      }
      const own = await bodyOf({ thinking: { type: 'enabled', budget_tokens: 2048 }, messages: prefill });
      expect(own.thinking).toBeUndefined();
      expect(own.max_tokens).toBe(1024);
      // A prefill that starts with the thinking it was given (an answer cut short, continued) keeps thinking on.
      const continued = await bodyOf({ reasoning_effort: 'high', messages: [user('Name a colour.'), { role: 'assistant', content: 'Sure, here is', thinking_blocks: [thought] }] });
      expect(continued.thinking).toEqual({ type: 'adaptive' });
      expect(continued.messages[1]?.content).toEqual([thought, { type: 'text', text: 'Sure, here is' }]);
    });

    it("refuses a reasoning_effort outside the levels beside the client's own thinking object too, sending nothing on", async () => {
      for (const effort of ['bogus', 'constructor', '__proto__', 'toString']) {
        for (const thinking of [{ type: 'adaptive' }, { type: 'enabled', budget_tokens: 2048 }, { type: 'disabled' }]) {
          await expect(rejection({ thinking, reasoning_effort: effort })).resolves.toMatchObject({ kind: 'bad_request', param: 'reasoning_effort', code: 'invalid_value' });
        }
      }
    });

    it('refuses thinking_blocks that are not blocks an answer carried', async () => {
      await expect(rejection({ reasoning_effort: 'high', ...toolLoop({ thinking_blocks: [{ type: 'thinking', thinking: 'x' }] }) })).resolves.toMatchObject({
        kind: 'bad_request',
        param: 'messages[1].thinking_blocks',
      });
      await expect(rejection(toolLoop({ thinking_blocks: 'hmm' }))).resolves.toMatchObject({ param: 'messages[1].thinking_blocks' });
    });
  });
});

describe('image URLs for an endpoint that takes base64 sources only (Claude on Vertex AI)', () => {
  const image = { type: 'image_url', image_url: { url: 'https://images.example.com/cat.png' } };
  it('passes an https URL on as a url source by default, and fetches it through the image loader with inlineImageUrls', async () => {
    const passed = await toAnthropicRequest(parseChatRequest({ model: 'claude', messages: [user([image])] }), 'claude-sonnet-4-5', { defaultMaxTokens: 1024, thinking: 'adaptive', loadImage });
    expect(passed.body.messages[0]?.content).toEqual([{ type: 'image', source: { type: 'url', url: 'https://images.example.com/cat.png' } }]);

    const fetched: string[] = [];
    const inlined = await toAnthropicRequest(parseChatRequest({ model: 'claude', messages: [user([image])] }), 'claude-sonnet-4-5', {
      defaultMaxTokens: 1024,
      thinking: 'adaptive',
      inlineImageUrls: true,
      loadImage: async (url, param) => {
        fetched.push(`${param} ${url}`);
        return { mediaType: 'image/png', base64: 'iVBORw0KGgo=' };
      },
    });
    expect(fetched).toEqual(['messages[0].content[0] https://images.example.com/cat.png']);
    expect(inlined.body.messages[0]?.content).toEqual([{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }]);
  });
});
