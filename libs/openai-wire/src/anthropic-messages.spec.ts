import Anthropic, { APIError, AuthenticationError, BadRequestError, InternalServerError, NotFoundError, PermissionDeniedError, RateLimitError } from '@anthropic-ai/sdk';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError, type ErrorKind } from '@openrouter/errors';
import {
  AnthropicStream,
  countTokensToChatBody,
  inMessagesTerms,
  messagesToChatBody,
  toAnthropicError,
  toAnthropicMessage,
  toMessagesParam,
  TOOL_ERROR,
  type AnthropicStreamEvent,
} from './anthropic-messages';
import { parseChatRequest, toOpenAIChatBody } from './chat-request';
import { errorOf } from './gateway-error.testing';

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

const weather = { name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const base = { model: 'claude-x', max_tokens: 256 };

describe('messagesToChatBody', () => {
  it('turns a system prompt and a string message into chat messages, with max_tokens as the output limit', () => {
    const chat = messagesToChatBody({ ...base, system: 'Be brief.', messages: [{ role: 'user', content: 'Hello' }] });
    expect(chat).toEqual({ model: 'claude-x', max_completion_tokens: 256, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }] });
    expect(parseChatRequest(chat).maxCompletionTokens).toBe(256);
  });

  it('maps every supported parameter to its chat equivalent and ignores what only Anthropic uses', () => {
    const chat = messagesToChatBody({
      ...base,
      system: [{ type: 'text', text: 'One.', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'Two.' }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: { type: 'ephemeral', ttl: '1h' } }] }],
      stop_sequences: ['END', 'STOP'],
      temperature: 0.4,
      top_p: 0.9,
      top_k: 40,
      stream: true,
      tools: [{ ...weather, cache_control: { type: 'ephemeral' }, strict: true }, { type: 'custom', name: 'noop', input_schema: { type: 'object' } }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      metadata: { user_id: 'user-1' },
      service_tier: 'auto',
      inference_geo: 'us',
      cache_control: { type: 'ephemeral' },
      output_config: { effort: 'high' },
      models: ['fallback'],
      route: { strategy: 'cost' },
    });
    expect(chat).toEqual({
      model: 'claude-x',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'One.', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'Two.' }] },
        { role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: { type: 'ephemeral', ttl: '1h' } }] },
      ],
      tools: [
        { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: weather.input_schema, strict: true }, cache_control: { type: 'ephemeral' } },
        { type: 'function', function: { name: 'noop', parameters: { type: 'object' } } },
      ],
      tool_choice: 'required',
      parallel_tool_calls: false,
      reasoning_effort: 'high',
      models: ['fallback'],
      route: { strategy: 'cost' },
      max_completion_tokens: 256,
      stop: ['END', 'STOP'],
      temperature: 0.4,
      top_p: 0.9,
      top_k: 40,
      user: 'user-1',
      stream: true,
    });
    // The chat path reads it as any chat request: top_k rides as the extra key Claude and Gemini take.
    const parsed = parseChatRequest(chat);
    expect(JSON.parse(parsed.extraJson)).toEqual({ top_k: 40, models: ['fallback'], route: { strategy: 'cost' } });
    expect(parsed.stream).toBe(true);
  });

  it.each([
    [{ type: 'auto' }, 'auto'],
    [{ type: 'none' }, 'none'],
    [{ type: 'any' }, 'required'],
    [{ type: 'tool', name: 'get_weather' }, { type: 'function', function: { name: 'get_weather' } }],
  ])('maps tool_choice %j', (choice, expected) => {
    expect(messagesToChatBody({ ...base, messages: [{ role: 'user', content: 'x' }], tools: [weather], tool_choice: choice })['tool_choice']).toEqual(expected);
  });

  it('carries images, PDFs and text documents as chat content parts', () => {
    const chat = messagesToChatBody({
      ...base,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
            { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' }, title: 'report.pdf', cache_control: { type: 'ephemeral' } },
            { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'Plain notes.' } },
            { type: 'document', source: { type: 'content', content: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B' }] } },
            { type: 'text', text: 'What are these?' },
          ],
        },
      ],
    });
    expect(chat['messages']).toEqual([
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0x', filename: 'report.pdf' }, cache_control: { type: 'ephemeral' } },
          { type: 'text', text: 'Plain notes.' },
          { type: 'text', text: 'A\n\nB' },
          { type: 'text', text: 'What are these?' },
        ],
      },
    ]);
  });

  it('reads search results, in a user turn or a tool result, as text under their title and source', () => {
    const result = { type: 'search_result', source: 'https://wiki.example/oslo', title: 'Oslo climate', content: [{ type: 'text', text: 'Winters are cold.' }, { type: 'text', text: 'Summers are mild.' }] };
    const text = 'Search result: Oslo climate\nSource: https://wiki.example/oslo\n\nWinters are cold.\nSummers are mild.';
    const chat = messagesToChatBody({
      ...base,
      messages: [
        { role: 'user', content: [{ ...result, cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'Summarise.' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'search', input: { q: 'oslo' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [result] }] },
      ],
    });
    const messages = chat['messages'] as Array<{ content: unknown }>;
    expect(messages[0]?.content).toEqual([{ type: 'text', text, cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'Summarise.' }]);
    expect(messages[2]).toMatchObject({ role: 'tool', tool_call_id: 't1', content: [{ type: 'text', text }] });
    // Its fields are checked as Anthropic checks them.
    expect(() => messagesToChatBody({ ...base, messages: [{ role: 'user', content: [{ ...result, title: undefined }] }] })).toThrow(expect.objectContaining({ param: 'messages[0].content[0].title' }));
  });

  it('turns a tool round trip into assistant tool_calls and tool messages, in order, thinking first in its turn', () => {
    const signed = { type: 'thinking', thinking: 'Need the weather.', signature: 'sig-1' };
    const chat = messagesToChatBody({
      ...base,
      tools: [weather],
      messages: [
        { role: 'user', content: 'Weather in Oslo and Bergen?' },
        {
          role: 'assistant',
          content: [
            signed,
            { type: 'redacted_thinking', data: 'opaque' },
            { type: 'text', text: 'Checking.' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
            { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { city: 'Bergen' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: '4 °C' },
            { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: 'timeout' }], is_error: true },
            { type: 'text', text: 'Thanks.' },
          ],
        },
      ],
    });
    expect(chat['messages']).toEqual([
      { role: 'user', content: 'Weather in Oslo and Bergen?' },
      {
        role: 'assistant',
        content: 'Checking.',
        tool_calls: [
          { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
          { id: 'toolu_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Bergen"}' } },
        ],
        thinking_blocks: [signed, { type: 'redacted_thinking', data: 'opaque' }],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: '4 °C' },
      { role: 'tool', tool_call_id: 'toolu_2', content: [{ type: 'text', text: TOOL_ERROR }, { type: 'text', text: 'timeout' }] },
      { role: 'user', content: 'Thanks.' },
    ]);
    // A valid chat request: the chat path accepts what the translation writes.
    expect(parseChatRequest(chat).messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'user']);
  });

  it('gives an assistant turn of tool calls alone null content, a string error result its marker, and drops unsigned thinking', () => {
    const chat = messagesToChatBody({
      ...base,
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'Another family wrote this.', signature: '' }, { type: 'tool_use', id: 't1', name: 'f', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'boom', is_error: true }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1' }] },
      ],
    });
    expect(chat['messages']).toEqual([
      { role: 'user', content: 'x' },
      { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 't1', content: `${TOOL_ERROR} boom` },
      { role: 'tool', tool_call_id: 't1', content: '' },
    ]);
  });

  it('gives a tool result of no blocks empty text, as one without content (OpenAI refuses an empty content array)', () => {
    const chat = messagesToChatBody({
      ...base,
      messages: [
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: {} }, { type: 'tool_use', id: 't2', name: 'f', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [] }, { type: 'tool_result', tool_use_id: 't2', content: [], is_error: true }] },
      ],
    });
    expect(chat['messages']).toEqual([
      expect.objectContaining({ role: 'assistant' }),
      { role: 'tool', tool_call_id: 't1', content: '' },
      { role: 'tool', tool_call_id: 't2', content: TOOL_ERROR },
    ]);
  });

  it("passes the client's thinking object on as Claude providers take it, and leaves disabled thinking out", () => {
    const on = messagesToChatBody({ ...base, max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 2048, display: null }, messages: [{ role: 'user', content: 'x' }] });
    expect(on['thinking']).toEqual({ type: 'enabled', budget_tokens: 2048 });
    expect(JSON.parse(parseChatRequest(on).extraJson)).toEqual({ thinking: { type: 'enabled', budget_tokens: 2048 } });
    expect(messagesToChatBody({ ...base, thinking: { type: 'adaptive', display: 'summarized' }, messages: [{ role: 'user', content: 'x' }] })['thinking']).toEqual({ type: 'adaptive', display: 'summarized' });
    expect(messagesToChatBody({ ...base, thinking: { type: 'disabled' }, messages: [{ role: 'user', content: 'x' }] })).not.toHaveProperty('thinking');
  });

  it('asks structured output (output_config.format) as a json_schema response format', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } } };
    expect(messagesToChatBody({ ...base, output_config: { format: { type: 'json_schema', schema } }, messages: [{ role: 'user', content: 'x' }] })['response_format']).toEqual({
      type: 'json_schema',
      json_schema: { name: 'response', schema },
    });
  });

  it('takes a system role message (newer SDKs) as a chat system message', () => {
    expect(messagesToChatBody({ ...base, messages: [{ role: 'system', content: [{ type: 'text', text: 'Rules.' }] }, { role: 'user', content: 'x' }] })['messages']).toEqual([
      { role: 'system', content: [{ type: 'text', text: 'Rules.' }] },
      { role: 'user', content: 'x' },
    ]);
  });

  describe('refusals', () => {
    const messages = [{ role: 'user', content: 'hi' }];

    it.each<[string, Record<string, unknown>, string, string]>([
      ['an unknown parameter', { ...base, messages, frequency_penalty: 1 }, 'frequency_penalty', 'unknown_parameter'],
      ['a missing max_tokens', { model: 'm', messages }, 'max_tokens', 'missing_required_parameter'],
      ['a missing model', { max_tokens: 5, messages }, 'model', 'missing_required_parameter'],
      ['no messages', { ...base, messages: [] }, 'messages', 'invalid_value'],
      ['a temperature over 1', { ...base, messages, temperature: 1.5 }, 'temperature', 'invalid_value'],
      ['a thinking budget under 1024', { ...base, messages, thinking: { type: 'enabled', budget_tokens: 500 } }, 'thinking.budget_tokens', 'invalid_value'],
      ['a thinking budget that leaves no room under max_tokens', { ...base, max_tokens: 2048, messages, thinking: { type: 'enabled', budget_tokens: 2048 } }, 'thinking.budget_tokens', 'invalid_value'],
      ['an unknown thinking type', { ...base, messages, thinking: { type: 'sometimes' } }, 'thinking.type', 'invalid_value'],
      ['a misspelt thinking field', { ...base, messages, thinking: { type: 'enabled', budget_tokens: 2048, budget: 1 } }, 'thinking.budget', 'unknown_parameter'],
      ['a custom tool without input_schema', { ...base, messages, tools: [{ name: 'f' }] }, 'tools[0].input_schema', 'missing_required_parameter'],
      ['web search', { ...base, messages, tools: [weather, { type: 'web_search_20250305', name: 'web_search' }] }, 'tools[1]', 'unsupported_parameter'],
      ['computer use', { ...base, messages, tools: [{ type: 'computer_20250124', name: 'computer', display_width_px: 1024, display_height_px: 768 }] }, 'tools[0]', 'unsupported_parameter'],
      ['bash', { ...base, messages, tools: [{ type: 'bash_20250124', name: 'bash' }] }, 'tools[0]', 'unsupported_parameter'],
      ['the text editor', { ...base, messages, tools: [{ type: 'text_editor_20250728', name: 'str_replace_based_edit_tool' }] }, 'tools[0]', 'unsupported_parameter'],
      ['MCP servers', { ...base, messages, mcp_servers: [{ type: 'url', url: 'https://x', name: 'x' }] }, 'mcp_servers', 'unsupported_parameter'],
      ['a container', { ...base, messages, container: 'container_1' }, 'container', 'unsupported_parameter'],
      ['a tool_choice naming no declared tool', { ...base, messages, tools: [weather], tool_choice: { type: 'tool', name: 'other' } }, 'tool_choice.name', 'invalid_value'],
      ['a forced tool choice without tools', { ...base, messages, tool_choice: { type: 'any' } }, 'tool_choice', 'invalid_value'],
      ['an image given by file id', { ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'file_1' } }] }] }, 'messages[0].content[0].source.type', 'unsupported_parameter'],
      ['an image of another type', { ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/tiff', data: 'x' } }] }] }, 'messages[0].content[0].source.media_type', 'invalid_value'],
      ['a PDF by URL', { ...base, messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'url', url: 'https://x/y.pdf' } }] }] }, 'messages[0].content[0].source.type', 'unsupported_parameter'],
      ['a base64 document that is not a PDF', { ...base, messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'text/csv', data: 'YSxi' } }] }] }, 'messages[0].content[0].source.media_type', 'invalid_value'],
      ['a server tool result', { ...base, messages: [{ role: 'assistant', content: [{ type: 'web_search_tool_result', tool_use_id: 's', content: [] }] }] }, 'messages[0].content[0].type', 'unsupported_parameter'],
      ['a tool result in an assistant turn', { ...base, messages: [{ role: 'assistant', content: [{ type: 'tool_result', tool_use_id: 't' }] }] }, 'messages[0].content[0].type', 'invalid_value'],
      ['thinking in a user turn', { ...base, messages: [{ role: 'user', content: [{ type: 'thinking', thinking: 'x', signature: 's' }] }] }, 'messages[0].content[0].type', 'invalid_value'],
      ['a tool_use without input', { ...base, messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f' }] }] }, 'messages[0].content[0].input', 'missing_required_parameter'],
      ['an unknown role', { ...base, messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role', 'invalid_value'],
    ])('refuses %s with a 400 naming the parameter', (_name, body, param, code) => {
      const error = errorOf(() => messagesToChatBody(body));
      expect(error).toMatchObject({ kind: 'bad_request', param, code });
      expect(error.message).toContain(param);
    });

    it('refuses max_tokens 0 (filling the prompt cache without an answer) by name, saying what to send instead', () => {
      const error = errorOf(() => messagesToChatBody({ ...base, max_tokens: 0, messages }));
      expect(error).toMatchObject({ kind: 'bad_request', param: 'max_tokens', code: 'unsupported_parameter' });
      expect(error.message).toContain('max_tokens: 0');
      expect(error.message).toContain('max_tokens: 1');
      // Below 0 is malformed, as before.
      expect(errorOf(() => messagesToChatBody({ ...base, max_tokens: -1, messages }))).toMatchObject({ param: 'max_tokens', code: 'invalid_value' });
    });

    it("says why Anthropic's own tools are refused", () => {
      const error = errorOf(() => messagesToChatBody({ ...base, messages, tools: [{ type: 'web_search_20250305', name: 'web_search' }] }));
      expect(error.message).toMatch(/'web_search_20250305' \('web_search'\) is one of Anthropic's own tools/);
      expect(error.message).toContain('custom tool');
    });

    it('refuses a body that is not an object', () => {
      expect(errorOf(() => messagesToChatBody([1]))).toMatchObject({ kind: 'bad_request', code: 'invalid_type' });
    });
  });
});

