import Decimal from 'decimal.js';
import { routerv1, usagev1, type chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { pricingSchema } from '@openrouter/config';
import { PriceBook, type UsagePublisher } from '@openrouter/usage';
import { countPromptTokens } from '../access/prompt-tokens';
import type { Admission } from '../access/rate-limiter';
import type { BudgetReservation } from '../budgets/budget.service';
import { UsageRecorder, type MeteredExchange } from './usage-recorder';

/** A publisher that keeps what it was given. */
function collecting(): UsagePublisher & { events: usagev1.UsageEvent[] } {
  const events: usagev1.UsageEvent[] = [];
  return {
    events,
    publish: async (event) => void events.push(event),
    status: () => ({ mode: 'direct', pending: 0, outboxBytes: 0 }),
    close: async () => undefined,
  };
}

const context: routerv1.RequestContext = { requestId: 'r', orgId: 'acme', projectId: 'p', teamId: 't', appId: '', costCenter: '', keyId: 'k', endUser: '', tags: {}, allowedModels: [] };

/** An exchange the test ends when it wants, as a client that goes away. */
function exchange(id: string, held: { budget?: BudgetReservation; admission?: Admission } = {}): MeteredExchange & { end(): void } {
  const listeners: Array<() => void> = [];
  return {
    id,
    body: { model: 'm', messages: [{ role: 'user', content: 'tell me a story' }] },
    receivedAtMs: Date.now(),
    context: () => context,
    budget: () => held.budget,
    admission: () => held.admission,
    traceHeaders: () => ({}),
    onEnd: (listener) => void listeners.push(listener),
    outcome: () => ({ cancelled: true, status: 499 }),
    end: () => listeners.forEach((l) => l()),
  };
}

describe('UsageRecorder.drain', () => {
  const logger = createLogger('test', 'silent');

  it('publishes the record of a request whose metrics fail: the observer never stands between a request and its record', async () => {
    const publisher = collecting();
    const recorder = new UsageRecorder(publisher, PriceBook.fromModels([]), logger, () => {
      throw new Error('a metric refused its labels');
    });
    const ended = exchange('observed');
    recorder.trackExchange(ended, 'chat');
    expect(() => ended.end()).not.toThrow();
    await recorder.drain();
    expect(publisher.events.map((e) => e.requestId)).toEqual(['observed']);
  });

  it('waits for a request cut inside a call to write its event once the call has unwound', async () => {
    const publisher = collecting();
    const recorder = new UsageRecorder(publisher, PriceBook.fromModels([]), logger);
    const cut = exchange('cut');
    const track = recorder.trackExchange(cut, 'chat');
    let fail: (error: unknown) => void = () => undefined;
    const call = track.guard(new Promise((_, reject) => (fail = reject))).catch(() => undefined);
    // The server closed the connection (shutdown): the exchange ended while its router call is still unwinding.
    cut.end();
    const drained = recorder.drain();
    fail(new GatewayError('cancelled', 'The client went away.'));
    await call;
    await drained;
    expect(publisher.events.map((e) => [e.requestId, e.cancelled])).toEqual([['cut', true]]);
  });

  it('writes a request whose call outlives the bound as cancelled, charged to the deployment being called', async () => {
    const publisher = collecting();
    const book = PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ input: '2', output: '8' }) }]);
    const recorder = new UsageRecorder(publisher, book, logger);
    const held = exchange('slow');
    const track = recorder.trackExchange(held, 'chat');
    const inProgress: routerv1.RouteAttempt = { model: 'm', provider: 'sim', deployment: 'd', status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_IN_PROGRESS, errorKind: '', latencyMs: 0, upstreamStatus: 0 };
    track.calling({ model: 'm', provider: 'sim', deployment: 'd', upstreamModel: 'u', attempts: 1, taskType: '', reason: '', experiment: '', experimentArm: '', attemptDetails: [inProgress], strategy: '' });
    // A call that never unwinds before the shutdown is over (an embedding runs to its deadline).
    void track.guard(new Promise(() => undefined));
    held.end();
    await recorder.drain(10);
    expect(publisher.events).toHaveLength(1);
    const event = publisher.events[0];
    expect(event).toMatchObject({ requestId: 'slow', cancelled: true, status: usagev1.Status.STATUS_CANCELLED, servedModel: 'm', deployment: 'd' });
    expect(event?.tokens).toMatchObject({ prompt: countPromptTokens(held.body), estimated: true });
    expect(new Decimal(event?.cost?.amount ?? '0').greaterThan(0)).toBe(true);
  });
});

