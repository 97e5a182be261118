import { GatewayError } from '@openrouter/errors';
import { parseAnthropicMessage } from './anthropic-response';
import { AnthropicStreamTranslator } from './anthropic-stream';
import { countTextTokens } from '../text-tokens';

const message = (over: Record<string, unknown>) => ({
  id: 'msg_01',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4-5',
  content: [{ type: 'text', text: 'Hello' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 10, output_tokens: 5 },
  ...over,
});
const parse = (over: Record<string, unknown>, responseTool?: string) => parseAnthropicMessage(message(over), { responseTool, provider: 'anthropic', now: 1 });

describe("Claude's reasoning tokens", () => {
  const thinking = { type: 'thinking', thinking: 'Oslo is in Norway; ask for its weather.', signature: 'c2ln' };

  it('estimates them from the thinking text and the output beyond the answer, at most output_tokens, and leaves completion_tokens (what is billed) as Anthropic counted it', () => {
    // The thinking text is 11 tokens; "Checking." is 2, so the output beyond the answer (58) is larger.
    const usage = parse({ content: [thinking, { type: 'text', text: 'Checking.' }], usage: { input_tokens: 10, output_tokens: 60 } }).usage;
    expect(usage).toMatchObject({ completionTokens: 60, totalTokens: 70, reasoningTokens: 58, estimated: false });
    // A thinking text longer than the output left beyond the answer (a full, not summarised, thinking) is taken as it is.
    expect(parse({ content: [thinking, { type: 'text', text: 'Checking.' }], usage: { input_tokens: 10, output_tokens: 12 } }).usage?.reasoningTokens).toBe(11);
    expect(parse({ content: [thinking], usage: { input_tokens: 10, output_tokens: 6 } }).usage).toMatchObject({ completionTokens: 6, reasoningTokens: 6 });
  });

  it('counts the output beyond the visible answer when Claude 4 returns only a short summary of its thinking', () => {
    // Claude 4 bills its whole thinking inside output_tokens but returns an 11-token summary of it.
    const content = [thinking, { type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }];
    const answer = countTextTokens('Checking.') + countTextTokens('get_weather') + countTextTokens('{"city":"Oslo"}');
    expect(answer).toBeLessThan(20);
    const usage = parse({ content, stop_reason: 'tool_use', usage: { input_tokens: 10, output_tokens: 1800 } }).usage;
    expect(usage).toMatchObject({ completionTokens: 1800, reasoningTokens: 1800 - answer, estimated: false });
  });

  it('gives redacted thinking, whose text is encrypted, the output beyond the visible answer', () => {
    const usage = parse({ content: [{ type: 'redacted_thinking', data: 'RW5j' }, { type: 'text', text: 'Hi there.' }], usage: { input_tokens: 10, output_tokens: 400 } }).usage;
    expect(usage?.reasoningTokens).toBe(400 - countTextTokens('Hi there.'));
  });

  it('reports no reasoning for an answer without thinking, however long its output', () => {
    expect(parse({ content: [{ type: 'text', text: 'Hi there.' }], usage: { input_tokens: 10, output_tokens: 400 } }).usage?.reasoningTokens).toBe(0);
  });

  it('takes the count Anthropic reports apart when it does', () => {
    const usage = parse({ content: [thinking], usage: { input_tokens: 10, output_tokens: 60, output_tokens_details: { thinking_tokens: 42 } } }).usage;
    expect(usage).toMatchObject({ completionTokens: 60, reasoningTokens: 42 });
  });
});

function thrown(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a GatewayError');
}

describe('parseAnthropicMessage', () => {
  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['pause_turn', 'stop'],
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['refusal', 'content_filter'],
    [null, 'stop'],
  ])('maps stop_reason %s to finish_reason %s', (stopReason, finish) => {
    expect(parse({ stop_reason: stopReason }).choices[0]?.finishReason).toBe(finish);
  });

  it('carries the stop sequence Anthropic says ended the answer, and none otherwise', () => {
    const stopped = parse({ content: [{ type: 'text', text: 'Once upon' }], stop_reason: 'stop_sequence', stop_sequence: '\n\nHuman:' }).choices[0];
    expect(stopped).toMatchObject({ finishReason: 'stop', stopSequence: '\n\nHuman:' });
    expect(parse({ stop_reason: 'end_turn', stop_sequence: null }).choices[0]?.stopSequence).toBeUndefined();
    expect(parse({ stop_reason: 'stop_sequence', stop_sequence: null }).choices[0]?.stopSequence).toBeUndefined();
  });

  it('gives null content beside tool calls when the model said nothing, and an empty string otherwise', () => {
    const tools = parse({ content: [{ type: 'tool_use', id: 'toolu_1', name: 'f', input: {} }], stop_reason: 'tool_use' });
    expect(tools.choices[0]?.message?.content).toBeUndefined();
    expect(tools.choices[0]?.message?.toolCalls).toEqual([{ id: 'toolu_1', type: 'function', function: { name: 'f', arguments: '{}' } }]);
    expect(tools.choices[0]?.finishReason).toBe('tool_calls');
    expect(parse({ content: [] }).choices[0]?.message?.content).toBe('');
  });

  it('carries thinking as reasoning_content and the blocks, signed, as thinking_blocks; thinking tokens are reasoning tokens', () => {
    const c = parse({
      content: [{ type: 'thinking', thinking: 'hmm', signature: 'sig' }, { type: 'redacted_thinking', data: 'xyz' }, { type: 'text', text: 'Done.' }],
      usage: { input_tokens: 10, output_tokens: 50, output_tokens_details: { thinking_tokens: 40 } },
    });
    const message = c.choices[0]?.message;
    expect(message?.content).toBe('Done.');
    expect(JSON.parse(message?.extraJson ?? '')).toEqual({
      reasoning_content: 'hmm',
      thinking_blocks: [
        { type: 'thinking', thinking: 'hmm', signature: 'sig' },
        { type: 'redacted_thinking', data: 'xyz' },
      ],
    });
    expect(c.usage).toMatchObject({ promptTokens: 10, completionTokens: 50, reasoningTokens: 40 });
    expect(parse({ content: [{ type: 'text', text: 'Plain.' }] }).choices[0]?.message?.extraJson).toBe('');
  });

  it('treats null cache counts as zero and tolerates a missing usage', () => {
    expect(parse({ usage: { input_tokens: 7, output_tokens: 3, cache_read_input_tokens: null, cache_creation_input_tokens: null } }).usage).toEqual({
      promptTokens: 7,
      completionTokens: 3,
      totalTokens: 10,
      cachedReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      estimated: false,
    });
    expect(parse({ usage: undefined }).usage).toBeUndefined();
  });

  it('tells the cache writes kept an hour apart, as Anthropic splits them', () => {
    const usage = { input_tokens: 10, output_tokens: 3, cache_read_input_tokens: 0, cache_creation_input_tokens: 1500, cache_creation: { ephemeral_5m_input_tokens: 300, ephemeral_1h_input_tokens: 1200 } };
    expect(parse({ usage }).usage).toMatchObject({ promptTokens: 1510, cacheWriteTokens: 1500, cacheWrite1hTokens: 1200 });
    expect(parse({ usage: { ...usage, cache_creation: { ephemeral_5m_input_tokens: 1500, ephemeral_1h_input_tokens: 0 } } }).usage).not.toHaveProperty('cacheWrite1hTokens');
  });

  it('returns a JSON answer and a client tool call side by side when the model made both', () => {
    const c = parse(
      {
        content: [
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
          { type: 'tool_use', id: 'toolu_2', name: 'json_response', input: { ok: true } },
        ],
        stop_reason: 'tool_use',
      },
      'json_response',
    );
    expect(c.choices[0]?.message?.content).toBe('{"ok":true}');
    expect(c.choices[0]?.message?.toolCalls.map((t) => t.function?.name)).toEqual(['get_weather']);
    expect(c.choices[0]?.finishReason).toBe('tool_calls');
  });

  it('calls a body that is not a message a malformed upstream answer', () => {
    expect(thrown(() => parseAnthropicMessage({ type: 'error' }, { responseTool: undefined, provider: 'anthropic' }))).toMatchObject({ kind: 'upstream_error', retryable: true });
    expect(thrown(() => parseAnthropicMessage('nope', { responseTool: undefined, provider: 'anthropic' })).kind).toBe('upstream_error');
  });
});