describe('Claude Code and newer clients', () => {
  const messages = [{ role: 'user', content: 'hi' }];

  it("accepts Claude Code's context_management and sends the conversation whole", () => {
    const context_management = {
      edits: [
        { type: 'clear_thinking_20251015', keep: 'all' },
        { type: 'clear_tool_uses_20250919', trigger: { type: 'input_tokens', value: 30000 }, keep: { type: 'tool_uses', value: 3 } },
      ],
    };
    const chat = messagesToChatBody({ ...base, messages, context_management });
    expect(chat).toEqual({ model: 'claude-x', max_completion_tokens: 256, messages: [{ role: 'user', content: 'hi' }] });
    expect(countTokensToChatBody({ model: 'm', messages, context_management })).toEqual({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    expect(messagesToChatBody({ ...base, messages, context_management: {} })).toEqual(chat);
  });

  it('counts the tokens of a compaction request as of the conversation sent (as Anthropic does), and refuses it as a message', () => {
    expect(countTokensToChatBody({ model: 'm', messages, compaction: { type: 'summarize' } })).toEqual({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    expect(errorOf(() => messagesToChatBody({ ...base, messages, compaction: { type: 'summarize' } }))).toMatchObject({ param: 'compaction', code: 'unsupported_parameter' });
  });

  it.each<[string, Record<string, unknown>]>([
    ['diagnostics', { diagnostics: { previous_message_id: 'msg_1' } }],
    ['betas in the body', { betas: ['context-management-2025-06-27', 'interleaved-thinking-2025-05-14'] }],
    ['fallbacks', { fallbacks: [{ model: 'claude-opus-4-1', max_tokens: 100 }] }],
    ['the default fallbacks', { fallbacks: 'default' }],
    ['a fallback credit token', { fallback_credit_token: 'fct_1' }],
    ['billing to oneself', { billing_policy: { type: 'billing_policy', bill_to: 'self' } }],
    ['a task budget', { output_config: { task_budget: { type: 'tokens', total: 100000, remaining: 5000 } } }],
    ['speed, inference_geo and service_tier', { speed: 'fast', inference_geo: 'us', service_tier: 'standard_only' }],
    ['nulls', { diagnostics: null, fallbacks: null, fallback_credit_token: null, billing_policy: null, speed: null, inference_geo: null, context_management: null }],
  ])('accepts and ignores %s (it only steers Anthropic platform)', (_name, fields) => {
    expect(messagesToChatBody({ ...base, messages, ...fields })).toEqual({ model: 'claude-x', max_completion_tokens: 256, messages: [{ role: 'user', content: 'hi' }] });
  });

  it('asks the deprecated output_format as output_config.format is asked', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } } };
    expect(messagesToChatBody({ ...base, messages, output_format: { type: 'json_schema', schema } })['response_format']).toEqual({ type: 'json_schema', json_schema: { name: 'response', schema } });
    expect(errorOf(() => messagesToChatBody({ ...base, messages, output_format: { type: 'json_schema', schema }, output_config: { format: { type: 'json_schema', schema } } }))).toMatchObject({ param: 'output_format', code: 'invalid_value' });
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ['an edit without a type', { context_management: { edits: [{ keep: 'all' }] } }, 'context_management.edits[0].type', 'missing_required_parameter'],
    ['edits that are not a list', { context_management: { edits: 'clear' } }, 'context_management.edits', 'invalid_type'],
    ['a context_management that is not an object', { context_management: 'auto' }, 'context_management', 'invalid_type'],
    ['a compaction request', { compaction: { type: 'summarize' } }, 'compaction', 'unsupported_parameter'],
    ['a server-held thread', { thread: { type: 'continue', previous_message_id: 'msg_1' } }, 'thread', 'unsupported_parameter'],
    ["billing another party's organisation", { billing_policy: { type: 'billing_policy', bill_to: 'user_profile' } }, 'billing_policy.bill_to', 'unsupported_parameter'],
    ['betas that are not strings', { betas: [1] }, 'betas[0]', 'invalid_type'],
  ])('refuses %s with a 400 naming it', (_name, fields, param, code) => {
    const error = errorOf(() => messagesToChatBody({ ...base, messages, ...fields }));
    expect(error).toMatchObject({ kind: 'bad_request', param, code });
  });
});

