import type { chatv1 } from '@openrouter/contracts';
import type { BudgetReservation } from '../budgets/budget.service';
import { reservationAdmitsChunk } from '../budgets/budget-request';
import { estimatedTokenWeight, estimatedTokens } from '@openrouter/usage';
import { outputTokens } from './output-tokens';

function chunk(...deltas: Array<Partial<chatv1.Delta>>): chatv1.ChatChunk {
  return { id: 'c', created: 1, model: 'm', choices: deltas.map((delta, index) => ({ index, delta: { toolCalls: [], extraJson: '', ...delta }, logprobsJson: '' })) };
}

describe('outputTokens', () => {
  it('counts content, refusals and tool calls of every choice', () => {
    // Letters at 4 a token, digits and punctuation at 2.
    expect(outputTokens(chunk({ content: 'Hello' }, { refusal: 'No' }, { toolCalls: [{ index: 0, name: 'get', arguments: '{"a":1}' }] }))).toBeCloseTo(5 / 4 + 2 / 4 + 3 / 4 + (6 / 2 + 1 / 4));
  });

  it('counts Chinese and Japanese output at a token a character, not a quarter', () => {
    const chinese = '这是一个关于预算的回答，它的每个字大约是一个标记。';
    expect(outputTokens(chunk({ content: chinese }))).toBe(chinese.length);
    // A stream's pieces add up to the whole: no token is counted for a piece's rounding.
    const pieces = ['The ', 'answer ', 'is ', 'here.'];
    const streamed = pieces.reduce((sum, content) => sum + outputTokens(chunk({ content })), 0);
    expect(Math.ceil(streamed)).toBe(estimatedTokens(pieces.join('')));
    expect(streamed).toBeCloseTo(estimatedTokenWeight(pieces.join('')));
  });

  it('counts reasoning text, which travels among the extra fields, as OpenRouter or DeepSeek name it', () => {
    expect(outputTokens(chunk({ extraJson: JSON.stringify({ reasoning_content: 'x'.repeat(40_000) }) }))).toBe(10_000);
    expect(outputTokens(chunk({ content: 'ok', extraJson: JSON.stringify({ reasoning: 'Let me think.', reasoning_details: [{ type: 'reasoning.text', text: 'Let me think.' }] }) }))).toBeCloseTo(2 / 4 + estimatedTokenWeight('Let me think.'));
    // A server that sends both names sends the same text twice: counted once.
    expect(outputTokens(chunk({ extraJson: JSON.stringify({ reasoning_content: 'abcd', reasoning: 'abcd' }) }))).toBe(1);
    // Other extra fields, and extra JSON that is not an object, count nothing.
    expect(outputTokens(chunk({ extraJson: JSON.stringify({ audio: { transcript: 'hi' } }) }))).toBe(0);
    expect(outputTokens(chunk({ extraJson: '"reasoning"' }, { extraJson: '{"reasoning": 5}' }, { extraJson: '{"reasoning' }))).toBe(0);
  });

  it('stops a capped stream on its reasoning, as on its content', () => {
    let admitted = 0;
    const reservation = { capped: true, admitDelta: (tokens: number) => (admitted + tokens <= 250 ? ((admitted += tokens), true) : false) } as unknown as BudgetReservation;
    const thinking = chunk({ extraJson: JSON.stringify({ reasoning_content: 'x'.repeat(600) }) });
    expect(reservationAdmitsChunk(reservation, thinking)).toBe(true);
    expect(reservationAdmitsChunk(reservation, thinking)).toBe(false);
  });
});