describe('the service tier Anthropic says served the request', () => {
  const tierOf = (serviceTier: unknown) => parse({ usage: { input_tokens: 10, output_tokens: 5, service_tier: serviceTier } }).serviceTier;
  const streamedTierOf = (serviceTier: unknown) => {
    const t = new AnthropicStreamTranslator({ responseTool: undefined, includeUsage: true, provider: 'anthropic', now: 1 });
    const chunks = [
      { type: 'message_start', message: { id: 'msg_1', model: 'claude', usage: { input_tokens: 5, output_tokens: 1, service_tier: serviceTier } } },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } },
      { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } },
      { type: 'message_stop' },
    ].flatMap((e) => t.accept(JSON.stringify(e)));
    // Every chunk, the usage chunk included, carries it, as OpenAI's do: the usage record is priced at that tier.
    const tiers = new Set(chunks.map((c) => c.serviceTier));
    expect(tiers.size).toBe(1);
    return [...tiers][0];
  };

  it.each([
    ['standard', 'default'],
    ['priority', 'priority'],
    ['batch', undefined],
    [null, undefined],
    [undefined, undefined],
  ])('reports %j as service_tier %j, in an answer and in a stream', (served, tier) => {
    expect(tierOf(served)).toBe(tier);
    expect(streamedTierOf(served)).toBe(tier);
  });
});

