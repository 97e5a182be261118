import { ChatCompletionStream } from 'openai/lib/ChatCompletionStream';
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