describe('a usage record', () => {
  const logger = createLogger('test', 'silent');
  const decision: routerv1.RouteDecision = { model: 'm', provider: 'sim', deployment: 'd', upstreamModel: 'u', attempts: 1, taskType: '', reason: '', experiment: '', experimentArm: '', attemptDetails: [], strategy: '' };
  const chunk = (content: string, usage?: Partial<chatv1.Usage>): chatv1.ChatChunk => ({
    id: 'c',
    created: 1,
    model: 'u',
    choices: content ? [{ index: 0, delta: { content, toolCalls: [], extraJson: '' }, logprobsJson: '' }] : [],
    usage: usage && { promptTokens: 0, completionTokens: 0, totalTokens: 0, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false, ...usage },
  });

  /** An exchange holding an admission and a reservation that note what they were settled with. */
  function held(id: string): { exchange: ReturnType<typeof exchange>; settled: Array<[string, number | string]> } {
    const settled: Array<[string, number | string]> = [];
    const admission: Admission = { headers: {}, settle: async (tokens) => void settled.push(['admission', tokens]) };
    const budget = { settle: async (cost: string) => void settled.push(['budget', cost]) } as unknown as BudgetReservation;
    return { exchange: exchange(id, { admission, budget }), settled };
  }

  it('settles the token limits with the provider\'s usage, in the same turn as the budget', () => {
    const { exchange: answered, settled } = held('answered');
    const track = new UsageRecorder(collecting(), PriceBook.fromModels([]), logger).trackExchange(answered, 'chat');
    track.routed(decision);
    track.chunk(chunk('Once upon a time'));
    track.chunk(chunk('', { promptTokens: 12, completionTokens: 30, totalTokens: 42 }));
    answered.end();
    expect(settled).toEqual([
      ['budget', '0'],
      ['admission', 42],
    ]);
  });

  it('settles a stream cut before its usage came with the estimate it records', () => {
    const { exchange: cut, settled } = held('cut');
    const publisher = collecting();
    const track = new UsageRecorder(publisher, PriceBook.fromModels([]), logger).trackExchange(cut, 'chat');
    track.routed(decision);
    track.chunk(chunk('x'.repeat(40)));
    cut.end();
    const expected = countPromptTokens(cut.body) + 10;
    expect(publisher.events[0]?.tokens).toMatchObject({ estimated: true, completion: 10 });
    expect(settled.filter(([what]) => what === 'admission')).toEqual([['admission', expected]]);
  });

  it('estimates a whole answer that came without usage from its own text, as a stream\'s', () => {
    const publisher = collecting();
    const answered = exchange('no-usage');
    const track = new UsageRecorder(publisher, PriceBook.fromModels([]), logger).trackExchange(answered, 'chat');
    track.routed(decision);
    const message = { role: 'assistant', content: 'x'.repeat(40), toolCalls: [{ id: 't', type: 'function', function: { name: 'lookup', arguments: '{"q":"abcdefghi"}' } }], extraJson: JSON.stringify({ reasoning_content: 'y'.repeat(20) }) };
    track.completion({ id: 'w', created: 1, model: 'u', choices: [{ index: 0, message, finishReason: 'tool_calls', logprobsJson: '' }] });
    expect(track.tokens()).toMatchObject({ completionTokens: 23, estimated: true });
    answered.end();
    // Letters at 4 a token, punctuation at 2: 40 of text (10), the tool call's name (1.5) and
    // arguments (10 letters, 7 marks: 6), 20 of reasoning (5): 22.5, rounded up.
    expect(publisher.events[0]?.tokens).toMatchObject({ prompt: countPromptTokens(answered.body), completion: 23, estimated: true });
  });

  it('estimates a stream its client left while the model was reasoning from the reasoning it streamed too', () => {
    const publisher = collecting();
    const book = PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ input: '15', output: '60' }) }]);
    const left = exchange('thinking');
    const track = new UsageRecorder(publisher, book, logger).trackExchange(left, 'chat');
    track.routed(decision);
    // 40,000 characters of reasoning (which the provider bills as output), then the first visible word.
    track.chunk({ id: 'c', created: 1, model: 'u', choices: [{ index: 0, delta: { toolCalls: [], extraJson: JSON.stringify({ reasoning_content: 'x'.repeat(40_000) }) }, logprobsJson: '' }] });
    track.chunk(chunk('The '));
    left.end();
    const prompt = countPromptTokens(left.body);
    expect(publisher.events[0]?.tokens).toMatchObject({ prompt, completion: 10_001, estimated: true });
    expect(publisher.events[0]?.cost?.amount).toBe(new Decimal(prompt).times(15).plus(new Decimal(10_001).times(60)).div(1_000_000).toString());
  });

  describe('of a request for a service tier', () => {
    const book = PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ input: '2', output: '8', tiers: { priority: { input: '4', output: '16' }, flex: { input: '1', output: '4' } } }) }]);
    const usage = { promptTokens: 1_000_000, completionTokens: 1_000_000, totalTokens: 2_000_000 };
    const priced = (serviceTier: string | undefined, served?: string): string | undefined => {
      const publisher = collecting();
      const plain = exchange(`tier-${serviceTier}-${served}`);
      const request = { ...plain, body: { ...(plain.body as object), service_tier: serviceTier } };
      const track = new UsageRecorder(publisher, book, logger).trackExchange(request, 'chat');
      track.routed(decision);
      track.chunk({ ...chunk('Hello'), serviceTier: served });
      track.chunk(chunk('', usage));
      request.end();
      return publisher.events[0]?.cost?.amount;
    };

    it('is priced at the tier the provider says served it, else at the tier asked for', () => {
      expect(priced(undefined)).toBe('10');
      expect(priced('priority')).toBe('20');
      expect(priced('priority', 'priority')).toBe('20');
      // OpenAI answers `default` when the standard tier served a request that asked for another.
      expect(priced('priority', 'default')).toBe('10');
      expect(priced('auto', 'flex')).toBe('5');
      expect(priced('auto')).toBe('10');
    });
  });

  describe('of a legacy completion with several prompts, each its own call', () => {
    const book = PriceBook.fromModels([
      { id: 'cheap', pricing: pricingSchema.parse({ input: '0.15', output: '0.60', perRequest: '0.01' }) },
      { id: 'dear', pricing: pricingSchema.parse({ input: '3', output: '15', perRequest: '0.01' }) },
    ]);
    const on = (model: string): routerv1.RouteDecision => ({ ...decision, model, deployment: `${model}-d`, upstreamModel: model });
    const usage = (prompt: number, completion: number): chatv1.Usage => ({ promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false });

    it('prices each call at the deployment that served it, with a request fee per call, in one record naming the first', () => {
      const { exchange: done, settled } = held('legacy');
      const publisher = collecting();
      const track = new UsageRecorder(publisher, book, logger).trackExchange({ ...done, outcome: () => ({ cancelled: false, status: 200 }) }, 'completion');
      const counted: string[] = [];
      // Prompt 1 served by `cheap`, prompt 2 by `dear` (a fallback): a million tokens in and out each.
      track.routed(on('cheap'), () => (counted.push('cheap'), 1));
      track.completion({ id: 'a', created: 1, model: 'cheap', choices: [], usage: usage(1_000_000, 1_000_000) });
      track.routed(on('dear'), () => (counted.push('dear'), 1));
      track.completion({ id: 'b', created: 1, model: 'dear', choices: [], usage: usage(1_000_000, 1_000_000) });
      done.end();
      const event = publisher.events[0];
      // (0.15 + 0.60 + 0.01) + (3 + 15 + 0.01): each call's own price and fee.
      expect(event).toMatchObject({ servedModel: 'cheap', deployment: 'cheap-d', tokens: { prompt: 2_000_000, completion: 2_000_000, estimated: false }, cost: { amount: '18.77', currency: 'USD' } });
      expect(event?.cost?.priceVersion).toMatch(/^cheap@base#[0-9a-f]{10}, dear@base#[0-9a-f]{10}$/);
      expect(publisher.events).toHaveLength(1);
      expect(settled[0]).toEqual(['budget', '18.77']);
      // Every call reported its usage: no prompt was counted again.
      expect(counted).toEqual([]);
    });

    it('estimates the call a stream was cut in from its own prompt and answer, at its own price', () => {
      const { exchange: cut, settled } = held('legacy-cut');
      const publisher = collecting();
      const track = new UsageRecorder(publisher, book, logger).trackExchange(cut, 'completion');
      track.routed(on('cheap'), () => 7);
      track.chunk(chunk('Once'));
      track.chunk(chunk('', usage(100_000, 100_000)));
      // The second prompt is served by `dear`; the client leaves after 400 characters of it.
      track.routed(on('dear'), () => 50_000);
      track.chunk(chunk('x'.repeat(400)));
      cut.end();
      const event = publisher.events[0];
      expect(event?.tokens).toMatchObject({ prompt: 150_000, completion: 100_100, estimated: true });
      // cheap: 0.1 × 0.15 + 0.1 × 0.60 + 0.01; dear: 0.05 × 3 + 0.0001 × 15 + 0.01.
      expect(event?.cost?.amount).toBe('0.2465');
      expect(settled).toEqual([
        ['budget', '0.2465'],
        ['admission', 250_100],
      ]);
    });
  });

  describe('of a legacy completion cut or left in its first prompt', () => {
    const book = PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ input: '1', output: '1' }) }]);
    const prompts = ['short question', 'x'.repeat(40_000), 'y'.repeat(40_000)];
    const body = { model: 'm', prompt: prompts, stream: true };
    const own = countPromptTokens({ prompt: prompts[0] });
    const inProgress: routerv1.RouteAttempt = { model: 'm', provider: 'sim', deployment: 'd', status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_IN_PROGRESS, errorKind: '', latencyMs: 0, upstreamStatus: 0 };

    it('estimates the prompt of a stream its client left after the first token at the call\'s own prompt, not every prompt of the body', () => {
      const publisher = collecting();
      const left = { ...exchange('legacy-left'), body };
      const track = new UsageRecorder(publisher, book, logger).trackExchange(left, 'completion');
      track.routed(decision, () => countPromptTokens({ prompt: prompts[0] }));
      track.chunk(chunk('Well'));
      left.end();
      // The body's prompts count some 20,000 tokens; the one sent, a few.
      expect(countPromptTokens(body)).toBeGreaterThan(20_000);
      expect(publisher.events[0]?.tokens).toMatchObject({ prompt: own, completion: 1, estimated: true });
      expect(publisher.events[0]?.cost?.amount).toBe(new Decimal(own + 1).div(1_000_000).toString());
    });

    it('shows the client the call\'s own prompt in the usage chunk after a budget cut, and records it', () => {
      const publisher = collecting();
      const cut = { ...exchange('legacy-cut'), body, outcome: () => ({ cancelled: false, status: 200 }) };
      const track = new UsageRecorder(publisher, book, logger).trackExchange(cut, 'completion');
      track.routed(decision, () => countPromptTokens({ prompt: prompts[0] }));
      track.chunk(chunk('x'.repeat(40)));
      // The stream is cut at the budget: the final usage chunk is the estimate so far.
      expect(track.tokens()).toMatchObject({ promptTokens: own, completionTokens: 10, totalTokens: own + 10, estimated: true });
      cut.end();
      expect(publisher.events[0]).toMatchObject({ status: usagev1.Status.STATUS_OK, tokens: { prompt: own, completion: 10, estimated: true } });
    });

    it('charges a call left before it answered at its own prompt, the first one or a later one', () => {
      const publisher = collecting();
      const recorder = new UsageRecorder(publisher, book, logger);
      const first = { ...exchange('legacy-first'), body };
      const track = recorder.trackExchange(first, 'completion');
      track.calling({ ...decision, attemptDetails: [inProgress] }, () => countPromptTokens({ prompt: prompts[0] }));
      track.failed(new GatewayError('cancelled', 'The client went away.'));
      first.end();
      expect(publisher.events[0]).toMatchObject({ status: usagev1.Status.STATUS_CANCELLED, deployment: 'd', tokens: { prompt: own, completion: 0, estimated: true } });

      // The second prompt's call is left before it answered: the first call's usage, plus the second's prompt, at its deployment.
      const second = { ...exchange('legacy-second'), body };
      const later = recorder.trackExchange(second, 'completion');
      later.routed(decision, () => countPromptTokens({ prompt: prompts[0] }));
      later.chunk(chunk('Fine.'));
      later.chunk(chunk('', { promptTokens: 5, completionTokens: 2 }));
      const secondPrompt = countPromptTokens({ prompt: prompts[1] });
      later.calling({ ...decision, deployment: 'd2', attemptDetails: [{ ...inProgress, deployment: 'd2' }] }, () => secondPrompt);
      later.failed(new GatewayError('cancelled', 'The client went away.'));
      second.end();
      expect(publisher.events[1]).toMatchObject({ deployment: 'd', tokens: { prompt: 5 + secondPrompt, completion: 2, estimated: true } });
      expect(publisher.events[1]?.cost?.amount).toBe(new Decimal(5 + secondPrompt + 2).div(1_000_000).toString());
    });
  });

  describe('of a legacy completion whose later call failed', () => {
    const book = PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ input: '1', output: '1', perRequest: '0.01' }) }]);
    const usage = (prompt: number, completion: number): chatv1.Usage => ({ promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false });

    it('charges the request fee of every call that answered (three prompts, the third fails)', () => {
      const { exchange: failed, settled } = held('legacy-502');
      const publisher = collecting();
      const track = new UsageRecorder(publisher, book, logger).trackExchange({ ...failed, outcome: () => ({ cancelled: false, status: 502 }) }, 'completion');
      // Prompts 1 and 2 answered (10,000 tokens in and out each: 0.02); prompt 3's call failed and was never routed.
      for (const id of ['a', 'b']) {
        track.routed(decision, () => 1);
        track.completion({ id, created: 1, model: 'u', choices: [], usage: usage(10_000, 10_000) });
      }
      track.failed(new GatewayError('upstream_error', 'The provider failed.'));
      failed.end();
      expect(publisher.events[0]).toMatchObject({ status: usagev1.Status.STATUS_ERROR, tokens: { prompt: 20_000, completion: 20_000 }, cost: { amount: '0.06' } });
      expect(settled[0]).toEqual(['budget', '0.06']);
    });

    it('charges the fee of a streamed prompt that answered when the next one fails, and none for a call that failed mid-answer', () => {
      const publisher = collecting();
      const recorder = new UsageRecorder(publisher, book, logger);
      const failed = exchange('legacy-stream-502');
      const track = recorder.trackExchange({ ...failed, outcome: () => ({ cancelled: false, status: 200 }) }, 'completion');
      track.routed(decision, () => 1);
      track.chunk(chunk('Fine.'));
      track.chunk(chunk('', usage(10_000, 10_000)));
      // The second prompt's call fails before it answers.
      track.failed(new GatewayError('upstream_error', 'The provider failed.'));
      failed.end();
      expect(publisher.events[0]).toMatchObject({ status: usagev1.Status.STATUS_ERROR, cost: { amount: '0.03' } });

      const broken = exchange('legacy-stream-broken');
      const cut = recorder.trackExchange({ ...broken, outcome: () => ({ cancelled: false, status: 200 }) }, 'completion');
      cut.routed(decision, () => 1);
      cut.chunk(chunk('Fine.'));
      cut.chunk(chunk('', usage(10_000, 10_000)));
      // The second prompt's provider fails after 40 characters of its answer.
      cut.routed(decision, () => 10_000);
      cut.chunk(chunk('x'.repeat(40)));
      cut.failed(new GatewayError('upstream_error', 'The provider failed mid-stream.'));
      broken.end();
      // 0.02 + 0.01 for the first; the second's tokens (10,000 + 10), estimated, and no fee.
      expect(publisher.events[1]).toMatchObject({ status: usagev1.Status.STATUS_ERROR, tokens: { prompt: 20_000, completion: 10_010, estimated: true }, cost: { amount: '0.04001' } });
    });
  });

  describe('of a request abandoned while a deployment was working on it', () => {
    const book = PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ input: '2', output: '8' }) }]);
    const failedAttempt: routerv1.RouteAttempt = { model: 'm', provider: 'sim', deployment: 'd0', status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_ERROR, errorKind: 'upstream_error', latencyMs: 7, upstreamStatus: 500 };
    const inProgress: routerv1.RouteAttempt = { ...failedAttempt, deployment: 'd', status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_IN_PROGRESS, errorKind: '', latencyMs: 0, upstreamStatus: 0 };
    const calling: routerv1.RouteDecision = { ...decision, attempts: 2, taskType: 'chat', experiment: 'x', experimentArm: 'b', attemptDetails: [failedAttempt, inProgress] };

    it('charges the prompt, estimated, to the deployment being called, and records the attempts', () => {
      const { exchange: cut, settled } = held('cut');
      const publisher = collecting();
      const track = new UsageRecorder(publisher, book, logger).trackExchange(cut, 'chat');
      track.calling({ ...calling, deployment: 'd0', attempts: 1, attemptDetails: [{ ...inProgress, deployment: 'd0' }] });
      track.calling(calling);
      track.failed(new GatewayError('cancelled', 'The client went away.'));
      cut.end();
      const prompt = countPromptTokens(cut.body);
      const event = publisher.events[0];
      expect(event).toMatchObject({ status: usagev1.Status.STATUS_CANCELLED, cancelled: true, servedModel: 'm', provider: 'sim', deployment: 'd', upstreamModel: 'u', taskType: 'chat', experiment: 'x', experimentArm: 'b', firstTokenAtMs: 0, ttftMs: 0 });
      expect(event?.tokens).toMatchObject({ prompt, completion: 0, estimated: true });
      // $2 per million prompt tokens.
      expect(event?.cost?.amount).toBe(new Decimal(prompt).times(2).div(1_000_000).toString());
      expect(event?.attempts.map((a) => [a.deployment, a.status, a.errorKind])).toEqual([
        ['d0', usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR, 'upstream_error'],
        ['d', usagev1.AttemptStatus.ATTEMPT_STATUS_CANCELLED, 'cancelled'],
      ]);
      expect(event?.attempts[1]?.latencyMs).toBe(event?.latencyMs);
      expect(settled).toEqual([
        ['budget', event?.cost?.amount],
        ['admission', prompt],
      ]);
    });

    it('is charged nothing when abandoned between calls, while the router backs off after a failed one', () => {
      const { exchange: cut, settled } = held('between');
      const publisher = collecting();
      const track = new UsageRecorder(publisher, book, logger).trackExchange(cut, 'chat');
      track.calling({ ...calling, deployment: 'd0', attempts: 1, attemptDetails: [{ ...inProgress, deployment: 'd0' }] });
      track.calling({ ...calling, deployment: 'd0', attempts: 1, attemptDetails: [failedAttempt] });
      track.failed(new GatewayError('cancelled', 'The client went away.'));
      cut.end();
      expect(publisher.events[0]).toMatchObject({ status: usagev1.Status.STATUS_CANCELLED, servedModel: '', deployment: '', cost: { amount: '0' }, tokens: { prompt: 0, estimated: false } });
      expect(settled).toEqual([
        ['budget', '0'],
        ['admission', 0],
      ]);
    });

    it('is charged as answered once the decision came, and not at all when the router failed', () => {
      const publisher = collecting();
      const recorder = new UsageRecorder(publisher, book, logger);
      const answered = exchange('answered');
      const track = recorder.trackExchange({ ...answered, outcome: () => ({ cancelled: false, status: 200 }) }, 'chat');
      track.calling(calling);
      track.routed({ ...decision, deployment: 'd2', attemptDetails: [] });
      track.completion({ id: 'c', created: 1, model: 'u', choices: [], usage: { promptTokens: 3, completionTokens: 1, totalTokens: 4, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false } });
      answered.end();
      expect(publisher.events[0]).toMatchObject({ deployment: 'd2', status: usagev1.Status.STATUS_OK, tokens: { prompt: 3, completion: 1, estimated: false } });

      const refused = exchange('refused');
      const failed = recorder.trackExchange({ ...refused, outcome: () => ({ cancelled: false, status: 502 }) }, 'chat');
      failed.calling(calling);
      failed.failed(new GatewayError('upstream_error', 'The provider failed.'));
      refused.end();
      expect(publisher.events[1]).toMatchObject({ servedModel: '', deployment: '', status: usagev1.Status.STATUS_ERROR, cost: { amount: '0' } });
    });
  });

  it('records an answer that came after its client left (written its 499) as cancelled, at the provider\'s usage', () => {
    const publisher = collecting();
    const book = PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ input: '2' }) }]);
    const left = exchange('left');
    // The 499 was written by the time the record is: the response finished.
    const track = new UsageRecorder(publisher, book, logger).trackExchange({ ...left, outcome: () => ({ cancelled: false, status: 499 }) }, 'embedding');
    track.routed({ ...decision, attemptDetails: [{ model: 'm', provider: 'sim', deployment: 'd', status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_OK, errorKind: '', latencyMs: 5, upstreamStatus: 200 }] });
    track.embedding({ promptTokens: 500, completionTokens: 0, totalTokens: 500, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false });
    left.end();
    const event = publisher.events[0];
    expect(event).toMatchObject({ status: usagev1.Status.STATUS_CANCELLED, cancelled: true, errorKind: '', httpStatus: 499, tokens: { prompt: 500, estimated: false }, cost: { amount: '0.001' } });
    // The provider's call ended answered: its attempt is not the one cancelled.
    expect(event?.attempts.map((a) => [a.deployment, a.status, a.errorKind])).toEqual([['d', usagev1.AttemptStatus.ATTEMPT_STATUS_OK, '']]);
  });

  it('gives back the whole estimate of a request that got no answer', () => {
    const { exchange: failed, settled } = held('failed');
    const track = new UsageRecorder(collecting(), PriceBook.fromModels([]), logger).trackExchange(failed, 'chat');
    track.failed(new GatewayError('upstream_error', 'The provider failed.'));
    failed.end();
    expect(settled.filter(([what]) => what === 'admission')).toEqual([['admission', 0]]);
  });
});

