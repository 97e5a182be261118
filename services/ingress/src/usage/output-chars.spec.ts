import type { chatv1 } from '@openrouter/contracts';
import type { BudgetReservation } from '../budgets/budget.service';
import { reservationAdmitsChunk } from '../budgets/budget-request';
import { outputChars } from './output-chars';

function chunk(...deltas: Array<Partial<chatv1.Delta>>): chatv1.ChatChunk {
  return { id: 'c', created: 1, model: 'm', choices: deltas.map((delta, index) => ({ index, delta: { toolCalls: [], extraJson: '', ...delta }, logprobsJson: '' })) };
}

describe('outputChars', () => {
  it('counts content, refusals and tool calls of every choice', () => {
    expect(outputChars(chunk({ content: 'Hello' }, { refusal: 'No' }, { toolCalls: [{ index: 0, name: 'get', arguments: '{"a":1}' }] }))).toBe(5 + 2 + 3 + 7);
  });

  it('counts reasoning text, which travels among the extra fields, as OpenRouter or DeepSeek name it', () => {
    expect(outputChars(chunk({ extraJson: JSON.stringify({ reasoning_content: 'x'.repeat(40_000) }) }))).toBe(40_000);
    expect(outputChars(chunk({ content: 'ok', extraJson: JSON.stringify({ reasoning: 'Let me think.', reasoning_details: [{ type: 'reasoning.text', text: 'Let me think.' }] }) }))).toBe(2 + 13);
    // A server that sends both names sends the same text twice: counted once.
    expect(outputChars(chunk({ extraJson: JSON.stringify({ reasoning_content: 'abcd', reasoning: 'abcd' }) }))).toBe(4);
    // Other extra fields, and extra JSON that is not an object, count nothing.
    expect(outputChars(chunk({ extraJson: JSON.stringify({ audio: { transcript: 'hi' } }) }))).toBe(0);
    expect(outputChars(chunk({ extraJson: '"reasoning"' }, { extraJson: '{"reasoning": 5}' }, { extraJson: '{"reasoning' }))).toBe(0);
  });

  it('stops a capped stream on its reasoning, as on its content', () => {
    let admitted = 0;
    const reservation = { capped: true, admitDelta: (chars: number) => (admitted + chars <= 1_000 ? ((admitted += chars), true) : false) } as unknown as BudgetReservation;
    const thinking = chunk({ extraJson: JSON.stringify({ reasoning_content: 'x'.repeat(600) }) });
    expect(reservationAdmitsChunk(reservation, thinking)).toBe(true);
    expect(reservationAdmitsChunk(reservation, thinking)).toBe(false);
  });
});
