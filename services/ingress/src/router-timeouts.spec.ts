import { MAX_TIMER_MS } from '@openrouter/config';
import { routerTimeouts } from './index';
import { ingressTestConfig } from './test-config.testing';

const config = (extra: Record<string, unknown> = {}) => ingressTestConfig(extra);

describe('routerTimeouts', () => {
  it('waits for the guardrails’ moderation budget before the router’s own deadline: a moderation model that hangs meets its fail mode, not a 504', () => {
    // Defaults: 10 s of moderation, a 60 s deadline, a 300 s whole attempt, a 5 s margin.
    expect(routerTimeouts(config())).toEqual({ callMs: 5_000, firstStreamedMs: 75_000, wholeAnswerMs: 375_000 });
    const shortDeadline = config({ routing: { retry: { deadlineMs: 4_000 } }, guardrails: { moderationTimeoutMs: 20_000 } });
    // The router gives a moderation call no more than its deadline.
    expect(routerTimeouts(shortDeadline).firstStreamedMs).toBe(4_000 + 4_000 + 5_000);
  });

  it('never waits past the longest a Node.js timer waits, whatever the durations add up to', () => {
    // Each duration may be 2^31 − 1 ms on its own; a sum past that would be taken as 1 ms, and every call cut at once.
    const longest = config({ routing: { retry: { completionTimeoutMs: MAX_TIMER_MS, deadlineMs: MAX_TIMER_MS } }, grpc: { callTimeoutMs: MAX_TIMER_MS } });
    expect(routerTimeouts(longest)).toEqual({ callMs: MAX_TIMER_MS, firstStreamedMs: MAX_TIMER_MS, wholeAnswerMs: MAX_TIMER_MS });
    // Only the whole answer's wait is long here.
    expect(routerTimeouts(config({ routing: { retry: { completionTimeoutMs: MAX_TIMER_MS } } }))).toEqual({ callMs: 5_000, firstStreamedMs: 75_000, wholeAnswerMs: MAX_TIMER_MS });
  });
});
