import { routerv1 } from '@openrouter/contracts';

/** The simulated provider's answer to the bench prompt is 16 words. */
const ANSWER_WORDS = 16;

/**
 * The answer the router streams back for it: the route decision, then one completion, or (streamed)
 * a chunk per word, a finish chunk and a usage chunk, as the simulated provider's 16 tokens give.
 */
export function* chainAnswer(stream: boolean): Generator<routerv1.ChatResponse> {
  yield routerv1.ChatResponse.fromPartial({ decision: { model: 'bench-chat', provider: 'openai', deployment: 'openai-sim', upstreamModel: 'sim-mini-upstream', attempts: 1, taskType: 'writing', strategy: 'fixed' } });
  const base = { id: 'chatcmpl-0123456789abcdef', created: 1_764_700_000, model: 'sim-mini-upstream' };
  const usage = { promptTokens: 22, completionTokens: ANSWER_WORDS, totalTokens: 22 + ANSWER_WORDS };
  if (!stream) {
    const content = Array.from({ length: ANSWER_WORDS }, (_, i) => `word${i}`).join(' ');
    yield routerv1.ChatResponse.fromPartial({ completion: { ...base, choices: [{ index: 0, message: { role: 'assistant', content }, finishReason: 'stop' }], usage } });
    return;
  }
  for (let i = 0; i < ANSWER_WORDS; i++) {
    yield routerv1.ChatResponse.fromPartial({ chunk: { ...base, choices: [{ index: 0, delta: { ...(i === 0 ? { role: 'assistant' } : {}), content: ` word${i}` } }] } });
  }
  yield routerv1.ChatResponse.fromPartial({ chunk: { ...base, choices: [{ index: 0, delta: {}, finishReason: 'stop' }] } });
  yield routerv1.ChatResponse.fromPartial({ chunk: { ...base, choices: [], usage } });
}