describe('prompt caching (cache_control)', () => {
  const ephemeral = { type: 'ephemeral' };
  const hour = { type: 'ephemeral', ttl: '1h' };

  it('carries cache_control on system blocks, user text, image and text document blocks, and assistant text as parts Claude providers read', () => {
    const chat = messagesToChatBody({
      ...base,
      system: [{ type: 'text', text: 'Long rules.', cache_control: hour }],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' }, cache_control: ephemeral },
            { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'Notes.' }, cache_control: ephemeral },
            { type: 'text', text: 'What is this?' },
          ],
        },
        { role: 'assistant', content: [{ type: 'text', text: 'A cat.', cache_control: ephemeral }] },
        { role: 'user', content: [{ type: 'text', text: 'Sure?', cache_control: ephemeral }] },
      ],
    });
    expect(chat['messages']).toEqual([
      // One block stays a part, not a string, so its cache_control has somewhere to be.
      { role: 'system', content: [{ type: 'text', text: 'Long rules.', cache_control: hour }] },
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' }, cache_control: ephemeral },
          { type: 'text', text: 'Notes.', cache_control: ephemeral },
          { type: 'text', text: 'What is this?' },
        ],
      },
      { role: 'assistant', content: [{ type: 'text', text: 'A cat.', cache_control: ephemeral }] },
      { role: 'user', content: [{ type: 'text', text: 'Sure?', cache_control: ephemeral }] },
    ]);
    // The chat path keeps such parts as their JSON, which the Anthropic adapter reads cache_control from.
    const parsed = parseChatRequest(chat);
    expect(parsed.messages[0]?.parts?.parts[0]?.rawJson).toBe(JSON.stringify({ type: 'text', text: 'Long rules.', cache_control: hour }));
    expect(parsed.messages[3]?.parts?.parts[0]?.rawJson).toBe(JSON.stringify({ type: 'text', text: 'Sure?', cache_control: ephemeral }));
  });

  it("carries it on a tool definition, a tool result and the blocks of its content, and a PDF; not on a tool_use block", () => {
    const chat = messagesToChatBody({
      ...base,
      tools: [{ ...weather, cache_control: ephemeral }],
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'get_weather', input: { city: 'Oslo' }, cache_control: ephemeral }] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: '4 °C', cache_control: ephemeral }] },
            { type: 'tool_result', tool_use_id: 't1', content: 'again', cache_control: ephemeral },
            { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' }, cache_control: ephemeral },
          ],
        },
      ],
    });
    // Beside `function` on the tool, on the tool message itself, on the PDF's file part: where the Claude adapters read it.
    expect(chat['tools']).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: weather.input_schema }, cache_control: ephemeral }]);
    expect(chat['messages']).toEqual([
      { role: 'user', content: 'Weather?' },
      // The chat path's tool calls have no place for it.
      { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 't1', content: [{ type: 'text', text: '4 °C', cache_control: ephemeral }] },
      { role: 'tool', tool_call_id: 't1', content: 'again', cache_control: ephemeral },
      { role: 'user', content: [{ type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0x' }, cache_control: ephemeral }] },
    ]);
    // The chat path keeps each as extra JSON (the tool's, the message's, the part's), which the Anthropic adapter reads.
    const parsed = parseChatRequest(chat);
    expect(parsed.tools[0]?.function?.name).toBe('get_weather');
    expect(JSON.parse(parsed.tools[0]?.rawJson ?? '{}')).toMatchObject({ cache_control: ephemeral });
    expect(JSON.parse(parsed.messages[3]?.extraJson ?? '{}')).toEqual({ cache_control: ephemeral });
    expect(JSON.parse(parsed.messages[4]?.parts?.parts[0]?.rawJson ?? '{}')).toMatchObject({ type: 'file', cache_control: ephemeral });
  });

  it('leaves it out for providers that drop cache_control, wherever it was carried', () => {
    const chat = messagesToChatBody({
      ...base,
      tools: [{ ...weather, cache_control: ephemeral }],
      messages: [
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'get_weather', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: '4 °C', cache_control: ephemeral }, { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' }, cache_control: ephemeral }] },
      ],
    });
    const body = toOpenAIChatBody(parseChatRequest(chat), 'gpt-x', { dropParams: ['cache_control'] });
    expect(JSON.stringify(body)).not.toContain('cache_control');
    expect(body['tools']).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: weather.input_schema } }]);
  });

  it("puts the request's cache_control on its last block, as Anthropic does, where the chat path can carry it", () => {
    expect(messagesToChatBody({ ...base, cache_control: ephemeral, messages: [{ role: 'user', content: 'Hello' }] })['messages']).toEqual([{ role: 'user', content: [{ type: 'text', text: 'Hello', cache_control: ephemeral }] }]);
    const own = { type: 'ephemeral', ttl: '5m' };
    expect(messagesToChatBody({ ...base, cache_control: hour, messages: [{ role: 'user', content: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B', cache_control: own }] }] })['messages']).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B', cache_control: own }] },
    ]);
    // A last tool result carries it on its tool message; a last tool_use block, which the chat path cannot mark, leaves it out.
    const result = messagesToChatBody({ ...base, cache_control: ephemeral, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'x' }] }] });
    expect(result['messages']).toEqual([{ role: 'tool', tool_call_id: 't1', content: 'x', cache_control: ephemeral }]);
    const use = messagesToChatBody({ ...base, cache_control: ephemeral, messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: {} }] }] });
    expect(use['messages']).toEqual([
      { role: 'user', content: 'x' },
      { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
    ]);
  });

  it('refuses a cache_control that is not an object, naming its path', () => {
    expect(errorOf(() => messagesToChatBody({ ...base, messages: [{ role: 'user', content: [{ type: 'text', text: 'x', cache_control: 'ephemeral' }] }] }))).toMatchObject({ param: 'messages[0].content[0].cache_control', code: 'invalid_type' });
    expect(errorOf(() => messagesToChatBody({ ...base, system: [{ type: 'text', text: 'x', cache_control: {} }], messages: [{ role: 'user', content: 'x' }] }))).toMatchObject({ param: 'system[0].cache_control.type' });
  });
});

