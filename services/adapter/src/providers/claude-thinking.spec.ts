import { GatewayError } from '@openrouter/errors';
import { continuationKeepsThinking, countAnswerTokens, effortLevel, estimatedThinkingTokens, StreamedAnswerTokens, thinkingForEffort } from './claude-thinking';
import { countTextTokens } from './text-tokens';

describe('thinkingForEffort', () => {
  it('turns an effort into adaptive thinking or a budget under the limit', () => {
    expect(thinkingForEffort('high', 'adaptive', undefined, 1024)).toEqual({ thinking: { type: 'adaptive' }, maxTokens: undefined, effort: 'high' });
    expect(thinkingForEffort('medium', 'budget', undefined, 1024)).toEqual({ thinking: { type: 'enabled', budget_tokens: 8192 }, maxTokens: 9216, effort: undefined });
    expect(thinkingForEffort('none', 'adaptive', undefined, 1024)).toBeUndefined();
  });

  it.each(['extreme', 'constructor', '__proto__', 'toString'])('refuses the effort %j with a 400 naming reasoning_effort, in either style', (effort) => {
    for (const style of ['adaptive', 'budget'] as const) {
      const error = ((): unknown => {
        try {
          return thinkingForEffort(effort, style, undefined, 1024);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(GatewayError);
      expect(error).toMatchObject({ kind: 'bad_request', param: 'reasoning_effort', code: 'invalid_value' });
    }
  });
});

describe('effortLevel', () => {
  it("gives Claude's effort for a level, none for none or no effort", () => {
    expect(effortLevel('minimal')).toBe('low');
    expect(effortLevel('max')).toBe('max');
    expect(effortLevel('none')).toBeUndefined();
    expect(effortLevel(undefined)).toBeUndefined();
  });

  it.each(['bogus', 'constructor', '__proto__', 'toString'])('refuses the effort %j with a 400 naming reasoning_effort, never reading it off the prototype', (effort) => {
    expect(() => effortLevel(effort)).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'reasoning_effort', code: 'invalid_value' }));
  });
});

describe('continuationKeepsThinking', () => {
  const turn = (role: 'user' | 'assistant', ...types: string[]) => ({ role, content: types.map((type) => ({ type })) });
  const keeps = (turns: ReturnType<typeof turn>[]) =>
    continuationKeepsThinking(
      turns,
      (b) => b.type === 'tool_result',
      (b) => b.type === 'thinking',
    );

  it('keeps thinking for a new user turn and for a tool loop whose opening assistant turn starts with its thinking', () => {
    expect(keeps([turn('user', 'text')])).toBe(true);
    expect(keeps([turn('user', 'text'), turn('assistant', 'thinking', 'tool_use'), turn('user', 'tool_result')])).toBe(true);
    expect(keeps([turn('user', 'text'), turn('assistant', 'tool_use'), turn('user', 'tool_result')])).toBe(false);
  });

  it('keeps thinking for a final assistant message (a prefill) only when it starts with its thinking', () => {
    expect(keeps([turn('user', 'text'), turn('assistant', 'thinking', 'text')])).toBe(true);
    expect(keeps([turn('user', 'text'), turn('assistant', 'text')])).toBe(false);
    expect(keeps([turn('user', 'text'), turn('assistant', 'thinking', 'tool_use'), turn('user', 'tool_result'), turn('assistant', 'text')])).toBe(false);
  });
});

describe('estimatedThinkingTokens', () => {
  const thought = (thinking: string) => ({ type: 'thinking' as const, thinking, signature: 'c2ln' });
  const redacted = { type: 'redacted_thinking' as const, data: 'RW5jcnlwdGVkIHRoaW5raW5n' };
  const noAnswer = (): number => 0;

  it("counts the thinking blocks' text with the gateway's tokenizer when it is more than the output beyond the answer", () => {
    const text = 'Oslo is in Norway; ask for its weather.';
    expect(countTextTokens(text)).toBe(11);
    expect(estimatedThinkingTokens([thought('Oslo is in Norway; '), redacted, thought('ask for its weather.')], 15, () => 10)).toBe(7 + 5);
  });

  it('takes the output beyond the visible answer when the thinking text is a short summary, or redacted', () => {
    expect(estimatedThinkingTokens([thought('Oslo is in Norway; ask for its weather.')], 2000, () => 30)).toBe(1970);
    expect(estimatedThinkingTokens([redacted], 100, () => 4)).toBe(96);
  });

  it('is 0 without thinking, and never asks for the answer tokens then (the tokenizer stays unloaded)', () => {
    const answerTokens = jest.fn(() => 4);
    expect(estimatedThinkingTokens([], 100, answerTokens)).toBe(0);
    expect(answerTokens).not.toHaveBeenCalled();
  });

  it('stays within 0 and the output tokens, which hold the thinking', () => {
    expect(estimatedThinkingTokens([thought('Oslo is in Norway; ask for its weather.')], 4, noAnswer)).toBe(4);
    expect(estimatedThinkingTokens([thought('Oslo is in Norway; ask for its weather.')], 0, noAnswer)).toBe(0);
    // A tokenizer that counts the answer above the output tokens leaves the thinking text's count, at least 0.
    expect(estimatedThinkingTokens([redacted], 10, () => 50)).toBe(0);
    expect(estimatedThinkingTokens([thought('Oslo is in Norway; ask for its weather.')], 20, () => 50)).toBe(11);
  });
});

describe('StreamedAnswerTokens', () => {
  it('counts the parts as countAnswerTokens counts the whole answer, whether thinking came first or later', () => {
    const parts = ['Checking ', 'Oslo.'];
    const early = new StreamedAnswerTokens();
    early.thinkingSeen();
    const late = new StreamedAnswerTokens();
    for (const tally of [early, late]) {
      for (const p of parts) tally.add(p);
      tally.endPart();
      tally.add('get_weather');
      tally.endPart();
      tally.add('{"city":');
      tally.add('"Oslo"}');
    }
    late.thinkingSeen();
    const whole = countAnswerTokens(['Checking Oslo.', 'get_weather', '{"city":"Oslo"}']);
    expect(early.count()).toBe(whole);
    expect(late.count()).toBe(whole);
  });

  it('counts a long part as it comes, cut at whitespace, close to the count of the whole', () => {
    const sentence = 'The tide in Porto turns twice a day, and the estuary fills slowly. ';
    const text = sentence.repeat(2000);
    const tally = new StreamedAnswerTokens();
    tally.thinkingSeen();
    for (let at = 0; at < text.length; at += 7) tally.add(text.slice(at, at + 7));
    tally.endPart();
    const whole = countTextTokens(text);
    expect(Math.abs(tally.count() - whole)).toBeLessThanOrEqual(whole / 100);
  });
});
