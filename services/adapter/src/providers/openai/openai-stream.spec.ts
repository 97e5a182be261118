import type { chatv1 } from '@openrouter/contracts';
import { parseOpenAIChunk } from '@openrouter/openai-wire';
import { StreamUsage } from './openai-stream';

const SAFE = { filtered: false, severity: 'safe' };
const FILTERS = { hate: SAFE, self_harm: SAFE, sexual: SAFE, violence: SAFE };
const envelope = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_1' };

/** An Azure OpenAI stream (API 2024-10-21, default content filter) as the service sends it. */
const AZURE_STREAM = [
  { choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: { ...FILTERS, jailbreak: { filtered: false, detected: false } } }] },
  { ...envelope, choices: [{ content_filter_results: {}, delta: { content: '', refusal: null, role: 'assistant' }, finish_reason: null, index: 0, logprobs: null }], usage: null },
  { ...envelope, choices: [{ content_filter_results: FILTERS, delta: { content: 'Hi' }, finish_reason: null, index: 0, logprobs: null }], usage: null },
  { ...envelope, choices: [{ content_filter_results: {}, delta: {}, finish_reason: 'stop', index: 0, logprobs: null }], usage: null },
  { ...envelope, choices: [], usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } },
];

function passOn(events: unknown[]): chatv1.ChatChunk[] {
  const usage = new StreamUsage();
  const out: chatv1.ChatChunk[] = [];
  for (const event of events) {
    const chunk = usage.accept(parseOpenAIChunk(event));
    if (chunk) out.push(chunk);
  }
  const last = usage.end();
  if (last) out.push(last);
  return out;
}

describe('StreamUsage', () => {
  it("drops Azure's opening chunk of prompt filter results (no choices, no usage) and keeps the rest of the stream", () => {
    const chunks = passOn(AZURE_STREAM);
    expect(chunks.map((c) => c.choices.length)).toEqual([1, 1, 1, 0]);
    expect(chunks.slice(0, -1).every((c) => c.id === 'chatcmpl-1' && c.usage === undefined)).toBe(true);
    expect(chunks.at(-1)?.usage).toMatchObject({ promptTokens: 9, completionTokens: 1, totalTokens: 10 });
  });

  it('drops a chunk without choices or usage wherever it comes, and makes up no usage chunk when none came', () => {
    expect(passOn([AZURE_STREAM[0], AZURE_STREAM[2], { ...envelope, choices: [] }])).toEqual([parseOpenAIChunk(AZURE_STREAM[2])]);
  });
});