describe('a request answered from the response cache', () => {
  const logger = createLogger('test', 'silent');

  it('is one record with no attempt, the cached answer\'s tokens and route, a cost of 0 and what the answer cost when first served', () => {
    const publisher = collecting();
    const settled: Array<[string, string | number]> = [];
    const listeners: Array<() => void> = [];
    const answered: MeteredExchange = {
      id: 'hit',
      body: { model: 'm', messages: [{ role: 'user', content: 'again' }], stream: true },
      receivedAtMs: Date.now(),
      context: () => context,
      budget: () => ({ settle: async (cost: string) => void settled.push(['budget', cost]) }) as unknown as BudgetReservation,
      admission: () => ({ headers: {}, settle: async (tokens) => void settled.push(['admission', tokens]) }),
      traceHeaders: () => ({}),
      onEnd: (listener) => void listeners.push(listener),
      outcome: () => ({ cancelled: false, status: 200 }),
    };
    const book = PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ input: '2', output: '8' }) }]);
    const track = new UsageRecorder(publisher, book, logger).trackExchange(answered, 'chat');
    track.cacheHit(
      { model: 'm', provider: 'sim', deployment: 'm#0', upstreamModel: 'up', cost: { amount: '0.000052', currency: 'USD', priceVersion: 'v7' } },
      { promptTokens: 10, completionTokens: 4, totalTokens: 14, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false },
    );
    expect(track.costHeaders()).toEqual({ 'x-openrouter-cost': '0' });
    expect(track.decorate({ usage: {} })).toEqual({ usage: { cost: 0 } });
    listeners.forEach((l) => l());
    expect(publisher.events).toHaveLength(1);
    expect(publisher.events[0]).toMatchObject({
      cacheHit: true,
      cacheSavedCost: '0.000052',
      cost: { amount: '0', currency: 'USD', priceVersion: 'v7' },
      tokens: { prompt: 10, completion: 4, estimated: false },
      servedModel: 'm',
      provider: 'sim',
      deployment: 'm#0',
      attempts: [],
      status: usagev1.Status.STATUS_OK,
      stream: true,
    });
    // The budget's reservation is settled at 0.
    expect(settled).toEqual([
      ['budget', '0'],
      ['admission', 14],
    ]);
  });
});

