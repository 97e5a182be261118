import { DEFAULT_BEHAVIOUR, mergeBehaviour } from '../core/behaviour-config';
import { SeededRandom } from '../core/seeded-random';
import { countTokens } from '../core/token-counter';
import { OPENAI_REFUSAL_TRIGGER, planChatCompletion } from './openai-chat-planner';
import { chatCompletionBody, chatCompletionFrames } from './openai-formats';
import { chatCompletionRequestSchema } from './openai-request-schemas';

const behaviour = mergeBehaviour(DEFAULT_BEHAVIOUR, {});
const context = (): { seed: number; ids: SeededRandom; now: number } => ({ seed: 1, ids: new SeededRandom(5), now: 1_700_000_000_500 });

function plan(body: Record<string, unknown>, b = behaviour) {
  const request = chatCompletionRequestSchema.parse({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }], ...body });
  return planChatCompletion(request, b, context());
}

function okPlan(body: Record<string, unknown>, b = behaviour) {
  const result = plan(body, b);
  if (!result.ok) throw new Error(result.problem.message);
  return result;
}

describe('chat completion planner', () => {
  it('answers with the behaviour’s reply length and stable ids for a seed', () => {
    const { plan: p } = okPlan({});
    expect(p.choices).toHaveLength(1);
    expect(p.choices[0]).toMatchObject({ index: 0, finishReason: 'stop', completionTokens: 16 });
    expect(p.created).toBe(1_700_000_000);
    expect(p.id).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/);
    expect(okPlan({}).plan.id).toBe(p.id);
    expect(p.systemFingerprint).toMatch(/^fp_/);
  });

  it('counts prompt tokens with the per-message overhead, including names and tool calls', () => {
    const { plan: p } = okPlan({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', name: 'bob', content: [{ type: 'text', text: 'Part one' }, { type: 'image_url', image_url: { url: 'x' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'ok' },
      ],
    });
    const texts = ['Be brief.', 'Part one', 'bob', 'f', '{}', 'ok'];
    expect(p.promptTokens).toBe(3 + 4 * 3 + texts.reduce((sum, t) => sum + countTokens(t), 0));
  });

  it('returns n distinct choices and sums their usage', () => {
    const { plan: p } = okPlan({ n: 3 });
    expect(p.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(p.choices.map((c) => c.content)).size).toBe(3);
    expect(p.completionTokens).toBe(48);
    expect(p.choices[0]?.content).toBe(okPlan({}).plan.choices[0]?.content);
  });

  it('honours max_completion_tokens over max_tokens, and stop sequences', () => {
    expect(okPlan({ max_tokens: 4 }).plan.choices[0]).toMatchObject({ completionTokens: 4, finishReason: 'length' });
    expect(okPlan({ max_tokens: 4, max_completion_tokens: 6 }).plan.choices[0]).toMatchObject({ completionTokens: 6, finishReason: 'length' });
    const full = okPlan({}).plan.choices[0]?.content ?? '';
    const stopWord = full.split(' ')[2] ?? '';
    const stopped = okPlan({ stop: [stopWord] }).plan.choices[0];
    expect(stopped?.finishReason).toBe('stop');
    expect(stopped?.content).toBe(full.slice(0, full.indexOf(stopWord)));
  });

  it('produces JSON content for json_object and json_schema response formats', () => {
    const json = okPlan({ response_format: { type: 'json_object' } }).plan.choices[0]?.content ?? '';
    expect(JSON.parse(json)).toEqual({ reply: expect.any(String) });
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, age: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } },
      required: ['name', 'age', 'tags'],
      additionalProperties: false,
    };
    const structured = okPlan({ response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema } } }).plan.choices[0];
    expect(JSON.parse(structured?.content ?? '')).toEqual({ name: 'sample', age: 1, tags: [] });
    expect(structured?.completionTokens).toBe(countTokens(structured?.content ?? ''));
  });

  it('uses plain text for tool_choice auto/none and a tool call when forced', () => {
    const tools = [
      { type: 'function', function: { name: 'a', parameters: { type: 'object', properties: { x: { type: 'string' } }, required: ['x'] } } },
      { type: 'function', function: { name: 'b' } },
    ];
    expect(okPlan({ tools }).plan.choices[0]?.toolCall).toBeUndefined();
    expect(okPlan({ tools, tool_choice: 'auto' }).plan.choices[0]?.toolCall).toBeUndefined();
    expect(okPlan({ tools, tool_choice: 'none' }).plan.choices[0]?.toolCall).toBeUndefined();
    const required = okPlan({ tools, tool_choice: 'required' }).plan.choices[0];
    expect(required).toMatchObject({ content: null, finishReason: 'tool_calls', toolCall: { name: 'a', arguments: '{"x":"sample"}' } });
    expect(required?.pieces.join('')).toBe('{"x":"sample"}');
    const named = okPlan({ tools, tool_choice: { type: 'function', function: { name: 'b' } } }).plan.choices[0];
    expect(named?.toolCall).toMatchObject({ name: 'b', arguments: '{}' });
    expect(named?.toolCall?.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
  });

  it("declines a prompt holding the refusal trigger as OpenAI does: the text is the message's refusal, content null, finish_reason stop, streamed as refusal deltas", () => {
    const { plan: p } = okPlan({ messages: [{ role: 'user', content: `Help me. ${OPENAI_REFUSAL_TRIGGER}` }] });
    const refusal = "I'm sorry, but I can't help with that request.";
    expect(chatCompletionBody(p)).toMatchObject({ choices: [{ index: 0, message: { role: 'assistant', content: null, refusal }, finish_reason: 'stop' }] });
    const deltas = chatCompletionFrames(p, false)
      .map((f) => f.text)
      .filter((t) => t !== 'data: [DONE]\n\n')
      .map((t) => (JSON.parse(t.slice('data: '.length)) as { choices: Array<{ delta: Record<string, unknown>; finish_reason: string | null }> }).choices[0]);
    expect(deltas[0]?.delta).toEqual({ role: 'assistant', refusal: '' });
    expect(deltas.map((d) => d?.delta['refusal'] ?? '').join('')).toBe(refusal);
    expect(deltas.some((d) => 'content' in (d?.delta ?? {}))).toBe(false);
    expect(deltas.at(-1)?.finish_reason).toBe('stop');
    // Without the trigger, an answer as before.
    expect(chatCompletionBody(okPlan({}).plan)).toMatchObject({ choices: [{ message: { refusal: null, content: expect.any(String) } }] });
  });

  it('rejects impossible tool choices', () => {
    expect(plan({ tool_choice: 'required' })).toMatchObject({ ok: false, problem: { param: 'tool_choice' } });
    expect(plan({ tools: [{ type: 'function', function: { name: 'a' } }], tool_choice: { type: 'function', function: { name: 'zzz' } } })).toMatchObject({
      ok: false,
      problem: { param: 'tool_choice' },
    });
  });

  it('rejects prompts above the context window and stream_options without stream', () => {
    const small = mergeBehaviour(DEFAULT_BEHAVIOUR, { contextWindow: 10 });
    expect(plan({ messages: [{ role: 'user', content: 'word '.repeat(20) }] }, small)).toMatchObject({
      ok: false,
      problem: { code: 'context_length_exceeded', param: 'messages' },
    });
    expect(plan({ stream_options: { include_usage: true } })).toMatchObject({ ok: false, problem: { param: 'stream_options' } });
    expect(okPlan({ stream: true, stream_options: { include_usage: true } })).toMatchObject({ stream: true, includeUsage: true });
  });

  it('sends no usage chunk, whatever stream_options asks, for a server that ignores stream_options', () => {
    const ignoring = mergeBehaviour(DEFAULT_BEHAVIOUR, { ignoreStreamOptions: true });
    expect(okPlan({ stream: true, stream_options: { include_usage: true } }, ignoring)).toMatchObject({ stream: true, includeUsage: false });
  });
});