describe('malformed input is a 400, never a crash', () => {
  it("validates a tool result's content blocks as the message's own blocks, naming the path", () => {
    const body = (inner: unknown) => ({ ...base, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [inner] }] }] });
    expect(errorOf(() => messagesToChatBody(body({ type: 'image' })))).toMatchObject({ kind: 'bad_request', param: 'messages[0].content[0].content[0].source', code: 'missing_required_parameter' });
    expect(errorOf(() => messagesToChatBody(body({ type: 'document' })))).toMatchObject({ kind: 'bad_request', param: 'messages[0].content[0].content[0].source' });
    expect(errorOf(() => messagesToChatBody(body({ type: 'image', source: { type: 'base64' } })))).toMatchObject({ kind: 'bad_request', param: 'messages[0].content[0].content[0].source.media_type' });
    expect(errorOf(() => messagesToChatBody(body({ type: 'text' })))).toMatchObject({ kind: 'bad_request', param: 'messages[0].content[0].content[0].text' });
    expect(errorOf(() => countTokensToChatBody({ model: 'm', messages: body({ type: 'image', source: null }).messages }))).toMatchObject({ kind: 'bad_request', param: 'messages[0].content[0].content[0].source' });
  });

  it('names the blocks a tool result may hold when it holds another kind', () => {
    const body = (inner: unknown) => ({ ...base, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [inner] }] }] });
    const nested = errorOf(() => messagesToChatBody(body({ type: 'tool_result', tool_use_id: 't2', content: 'x' })));
    expect(nested).toMatchObject({ kind: 'bad_request', param: 'messages[0].content[0].content[0].type' });
    expect(nested.message).toBe("Invalid value for 'messages[0].content[0].content[0].type': a tool result carries 'text', 'image', 'document' and 'search_result' blocks, not 'tool_result'.");
  });

  /** Every value of a body, each replaced in turn by each of these, must give a result or a bad_request. */
  const MALFORMED: readonly unknown[] = [undefined, null, 0, -1, 1.5, '', 'x', true, [], [null], [{}], [[]], {}, { type: 'x' }, { type: null }, { type: 'text' }, { type: 'image' }, { type: 'document' }, { type: 'base64' }, { type: 'content' }];

  /** Paths to every value inside `value` (objects and arrays alike), the root excluded. */
  function paths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
    if (typeof value !== 'object' || value === null) return [];
    const keys: Array<string | number> = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
    return keys.flatMap((k) => {
      const path = [...prefix, k];
      return [path, ...paths((value as Record<string | number, unknown>)[k], path)];
    });
  }

  function replaced(body: unknown, path: Array<string | number>, with_: unknown): unknown {
    const copy = structuredClone(body) as Record<string | number, unknown>;
    let node = copy;
    for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
    const last = path[path.length - 1] as string | number;
    if (with_ === undefined && !Array.isArray(node)) delete node[last];
    else node[last] = with_;
    return copy;
  }

  const rich = {
    model: 'claude-x',
    system: [{ type: 'text', text: 'S', cache_control: { type: 'ephemeral' } }],
    tools: [weather, { type: 'custom', name: 'noop', input_schema: { type: 'object' }, cache_control: { type: 'ephemeral' } }],
    tool_choice: { type: 'tool', name: 'get_weather' },
    thinking: { type: 'enabled', budget_tokens: 2048, display: 'summarized' },
    output_config: { effort: 'high', format: { type: 'json_schema', schema: { type: 'object' } } },
    context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
    messages: [
      { role: 'system', content: [{ type: 'text', text: 'More rules.' }] },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Look.', cache_control: { type: 'ephemeral' } },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
          { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' }, title: 'a.pdf' },
          { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'Notes' } },
          { type: 'document', source: { type: 'content', content: [{ type: 'text', text: 'A' }] } },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'Hmm.', signature: 'sig' },
          { type: 'redacted_thinking', data: 'opaque' },
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 't1', name: 'get_weather', input: { city: 'Oslo' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 't1', is_error: false, content: [{ type: 'text', text: '4' }, { type: 'image', source: { type: 'url', url: 'https://example.com/b.png' } }, { type: 'document', source: { type: 'content', content: 'C' } }] },
          { type: 'tool_result', tool_use_id: 't1', content: 'x', is_error: true, cache_control: { type: 'ephemeral' } },
        ],
      },
    ],
  };
  const request = { ...rich, max_tokens: 4096, stop_sequences: ['END'], temperature: 0.5, top_p: 0.9, top_k: 5, stream: true, metadata: { user_id: 'u' }, cache_control: { type: 'ephemeral' }, diagnostics: { previous_message_id: 'msg_1' } };

  it.each([
    ['messagesToChatBody', messagesToChatBody, request],
    ['countTokensToChatBody', countTokensToChatBody, rich],
  ] as const)('%s: every malformed variant of a rich body', (_name, translate, body) => {
    expect(() => translate(body)).not.toThrow();
    const crashes: string[] = [];
    let refused = 0;
    for (const path of paths(body)) {
      for (const value of MALFORMED) {
        try {
          translate(replaced(body, path, value));
        } catch (e) {
          if (e instanceof GatewayError && e.kind === 'bad_request') refused++;
          else crashes.push(`${path.join('.')} = ${JSON.stringify(value)}: ${String(e)}`);
        }
      }
    }
    expect(crashes).toEqual([]);
    expect(refused).toBeGreaterThan(100);
  });
});

