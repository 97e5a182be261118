import { GatewayError } from '@openrouter/errors';
import { thinkingForEffort } from './claude-thinking';

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
