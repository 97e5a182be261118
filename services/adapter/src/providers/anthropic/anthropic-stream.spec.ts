import { ChatCompletionStream } from 'openai/lib/ChatCompletionStream';
import type { chatv1 } from '@openrouter/contracts';
import { toOpenAIChunk } from '@openrouter/openai-wire';
import { AnthropicStreamTranslator } from './anthropic-stream';
import { countTextTokens } from '../text-tokens';

const events = (...list: unknown[]): string[] => list.map((e) => JSON.stringify(e));
const start = { type: 'message_start', message: { id: 'msg_1', model: 'claude-sonnet-4-6', usage: { input_tokens: 5, output_tokens: 1 } } };

/** The OpenAI chunks the events become. */
function translate(data: string[]): Record<string, unknown>[] {
  const translator = new AnthropicStreamTranslator({ responseTool: undefined, includeUsage: false, provider: 'anthropic', now: 1 });
  const chunks = data.flatMap((d) => translator.accept(d)).map((c) => toOpenAIChunk(c, 'claude'));
  expect(translator.complete).toBe(true);
  return chunks;
}

function replay(data: string[]): Record<string, unknown>[] {
  return translate(data).map((c) => (c['choices'] as Array<{ delta: Record<string, unknown> }>)[0]?.delta ?? {});
}

/** The message the official OpenAI SDK's stream helper assembles from the chunks, as `finalChatCompletion()` gives it. */
async function sdkMessage(data: string[]): Promise<Record<string, unknown>> {
  const lines = translate(data).map((c) => `${JSON.stringify(c)}\n`).join('');
  const final = await ChatCompletionStream.fromReadableStream(new Response(lines).body as ReadableStream).finalChatCompletion();
  return { ...final.choices[0]?.message };
}

const thought = (index: number, text: string, signature: string): unknown[] => [
  { type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } },
  { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: text } },
  { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature } },
  { type: 'content_block_stop', index },
];

describe('AnthropicStreamTranslator and thinking', () => {
  it('streams thinking as reasoning_content deltas and, at each block\'s end, thinking_blocks with every block so far', () => {
    const deltas = replay(
      events(
        start,
        { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'First, ' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Paris.' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'c2ln' } },
        { type: 'content_block_stop', index: 0 },
        { type: 'content_block_start', index: 1, content_block: { type: 'redacted_thinking', data: 'b3BhcXVl' } },
        { type: 'content_block_stop', index: 1 },
        { type: 'content_block_start', index: 2, content_block: { type: 'text', text: '' } },
        { type: 'content_block_delta', index: 2, delta: { type: 'text_delta', text: 'Sunny.' } },
        { type: 'content_block_stop', index: 2 },
        { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 30 } },
        { type: 'message_stop' },
      ),
    );
    expect(deltas).toEqual([
      { role: 'assistant', content: '' },
      { reasoning_content: 'First, ' },
      { reasoning_content: 'Paris.' },
      { thinking_blocks: [{ type: 'thinking', thinking: 'First, Paris.', signature: 'c2ln' }] },
      {
        thinking_blocks: [
          { type: 'thinking', thinking: 'First, Paris.', signature: 'c2ln' },
          { type: 'redacted_thinking', data: 'b3BhcXVl' },
        ],
      },
      { content: 'Sunny.' },
      {},
    ]);
  });

  it("leaves the OpenAI SDK's stream helper, which keeps a field's latest value, with every block in order, to hand back", async () => {
    const message = await sdkMessage(
      events(
        start,
        { type: 'content_block_start', index: 0, content_block: { type: 'redacted_thinking', data: 'b3BhcXVl' } },
        { type: 'content_block_stop', index: 0 },
        ...thought(1, 'Oslo first.', 'c2lnLTE='),
        ...thought(2, 'Then Bergen.', 'c2lnLTI='),
        { type: 'content_block_start', index: 3, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather' } },
        { type: 'content_block_delta', index: 3, delta: { type: 'input_json_delta', partial_json: '{"city":"Oslo"}' } },
        { type: 'content_block_stop', index: 3 },
        { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 30 } },
        { type: 'message_stop' },
      ),
    );
    expect(message['thinking_blocks']).toEqual([
      { type: 'redacted_thinking', data: 'b3BhcXVl' },
      { type: 'thinking', thinking: 'Oslo first.', signature: 'c2lnLTE=' },
      { type: 'thinking', thinking: 'Then Bergen.', signature: 'c2lnLTI=' },
    ]);
    // The helper adds up only the fields OpenAI defines: reasoning_content is its last fragment (documented).
    expect(message['reasoning_content']).toBe('Then Bergen.');
  });
});