describe('countTokensToChatBody', () => {
  it('translates the prompt without an output limit, and refuses parameters of a message request', () => {
    expect(countTokensToChatBody({ model: 'm', system: 'S', messages: [{ role: 'user', content: 'x' }], tools: [weather] })).toEqual({
      model: 'm',
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'x' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: weather.input_schema } }],
    });
    expect(errorOf(() => countTokensToChatBody({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }))).toMatchObject({ param: 'max_tokens', code: 'unknown_parameter' });
  });
});

function completion(message: Partial<chatv1.AssistantMessage>, finishReason = 'stop', u: chatv1.Usage | undefined = usage(12, 5)): chatv1.ChatCompletion {
  return {
    id: 'chatcmpl-1',
    created: 1_700_000_000,
    model: 'upstream',
    choices: [{ index: 0, message: { role: 'assistant', toolCalls: [], extraJson: '', ...message }, finishReason, logprobsJson: '' }],
    usage: u,
    systemFingerprint: undefined,
    serviceTier: undefined,
  };
}

describe('toAnthropicMessage', () => {
  it('answers a message with text, its stop reason and usage, under the public model id', () => {
    const m = toAnthropicMessage(completion({ content: 'Hello.' }), 'claude-x');
    expect(m).toEqual({
      id: expect.stringMatching(/^msg_[0-9a-f]{24}$/) as unknown,
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [{ type: 'text', text: 'Hello.' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 5 },
    });
  });

  it('puts signed thinking first and tool calls last, their input as an object', () => {
    const blocks = [
      { type: 'thinking', thinking: 'Hmm.', signature: 'sig' },
      { type: 'redacted_thinking', data: 'opaque' },
    ];
    const m = toAnthropicMessage(
      completion(
        {
          content: 'Checking.',
          extraJson: JSON.stringify({ reasoning_content: 'Hmm.', thinking_blocks: blocks }),
          toolCalls: [
            { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
            { id: '', type: 'function', function: { name: 'f', arguments: 'not json' } },
          ],
        },
        'tool_calls',
      ),
      'm',
    );
    expect(m['content']).toEqual([
      ...blocks,
      { type: 'text', text: 'Checking.' },
      { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
      { type: 'tool_use', id: expect.stringMatching(/^toolu_/) as unknown, name: 'f', input: {} },
    ]);
    expect(m['stop_reason']).toBe('tool_use');
  });

  it("gives another family's reasoning text as a thinking block without a signature", () => {
    expect(toAnthropicMessage(completion({ content: '4', extraJson: JSON.stringify({ reasoning_content: '2+2' }) }), 'm')['content']).toEqual([
      { type: 'thinking', thinking: '2+2', signature: '' },
      { type: 'text', text: '4' },
    ]);
  });

  it.each([
    ['stop', [], 'end_turn'],
    ['length', [], 'max_tokens'],
    ['content_filter', [], 'refusal'],
    ['tool_calls', [], 'tool_use'],
    ['stop', [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }], 'tool_use'],
  ])('maps finish reason %s (tool calls %j) to %s', (finish, calls, stop) => {
    expect(toAnthropicMessage(completion({ content: 'x', toolCalls: calls }, finish), 'm')['stop_reason']).toBe(stop);
  });

  it('stops on the stop sequence the provider says ended the answer, and names it', () => {
    const stopped = completion({ content: 'Once upon' }, 'stop');
    const named = { ...stopped, choices: stopped.choices.map((c) => ({ ...c, stopSequence: 'END' })) };
    expect(toAnthropicMessage(named, 'm')).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'END' });
    // A chat answer that does not say (OpenAI's family) ended its turn, whatever stop sequences were asked.
    expect(toAnthropicMessage(stopped, 'm')).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null });
    // An answer that calls tools stops for them.
    const calling = completion({ toolCalls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }, 'stop');
    expect(toAnthropicMessage({ ...calling, choices: calling.choices.map((c) => ({ ...c, stopSequence: 'END' })) }, 'm')).toMatchObject({ stop_reason: 'tool_use', stop_sequence: null });
  });

  it('counts the cached prompt apart from input_tokens, as Anthropic does', () => {
    expect(toAnthropicMessage(completion({ content: 'x' }, 'stop', usage(1000, 5, { cachedReadTokens: 600, cacheWriteTokens: 300 })), 'm')['usage']).toEqual({
      input_tokens: 100,
      cache_read_input_tokens: 600,
      cache_creation_input_tokens: 300,
      output_tokens: 5,
    });
  });

  it("reports the request's usage when given, as billing records it (the gateway's estimate when the provider reported none)", () => {
    const unreported = { ...completion({ content: 'x' }), usage: undefined };
    expect(toAnthropicMessage(unreported, 'm', usage(40, 7, { estimated: true }))['usage']).toEqual({
      input_tokens: 40,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
      output_tokens: 7,
    });
  });

  it('answers empty content for an empty answer, and a refusal as text', () => {
    expect(toAnthropicMessage(completion({}), 'm')['content']).toEqual([]);
    expect(toAnthropicMessage(completion({ refusal: 'I cannot help.' }, 'content_filter'), 'm')).toMatchObject({ content: [{ type: 'text', text: 'I cannot help.' }], stop_reason: 'refusal' });
  });

  it("stops with refusal for OpenAI's refusal, which finishes with stop, its text the content as Claude's refusals carry it", () => {
    expect(toAnthropicMessage(completion({ refusal: "I'm sorry, I can't help with that." }, 'stop'), 'm')).toMatchObject({
      content: [{ type: 'text', text: "I'm sorry, I can't help with that." }],
      stop_reason: 'refusal',
      stop_sequence: null,
    });
    // No refusal, or an empty one: the turn ended.
    expect(toAnthropicMessage(completion({ content: 'Sure.', refusal: '' }, 'stop'), 'm')['stop_reason']).toBe('end_turn');
  });
});

