import { toOpenAIChunk } from '@openrouter/openai-wire';
import { AnthropicStreamTranslator } from './anthropic-stream';

const events = (...list: unknown[]): string[] => list.map((e) => JSON.stringify(e));
const start = { type: 'message_start', message: { id: 'msg_1', model: 'claude-sonnet-4-6', usage: { input_tokens: 5, output_tokens: 1 } } };

function replay(data: string[]): Record<string, unknown>[] {
  const translator = new AnthropicStreamTranslator({ responseTool: undefined, includeUsage: false, provider: 'anthropic', now: 1 });
  const deltas = data.flatMap((d) => translator.accept(d)).map((c) => (toOpenAIChunk(c, 'claude')['choices'] as Array<{ delta: Record<string, unknown> }>)[0]?.delta ?? {});
  expect(translator.complete).toBe(true);
  return deltas;
}

describe('AnthropicStreamTranslator and thinking', () => {
  it('streams thinking as reasoning_content deltas and hands each block, signed, out once at its stop', () => {
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
      { thinking_blocks: [{ type: 'redacted_thinking', data: 'b3BhcXVl' }] },
      { content: 'Sunny.' },
      {},
    ]);
  });
});