describe('AnthropicStreamTranslator', () => {
  const translator = (includeUsage = true) => new AnthropicStreamTranslator({ responseTool: undefined, includeUsage, provider: 'anthropic', now: 1 });
  const start = JSON.stringify({ type: 'message_start', message: { id: 'msg_1', model: 'claude', usage: { input_tokens: 5, output_tokens: 1 } } });
  const stop = JSON.stringify({ type: 'message_stop' });

  it('still finishes with a finish_reason when message_delta never came', () => {
    const t = translator(false);
    t.accept(start);
    const chunks = t.accept(stop);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.choices[0]?.finishReason).toBe('stop');
    expect(t.complete).toBe(true);
  });

  it('ends with the usage chunk only when asked for, counting cumulative message_delta usage', () => {
    const t = translator(true);
    t.accept(start);
    t.accept(JSON.stringify({ type: 'message_delta', delta: { stop_reason: 'max_tokens' }, usage: { output_tokens: 12, input_tokens: 9, cache_read_input_tokens: 100 } }));
    expect(t.accept(JSON.stringify({ type: 'message_delta', delta: { stop_reason: 'max_tokens' }, usage: { output_tokens: 12 } }))).toEqual([]);
    const [last] = t.accept(stop);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({ promptTokens: 109, completionTokens: 12, totalTokens: 121, cachedReadTokens: 100 });
    expect(t.accept(start)).toEqual([]);
  });

  it('carries the stop sequence message_delta names on the finishing chunk', () => {
    const t = translator(false);
    t.accept(start);
    const [finish] = t.accept(JSON.stringify({ type: 'message_delta', delta: { stop_reason: 'stop_sequence', stop_sequence: 'END' }, usage: { output_tokens: 3 } }));
    expect(finish?.choices[0]).toMatchObject({ finishReason: 'stop', stopSequence: 'END' });
    const other = translator(false);
    other.accept(start);
    const [ended] = other.accept(JSON.stringify({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }));
    expect(ended?.choices[0]?.stopSequence).toBeUndefined();
  });

  it('skips event types it does not know and refuses malformed events', () => {
    const t = translator();
    t.accept(start);
    expect(t.accept(JSON.stringify({ type: 'future_event', payload: 1 }))).toEqual([]);
    expect(thrown(() => t.accept('{not json')).kind).toBe('upstream_error');
    expect(thrown(() => t.accept(JSON.stringify({ type: 'content_block_delta', index: 4, delta: { type: 'text_delta', text: 'x' } }))).kind).toBe('upstream_error');
    expect(thrown(() => translator().accept(JSON.stringify({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }))).kind).toBe('upstream_error');
  });

  it.each([
    ['overloaded_error', 'overloaded', true],
    ['rate_limit_error', 'rate_limited', true],
    ['api_error', 'upstream_error', true],
    ['invalid_request_error', 'bad_request', false],
    ['mystery_error', 'upstream_error', true],
  ])('turns an error event of type %s into %s (retryable %s)', (type, kind, retryable) => {
    const t = translator();
    t.accept(start);
    const error = thrown(() => t.accept(JSON.stringify({ type: 'error', error: { type, message: 'boom' } })));
    expect(error).toMatchObject({ kind, retryable, provider: 'anthropic' });
  });
});
