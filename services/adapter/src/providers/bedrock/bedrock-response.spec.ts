import { GatewayError } from '@openrouter/errors';
import { toOpenAICompletion } from '@openrouter/openai-wire';
import { JSON_RESPONSE_TOOL } from './bedrock-request';
import { finishReason, fromConverseResponse, toCanonicalUsage } from './bedrock-response';
import textResponse from './fixtures/converse-text.response.json';
import thinkingResponse from './fixtures/converse-thinking.response.json';
import toolResponse from './fixtures/converse-tool-use.response.json';
import { countTextTokens } from '../text-tokens';

const ctx = { id: 'chatcmpl-req-1', created: 1_740_000_000, model: 'anthropic.claude-3-5-sonnet-20241022-v2:0', jsonTool: undefined };

describe('Converse response translation', () => {
  it('gives a text answer the OpenAI completion shape', () => {
    const completion = fromConverseResponse(textResponse, ctx);
    expect(toOpenAICompletion(completion, 'public-model')).toEqual({
      id: 'chatcmpl-req-1',
      object: 'chat.completion',
      created: 1_740_000_000,
      model: 'public-model',
      choices: [{ index: 0, message: { role: 'assistant', content: "Lisbon sits on the Tagus estuary. It is Portugal's capital.", refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 21, completion_tokens: 14, total_tokens: 35, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
    });
  });

  it('gives parallel tool uses as tool_calls, with cache reads and writes counted into prompt tokens', () => {
    const completion = fromConverseResponse(toolResponse, ctx);
    const choice = completion.choices[0];
    expect(choice?.finishReason).toBe('tool_calls');
    expect(choice?.message?.content).toBe('Checking both cities.');
    expect(choice?.message?.toolCalls).toEqual([
      { id: 'tooluse_Qm2rT8xLw0aV1bN3cD4eF5', type: 'function', function: { name: 'lookup_tide', arguments: '{"port":"Porto","day":"2025-03-02"}' } },
      { id: 'tooluse_Zx9yW8vU7tS6rQ5pO4nM3l', type: 'function', function: { name: 'lookup_tide', arguments: '{"port":"Faro","day":"2025-03-02"}' } },
    ]);
    expect(completion.usage).toEqual({ promptTokens: 1240, completionTokens: 58, totalTokens: 1298, cachedReadTokens: 1100, cacheWriteTokens: 100, reasoningTokens: 0, estimated: false });
  });

  it("estimates Claude's reasoning tokens (Converse counts them inside outputTokens), leaving completion_tokens as billed", () => {
    const completion = fromConverseResponse(thinkingResponse, ctx);
    // The thinking text is 14 tokens; the output beyond the answer ("Lisbon sits on the Tagus estuary.", 10 tokens) is 86, the larger.
    expect(completion.usage).toEqual({ promptTokens: 21, completionTokens: 96, totalTokens: 117, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 86, estimated: false });
    expect(toOpenAICompletion(completion, 'm')['usage']).toMatchObject({ completion_tokens: 96, completion_tokens_details: { reasoning_tokens: 86 } });
    // At most the output tokens; other models' unsigned reasoning is not Claude's thinking and counts 0.
    expect(fromConverseResponse({ ...thinkingResponse, usage: { inputTokens: 21, outputTokens: 9 } }, ctx).usage?.reasoningTokens).toBe(9);
    const unsigned = { ...thinkingResponse, output: { message: { role: 'assistant', content: [{ reasoningContent: { reasoningText: { text: 'Think it over.' } } }, { text: 'Done.' }] } } };
    expect(fromConverseResponse(unsigned, ctx).usage?.reasoningTokens).toBe(0);
  });

  it("counts Claude's output beyond the visible answer when it returns only a short summary of its thinking", () => {
    const content = [
      { reasoningContent: { reasoningText: { text: 'Tides first.', signature: 'c2ln' } } },
      { text: 'Checking Porto.' },
      { toolUse: { toolUseId: 'tooluse_1', name: 'lookup_tide', input: { port: 'Porto' } } },
    ];
    const json = { output: { message: { role: 'assistant', content } }, stopReason: 'tool_use', usage: { inputTokens: 21, outputTokens: 1500 } };
    const answer = countTextTokens('Checking Porto.') + countTextTokens('lookup_tide') + countTextTokens('{"port":"Porto"}');
    expect(answer).toBeLessThan(20);
    expect(fromConverseResponse(json, ctx).usage).toMatchObject({ completionTokens: 1500, reasoningTokens: 1500 - answer });
  });

  it("gives Claude's redacted thinking the output beyond the visible answer, and an answer without thinking none", () => {
    const redacted = { output: { message: { role: 'assistant', content: [{ reasoningContent: { redactedContent: 'RW5j' } }, { text: 'Done.' }] } }, stopReason: 'end_turn', usage: { inputTokens: 21, outputTokens: 300 } };
    expect(fromConverseResponse(redacted, ctx).usage?.reasoningTokens).toBe(300 - countTextTokens('Done.'));
    const plain = { ...redacted, output: { message: { role: 'assistant', content: [{ text: 'Done.' }] } } };
    expect(fromConverseResponse(plain, ctx).usage?.reasoningTokens).toBe(0);
  });

  it('gives content null when the answer is tool calls only', () => {
    const json = { ...toolResponse, output: { message: { role: 'assistant', content: toolResponse.output.message.content.slice(1) } } };
    const message = toOpenAICompletion(fromConverseResponse(json, ctx), 'm')['choices'] as { message: Record<string, unknown> }[];
    expect(message[0]?.message['content']).toBeNull();
  });

  it('returns the json_schema answer tool as text with finish_reason stop', () => {
    const json = { output: { message: { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_x', name: JSON_RESPONSE_TOOL, input: { ok: true } } }] } }, stopReason: 'tool_use' };
    const completion = fromConverseResponse(json, { ...ctx, jsonTool: JSON_RESPONSE_TOOL });
    expect(completion.choices[0]).toMatchObject({ finishReason: 'stop', message: { content: '{"ok":true}', toolCalls: [] } });
  });

  it("carries Claude's reasoning as reasoning_content and thinking_blocks with the signature, so a tool turn can hand it back", () => {
    const json = {
      output: { message: { role: 'assistant', content: [{ reasoningContent: { reasoningText: { text: 'Think.', signature: 'c2lnbmF0dXJl' } } }, { text: 'Done.' }] } },
      stopReason: 'end_turn',
    };
    const message = toOpenAICompletion(fromConverseResponse(json, ctx), 'm')['choices'] as { message: Record<string, unknown> }[];
    expect(message[0]?.message).toEqual({
      role: 'assistant',
      content: 'Done.',
      refusal: null,
      reasoning_content: 'Think.',
      thinking_blocks: [{ type: 'thinking', thinking: 'Think.', signature: 'c2lnbmF0dXJl' }],
    });
    // Other models' reasoning (DeepSeek, …) is unsigned: text only, no block to hand back.
    const unsigned = { ...json, output: { message: { role: 'assistant', content: [{ reasoningContent: { reasoningText: { text: 'Think.' } } }, { text: 'Done.' }] } } };
    expect(fromConverseResponse(unsigned, ctx).choices[0]?.message).toMatchObject({ content: 'Done.', extraJson: '{"reasoning_content":"Think."}' });
  });

  it("gives Claude's redacted reasoning as a redacted_thinking block, with the tool calls it led to", () => {
    const json = {
      output: {
        message: {
          role: 'assistant',
          content: [
            { reasoningContent: { redactedContent: 'ZW5jcnlwdGVk' } },
            { reasoningContent: { reasoningText: { text: 'Then the tool.', signature: 'c2ln' } } },
            { toolUse: { toolUseId: 'tooluse_1', name: 'lookup', input: { q: 'x' } } },
          ],
        },
      },
      stopReason: 'tool_use',
    };
    const choice = fromConverseResponse(json, ctx).choices[0];
    expect(choice?.finishReason).toBe('tool_calls');
    expect(JSON.parse(choice?.message?.extraJson ?? '')).toEqual({
      reasoning_content: 'Then the tool.',
      thinking_blocks: [
        { type: 'redacted_thinking', data: 'ZW5jcnlwdGVk' },
        { type: 'thinking', thinking: 'Then the tool.', signature: 'c2ln' },
      ],
    });
  });

  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['tool_use', 'tool_calls'],
    ['guardrail_intervened', 'content_filter'],
    ['content_filtered', 'content_filter'],
    ['something_new', 'stop'],
  ])('maps stopReason %s to %s', (stop, finish) => {
    expect(finishReason(stop)).toBe(finish);
  });

  it.each(['malformed_model_output', 'malformed_tool_use'])('fails an answer that stopped with %s without text or tool calls as a non-retryable upstream_error (502)', (stopReason) => {
    const json = { output: { message: { role: 'assistant', content: [] } }, stopReason, usage: { inputTokens: 812, outputTokens: 0, totalTokens: 812 } };
    expect(() => fromConverseResponse(json, { ...ctx, provider: 'bedrock' })).toThrow(
      expect.objectContaining({ kind: 'upstream_error', retryable: false, provider: 'bedrock', message: `The provider "bedrock" ended the answer without content (stop reason ${stopReason}).` }),
    );
    const reasoningOnly = { ...json, output: { message: { role: 'assistant', content: [{ reasoningContent: { reasoningText: { text: 'Call the tool.' } } }] } } };
    expect(() => fromConverseResponse(reasoningOnly, ctx)).toThrow(expect.objectContaining({ kind: 'upstream_error', retryable: false }));
  });

  it('keeps an answer with text that stopped with malformed_tool_use', () => {
    const json = { output: { message: { role: 'assistant', content: [{ text: 'Let me check.' }] } }, stopReason: 'malformed_tool_use' };
    expect(fromConverseResponse(json, ctx).choices[0]).toMatchObject({ finishReason: 'stop', message: { content: 'Let me check.' } });
  });

  it("names the stop sequence that ended the answer: Claude's own field, else the request's only one", () => {
    const stopped = { ...textResponse, stopReason: 'stop_sequence' };
    const choice = (json: unknown, stopSequences: string[]) => fromConverseResponse(json, { ...ctx, stopSequences }).choices[0];
    expect(choice({ ...stopped, additionalModelResponseFields: { stop_sequence: 'END' } }, ['STOP', 'END'])).toMatchObject({ finishReason: 'stop', stopSequence: 'END' });
    // A model without the field: one stop sequence sent can only be that one; of several, which is unknown.
    expect(choice(stopped, ['END'])?.stopSequence).toBe('END');
    expect(choice(stopped, ['STOP', 'END'])?.stopSequence).toBeUndefined();
    expect(choice({ ...textResponse, additionalModelResponseFields: { stop_sequence: null } }, ['END'])?.stopSequence).toBeUndefined();
    expect(choice({ ...textResponse, stopReason: 'max_tokens' }, ['END'])?.stopSequence).toBeUndefined();
  });

  it('treats missing usage fields as zero', () => {
    expect(toCanonicalUsage({ outputTokens: 3 })).toMatchObject({ promptTokens: 0, completionTokens: 3, totalTokens: 3 });
  });

  it('rejects a body that is not a Converse response as upstream_error', () => {
    expect(() => fromConverseResponse({ choices: [] }, ctx)).toThrow(GatewayError);
    expect(() => fromConverseResponse({ choices: [] }, ctx)).toThrow(expect.objectContaining({ kind: 'upstream_error' }));
  });
});
