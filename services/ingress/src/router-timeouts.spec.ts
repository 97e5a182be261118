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
});
