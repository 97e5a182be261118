import { GatewayError } from '@openrouter/errors';
import { estimatedThinkingTokens, thinkingForEffort } from './claude-thinking';
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

describe('estimatedThinkingTokens', () => {
  const thought = (thinking: string) => ({ type: 'thinking' as const, thinking, signature: 'c2ln' });
  const redacted = { type: 'redacted_thinking' as const, data: 'RW5jcnlwdGVk' };

  it("counts the thinking blocks' text with the gateway's tokenizer; redacted thinking counts nothing", () => {
    const text = 'Oslo is in Norway; ask for its weather.';
    expect(countTextTokens(text)).toBe(11);
    expect(estimatedThinkingTokens([thought('Oslo is in Norway; '), redacted, thought('ask for its weather.')], 100)).toBe(7 + 5);
    expect(estimatedThinkingTokens([redacted], 100)).toBe(0);
    expect(estimatedThinkingTokens([], 100)).toBe(0);
  });

  it('is at most the output tokens, which hold the thinking', () => {
    expect(estimatedThinkingTokens([thought('Oslo is in Norway; ask for its weather.')], 4)).toBe(4);
    expect(estimatedThinkingTokens([thought('Oslo is in Norway; ask for its weather.')], 0)).toBe(0);
  });
});