describe("AnthropicStreamTranslator and Claude's reasoning tokens", () => {
  /** The usage chunk that ends the stream. */
  function usageOf(data: string[]): Record<string, unknown> | undefined {
    const translator = new AnthropicStreamTranslator({ responseTool: undefined, includeUsage: true, provider: 'anthropic', now: 1 });
    const chunks = data.flatMap((d) => translator.accept(d));
    expect(translator.complete).toBe(true);
    return toOpenAIChunk(chunks[chunks.length - 1] ?? { id: '', created: 0, model: '', choices: [], usage: undefined, systemFingerprint: undefined, serviceTier: undefined }, 'claude')['usage'] as Record<string, unknown> | undefined;
  }
  const text = (index: number, ...parts: string[]): unknown[] => [
    { type: 'content_block_start', index, content_block: { type: 'text', text: '' } },
    ...parts.map((t) => ({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: t } })),
    { type: 'content_block_stop', index },
  ];
  const end = (outputTokens: number): unknown[] => [{ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: outputTokens } }, { type: 'message_stop' }];

  it('counts the output beyond the visible answer when Claude 4 streams only a short summary of its thinking', () => {
    const usage = usageOf(
      events(
        start,
        ...thought(0, 'Oslo is in Norway; ask for its weather.', 'c2ln'),
        ...text(1, 'Checking ', 'Oslo.'),
        { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather' } },
        { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"city":' } },
        { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '"Oslo"}' } },
        { type: 'content_block_stop', index: 2 },
        ...end(1800),
      ),
    );
    const answer = countTextTokens('Checking Oslo.') + countTextTokens('get_weather') + countTextTokens('{"city":"Oslo"}');
    expect(answer).toBeLessThan(20);
    expect(usage).toMatchObject({ completion_tokens: 1800, completion_tokens_details: { reasoning_tokens: 1800 - answer } });
  });

  it('gives redacted thinking the output beyond the visible answer, including text streamed before it', () => {
    const usage = usageOf(
      events(
        start,
        ...text(0, 'Let me ', 'look.'),
        { type: 'content_block_start', index: 1, content_block: { type: 'redacted_thinking', data: 'b3BhcXVl' } },
        { type: 'content_block_stop', index: 1 },
        ...text(2, 'Hi there.'),
        ...end(400),
      ),
    );
    expect(usage).toMatchObject({ completion_tokens: 400, completion_tokens_details: { reasoning_tokens: 400 - countTextTokens('Let me look.') - countTextTokens('Hi there.') } });
  });

  it('reports no reasoning for a stream without thinking, however long its output', () => {
    expect(usageOf(events(start, ...text(0, 'Hi there.'), ...end(400)))).toMatchObject({ completion_tokens: 400, completion_tokens_details: { reasoning_tokens: 0 } });
  });
});

describe('AnthropicStreamTranslator when the stream fails mid-way', () => {
  /** A prompt mostly read from the cache, part of it written for an hour: what a failure's usage must keep apart. */
  const cachedStart = {
    type: 'message_start',
    message: {
      id: 'msg_2',
      model: 'claude-sonnet-4-5',
      usage: { input_tokens: 20, cache_read_input_tokens: 100_000, cache_creation_input_tokens: 300, cache_creation: { ephemeral_1h_input_tokens: 200 }, output_tokens: 1 },
    },
  };
  const overloaded = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };

  /** The chunks that went out before the failure, the failure, and the usage the translator then has. */
  function failAt(data: string[], includeUsage = true): { chunks: number; error: unknown; usage: chatv1.ChatChunk[] } {
    const translator = new AnthropicStreamTranslator({ responseTool: undefined, includeUsage, provider: 'anthropic', now: 1 });
    let chunks = 0;
    let error: unknown;
    try {
      for (const d of data) chunks += translator.accept(d).length;
    } catch (thrown) {
      error = thrown;
    }
    return { chunks, error, usage: translator.usageSoFar() };
  }

  it('reports the prompt as message_start counted it, cache reads and writes apart, and the streamed output, estimated, after an error event', () => {
    const { error, usage } = failAt(
      events(
        cachedStart,
        ...thought(0, 'The user wants a greeting.', 'c2ln'),
        { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
        { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Hello there, partial answer' } },
        overloaded,
      ),
    );
    expect(error).toMatchObject({ kind: 'overloaded', upstreamStatus: 529 });
    const thinking = countTextTokens('The user wants a greeting.');
    const completionTokens = thinking + countTextTokens('Hello there, partial answer');
    expect(usage).toHaveLength(1);
    expect(usage[0]?.choices).toEqual([]);
    expect(usage[0]?.usage).toEqual({
      promptTokens: 100_320,
      completionTokens,
      totalTokens: 100_320 + completionTokens,
      cachedReadTokens: 100_000,
      cacheWriteTokens: 300,
      cacheWrite1hTokens: 200,
      reasoningTokens: thinking,
      estimated: true,
    });
  });

  it("counts a thinking block still open and a tool call's name and input in the estimate", () => {
    const { usage } = failAt(
      events(
        cachedStart,
        { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Weather in Oslo, then.' } },
        overloaded,
      ),
    );
    expect(usage[0]?.usage).toMatchObject({ completionTokens: countTextTokens('Weather in Oslo, then.'), reasoningTokens: countTextTokens('Weather in Oslo, then.'), estimated: true });
    const tool = failAt(
      events(
        cachedStart,
        { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"city":"Os' } },
        overloaded,
      ),
    );
    expect(tool.usage[0]?.usage).toMatchObject({ completionTokens: countTextTokens('get_weather') + countTextTokens('{"city":"Os'), reasoningTokens: 0, estimated: true });
  });

  it("reports message_delta's output count as it is once one came", () => {
    const { usage } = failAt(
      events(
        cachedStart,
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi.' } },
        { type: 'content_block_stop', index: 0 },
        { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 42 } },
        overloaded,
      ),
    );
    expect(usage[0]?.usage).toMatchObject({ promptTokens: 100_320, completionTokens: 42, cachedReadTokens: 100_000, estimated: false });
  });

  it('reports nothing before the answer began (the router may still fail over), nor without include_usage, nor after message_stop', () => {
    const early = failAt(events(cachedStart, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, { type: 'ping' }, overloaded));
    expect(early.chunks).toBe(1);
    expect(early.error).toMatchObject({ kind: 'overloaded' });
    expect(early.usage).toEqual([]);
    const text = [{ type: 'content_block_start', index: 0, content_block: { type: 'text', text: 'Hi.' } }];
    expect(failAt(events(cachedStart, ...text, overloaded), false).usage).toEqual([]);
    const done = failAt(events(cachedStart, ...text, { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } }, { type: 'message_stop' }));
    expect(done.error).toBeUndefined();
    expect(done.usage).toEqual([]);
  });
});
