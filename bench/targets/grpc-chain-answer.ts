import { routerv1 } from '@openrouter/contracts';

/** The simulated provider's answer to the bench prompt is 16 words. */
const ANSWER_WORDS = 16;

/**
 * The answer the router streams back for it, as it does to ingress: the deployment it calls, then
 * the route decision with one completion, or (streamed) with the first of a chunk per word, then
 * the other chunks, a finish chunk and a usage chunk, as the simulated provider's 16 tokens give.
 */
export function* chainAnswer(stream: boolean): Generator<routerv1.ChatResponse> {
  const route = { model: 'bench-chat', provider: 'openai', deployment: 'openai-sim', upstreamModel: 'sim-mini-upstream', taskType: 'writing', strategy: 'fixed' };
  const attempt = { model: 'bench-chat', provider: 'openai', deployment: 'openai-sim' };
  yield routerv1.ChatResponse.fromPartial({ calling: { ...route, attempts: 1, attemptDetails: [{ ...attempt, status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_IN_PROGRESS }] } });
  const decision = { ...route, attempts: 1, attemptDetails: [{ ...attempt, status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_OK, latencyMs: 1 }] };
  const base = { id: 'chatcmpl-0123456789abcdef', created: 1_764_700_000, model: 'sim-mini-upstream' };
  const usage = { promptTokens: 22, completionTokens: ANSWER_WORDS, totalTokens: 22 + ANSWER_WORDS };
  if (!stream) {
    const content = Array.from({ length: ANSWER_WORDS }, (_, i) => `word${i}`).join(' ');
    yield routerv1.ChatResponse.fromPartial({ routed: { decision, completion: { ...base, choices: [{ index: 0, message: { role: 'assistant', content }, finishReason: 'stop' }], usage } } });
    return;
  }
  for (let i = 0; i < ANSWER_WORDS; i++) {
    const chunk = { ...base, choices: [{ index: 0, delta: { ...(i === 0 ? { role: 'assistant' } : {}), content: ` word${i}` } }] };
    yield routerv1.ChatResponse.fromPartial(i === 0 ? { routed: { decision, chunk } } : { chunk });
  }
  yield routerv1.ChatResponse.fromPartial({ chunk: { ...base, choices: [{ index: 0, delta: {}, finishReason: 'stop' }] } });
  yield routerv1.ChatResponse.fromPartial({ chunk: { ...base, choices: [], usage } });
}