function chunk(delta: Partial<chatv1.Delta>, finishReason?: string): chatv1.ChatChunk {
  return { id: 'chatcmpl-1', created: 1_700_000_000, model: 'upstream', choices: [{ index: 0, delta: { toolCalls: [], extraJson: '', ...delta }, finishReason, logprobsJson: '' }] };
}
const usageChunk = (u: chatv1.Usage): chatv1.ChatChunk => ({ id: 'chatcmpl-1', created: 1_700_000_000, model: 'upstream', choices: [], usage: u });

function run(chunks: chatv1.ChatChunk[], finalUsage?: chatv1.Usage): AnthropicStreamEvent[] {
  const stream = new AnthropicStream('claude-x', 9);
  return [...stream.start(), ...chunks.flatMap((c) => stream.chunk(c)), ...stream.complete(finalUsage)];
}

const thinking = (text: string): chatv1.ChatChunk => chunk({ extraJson: JSON.stringify({ reasoning_content: text }) });
const signedBlock = (text: string, signature: string): chatv1.ChatChunk => chunk({ extraJson: JSON.stringify({ thinking_blocks: [{ type: 'thinking', thinking: text, signature }] }) });

describe('AnthropicStream', () => {
  it("ends a streamed OpenAI refusal (finish_reason stop) with stop_reason refusal, its text in a text block", () => {
    const events = run([chunk({ role: 'assistant', content: '' }), chunk({ refusal: "I'm sorry, " }), chunk({ refusal: "I can't help with that." }), chunk({}, 'stop'), usageChunk(usage(3, 9))]);
    const text = events.filter((e) => e.type === 'content_block_delta').map((e) => (e['delta'] as { text?: string }).text);
    expect(text).toEqual(["I'm sorry, ", "I can't help with that."]);
    expect(events.find((e) => e.type === 'content_block_start')).toMatchObject({ index: 0, content_block: { type: 'text', text: '' } });
    expect(events.find((e) => e.type === 'message_delta')).toMatchObject({ delta: { stop_reason: 'refusal', stop_sequence: null } });
    expect(run([chunk({ content: 'Sure.' }), chunk({}, 'stop')]).find((e) => e.type === 'message_delta')).toMatchObject({ delta: { stop_reason: 'end_turn' } });
  });

  it('streams text as Anthropic does: message_start, one text block, message_delta with the usage, message_stop', () => {
    const events = run([chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hel' }), chunk({ content: 'lo' }), chunk({}, 'stop'), usageChunk(usage(3, 2))]);
    expect(events).toEqual([
      {
        type: 'message_start',
        message: {
          id: expect.stringMatching(/^msg_/) as unknown,
          type: 'message',
          role: 'assistant',
          model: 'claude-x',
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 9, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 0 },
        },
      },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hel' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'lo' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 2 } },
      { type: 'message_stop' },
    ]);
  });

  it('closes each thinking block once when every thinking_blocks delta repeats the blocks before it, as the Claude adapters send them', () => {
    const first = { type: 'thinking', thinking: 'Need weather.', signature: 'sig-1' };
    const hidden = { type: 'redacted_thinking', data: 'opaque' };
    const second = { type: 'thinking', thinking: 'Then Bergen.', signature: 'sig-2' };
    const events = run([
      thinking('Need weather.'),
      chunk({ extraJson: JSON.stringify({ thinking_blocks: [first] }) }),
      chunk({ extraJson: JSON.stringify({ thinking_blocks: [first, hidden] }) }),
      chunk({ content: 'Oslo first.' }),
      thinking('Then Bergen.'),
      chunk({ extraJson: JSON.stringify({ thinking_blocks: [first, hidden, second] }) }),
      chunk({}, 'stop'),
    ]);
    expect(events.slice(1, -2)).toEqual([
      { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Need weather.' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig-1' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'content_block_start', index: 1, content_block: hidden },
      { type: 'content_block_stop', index: 1 },
      { type: 'content_block_start', index: 2, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 2, delta: { type: 'text_delta', text: 'Oslo first.' } },
      { type: 'content_block_stop', index: 2 },
      { type: 'content_block_start', index: 3, content_block: { type: 'thinking', thinking: '', signature: '' } },
      { type: 'content_block_delta', index: 3, delta: { type: 'thinking_delta', thinking: 'Then Bergen.' } },
      { type: 'content_block_delta', index: 3, delta: { type: 'signature_delta', signature: 'sig-2' } },
      { type: 'content_block_stop', index: 3 },
    ]);
  });

  it('numbers thinking, text and tool_use blocks in order, the signature closing the streamed thinking', () => {
    const events = run([
      thinking('Need '),
      thinking('weather.'),
      signedBlock('Need weather.', 'sig-1'),
      chunk({ extraJson: JSON.stringify({ thinking_blocks: [{ type: 'redacted_thinking', data: 'opaque' }] }) }),
      chunk({ content: 'Checking.' }),
      chunk({ toolCalls: [{ index: 0, id: 'call_a', type: 'function', name: 'get_weather', arguments: '' }] }),
      chunk({ toolCalls: [{ index: 0, arguments: '{"city":' }] }),
      chunk({ toolCalls: [{ index: 0, arguments: '"Oslo"}' }] }),
      chunk({ toolCalls: [{ index: 1, id: 'call_b', type: 'function', name: 'get_time', arguments: '{}' }] }),
      chunk({}, 'tool_calls'),
    ]);
    expect(events.slice(1)).toEqual([
      { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Need ' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'weather.' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig-1' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'content_block_start', index: 1, content_block: { type: 'redacted_thinking', data: 'opaque' } },
      { type: 'content_block_stop', index: 1 },
      { type: 'content_block_start', index: 2, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 2, delta: { type: 'text_delta', text: 'Checking.' } },
      { type: 'content_block_stop', index: 2 },
      { type: 'content_block_start', index: 3, content_block: { type: 'tool_use', id: 'call_a', name: 'get_weather', input: {} } },
      // A call's arguments come whole, once the call ends.
      { type: 'content_block_delta', index: 3, delta: { type: 'input_json_delta', partial_json: '{"city":"Oslo"}' } },
      { type: 'content_block_stop', index: 3 },
      { type: 'content_block_start', index: 4, content_block: { type: 'tool_use', id: 'call_b', name: 'get_time', input: {} } },
      { type: 'content_block_delta', index: 4, delta: { type: 'input_json_delta', partial_json: '{}' } },
      { type: 'content_block_stop', index: 4 },
      { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { input_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 0 } },
      { type: 'message_stop' },
    ]);
  });

  it('sends a signed block that arrives whole (no streamed text) with its text, then its signature', () => {
    expect(run([signedBlock('All at once.', 'sig')]).slice(1, 5)).toEqual([
      { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'All at once.' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig' } },
      { type: 'content_block_stop', index: 0 },
    ]);
  });

  it('ends a cut answer with max_tokens, and takes the final usage it is given', () => {
    const events = run([chunk({ content: 'Once upon' }), chunk({}, 'length')], usage(7, 4, { cachedReadTokens: 2 }));
    expect(events.at(-2)).toEqual({ type: 'message_delta', delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { input_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 2, output_tokens: 4 } });
  });

  it('ends with stop_reason stop_sequence and the sequence when the finishing chunk names it', () => {
    const finish = chunk({}, 'stop');
    const named = { ...finish, choices: finish.choices.map((c) => ({ ...c, stopSequence: '\n\nHuman:' })) };
    expect(run([chunk({ content: 'Done' }), named]).at(-2)).toMatchObject({ type: 'message_delta', delta: { stop_reason: 'stop_sequence', stop_sequence: '\n\nHuman:' } });
    expect(run([chunk({ content: 'Done' }), finish]).at(-2)).toMatchObject({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null } });
  });

  it('fails with an error event in Anthropic shape', () => {
    const stream = new AnthropicStream('m', 1);
    expect(stream.fail(toAnthropicError(new GatewayError('upstream_error', 'The provider failed.')).body)).toEqual([{ type: 'error', error: { type: 'api_error', message: 'The provider failed.' } }]);
  });
});

describe('toAnthropicError', () => {
  it.each<[ErrorKind, Record<string, unknown>, number, string]>([
    ['bad_request', {}, 400, 'invalid_request_error'],
    ['bad_request', { code: 'request_too_large' }, 413, 'request_too_large'],
    ['context_length_exceeded', {}, 400, 'invalid_request_error'],
    ['content_filtered', {}, 400, 'invalid_request_error'],
    ['auth_failed', {}, 401, 'authentication_error'],
    ['auth_failed', { upstreamStatus: 401 }, 502, 'api_error'],
    ['budget_exceeded', {}, 402, 'billing_error'],
    ['permission_denied', {}, 403, 'permission_error'],
    ['permission_denied', { upstreamStatus: 403 }, 502, 'api_error'],
    ['not_found', {}, 404, 'not_found_error'],
    ['not_found', { upstreamStatus: 404 }, 502, 'api_error'],
    ['conflict', {}, 409, 'invalid_request_error'],
    ['rate_limited', {}, 429, 'rate_limit_error'],
    ['cancelled', {}, 499, 'invalid_request_error'],
    ['internal', {}, 500, 'api_error'],
    ['upstream_error', {}, 502, 'api_error'],
    ['overloaded', {}, 529, 'overloaded_error'],
    ['unavailable', {}, 503, 'overloaded_error'],
    ['timeout', {}, 504, 'timeout_error'],
  ])('maps %s %j to %i %s', (kind, options, status, type) => {
    const response = toAnthropicError(new GatewayError(kind, 'Something.', options));
    expect(response.status).toBe(status);
    expect(response.body).toEqual({ type: 'error', error: { type, message: kind === 'internal' ? 'The gateway failed to process the request.' : 'Something.' } });
  });

  it('keeps retry-after for a rate limit and an overload', () => {
    expect(toAnthropicError(new GatewayError('rate_limited', 'Slow down.', { retryAfterMs: 1500 })).headers).toEqual({ 'retry-after': '2', 'retry-after-ms': '1500' });
    expect(toAnthropicError(new GatewayError('unavailable', 'Later.', { retryAfterMs: 3000 })).headers).toEqual({ 'retry-after': '3', 'retry-after-ms': '3000' });
    expect(toAnthropicError(new GatewayError('rate_limited', 'Slow down.')).headers).toEqual({});
  });
});

describe('errors of the chat path in the request\'s words', () => {
  it.each([
    ['max_completion_tokens', 'max_tokens'],
    ['stop', 'stop_sequences'],
    ['user', 'metadata.user_id'],
    ['reasoning_effort', 'output_config.effort'],
    ['response_format.json_schema.schema', 'output_config.format'],
    ['messages[3].content', 'messages'],
    ['tools[1].function.parameters', 'tools[1].input_schema'],
    ['tools[0].function.name', 'tools[0].name'],
    ['tool_choice.function.name', 'tool_choice.name'],
    ['thinking', 'thinking'],
  ])('names %s as %s', (param, expected) => {
    expect(toMessagesParam(param)).toBe(expected);
  });

  it('renames the parameter in the message too', () => {
    const error = inMessagesTerms(new GatewayError('bad_request', 'max_completion_tokens may be at most 100; got 500.', { param: 'max_completion_tokens', code: 'invalid_value' }));
    expect(error).toMatchObject({ message: 'max_tokens may be at most 100; got 500.', param: 'max_tokens', code: 'invalid_value' });
  });
});

// ---- the official SDK reading what we emit, in process ----

type Respond = (path: string, body: Record<string, unknown>) => Response;

function sdk(respond: Respond): Anthropic {
  return new Anthropic({
    apiKey: 'sk-test',
    baseURL: 'http://gateway.test',
    maxRetries: 0,
    fetch: async (url: string | URL | Request, init?: RequestInit): Promise<Response> =>
      respond(new URL(url instanceof Request ? url.url : String(url)).pathname, typeof init?.body === 'string' ? (JSON.parse(init.body) as Record<string, unknown>) : {}),
  });
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Response => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

const sse = (events: readonly AnthropicStreamEvent[]): Response =>
  new Response(events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join(''), { status: 200, headers: { 'content-type': 'text/event-stream' } });

describe('the official @anthropic-ai/sdk', () => {
  it('sends bodies that translate to valid chat requests', async () => {
    let sent: Record<string, unknown> = {};
    const client = sdk((_path, body) => {
      sent = body;
      return json(toAnthropicMessage(completion({ content: 'ok' }), 'claude-x'));
    });
    await client.messages.create({
      model: 'claude-x',
      max_tokens: 2000,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Weather?' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '4 °C' }] },
      ],
      tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      tool_choice: { type: 'auto' },
      thinking: { type: 'enabled', budget_tokens: 1024 },
      metadata: { user_id: 'u-1' },
    });
    const chat = parseChatRequest(messagesToChatBody(sent));
    expect(chat.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool']);
    expect(chat.user).toBe('u-1');
  });

  it('reads our message', async () => {
    const body = toAnthropicMessage(
      completion(
        {
          extraJson: JSON.stringify({ thinking_blocks: [{ type: 'thinking', thinking: 'Hmm.', signature: 'sig' }] }),
          toolCalls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }],
        },
        'tool_calls',
      ),
      'claude-x',
    );
    const message = await sdk(() => json(body)).messages.create({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
    expect(message.stop_reason).toBe('tool_use');
    expect(message.content.map((b) => b.type)).toEqual(['thinking', 'tool_use']);
    const use = message.content[1];
    expect(use?.type === 'tool_use' ? use.input : undefined).toEqual({ city: 'Oslo' });
    expect(message.usage).toMatchObject({ input_tokens: 12, output_tokens: 5 });
  });

  it('assembles our stream with messages.stream() into the final message', async () => {
    const events = run(
      [
        thinking('Think.'),
        signedBlock('Think.', 'sig-1'),
        chunk({ content: 'It is ' }),
        chunk({ content: 'cold.' }),
        chunk({ toolCalls: [{ index: 0, id: 'toolu_9', type: 'function', name: 'get_weather', arguments: '{"ci' }] }),
        chunk({ toolCalls: [{ index: 0, arguments: 'ty":"Oslo"}' }] }),
        chunk({}, 'tool_calls'),
      ],
      usage(20, 8),
    );
    const stream = sdk(() => sse(events)).messages.stream({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
    let text = '';
    stream.on('text', (delta) => (text += delta));
    let signature = '';
    stream.on('signature', (s) => (signature = s));
    const final = await stream.finalMessage();
    expect(text).toBe('It is cold.');
    expect(signature).toBe('sig-1');
    expect(final.content).toEqual([
      { type: 'thinking', thinking: 'Think.', signature: 'sig-1' },
      { type: 'text', text: 'It is cold.' },
      { type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: { city: 'Oslo' } },
    ]);
    expect(final.stop_reason).toBe('tool_use');
    expect(final.usage).toMatchObject({ input_tokens: 20, output_tokens: 8 });
  });

  it('assembles streamed tool calls whose arguments are not a JSON object into the input a whole answer has ({})', async () => {
    const calls: Array<[string, string[]]> = [
      ['broken', ['{"city": Oslo', '}']],
      ['twice', ['{"city":"Oslo"}', '{"city":"Bergen"}']],
      ['array', ['[1,', '2]']],
      ['fine', ['{"ci', 'ty":"Oslo"}']],
    ];
    const chunks = calls.flatMap(([name, parts], index) => parts.map((args, k) => chunk({ toolCalls: [{ index, ...(k === 0 ? { id: `toolu_${name}`, type: 'function', name } : {}), arguments: args }] })));
    const events = run([...chunks, chunk({}, 'tool_calls')], usage(20, 8));
    const final = await sdk(() => sse(events))
      .messages.stream({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
      .finalMessage();
    const whole = toAnthropicMessage(completion({ toolCalls: calls.map(([name, parts]) => ({ id: `toolu_${name}`, type: 'function', function: { name, arguments: parts.join('') } })) }, 'tool_calls'), 'claude-x');
    expect(final.content).toEqual(whole['content']);
    expect(final.content.map((b) => (b.type === 'tool_use' ? b.input : undefined))).toEqual([{}, {}, {}, { city: 'Oslo' }]);
  });

  it('raises the error class of each error status, and APIError for an error event mid-stream', async () => {
    const cases: Array<[ErrorKind, new (...args: never[]) => APIError]> = [
      ['bad_request', BadRequestError],
      ['auth_failed', AuthenticationError],
      ['permission_denied', PermissionDeniedError],
      ['not_found', NotFoundError],
      ['rate_limited', RateLimitError],
      ['overloaded', InternalServerError],
    ];
    for (const [kind, errorClass] of cases) {
      const { status, body, headers } = toAnthropicError(new GatewayError(kind, `A ${kind} error.`));
      const error = await sdk(() => json(body, status, headers))
        .messages.create({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(errorClass);
      expect((error as APIError).message).toContain(`A ${kind} error.`);
    }

    const stream = new AnthropicStream('m', 1);
    const events = [...stream.start(), ...stream.chunk(chunk({ content: 'Hi' })), ...stream.fail(toAnthropicError(new GatewayError('upstream_error', 'The provider dropped the stream.')).body)];
    const failed = sdk(() => sse(events)).messages.stream({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] });
    const error = await failed.finalMessage().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).message).toContain('The provider dropped the stream.');
  });
});