describe('the usage of audio', () => {
  const logger = createLogger('test', 'silent');
  const decision: routerv1.RouteDecision = { model: 'm', provider: 'sim', deployment: 'd', upstreamModel: 'u', attempts: 1, taskType: '', reason: '', experiment: '', experimentArm: '', attemptDetails: [], strategy: '' };
  const tokens = (prompt: number, completion: number, estimated: boolean): chatv1.Usage => ({
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: prompt + completion,
    cachedReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    estimated,
  });

  function answered(id: string, status = 200): MeteredExchange & { end(): void } {
    const listeners: Array<() => void> = [];
    return {
      id,
      body: { model: 'm', prompt: 'names: Ada' },
      receivedAtMs: Date.now(),
      context: () => context,
      budget: () => undefined,
      admission: () => undefined,
      traceHeaders: () => ({}),
      onEnd: (listener) => void listeners.push(listener),
      outcome: () => ({ cancelled: false, status }),
      end: () => listeners.forEach((l) => l()),
    };
  }

  it("bills a transcription's audio per minute on top of its tokens, exactly, and records its length", () => {
    const publisher = collecting();
    const book = PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ input: '2.5', output: '10', perAudioMinute: '0.006' }) }]);
    const exchange = answered('t');
    const track = new UsageRecorder(publisher, book, logger).trackExchange(exchange, 'transcription');
    track.routed(decision);
    track.transcription(tokens(14, 45, false), 8_470);
    // 14 × 2.5 / 1M + 45 × 10 / 1M + 8.47 s × 0.006 / 60 s.
    const expected = new Decimal(14).times('2.5').plus(new Decimal(45).times(10)).dividedBy(1_000_000).plus(new Decimal(8_470).times('0.006').dividedBy(60_000));
    expect(track.costHeaders()).toEqual({ 'x-openrouter-cost': expected.toFixed() });
    exchange.end();
    expect(publisher.events[0]).toMatchObject({
      operation: usagev1.Operation.OPERATION_TRANSCRIPTION,
      audioMs: 8_470,
      characters: 0,
      tokens: { prompt: 14, completion: 45, estimated: false },
      cost: { amount: expected.toFixed() },
    });
  });

  it('records a translation under its own operation', () => {
    const publisher = collecting();
    const exchange = answered('tr');
    const track = new UsageRecorder(publisher, PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ perAudioMinute: '0.006' }) }]), logger).trackExchange(exchange, 'translation');
    track.routed(decision);
    track.transcription(tokens(3, 5, true), 60_000);
    exchange.end();
    expect(publisher.events[0]).toMatchObject({ operation: usagev1.Operation.OPERATION_TRANSLATION, audioMs: 60_000, cost: { amount: '0.006' }, tokens: { estimated: true } });
  });

  it('bills speech per million characters, and its characters are recorded', () => {
    const publisher = collecting();
    const book = PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ input: '0', output: '0', perMillionCharacters: '15' }) }]);
    const exchange = answered('s');
    const track = new UsageRecorder(publisher, book, logger).trackExchange(exchange, 'speech');
    track.routed(decision);
    track.speech(tokens(4, 0, true), 1_234);
    exchange.end();
    expect(publisher.events[0]).toMatchObject({ operation: usagev1.Operation.OPERATION_SPEECH, characters: 1_234, audioMs: 0, cost: { amount: '0.01851' } });
  });

  it('bills nothing by length for a call that failed', async () => {
    const publisher = collecting();
    const exchange = answered('f', 502);
    const track = new UsageRecorder(publisher, PriceBook.fromModels([{ id: 'm', pricing: pricingSchema.parse({ perAudioMinute: '0.006' }) }]), logger).trackExchange(exchange, 'transcription');
    await expect(track.guard(Promise.reject(new GatewayError('upstream_error', 'provider failed')))).rejects.toThrow('provider failed');
    exchange.end();
    expect(publisher.events[0]).toMatchObject({ operation: usagev1.Operation.OPERATION_TRANSCRIPTION, status: usagev1.Status.STATUS_ERROR, errorKind: 'upstream_error', audioMs: 0, cost: { amount: '0' } });
  });
});
