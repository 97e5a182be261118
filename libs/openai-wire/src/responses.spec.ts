import OpenAI from 'openai';
import type { chatv1 } from '@openrouter/contracts';
import { parseChatRequest } from './chat-request';
import { errorOf } from './gateway-error.testing';
import { conversationIdOf, decodeReasoning, encodeReasoning, inputItemView, pendingResponse, responseView, ResponsesStream, responsesToChatBody, storedInputItems, toResponse, toResponsesParam, type ResponsesStreamEvent } from './responses';

const usage = (p: number, c: number, extra: Partial<chatv1.Usage> = {}): chatv1.Usage => ({
  promptTokens: p,
  completionTokens: c,
  totalTokens: p + c,
  cachedReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  estimated: false,
  ...extra,
});

const weatherTool = { type: 'function', name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: true };

describe('responsesToChatBody', () => {
  it('turns instructions and a string input into a system and a user message', () => {
    const chat = responsesToChatBody({ model: 'm', instructions: 'Be brief.', input: 'Hello' });
    expect(chat).toEqual({ model: 'm', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }] });
    expect(parseChatRequest(chat).messages).toHaveLength(2);
  });

  it('maps every supported parameter to its chat equivalent', () => {
    const chat = responsesToChatBody({
      model: 'm',
      input: 'Hi',
      tools: [weatherTool, { type: 'function', name: 'noop', parameters: null, strict: null, description: null }],
      tool_choice: { type: 'function', name: 'get_weather' },
      parallel_tool_calls: false,
      temperature: 0.3,
      top_p: 0.9,
      max_output_tokens: 64,
      text: { format: { type: 'json_schema', name: 'city', schema: { type: 'object' }, strict: true, description: 'A city' }, verbosity: 'low' },
      reasoning: { effort: 'low', summary: 'auto' },
      safety_identifier: 'user-1',
      metadata: { k: 'v' },
      stream: true,
      stream_options: { include_obfuscation: false },
      top_logprobs: 2,
      service_tier: 'flex',
      store: true,
      background: false,
      include: ['message.output_text.logprobs'],
      truncation: 'disabled',
      max_tool_calls: 3,
      prompt_cache_key: 'cache-1',
      prompt_cache_retention: '24h',
      previous_response_id: null,
      models: ['fallback'],
      route: { strategy: 'cost' },
    });
    expect(chat).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: 'Hi' }],
      tools: [
        { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: weatherTool.parameters, strict: true } },
        { type: 'function', function: { name: 'noop' } },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      temperature: 0.3,
      top_p: 0.9,
      max_completion_tokens: 64,
      response_format: { type: 'json_schema', json_schema: { name: 'city', schema: { type: 'object' }, description: 'A city', strict: true } },
      verbosity: 'low',
      reasoning_effort: 'low',
      safety_identifier: 'user-1',
      stream: true,
      logprobs: true,
      top_logprobs: 2,
      service_tier: 'flex',
      prompt_cache_key: 'cache-1',
      prompt_cache_retention: '24h',
      models: ['fallback'],
      route: { strategy: 'cost' },
    });
    // `store` (whether the gateway keeps the response) and `metadata` are not passed on to the provider (see docs/responses-api.md).
    expect(chat).not.toHaveProperty('store');
    expect(chat).not.toHaveProperty('metadata');
    const parsed = parseChatRequest(chat);
    expect(parsed).toMatchObject({ maxCompletionTokens: 64, reasoningEffort: 'low', stream: true });
    expect(JSON.parse(parsed.extraJson ?? '{}')).toMatchObject({ safety_identifier: 'user-1' });
  });

  it.each([
    ['auto', 'auto'],
    ['none', 'none'],
    ['required', 'required'],
  ])('passes tool_choice %s as it is', (choice, expected) => {
    expect(responsesToChatBody({ model: 'm', input: 'x', tools: [weatherTool], tool_choice: choice })['tool_choice']).toBe(expected);
  });

  describe("function tools are strict by default, as in OpenAI's Responses API", () => {
    const loose = { type: 'object', properties: { city: { type: 'string' }, units: { type: 'string', enum: ['c', 'f'] } }, required: ['city'] };
    const chatTool = (tool: Record<string, unknown>): unknown => (responsesToChatBody({ model: 'm', input: 'x', tools: [tool] })['tools'] as unknown[])[0];

    it.each([
      ['left out', {}],
      ['null', { strict: null }],
    ])('makes a tool whose strict is %s strict, its parameters normalized into strict mode as OpenAI does', (_case, strict) => {
      const tool = chatTool({ type: 'function', name: 'get_weather', parameters: loose, ...strict });
      // Every property required (an optional one becomes mandatory, not nullable), no other properties.
      expect(tool).toEqual({ type: 'function', function: { name: 'get_weather', parameters: { ...loose, required: ['city', 'units'], additionalProperties: false }, strict: true } });
      expect(parseChatRequest(responsesToChatBody({ model: 'm', input: 'x', tools: [{ type: 'function', name: 'get_weather', parameters: loose }] })).tools[0]?.function?.strict).toBe(true);
      // The client's schema is not changed in place.
      expect(loose).not.toHaveProperty('additionalProperties');
    });

    it('keeps an explicit strict, false or true, and the parameters as sent', () => {
      expect(chatTool({ type: 'function', name: 'get_weather', parameters: loose, strict: false })).toEqual({ type: 'function', function: { name: 'get_weather', parameters: loose, strict: false } });
      expect(chatTool({ type: 'function', name: 'get_weather', parameters: loose, strict: true })).toEqual({ type: 'function', function: { name: 'get_weather', parameters: loose, strict: true } });
    });

    it.each([
      ['no parameters', undefined],
      ['an open object', { type: 'object', properties: { tags: { type: 'object', additionalProperties: { type: 'string' } } } }],
      ['a keyword strict mode does not take', { type: 'object', properties: { id: { oneOf: [{ type: 'string' }, { type: 'integer' }] } } }],
      ['a property of any type', { type: 'object', properties: { value: { description: 'any' } } }],
      ['an array of anything', { type: 'object', properties: { values: { type: 'array', items: {} } } }],
      ['a default', { type: 'object', properties: { units: { type: 'string', default: 'c' } } }],
      ['a $ref beside other keywords', { type: 'object', properties: { home: { $ref: '#/$defs/place', description: 'home' } }, $defs: { place: { type: 'string' } } }],
    ])('leaves a tool with %s non-strict, as OpenAI falls back for a schema it cannot make strict', (_case, parameters) => {
      const tool = { type: 'function', name: 'lookup', ...(parameters ? { parameters } : {}) };
      expect(chatTool(tool)).toEqual({ type: 'function', function: { name: 'lookup', ...(parameters ? { parameters } : {}) } });
    });
  });

  it('maps json_object and leaves the default text format out', () => {
    expect(responsesToChatBody({ model: 'm', input: 'x', text: { format: { type: 'json_object' } } })['response_format']).toEqual({ type: 'json_object' });
    expect(responsesToChatBody({ model: 'm', input: 'x', text: { format: { type: 'text' } } })).not.toHaveProperty('response_format');
  });

  it('carries user and safety_identifier as chat has them, each under its own name', () => {
    expect(responsesToChatBody({ model: 'm', input: 'x', user: 'u', safety_identifier: 's' })).toMatchObject({ user: 'u', safety_identifier: 's' });
    expect(responsesToChatBody({ model: 'm', input: 'x', safety_identifier: 's' })).not.toHaveProperty('user');
  });

  it('translates a conversation of messages, content parts, function calls and their outputs', () => {
    const chat = responsesToChatBody({
      model: 'm',
      instructions: 'You help.',
      input: [
        { role: 'developer', content: 'Use metric units.' },
        {
          type: 'message',
          role: 'user',
          content: [
            { type: 'input_text', text: 'Look:' },
            { type: 'input_image', image_url: 'https://example.com/a.png', detail: 'low' },
            { type: 'input_image', image_url: 'data:image/png;base64,AAAA' },
            { type: 'input_file', file_data: 'data:application/pdf;base64,JVBE', filename: 'a.pdf' },
            { type: 'input_audio', input_audio: { data: 'UklG', format: 'wav' } },
          ],
        },
        // An earlier answer replayed as the API returned it (ids, statuses, annotations and all).
        { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'thinking' }] },
        { type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Checking ', annotations: [] }, { type: 'refusal', refusal: 'partly.' }] },
        { type: 'function_call', id: 'fc_1', call_id: 'call_a', name: 'get_weather', arguments: '{"city":"Oslo"}', status: 'completed' },
        { type: 'reasoning', id: 'rs_2', summary: [] },
        { type: 'function_call', call_id: 'call_b', name: 'get_weather', arguments: '{"city":"Bergen"}' },
        { type: 'function_call_output', call_id: 'call_a', output: '{"celsius":4}' },
        { type: 'function_call_output', call_id: 'call_b', output: [{ type: 'input_text', text: '{"celsius":' }, { type: 'input_text', text: '7}' }] },
        { type: 'function_call', call_id: 'call_c', name: 'get_weather', arguments: '{}' },
        { type: 'function_call_output', call_id: 'call_c', output: 'none' },
        { role: 'assistant', content: 'Oslo 4, Bergen 7.' },
        { role: 'user', content: [{ type: 'input_text', text: 'Thanks' }] },
      ],
    });
    expect(chat['messages']).toEqual([
      { role: 'system', content: 'You help.' },
      { role: 'developer', content: 'Use metric units.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Look:' },
          { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBE', filename: 'a.pdf' } },
          { type: 'input_audio', input_audio: { data: 'UklG', format: 'wav' } },
        ],
      },
      {
        role: 'assistant',
        content: 'Checking partly.',
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
          { id: 'call_b', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Bergen"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a', content: '{"celsius":4}' },
      { role: 'tool', tool_call_id: 'call_b', content: [{ type: 'text', text: '{"celsius":' }, { type: 'text', text: '7}' }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_c', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'call_c', content: 'none' },
      { role: 'assistant', content: 'Oslo 4, Bergen 7.' },
      { role: 'user', content: [{ type: 'text', text: 'Thanks' }] },
    ]);
    // The chat path takes the result as it is.
    expect(parseChatRequest(chat).messages.map((m) => m.role)).toEqual(['system', 'developer', 'user', 'assistant', 'tool', 'tool', 'assistant', 'tool', 'assistant', 'user']);
  });

  it.each([
    ['previous_response_id', { previous_response_id: 'resp_1' }, 'responses are not stored on this gateway'],
    ['conversation', { conversation: 'conv_1' }, 'conversations are not stored on this gateway'],
    ['conversation', { conversation: { id: 'conv_1' } }, 'conversations are not stored on this gateway'],
    ['background', { background: true }, 'background'],
    ['prompt', { prompt: { id: 'pmpt_1' } }, 'stored prompt templates'],
    ['include', { include: ['reasoning.encrypted_content', 'file_search_call.results'] }, "(asked for 'file_search_call.results')"],
    ['include', { include: ['message.output_text.logprobs', 'message.input_image.image_url'] }, "(asked for 'message.input_image.image_url')"],
    ['truncation', { truncation: 'auto' }, 'never truncated'],
    ['context_management', { context_management: [{ type: 'compaction' }] }, 'compaction'],
    ['moderation', { moderation: { model: 'omni-moderation-latest' } }, 'moderation'],
    ['prompt_cache_options', { prompt_cache_options: { mode: 'explicit' } }, 'prompt_cache_key'],
    ['tools[1].type', { tools: [weatherTool, { type: 'web_search' }] }, "'web_search'"],
    ['tools[0].type', { tools: [{ type: 'web_search_preview' }] }, 'function tools only'],
    ['tools[0].type', { tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] }, "'file_search'"],
    ['tools[0].type', { tools: [{ type: 'computer_use_preview', display_width: 1, display_height: 1, environment: 'linux' }] }, "'computer_use_preview'"],
    ['tools[0].type', { tools: [{ type: 'code_interpreter', container: { type: 'auto' } }] }, "'code_interpreter'"],
    ['tools[0].type', { tools: [{ type: 'mcp', server_label: 's', server_url: 'https://mcp.example' }] }, "'mcp'"],
    ['tools[0].type', { tools: [{ type: 'image_generation' }] }, "'image_generation'"],
    ['tools[0].type', { tools: [{ type: 'custom', name: 'grammar' }] }, "'custom'"],
    ['tool_choice', { tools: [weatherTool], tool_choice: { type: 'web_search_preview' } }, "'web_search_preview'"],
    ['tool_choice', { tools: [weatherTool], tool_choice: { type: 'allowed_tools', mode: 'auto', tools: [] } }, "'allowed_tools'"],
    ['input[1]', { input: [{ role: 'user', content: 'x' }, { type: 'item_reference', id: 'msg_1' }] }, 'item references are not resolved'],
    ['input[0].type', { input: [{ type: 'web_search_call', id: 'ws_1', status: 'completed' }] }, "'web_search_call'"],
    ['input[0].type', { input: [{ type: 'computer_call_output', call_id: 'c', output: {} }] }, "'computer_call_output'"],
    ['input[0].content[0].file_id', { input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1', detail: 'auto' }] }] }, 'image_url'],
    ['input[0].content[0].file_id', { input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file-1' }] }] }, 'file_data'],
    ['input[0].content[0].file_url', { input: [{ role: 'user', content: [{ type: 'input_file', file_url: 'https://example.com/a.pdf' }] }] }, 'file_data'],
    ['input[0].output[0].type', { input: [{ type: 'function_call_output', call_id: 'c', output: [{ type: 'input_image', image_url: 'https://example.com/a.png' }] }] }, 'as text'],
  ])('refuses %s with unsupported_parameter (%j)', (param, extra, words) => {
    const error = errorOf(() => responsesToChatBody({ model: 'm', input: 'x', ...extra }));
    expect(error).toMatchObject({ kind: 'bad_request', param, code: 'unsupported_parameter' });
    expect(error.message).toContain('not supported by this gateway');
    expect(error.message).toContain(words);
  });

  it.each([
    ['an unknown parameter', { model: 'm', input: 'x', frequency_penalty: 1 }, 'frequency_penalty', 'unknown_parameter'],
    ['a chat parameter', { model: 'm', input: 'x', messages: [] }, 'messages', 'unknown_parameter'],
    ['no model', { input: 'x' }, 'model', 'missing_required_parameter'],
    ['no input and no instructions', { model: 'm' }, 'input', 'missing_required_parameter'],
    ['an empty input list', { model: 'm', input: [] }, 'input', 'missing_required_parameter'],
    ['input of the wrong type', { model: 'm', input: 5 }, 'input', 'invalid_type'],
    ['temperature out of range', { model: 'm', input: 'x', temperature: 3 }, 'temperature', 'invalid_value'],
    ['max_output_tokens zero', { model: 'm', input: 'x', max_output_tokens: 0 }, 'max_output_tokens', 'invalid_value'],
    ['a message without a role', { model: 'm', input: [{ content: 'x' }] }, 'input[0].role', 'missing_required_parameter'],
    ['a tool role', { model: 'm', input: [{ role: 'tool', content: 'x' }] }, 'input[0].role', 'invalid_value'],
    ['a message without content', { model: 'm', input: [{ role: 'user' }] }, 'input[0].content', 'missing_required_parameter'],
    ['a part without text', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_text' }] }] }, 'input[0].content[0].text', 'missing_required_parameter'],
    ['an unknown part type', { model: 'm', input: [{ role: 'user', content: [{ type: 'video' }] }] }, 'input[0].content[0].type', 'invalid_value'],
    ['an image in an assistant message', { model: 'm', input: [{ role: 'assistant', content: [{ type: 'input_image', image_url: 'https://x' }] }] }, 'input[0].content[0].type', 'invalid_value'],
    ['an image without a url', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_image', detail: 'auto' }] }] }, 'input[0].content[0].image_url', 'missing_required_parameter'],
    ['a function call without a call_id', { model: 'm', input: [{ role: 'user', content: 'x' }, { type: 'function_call', name: 'f', arguments: '{}' }] }, 'input[1].call_id', 'missing_required_parameter'],
    ['a function call output without output', { model: 'm', input: [{ type: 'function_call_output', call_id: 'c' }] }, 'input[0].output', 'missing_required_parameter'],
    ['a function tool without a name', { model: 'm', input: 'x', tools: [{ type: 'function', parameters: {} }] }, 'tools[0].name', 'missing_required_parameter'],
    ['a bad tool_choice string', { model: 'm', input: 'x', tool_choice: 'always' }, 'tool_choice', 'invalid_value'],
    ['a json_schema format without a schema', { model: 'm', input: 'x', text: { format: { type: 'json_schema', name: 'n' } } }, 'text.format.schema', 'missing_required_parameter'],
    ['an unknown format type', { model: 'm', input: 'x', text: { format: { type: 'yaml' } } }, 'text.format.type', 'invalid_value'],
    ['top_logprobs over 20', { model: 'm', input: 'x', top_logprobs: 21 }, 'top_logprobs', 'invalid_value'],
  ])('rejects %s with 400 naming the parameter', (_name, body, param, code) => {
    expect(errorOf(() => responsesToChatBody(body))).toMatchObject({ kind: 'bad_request', param, code });
  });

  it('takes background true from a caller that queues background responses, translating the rest as usual', () => {
    const chat = responsesToChatBody({ model: 'gpt-4o-mini', input: 'hi', background: true, max_output_tokens: 9 }, { background: true });
    expect(chat).toEqual({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 9 });
    // Still validated: a bad value is refused whoever translates.
    expect(errorOf(() => responsesToChatBody({ model: 'gpt-4o-mini', input: 'hi', background: 'yes' }, { background: true }))).toMatchObject({ kind: 'bad_request', param: 'background' });
  });

  it('rejects a body that is not an object', () => {
    expect(errorOf(() => responsesToChatBody('hi'))).toMatchObject({ kind: 'bad_request', code: 'invalid_type' });
    expect(errorOf(() => responsesToChatBody([]))).toMatchObject({ kind: 'bad_request', code: 'invalid_type' });
  });
});

describe('toResponsesParam', () => {
  it.each([
    ['max_completion_tokens', 'max_output_tokens'],
    ['max_tokens', 'max_output_tokens'],
    ['messages', 'input'],
    ['messages[3].content', 'input'],
    ['response_format', 'text.format'],
    ['response_format.json_schema.schema', 'text.format.schema'],
    ['reasoning_effort', 'reasoning.effort'],
    ['logprobs', 'include'],
    ['top_logprobs', 'top_logprobs'],
    ['tools[2].function.parameters', 'tools[2].parameters'],
    ['tool_choice.function.name', 'tool_choice.name'],
    ['temperature', 'temperature'],
    ['x-openrouter-route', 'x-openrouter-route'],
  ])('names %s as %s', (chat, responses) => {
    expect(toResponsesParam(chat)).toBe(responses);
  });
});

function completion(message: Partial<chatv1.AssistantMessage>, finishReason = 'stop', extra: Partial<chatv1.Choice> = {}): chatv1.ChatCompletion {
  return {
    id: 'chatcmpl-1',
    created: 1_700_000_000,
    model: 'upstream',
    choices: [{ index: 0, message: { role: 'assistant', toolCalls: [], extraJson: '', ...message }, finishReason, logprobsJson: '', ...extra }],
    usage: usage(12, 5, { cachedReadTokens: 4, reasoningTokens: 2 }),
  };
}

describe('pendingResponse', () => {
  it('shows a background response with no answer: the request echoed, no output or usage, background and store true, and its error when it failed', () => {
    const request = { model: 'gpt-4o-mini', instructions: 'Be brief.', input: 'hi', metadata: { job: 'n1' }, temperature: 0.2 };
    const queued = pendingResponse(request, 'gpt-4o-mini', 'resp_1', 1_700_000_000, 'queued');
    expect(queued).toMatchObject({ id: 'resp_1', object: 'response', created_at: 1_700_000_000, status: 'queued', background: true, store: true, error: null, output: [], usage: null, instructions: 'Be brief.', metadata: { job: 'n1' }, temperature: 0.2, model: 'gpt-4o-mini' });
    const failed = pendingResponse(request, 'gpt-4o-mini', 'resp_1', 1_700_000_000, 'failed', { code: 'server_error', message: 'It broke.' });
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'server_error', message: 'It broke.' }, output: [] });
  });
});

describe('toResponse', () => {
  it('answers a response object with the text, usage and the request echoed', () => {
    const request = { model: 'gpt-4o-mini', input: 'Hi', instructions: 'Be brief.', max_output_tokens: 50, temperature: 0.5, tools: [weatherTool], metadata: { k: 'v' }, user: 'u', store: true };
    const r = toResponse(completion({ content: 'Hello!' }), 'gpt-4o-mini', request);
    expect(r['id']).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(r).toMatchObject({
      object: 'response',
      created_at: 1_700_000_000,
      status: 'completed',
      error: null,
      incomplete_details: null,
      model: 'gpt-4o-mini',
      instructions: 'Be brief.',
      max_output_tokens: 50,
      temperature: 0.5,
      top_p: null,
      parallel_tool_calls: true,
      tool_choice: 'auto',
      tools: [{ type: 'function', name: 'get_weather', description: 'Weather for a city', parameters: weatherTool.parameters, strict: true }],
      text: { format: { type: 'text' } },
      reasoning: { effort: null, summary: null },
      metadata: { k: 'v' },
      user: 'u',
      store: false,
      previous_response_id: null,
      truncation: 'disabled',
      output: [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hello!', annotations: [], logprobs: [] }] }],
      usage: { input_tokens: 12, input_tokens_details: { cached_tokens: 4, cache_write_tokens: 0 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 17 },
    });
    expect((r['output'] as Array<{ id: string }>)[0]?.id).toMatch(/^msg_/);
    expect(typeof r['completed_at']).toBe('number');
  });

  it('echoes function tools as they were applied: strict by default, with their parameters normalized, as OpenAI echoes them', () => {
    const parameters = { type: 'object', properties: { city: { type: 'string' }, units: { type: 'string' } }, required: ['city'] };
    const tools = [
      { type: 'function', name: 'defaulted', parameters },
      { type: 'function', name: 'loose', parameters, strict: false },
      { type: 'function', name: 'open', parameters: { type: 'object', additionalProperties: true } },
    ];
    const r = toResponse(completion({ content: 'Hello!' }), 'gpt-4o-mini', { model: 'gpt-4o-mini', input: 'Hi', tools });
    expect(r['tools']).toEqual([
      { type: 'function', name: 'defaulted', description: null, parameters: { ...parameters, required: ['city', 'units'], additionalProperties: false }, strict: true },
      { type: 'function', name: 'loose', description: null, parameters, strict: false },
      { type: 'function', name: 'open', description: null, parameters: { type: 'object', additionalProperties: true }, strict: false },
    ]);
  });

  it.each([
    ['length', 'max_output_tokens'],
    ['content_filter', 'content_filter'],
  ])('is incomplete when the answer finished with %s', (finish, reason) => {
    const r = toResponse(completion({ content: 'Hel' }, finish), 'm', {});
    expect(r).toMatchObject({ status: 'incomplete', incomplete_details: { reason }, output: [{ type: 'message', status: 'incomplete' }] });
    expect(r).not.toHaveProperty('completed_at');
  });

  it('answers tool calls as function_call items, with no message when there is no text', () => {
    const calls = [
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
      { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Bergen"}' } },
    ];
    const r = toResponse(completion({ toolCalls: calls }, 'tool_calls'), 'm', {});
    expect(r['status']).toBe('completed');
    expect(r['output']).toEqual([
      { id: expect.stringMatching(/^fc_/), type: 'function_call', status: 'completed', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { id: expect.stringMatching(/^fc_/), type: 'function_call', status: 'completed', call_id: 'call_2', name: 'get_weather', arguments: '{"city":"Bergen"}' },
    ]);
    const both = toResponse(completion({ content: 'Let me check.', toolCalls: calls.slice(0, 1) }, 'tool_calls'), 'm', {});
    expect((both['output'] as Array<{ type: string }>).map((o) => o.type)).toEqual(['message', 'function_call']);
  });

  it('puts reasoning first as a summary, and a refusal as a refusal part', () => {
    const r = toResponse(completion({ content: 'No.', refusal: 'I cannot help with that.', extraJson: JSON.stringify({ reasoning_content: 'Thinking it over.' }) }), 'm', {});
    expect(r['output']).toEqual([
      { id: expect.stringMatching(/^rs_/), type: 'reasoning', summary: [{ type: 'summary_text', text: 'Thinking it over.' }] },
      {
        id: expect.stringMatching(/^msg_/),
        type: 'message',
        status: 'completed',
        role: 'assistant',
        content: [
          { type: 'output_text', text: 'No.', annotations: [], logprobs: [] },
          { type: 'refusal', refusal: 'I cannot help with that.' },
        ],
      },
    ]);
  });

  it('answers an empty message for an empty answer, and carries logprobs', () => {
    expect(toResponse(completion({}), 'm', {})['output']).toEqual([expect.objectContaining({ type: 'message', content: [{ type: 'output_text', text: '', annotations: [], logprobs: [] }] })]);
    const logprobsJson = JSON.stringify({ content: [{ token: 'Hi', logprob: -0.1, bytes: [72, 105], top_logprobs: [{ token: 'Hi', logprob: -0.1, bytes: [72, 105] }, { token: 'Hey', logprob: -2, bytes: null }] }] });
    const r = toResponse(completion({ content: 'Hi' }, 'stop', { logprobsJson }), 'm', { include: ['message.output_text.logprobs'] });
    expect((r['output'] as Array<{ content: Array<{ logprobs: unknown }> }>)[0]?.content[0]?.logprobs).toEqual([
      { token: 'Hi', logprob: -0.1, bytes: [72, 105], top_logprobs: [{ token: 'Hi', logprob: -0.1, bytes: [72, 105] }, { token: 'Hey', logprob: -2, bytes: [] }] },
    ]);
  });
});

function chunk(delta: Partial<chatv1.Delta>, finishReason?: string): chatv1.ChatChunk {
  return { id: 'chatcmpl-1', created: 1_700_000_000, model: 'upstream', choices: [{ index: 0, delta: { toolCalls: [], extraJson: '', ...delta }, finishReason, logprobsJson: '' }] };
}
const usageChunk = (u: chatv1.Usage): chatv1.ChatChunk => ({ id: 'chatcmpl-1', created: 1_700_000_000, model: 'upstream', choices: [], usage: u });

function run(chunks: chatv1.ChatChunk[], request: unknown = {}): ResponsesStreamEvent[] {
  const stream = new ResponsesStream('gpt-4o-mini', request);
  return [...stream.start(), ...chunks.flatMap((c) => stream.chunk(c)), ...stream.complete()];
}

describe('ResponsesStream', () => {
  it('streams text as OpenAI does, numbered, ending with the whole response and its usage', () => {
    const events = run([chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hel' }), chunk({ content: 'lo' }), chunk({}, 'stop'), usageChunk(usage(3, 2))]);
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const [created, , added, partAdded, delta] = events;
    expect(created).toMatchObject({ response: { object: 'response', status: 'in_progress', model: 'gpt-4o-mini', output: [], usage: null } });
    const itemId = (added?.['item'] as { id: string }).id;
    expect(added).toMatchObject({ output_index: 0, item: { type: 'message', status: 'in_progress', role: 'assistant', content: [] } });
    expect(partAdded).toMatchObject({ item_id: itemId, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
    expect(delta).toMatchObject({ item_id: itemId, output_index: 0, content_index: 0, delta: 'Hel', logprobs: [] });
    expect(events[6]).toMatchObject({ text: 'Hello' });
    const completed = events.at(-1)?.['response'] as Record<string, unknown>;
    expect(completed).toMatchObject({
      id: (created?.['response'] as { id: string }).id,
      status: 'completed',
      output: [{ id: itemId, type: 'message', status: 'completed', content: [{ type: 'output_text', text: 'Hello' }] }],
      usage: { input_tokens: 3, output_tokens: 2, total_tokens: 5 },
    });
  });

  it('streams reasoning, text and function calls as separate items in order', () => {
    const events = run([
      chunk({ extraJson: JSON.stringify({ reasoning_content: 'Hmm, ' }) }),
      chunk({ extraJson: JSON.stringify({ reasoning_content: 'weather.' }) }),
      chunk({ content: 'Checking.' }),
      chunk({ toolCalls: [{ index: 0, id: 'call_a', type: 'function', name: 'get_weather', arguments: '' }] }),
      chunk({ toolCalls: [{ index: 0, arguments: '{"city":' }] }),
      chunk({ toolCalls: [{ index: 0, arguments: '"Oslo"}' }] }),
      chunk({ toolCalls: [{ index: 1, id: 'call_b', type: 'function', name: 'get_time', arguments: '{}' }] }),
      chunk({}, 'tool_calls'),
    ]);
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.find((e) => e.type === 'response.reasoning_summary_text.done')).toMatchObject({ output_index: 0, summary_index: 0, text: 'Hmm, weather.' });
    expect(events.filter((e) => e.type === 'response.function_call_arguments.done')).toEqual([
      expect.objectContaining({ output_index: 2, name: 'get_weather', arguments: '{"city":"Oslo"}' }),
      expect.objectContaining({ output_index: 3, name: 'get_time', arguments: '{}' }),
    ]);
    const output = (events.at(-1)?.['response'] as { output: Array<Record<string, unknown>> }).output;
    expect(output.map((o) => o['type'])).toEqual(['reasoning', 'message', 'function_call', 'function_call']);
    expect(output[2]).toMatchObject({ call_id: 'call_a', name: 'get_weather', arguments: '{"city":"Oslo"}', status: 'completed' });
    expect(output[3]).toMatchObject({ call_id: 'call_b', name: 'get_time' });
  });

  it('keeps the first name of a call when an OpenAI-compatible upstream repeats it on later deltas', () => {
    const events = run([
      chunk({ toolCalls: [{ index: 0, id: 'call_a', type: 'function', name: 'get_weather', arguments: '' }] }),
      chunk({ toolCalls: [{ index: 0, name: 'get_weather', arguments: '{"city":' }] }),
      chunk({ toolCalls: [{ index: 0, name: 'get_weather', arguments: '"Oslo"}' }] }),
      // A call whose first delta has no name takes the first name that comes.
      chunk({ toolCalls: [{ index: 1, id: 'call_b', type: 'function', arguments: '' }] }),
      chunk({ toolCalls: [{ index: 1, name: 'get_time', arguments: '{}' }] }),
      chunk({ toolCalls: [{ index: 1, name: 'get_time' }] }),
      chunk({}, 'tool_calls'),
    ]);
    expect(events.filter((e) => e.type === 'response.function_call_arguments.done').map((e) => e['name'])).toEqual(['get_weather', 'get_time']);
    const output = (events.at(-1)?.['response'] as { output: Array<Record<string, unknown>> }).output;
    expect(output).toEqual([
      expect.objectContaining({ type: 'function_call', call_id: 'call_a', name: 'get_weather', arguments: '{"city":"Oslo"}' }),
      expect.objectContaining({ type: 'function_call', call_id: 'call_b', name: 'get_time', arguments: '{}' }),
    ]);
  });

  it('ends a cut answer as response.incomplete, with the usage it is given', () => {
    const stream = new ResponsesStream('m', { max_output_tokens: 2 });
    stream.start();
    stream.chunk(chunk({ content: 'Hel' }, 'length'));
    const end = stream.complete(usage(4, 2, { estimated: true }));
    expect(end.at(-1)).toMatchObject({
      type: 'response.incomplete',
      response: { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, max_output_tokens: 2, output: [{ status: 'incomplete' }], usage: { input_tokens: 4, output_tokens: 2 } },
    });
  });

  it('streams a refusal as a refusal part', () => {
    const events = run([chunk({ refusal: 'I cannot ' }), chunk({ refusal: 'do that.' }, 'stop')]);
    expect(events.map((e) => e.type).slice(3, -2)).toEqual(['response.content_part.added', 'response.refusal.delta', 'response.refusal.delta', 'response.refusal.done', 'response.content_part.done']);
    expect(events.at(-1)).toMatchObject({ response: { output: [{ content: [{ type: 'refusal', refusal: 'I cannot do that.' }] }] } });
  });

  it('answers an empty message for an answer with nothing in it', () => {
    const events = run([chunk({}, 'stop')]);
    expect(events.at(-1)).toMatchObject({ type: 'response.completed', response: { output: [{ type: 'message', content: [{ type: 'output_text', text: '' }] }] } });
  });

  it('fails with an error event, then response.failed holding the items already done', () => {
    const stream = new ResponsesStream('m', {});
    stream.start();
    stream.chunk(chunk({ extraJson: JSON.stringify({ reasoning: 'x' }) }));
    stream.chunk(chunk({ content: 'partial' }));
    const events = stream.fail({ code: 'upstream_error', message: 'The provider failed.', param: null });
    expect(events).toEqual([
      { type: 'error', sequence_number: 11, code: 'upstream_error', message: 'The provider failed.', param: null },
      expect.objectContaining({ type: 'response.failed', sequence_number: 12, response: expect.objectContaining({ status: 'failed', error: { code: 'server_error', message: 'The provider failed.' } }) }),
    ]);
    const output = (events[1]?.['response'] as { output: Array<{ type: string }> }).output;
    expect(output.map((o) => o.type)).toEqual(['reasoning']);
  });

  it('takes the id and creation time of the background response it is the run of, and says background, in every event and the response it completes with', () => {
    const stream = new ResponsesStream('m', {}, true, { id: 'resp_queued', createdAt: 1_700_000_000 });
    const events = [...stream.start(), ...stream.chunk(chunk({ content: 'Hi.' }, 'stop')), ...stream.complete(usage(2, 1))];
    const responses = events.flatMap((event) => (event['response'] ? [event['response'] as Record<string, unknown>] : []));
    expect(responses.length).toBe(3);
    for (const response of responses) expect(response).toMatchObject({ id: 'resp_queued', created_at: 1_700_000_000, background: true, store: true });
    expect(stream.response).toMatchObject({ id: 'resp_queued', created_at: 1_700_000_000, background: true, status: 'completed' });
    // Any other stream has an id of its own, and is not a background one.
    const plain = new ResponsesStream('m', {}).start()[0]?.['response'] as Record<string, unknown>;
    expect(plain).toMatchObject({ background: false });
    expect(plain['id']).not.toBe('resp_queued');
  });
});

describe("log probabilities, returned only when include asks for them, as OpenAI's Responses API returns them", () => {
  const include = { include: ['message.output_text.logprobs'] };
  const entry = (token: string, logprob: number) => ({ token, logprob, bytes: [...Buffer.from(token)] });
  const logprobsJson = (token: string, logprob: number): string => JSON.stringify({ content: [{ ...entry(token, logprob), top_logprobs: [entry(token, logprob)] }] });
  const expected = (token: string, logprob: number) => ({ ...entry(token, logprob), top_logprobs: [entry(token, logprob)] });
  const withLogprobs = (c: chatv1.ChatChunk, json: string): chatv1.ChatChunk => ({ ...c, choices: c.choices.map((choice) => ({ ...choice, logprobsJson: json })) });
  const textOf = (response: Record<string, unknown>) => (response['output'] as Array<{ content: Array<Record<string, unknown>> }>)[0]?.content[0];

  describe('in a request', () => {
    it("accepts include: ['message.output_text.logprobs'], asking the provider for logprobs with top_logprobs alternatives when given", () => {
      const chat = responsesToChatBody({ model: 'm', input: 'x', ...include, top_logprobs: 3 });
      expect(chat).toEqual({ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 3 });
      expect(parseChatRequest(chat)).toMatchObject({ logprobs: true, topLogprobs: 3 });
    });

    it('asks for the chosen tokens only (no alternatives) when include comes without top_logprobs, and takes it with reasoning.encrypted_content', () => {
      const chat = responsesToChatBody({ model: 'm', input: 'x', include: ['reasoning.encrypted_content', 'message.output_text.logprobs'] });
      expect(chat).toEqual({ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: true });
    });

    it('asks nothing of the provider for top_logprobs alone, whose logprobs OpenAI does not return', () => {
      const chat = responsesToChatBody({ model: 'm', input: 'x', top_logprobs: 3 });
      expect(chat).toEqual({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    });
  });

  describe('in a whole response', () => {
    const answer = completion({ content: 'Hi' }, 'stop', { logprobsJson: logprobsJson('Hi', -0.1) });

    it('carries them on the output_text part when included', () => {
      expect(textOf(toResponse(answer, 'm', { ...include, top_logprobs: 1 }))).toEqual({ type: 'output_text', annotations: [], logprobs: [expected('Hi', -0.1)], text: 'Hi' });
    });

    it('has logprobs: [] without include, whatever the provider sent, and echoes top_logprobs', () => {
      const response = toResponse(answer, 'm', { top_logprobs: 1 });
      expect(textOf(response)).toEqual({ type: 'output_text', annotations: [], logprobs: [], text: 'Hi' });
      expect(response['top_logprobs']).toBe(1);
    });
  });

  describe('in a stream', () => {
    const chunks = [withLogprobs(chunk({ content: 'Hel' }), logprobsJson('Hel', -0.5)), withLogprobs(chunk({ content: 'lo' }, 'stop'), logprobsJson('lo', -0.25))];
    const ofType = (events: ResponsesStreamEvent[], type: string) => events.filter((e) => e.type === type);

    it("carries each delta's logprobs on its response.output_text.delta event, and all of them when the text is done, when included", () => {
      const events = run(chunks, include);
      expect(ofType(events, 'response.output_text.delta').map((e) => e['logprobs'])).toEqual([[expected('Hel', -0.5)], [expected('lo', -0.25)]]);
      const all = [expected('Hel', -0.5), expected('lo', -0.25)];
      expect(ofType(events, 'response.output_text.done')[0]).toMatchObject({ text: 'Hello', logprobs: all });
      expect(ofType(events, 'response.content_part.done')[0]).toMatchObject({ part: { type: 'output_text', logprobs: all } });
      expect(textOf(events.at(-1)?.['response'] as Record<string, unknown>)).toMatchObject({ text: 'Hello', logprobs: all });
    });

    it('has logprobs: [] on every event without include', () => {
      const events = run(chunks, { top_logprobs: 2 });
      expect(ofType(events, 'response.output_text.delta').map((e) => e['logprobs'])).toEqual([[], []]);
      expect(ofType(events, 'response.output_text.done')[0]).toMatchObject({ text: 'Hello', logprobs: [] });
      expect(textOf(events.at(-1)?.['response'] as Record<string, unknown>)).toMatchObject({ text: 'Hello', logprobs: [] });
    });
  });
});

// The official SDK answered in-process: what we emit must be what it reads.
function sdk(respond: (body: Record<string, unknown>) => Response): OpenAI {
  return new OpenAI({
    apiKey: 'sk-test',
    baseURL: 'http://gateway.test/v1',
    maxRetries: 0,
    fetch: async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => respond(typeof init?.body === 'string' ? (JSON.parse(init.body) as Record<string, unknown>) : {}),
  });
}

const sse = (events: readonly ResponsesStreamEvent[]): Response =>
  new Response(events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join(''), { status: 200, headers: { 'content-type': 'text/event-stream' } });

describe('the official openai SDK reading responses', () => {
  it('reads a whole response, computing output_text', async () => {
    const client = sdk((body) => {
      responsesToChatBody(body);
      return new Response(JSON.stringify(toResponse(completion({ content: 'Hello there' }), String(body['model']), body)), { status: 200, headers: { 'content-type': 'application/json' } });
    });
    const response = await client.responses.create({ model: 'gpt-4o-mini', input: 'Hi', instructions: 'Be brief.' });
    expect(response.output_text).toBe('Hello there');
    expect(response.usage?.total_tokens).toBe(17);
  });

  it('parses a json_schema answer with responses.parse', async () => {
    const client = sdk((body) => new Response(JSON.stringify(toResponse(completion({ content: '{"city":"Oslo"}' }), 'm', body)), { status: 200, headers: { 'content-type': 'application/json' } }));
    const parsed = await client.responses.parse({ model: 'm', input: 'x', text: { format: { type: 'json_schema', name: 'city', schema: { type: 'object', properties: { city: { type: 'string' } } }, strict: false } } });
    expect(parsed.output_text).toBe('{"city":"Oslo"}');
  });

  it('follows a stream with responses.stream(), deltas and finalResponse() agreeing', async () => {
    const client = sdk((body) =>
      sse(
        run(
          [
            chunk({ extraJson: JSON.stringify({ reasoning_content: 'Thinking.' }) }),
            chunk({ content: 'Hel' }),
            chunk({ content: 'lo' }),
            chunk({ toolCalls: [{ index: 0, id: 'call_a', type: 'function', name: 'get_weather', arguments: '{"city"' }] }),
            chunk({ toolCalls: [{ index: 0, arguments: ':"Oslo"}' }] }),
            chunk({}, 'tool_calls'),
            usageChunk(usage(3, 4)),
          ],
          body,
        ),
      ),
    );
    const stream = client.responses.stream({ model: 'gpt-4o-mini', input: 'Hi', tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object' }, strict: false }] });
    let text = '';
    let args = '';
    stream.on('response.output_text.delta', (e) => (text += e.delta));
    stream.on('response.function_call_arguments.delta', (e) => (args += e.delta));
    const final = await stream.finalResponse();
    expect(text).toBe('Hello');
    expect(args).toBe('{"city":"Oslo"}');
    expect(final.output_text).toBe('Hello');
    expect(final.status).toBe('completed');
    expect(final.usage?.output_tokens).toBe(4);
    expect(final.output.map((o) => o.type)).toEqual(['reasoning', 'message', 'function_call']);
    const call = final.output[2];
    expect(call?.type === 'function_call' ? [call.name, call.call_id, call.arguments] : []).toEqual(['get_weather', 'call_a', '{"city":"Oslo"}']);
    const reasoning = final.output[0];
    expect(reasoning?.type === 'reasoning' ? reasoning.summary : []).toEqual([{ type: 'summary_text', text: 'Thinking.' }]);
  });

  it('iterates the events of create({stream: true}), and sees a failed stream as an error event', async () => {
    const ok = sdk((body) => sse(run([chunk({ content: 'Hi' }, 'stop')], body)));
    const types: string[] = [];
    for await (const event of await ok.responses.create({ model: 'm', input: 'x', stream: true })) types.push(event.type);
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');

    const failing = new ResponsesStream('m', {});
    const failure = [...failing.start(), ...failing.chunk(chunk({ content: 'par' })), ...failing.fail({ code: 'timeout', message: 'The provider timed out.', param: null })];
    const failed = sdk(() => sse(failure));
    const seen: Array<{ type: string; message?: string }> = [];
    for await (const event of await failed.responses.create({ model: 'm', input: 'x', stream: true })) seen.push(event as { type: string; message?: string });
    expect(seen.at(-2)).toMatchObject({ type: 'error', message: 'The provider timed out.' });
    expect(seen.at(-1)).toMatchObject({ type: 'response.failed', response: { status: 'failed' } });
    await expect(failed.responses.stream({ model: 'm', input: 'x' }).finalResponse()).rejects.toMatchObject({ type: 'error', code: 'timeout' });
  });
});

describe("Claude's thinking carried in reasoning items' encrypted_content", () => {
  const signed = { type: 'thinking' as const, thinking: 'The user wants Oslo.', signature: 'c2lnLW9zbG8=' };
  const redacted = { type: 'redacted_thinking' as const, data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT' };
  const later = { type: 'thinking' as const, thinking: 'Now Bergen.', signature: 'c2lnLWJlcmdlbg==' };
  const encrypted = (blocks: readonly object[]): string => Buffer.from(JSON.stringify({ v: 1, thinking_blocks: blocks })).toString('base64url');
  const call = (id: string, city: string) => ({ type: 'function_call', call_id: id, name: 'get_weather', arguments: `{"city":"${city}"}` });
  const chatCall = (id: string, city: string) => ({ id, type: 'function', function: { name: 'get_weather', arguments: `{"city":"${city}"}` } });
  /** A Codex-style stateless request: thinking asked for, and handed back through encrypted_content. */
  const thinkingRequest = { model: 'claude', input: 'Weather in Oslo?', reasoning: { effort: 'high' }, include: ['reasoning.encrypted_content'], store: false };
  const include = { include: ['reasoning.encrypted_content'] };

  describe('in a request', () => {
    it("accepts include: ['reasoning.encrypted_content'] (with store: false), which asks nothing of the provider", () => {
      const chat = responsesToChatBody({ model: 'm', input: 'x', include: ['reasoning.encrypted_content'], store: false, reasoning: { effort: 'high' } });
      expect(chat).toEqual({ model: 'm', messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'high' });
    });

    it('hands the thinking back as thinking_blocks on the assistant turn of the function call that follows it', () => {
      const chat = responsesToChatBody({
        model: 'm',
        input: [
          { role: 'user', content: 'Weather in Oslo?' },
          { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: signed.thinking }], encrypted_content: encrypted([signed]) },
          { ...call('call_a', 'Oslo'), id: 'fc_1', status: 'completed' },
          { type: 'function_call_output', call_id: 'call_a', output: '{"celsius":4}' },
        ],
      });
      expect(chat['messages']).toEqual([
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: null, thinking_blocks: [signed], tool_calls: [chatCall('call_a', 'Oslo')] },
        { role: 'tool', tool_call_id: 'call_a', content: '{"celsius":4}' },
      ]);
      // The chat path keeps them on the message, where the Claude adapters read them.
      const assistant = parseChatRequest(chat).messages[1];
      expect(JSON.parse(assistant?.extraJson ?? '{}')).toEqual({ thinking_blocks: [signed] });
    });

    it('joins reasoning and function calls into one assistant turn, thinking in the order it came, before the tool outputs', () => {
      const chat = responsesToChatBody({
        model: 'm',
        input: [
          { role: 'user', content: 'Weather in Oslo and Bergen?' },
          { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: encrypted([signed, redacted]) },
          call('call_a', 'Oslo'),
          // Interleaved thinking: more reasoning between the calls of the same turn.
          { type: 'reasoning', id: 'rs_2', summary: [], encrypted_content: encrypted([later]) },
          call('call_b', 'Bergen'),
          { type: 'function_call_output', call_id: 'call_a', output: '4' },
          { type: 'function_call_output', call_id: 'call_b', output: '7' },
          // The next step of the loop: reasoning, then a message and a call of one turn.
          { type: 'reasoning', id: 'rs_3', summary: [], encrypted_content: encrypted([signed]) },
          { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'And Paris:' }] },
          call('call_c', 'Paris'),
          { type: 'function_call_output', call_id: 'call_c', output: '12' },
          { role: 'assistant', content: 'Oslo 4, Bergen 7, Paris 12.' },
        ],
      });
      expect(chat['messages']).toEqual([
        { role: 'user', content: 'Weather in Oslo and Bergen?' },
        { role: 'assistant', content: null, thinking_blocks: [signed, redacted, later], tool_calls: [chatCall('call_a', 'Oslo'), chatCall('call_b', 'Bergen')] },
        { role: 'tool', tool_call_id: 'call_a', content: '4' },
        { role: 'tool', tool_call_id: 'call_b', content: '7' },
        { role: 'assistant', content: 'And Paris:', thinking_blocks: [signed], tool_calls: [chatCall('call_c', 'Paris')] },
        { role: 'tool', tool_call_id: 'call_c', content: '12' },
        { role: 'assistant', content: 'Oslo 4, Bergen 7, Paris 12.' },
      ]);
      expect(parseChatRequest(chat).messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'assistant', 'tool', 'assistant']);
    });

    it('drops reasoning items without encrypted_content, and thinking no assistant turn follows; an assistant message takes the thinking before it', () => {
      const chat = responsesToChatBody({
        model: 'm',
        input: [
          { role: 'user', content: 'Hi' },
          { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'x' }] },
          { type: 'reasoning', id: 'rs_2', summary: [], encrypted_content: null },
          { type: 'reasoning', id: 'rs_3', summary: [], encrypted_content: '' },
          call('call_a', 'Oslo'),
          { type: 'function_call_output', call_id: 'call_a', output: '4' },
          // Reasoning with no assistant turn after it goes nowhere, not onto a later turn.
          { type: 'reasoning', id: 'rs_4', summary: [], encrypted_content: encrypted([signed]) },
          { role: 'user', content: 'And now?' },
          { type: 'reasoning', id: 'rs_5', summary: [], encrypted_content: encrypted([later]) },
          { role: 'assistant', content: 'Sunny.' },
        ],
      });
      expect(chat['messages']).toEqual([
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: null, tool_calls: [chatCall('call_a', 'Oslo')] },
        { role: 'tool', tool_call_id: 'call_a', content: '4' },
        { role: 'user', content: 'And now?' },
        { role: 'assistant', content: 'Sunny.', thinking_blocks: [later] },
      ]);
    });

    it.each([
      ["OpenAI's own encrypted reasoning", 'gAAAAABoZ3QxZXN0LWVuY3J5cHRlZC1jb250ZW50'],
      ['characters outside base64url', `${encrypted([signed])}==`],
      ['base64url that is not JSON', Buffer.from('not json').toString('base64url')],
      ['another version', Buffer.from(JSON.stringify({ v: 2, thinking_blocks: [signed] })).toString('base64url')],
      ['no blocks', encrypted([])],
      ['a block without its signature', encrypted([{ type: 'thinking', thinking: 'x' }])],
      ['a block with an extra field', encrypted([{ ...signed, cache_control: { type: 'ephemeral' } }])],
      ['a block of another type', encrypted([{ type: 'text', text: 'x' }])],
    ])('refuses encrypted_content it cannot read (%s) with 400 invalid_value naming the item', (_name, content) => {
      const input = [{ role: 'user', content: 'x' }, { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: content }, call('call_a', 'Oslo')];
      const error = errorOf(() => responsesToChatBody({ model: 'm', input }));
      expect(error).toMatchObject({ kind: 'bad_request', param: 'input[1].encrypted_content', code: 'invalid_value' });
      expect(error.message).toContain('reasoning item this gateway returned');
    });

    it('refuses encrypted_content that is not a string', () => {
      const input = [{ type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 5 }];
      expect(errorOf(() => responsesToChatBody({ model: 'm', input }))).toMatchObject({ kind: 'bad_request', param: 'input[0].encrypted_content', code: 'invalid_type' });
    });

    it('decodes exactly what it encodes', () => {
      expect(decodeReasoning(encodeReasoning([signed, redacted]))).toEqual([signed, redacted]);
      expect(JSON.parse(Buffer.from(encodeReasoning([signed]), 'base64url').toString('utf8'))).toEqual({ v: 1, thinking_blocks: [signed] });
    });
  });

  describe('in a whole response', () => {
    const answer = (blocks: object[], reasoning = 'The user wants Oslo.') =>
      completion({ content: 'Checking.', extraJson: JSON.stringify({ ...(reasoning ? { reasoning_content: reasoning } : {}), thinking_blocks: blocks }) });

    it('carries the thinking blocks in the reasoning item when include asks for them, and only then, as OpenAI does', () => {
      const r = toResponse(answer([signed]), 'claude', thinkingRequest);
      const [item] = r['output'] as Array<Record<string, unknown>>;
      expect(item).toEqual({ id: expect.stringMatching(/^rs_/), type: 'reasoning', summary: [{ type: 'summary_text', text: 'The user wants Oslo.' }], encrypted_content: expect.any(String) });
      expect(decodeReasoning(String(item?.['encrypted_content']))).toEqual([signed]);

      const [plain] = toResponse(answer([signed]), 'claude', { model: 'claude', input: 'x' })['output'] as Array<Record<string, unknown>>;
      expect(plain).toEqual({ id: expect.stringMatching(/^rs_/), type: 'reasoning', summary: [{ type: 'summary_text', text: 'The user wants Oslo.' }] });
    });

    it('has null encrypted_content for reasoning with no blocks to hand back, and a reasoning item for redacted thinking alone', () => {
      const textOnly = toResponse(completion({ content: 'x', extraJson: JSON.stringify({ reasoning_content: 'Hmm.' }) }), 'deepseek', include)['output'] as unknown[];
      expect(textOnly[0]).toEqual({ id: expect.stringMatching(/^rs_/), type: 'reasoning', summary: [{ type: 'summary_text', text: 'Hmm.' }], encrypted_content: null });
      const hidden = toResponse(answer([redacted], ''), 'claude', include)['output'] as Array<Record<string, unknown>>;
      expect(hidden.map((o) => o['type'])).toEqual(['reasoning', 'message']);
      expect(hidden[0]).toMatchObject({ summary: [] });
      expect(decodeReasoning(String(hidden[0]?.['encrypted_content']))).toEqual([redacted]);
    });

    it('leaves out blocks of another shape, which could not be handed back', () => {
      const [item] = toResponse(answer([signed, { type: 'thinking', thinking: 'unsigned' }]), 'claude', include)['output'] as Array<Record<string, unknown>>;
      expect(decodeReasoning(String(item?.['encrypted_content']))).toEqual([signed]);
    });

    it('round-trips: the output items sent back as input hand the same blocks back', () => {
      const calls = [{ id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }];
      const first = toResponse(completion({ toolCalls: calls, extraJson: JSON.stringify({ reasoning_content: signed.thinking, thinking_blocks: [signed, redacted] }) }, 'tool_calls'), 'claude', include);
      const output = first['output'] as Array<Record<string, unknown>>;
      expect(output.map((o) => o['type'])).toEqual(['reasoning', 'function_call']);
      const chat = responsesToChatBody({ model: 'claude', input: [{ role: 'user', content: 'Weather?' }, ...output, { type: 'function_call_output', call_id: 'call_a', output: '4' }] });
      expect((chat['messages'] as unknown[])[1]).toEqual({ role: 'assistant', content: null, thinking_blocks: [signed, redacted], tool_calls: calls });
    });
  });

  describe('in a stream', () => {
    it('carries the blocks on the reasoning item once it is done, and in the completed response, when include asks for them', () => {
      const events = run(
        [
          chunk({ extraJson: JSON.stringify({ reasoning_content: 'The user ' }) }),
          chunk({ extraJson: JSON.stringify({ reasoning_content: 'wants Oslo.' }) }),
          chunk({ extraJson: JSON.stringify({ thinking_blocks: [signed] }) }),
          chunk({ toolCalls: [{ index: 0, id: 'call_a', type: 'function', name: 'get_weather', arguments: '{"city":"Oslo"}' }] }),
          chunk({}, 'tool_calls'),
        ],
        thinkingRequest,
      );
      const added = events.find((e) => e.type === 'response.output_item.added');
      expect(added?.['item']).toEqual({ id: expect.stringMatching(/^rs_/), type: 'reasoning', summary: [] });
      const done = events.find((e) => e.type === 'response.output_item.done');
      expect(done?.['item']).toEqual({ id: expect.stringMatching(/^rs_/), type: 'reasoning', summary: [{ type: 'summary_text', text: 'The user wants Oslo.' }], encrypted_content: expect.any(String) });
      expect(decodeReasoning(String((done?.['item'] as JsonLike)['encrypted_content']))).toEqual([signed]);
      const output = (events.at(-1)?.['response'] as { output: JsonLike[] }).output;
      expect(output[0]).toEqual(done?.['item']);
      expect(output.map((o) => o['type'])).toEqual(['reasoning', 'function_call']);

      // Without include, no encrypted_content, as OpenAI streams it.
      const plain = run([chunk({ extraJson: JSON.stringify({ reasoning_content: 'Hmm.' }) }), chunk({ extraJson: JSON.stringify({ thinking_blocks: [signed] }) }), chunk({ content: 'Hi' }, 'stop')]);
      expect((plain.at(-1)?.['response'] as { output: JsonLike[] }).output[0]).toEqual({ id: expect.stringMatching(/^rs_/), type: 'reasoning', summary: [{ type: 'summary_text', text: 'Hmm.' }] });
    });

    it('takes each block once when every thinking_blocks delta repeats the blocks before it, as the Claude adapters send them', () => {
      const events = run(
        [
          chunk({ extraJson: JSON.stringify({ thinking_blocks: [redacted] }) }),
          chunk({ extraJson: JSON.stringify({ reasoning_content: signed.thinking }) }),
          chunk({ extraJson: JSON.stringify({ thinking_blocks: [redacted, signed] }) }),
          chunk({ content: 'Oslo first.' }),
          chunk({ extraJson: JSON.stringify({ reasoning_content: later.thinking }) }),
          chunk({ extraJson: JSON.stringify({ thinking_blocks: [redacted, signed, later] }) }),
          chunk({ toolCalls: [{ index: 0, id: 'call_a', type: 'function', name: 'get_weather', arguments: '{"city":"Bergen"}' }] }),
          chunk({}, 'tool_calls'),
        ],
        include,
      );
      const output = (events.at(-1)?.['response'] as { output: JsonLike[] }).output;
      expect(output.map((o) => o['type'])).toEqual(['reasoning', 'message', 'reasoning', 'function_call']);
      expect(decodeReasoning(String(output[0]?.['encrypted_content']))).toEqual([redacted, signed]);
      expect(decodeReasoning(String(output[2]?.['encrypted_content']))).toEqual([later]);

      // A server that sends each block once is read as before.
      const once = run([chunk({ extraJson: JSON.stringify({ thinking_blocks: [redacted] }) }), chunk({ extraJson: JSON.stringify({ thinking_blocks: [signed] }) }), chunk({ content: 'Hi' }, 'stop')], include);
      const [item] = (once.at(-1)?.['response'] as { output: JsonLike[] }).output;
      expect(decodeReasoning(String(item?.['encrypted_content']))).toEqual([redacted, signed]);
    });

    it('opens a reasoning item for redacted thinking alone, with no summary events', () => {
      const events = run([chunk({ extraJson: JSON.stringify({ thinking_blocks: [redacted] }) }), chunk({ content: 'Hi' }, 'stop')], include);
      expect(events.map((e) => e.type).slice(2, 4)).toEqual(['response.output_item.added', 'response.output_item.done']);
      expect(events.some((e) => e.type.startsWith('response.reasoning_summary'))).toBe(false);
      const item = (events.at(-1)?.['response'] as { output: JsonLike[] }).output[0];
      expect(item).toMatchObject({ type: 'reasoning', summary: [] });
      expect(decodeReasoning(String(item?.['encrypted_content']))).toEqual([redacted]);
    });

    it('is read by the official SDK: finalResponse() has the encrypted_content, which goes back as input', async () => {
      const client = sdk((body) =>
        sse(
          run(
            [
              chunk({ extraJson: JSON.stringify({ reasoning_content: signed.thinking }) }),
              chunk({ extraJson: JSON.stringify({ thinking_blocks: [signed] }) }),
              chunk({ toolCalls: [{ index: 0, id: 'call_a', type: 'function', name: 'get_weather', arguments: '{"city":"Oslo"}' }] }),
              chunk({}, 'tool_calls'),
            ],
            body,
          ),
        ),
      );
      const final = await client.responses.stream({ model: 'claude', input: 'Weather?', include: ['reasoning.encrypted_content'], store: false }).finalResponse();
      const reasoning = final.output[0];
      if (reasoning?.type !== 'reasoning') throw new Error('no reasoning item');
      expect(decodeReasoning(reasoning.encrypted_content ?? '')).toEqual([signed]);
      const call = final.output[1];
      if (call?.type !== 'function_call') throw new Error('no function call');
      const chat = responsesToChatBody({ model: 'claude', input: [{ role: 'user', content: 'Weather?' }, reasoning, call, { type: 'function_call_output', call_id: call.call_id, output: '4' }] });
      expect((chat['messages'] as JsonLike[])[1]).toMatchObject({ role: 'assistant', thinking_blocks: [signed], tool_calls: [{ id: 'call_a' }] });
    });
  });
});

describe('stored responses (previous_response_id)', () => {
  const signed = { type: 'thinking' as const, thinking: 'The user wants Oslo.', signature: 'c2lnLW9zbG8=' };
  const call = { id: 'fc_1', type: 'function_call', status: 'completed', call_id: 'call_a', name: 'get_weather', arguments: '{"city":"Oslo"}' };
  /** A stored turn: its input, then its output (reasoning kept whole, then the call). */
  const history = [
    { id: 'msg_1', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Weather in Oslo?' }] },
    { id: 'rs_1', type: 'reasoning', summary: [], encrypted_content: encodeReasoning([signed]) },
    call,
  ];

  it('translates the stored conversation before the new input, joining the call and its output, with only this request\'s instructions', () => {
    const chat = responsesToChatBody(
      { model: 'claude', instructions: 'Be brief.', previous_response_id: 'resp_1', input: [{ type: 'function_call_output', call_id: 'call_a', output: '4' }] },
      { history },
    );
    expect(chat['messages']).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?' }] },
      { role: 'assistant', content: null, thinking_blocks: [signed], tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_a', content: '4' },
    ]);
    // A string input follows the conversation as the next user message.
    const next = responsesToChatBody({ model: 'm', previous_response_id: 'resp_2', input: 'And Bergen?' }, { history: [{ id: 'msg_1', type: 'message', role: 'user', content: 'Hi' }] });
    expect(next['messages']).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'user', content: 'And Bergen?' },
    ]);
  });

  it('refuses previous_response_id when the caller keeps no conversation, and names it for a stored item that cannot be translated', () => {
    expect(errorOf(() => responsesToChatBody({ model: 'm', previous_response_id: 'resp_1', input: 'x' }))).toMatchObject({ param: 'previous_response_id', code: 'unsupported_parameter' });
    const broken = [{ type: 'reasoning', encrypted_content: 'gAAAA-not-ours' }];
    expect(errorOf(() => responsesToChatBody({ model: 'm', previous_response_id: 'resp_1', input: 'x' }, { history: broken }))).toMatchObject({ param: 'previous_response_id.encrypted_content' });
    // The new input's items keep their own indexes after the stored ones.
    expect(errorOf(() => responsesToChatBody({ model: 'm', previous_response_id: 'resp_1', input: [{ role: 'user', content: 'a' }, { type: 'web_search_call' }] }, { history }))).toMatchObject({ param: 'input[1].type' });
  });

  it('translates a conversation\'s items before the new input for a caller that serves conversations, refuses it beside previous_response_id, and echoes it', () => {
    const chat = responsesToChatBody({ model: 'claude', conversation: 'conv_1', input: [{ type: 'function_call_output', call_id: 'call_a', output: '4' }] }, { history, conversations: true });
    expect((chat['messages'] as unknown[]).length).toBe(3);
    expect(errorOf(() => responsesToChatBody({ model: 'm', conversation: { id: 'conv_1' }, input: 'x' }, { history: [] }))).toMatchObject({ param: 'conversation', code: 'unsupported_parameter' });
    expect(errorOf(() => responsesToChatBody({ model: 'm', conversation: 'conv_1', previous_response_id: 'resp_1', input: 'x' }, { history: [], conversations: true }))).toMatchObject({ param: 'conversation', code: 'invalid_value' });
    // A stored item that cannot be translated is named by the parameter that brought it in.
    expect(errorOf(() => responsesToChatBody({ model: 'm', conversation: 'conv_1', input: 'x' }, { history: [{ type: 'reasoning', encrypted_content: 'gAAAA-not-ours' }], conversations: true }))).toMatchObject({ param: 'conversation.encrypted_content' });
    expect(conversationIdOf({ conversation: 'conv_1' })).toBe('conv_1');
    expect(conversationIdOf({ conversation: { id: 'conv_2' } })).toBe('conv_2');
    expect(conversationIdOf({ input: 'x' })).toBeUndefined();
    expect(pendingResponse({ model: 'm', conversation: { id: 'conv_2' } }, 'm', 'resp_1', 1, 'queued')['conversation']).toEqual({ id: 'conv_2' });
    expect(pendingResponse({ model: 'm' }, 'm', 'resp_1', 1, 'queued')).not.toHaveProperty('conversation');
  });

  it('keeps the input items as sent, with ids, and lists messages with their text as parts', () => {
    const input = [
      { role: 'user', content: 'Hi' },
      { type: 'message', role: 'assistant', content: 'Hello.' },
      { id: 'fc_mine', type: 'function_call', call_id: 'c', name: 'f', arguments: '{}' },
      { type: 'function_call_output', call_id: 'c', output: 'ok' },
      { role: 'developer', content: [{ type: 'input_text', text: 'Rules.' }] },
    ];
    const items = storedInputItems({ model: 'm', input });
    expect(items).toEqual([
      { id: expect.stringMatching(/^msg_/), type: 'message', role: 'user', content: 'Hi' },
      { id: expect.stringMatching(/^msg_/), type: 'message', role: 'assistant', content: 'Hello.' },
      { id: 'fc_mine', type: 'function_call', call_id: 'c', name: 'f', arguments: '{}' },
      { id: expect.stringMatching(/^fco_/), type: 'function_call_output', call_id: 'c', output: 'ok' },
      { id: expect.stringMatching(/^msg_/), type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'Rules.' }] },
    ]);
    expect(storedInputItems({ model: 'm', input: 'Hi' })).toEqual([{ id: expect.stringMatching(/^msg_/), type: 'message', role: 'user', content: 'Hi' }]);
    // Translated back, they are the same conversation: the provider is sent what it was sent before.
    expect(responsesToChatBody({ model: 'm', input: items })['messages']).toEqual(responsesToChatBody({ model: 'm', input })['messages']);
    expect(items.map(inputItemView).map((i) => i['content'])).toEqual([
      [{ type: 'input_text', text: 'Hi' }],
      [{ type: 'output_text', text: 'Hello.', annotations: [], logprobs: [] }],
      undefined,
      undefined,
      [{ type: 'input_text', text: 'Rules.' }],
    ]);
  });

  it('marks a stored whole response and keeps its thinking, shown to the client only when included', () => {
    const request = { model: 'claude', input: 'Weather?', previous_response_id: 'resp_0' };
    const answer = completion({ content: 'Sunny.', extraJson: JSON.stringify({ reasoning_content: 'Hmm.', thinking_blocks: [signed] }) });
    const stored = toResponse(answer, 'claude', request, true);
    expect(stored).toMatchObject({ store: true, previous_response_id: 'resp_0' });
    const reasoning = (stored['output'] as JsonLike[])[0];
    expect(decodeReasoning(String(reasoning?.['encrypted_content']))).toEqual([signed]);
    // The client that did not include it does not see it; the stored object is unchanged.
    expect((responseView(stored, request)['output'] as JsonLike[])[0]).toEqual({ id: reasoning?.['id'], type: 'reasoning', summary: [{ type: 'summary_text', text: 'Hmm.' }] });
    expect((responseView(stored, { include: ['reasoning.encrypted_content'] })['output'] as JsonLike[])[0]).toEqual(reasoning);
    expect(reasoning).toHaveProperty('encrypted_content');
    // Not stored: as before, store false and no encrypted_content.
    const plain = toResponse(answer, 'claude', { model: 'claude', input: 'Weather?' });
    expect(plain['store']).toBe(false);
    expect((plain['output'] as JsonLike[])[0]).not.toHaveProperty('encrypted_content');
  });

  it('marks a stored stream and keeps its thinking in the response it completed with, not in the events', () => {
    const request = { model: 'claude', input: 'Weather?' };
    const stream = new ResponsesStream('claude', request, true);
    const events = [
      ...stream.start(),
      ...stream.chunk(chunk({ extraJson: JSON.stringify({ reasoning_content: 'Hmm.' }) })),
      ...stream.chunk(chunk({ extraJson: JSON.stringify({ thinking_blocks: [signed] }) })),
      ...stream.chunk(chunk({ content: 'Sunny.' }, 'stop')),
      ...stream.complete(usage(3, 2)),
    ];
    expect(events[0]).toMatchObject({ type: 'response.created', response: { store: true } });
    for (const event of events) expect(JSON.stringify(event)).not.toContain('encrypted_content');
    const whole = stream.response;
    expect(whole).toMatchObject({ id: (events.at(-1)?.['response'] as JsonLike)['id'], store: true, status: 'completed' });
    expect(decodeReasoning(String((whole?.['output'] as JsonLike[])[0]?.['encrypted_content']))).toEqual([signed]);
    expect(responseView(whole ?? {}, request)).toEqual(events.at(-1)?.['response']);
  });
});

type JsonLike = Record<string, unknown>;
