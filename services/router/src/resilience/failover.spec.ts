import { getEventListeners } from 'node:events';
import type { adapterv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { configWith, engineFor, ManualClock, planRequest, TWO_MODELS } from '../routing/test-engine.testing';
import { createRoutingEngine } from '../routing/routing-engine';
import { seededRandom, type Clock } from '../stats/clock';
import { serveWithFailover, type AnswerFailureListener, type AttemptListener, type AttemptOpener } from './failover';

type Script = Record<string, Array<GatewayError | 'ok'>>;

/** An opener whose deployments fail or answer as scripted, call by call. */
function scripted(script: Script): { open: AttemptOpener<string>; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    open: (candidate) => {
      calls.push(candidate.deployment.id);
      const outcome = script[candidate.deployment.id]?.shift() ?? 'ok';
      return (async function* () {
        if (outcome !== 'ok') throw outcome;
        yield `answer from ${candidate.deployment.id}`;
        yield 'more';
      })();
    },
  };
}

const config = configWith(
  [
    { ...TWO_MODELS[1], contextWindow: 8000, fallbacks: ['cheap'] },
    { ...TWO_MODELS[0], contextWindow: 100000 },
  ],
  { retry: { baseDelayMs: 0, maxDelayMs: 0, maxAttempts: 4 }, breaker: { consecutiveFailures: 2, cooldownMs: 1000 }, balancing: 'weighted', seed: 1 },
);

async function serve(engine: ReturnType<typeof engineFor>, open: AttemptOpener<string>, model = 'premium') {
  const plan = engine.planner.plan(planRequest(model, { controls: { route: { providers: { order: ['a'] } } } }));
  return serveWithFailover(plan, open, new AbortController().signal, engine.failover, { stream: true, tokens: 10 });
}

describe('failover', () => {
  it('moves to the next deployment on a 5xx and records every attempt', async () => {
    const engine = engineFor(config);
    const { open, calls } = scripted({ 'premium-a': [new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 })] });
    const served = await serve(engine, open);
    expect(served.first).toBe('answer from premium-b');
    expect(calls).toEqual(['premium-a', 'premium-b']);
    expect(served.attempts.map((a) => [a.deployment, a.errorKind, a.upstreamStatus])).toEqual([
      ['premium-a', 'upstream_error', 500],
      ['premium-b', '', 0],
    ]);
  });

  it('falls back to the configured fallback model when every deployment fails', async () => {
    const engine = engineFor(config);
    const down = (): GatewayError => new GatewayError('unavailable', 'down');
    const { open } = scripted({ 'premium-a': [down()], 'premium-b': [down()] });
    expect((await serve(engine, open)).candidate.model.id).toBe('cheap');
  });

  it('does not retry errors that are the request’s fault', async () => {
    const engine = engineFor(config);
    const { open, calls } = scripted({ 'premium-a': [new GatewayError('bad_request', 'no')] });
    await expect(serve(engine, open)).rejects.toMatchObject({ kind: 'bad_request' });
    expect(calls).toEqual(['premium-a']);
  });

  it('moves to a larger context window on context_length_exceeded', async () => {
    const engine = engineFor(configWith([{ ...TWO_MODELS[1], contextWindow: 8000 }, { ...TWO_MODELS[0], contextWindow: 100000 }], { balancing: 'weighted' }));
    const { open, calls } = scripted({ 'premium-a': [new GatewayError('context_length_exceeded', 'long')], 'premium-b': [new GatewayError('context_length_exceeded', 'long')] });
    const served = await serve(engine, open);
    expect(served.candidate.model.id).toBe('cheap');
    expect(calls).toEqual(['premium-a', 'cheap-a']);
  });

  it('moves to a larger context window on context_length_exceeded in a later round too', async () => {
    const retry = { baseDelayMs: 0, maxDelayMs: 0, maxAttempts: 4 };
    const engine = engineFor(configWith([{ ...TWO_MODELS[1], contextWindow: 8000 }, { ...TWO_MODELS[0], contextWindow: 100000 }], { balancing: 'weighted', retry }));
    // Both deployments are down at first; on the second round the first one reads the prompt and finds it too long.
    const down = (): GatewayError => new GatewayError('unavailable', 'down');
    const { open, calls } = scripted({ 'premium-a': [down(), new GatewayError('context_length_exceeded', 'long')], 'premium-b': [down()] });
    const served = await serve(engine, open);
    expect(served.candidate.model.id).toBe('cheap');
    expect(calls).toEqual(['premium-a', 'premium-b', 'premium-a', 'cheap-a']);
  });

  it('does not move to a larger context window when the request turned fallbacks off', async () => {
    const engine = engineFor(configWith([{ ...TWO_MODELS[1], contextWindow: 8000 }, { ...TWO_MODELS[0], contextWindow: 100000 }], { balancing: 'weighted' }));
    const { open, calls } = scripted({ 'premium-a': [new GatewayError('context_length_exceeded', 'long')] });
    const plan = engine.planner.plan(planRequest('premium', { controls: { route: { allowFallbacks: false, providers: { order: ['a'] } } } }));
    await expect(serveWithFailover(plan, open, new AbortController().signal, engine.failover, { stream: false, tokens: 1 })).rejects.toMatchObject({ kind: 'context_length_exceeded' });
    expect(calls).toEqual(['premium-a']);
  });

  it('takes a rate-limited deployment out for its Retry-After, and retries it after waiting when it is the only one', async () => {
    const clock = new ManualClock();
    const engine = engineFor(configWith([TWO_MODELS[0]], { retry: { baseDelayMs: 0, maxDelayMs: 0 } }), clock);
    const { open, calls } = scripted({ 'cheap-a': [new GatewayError('rate_limited', 'slow', { retryAfterMs: 5 })] });
    const served = await serve(engine, open, 'cheap');
    expect(calls).toEqual(['cheap-a', 'cheap-a']);
    expect(served.attempts).toHaveLength(2);
  });

  it('leaves a deployment cooling down for a long Retry-After out of new requests, after every other model', async () => {
    const clock = new ManualClock();
    const engine = engineFor(config, clock);
    engine.breakers.coolDown('premium-a', clock.now() + 30_000);
    const plan = engine.planner.plan(planRequest('premium', { controls: { route: { providers: { order: ['a'] } } } }));
    // Cooling goes after the fallback model too, not only after its own model's deployments.
    expect(plan.candidates.map((c) => c.deployment.id)).toEqual(['premium-b', 'cheap-a', 'premium-a']);
    // Without fallbacks, an alias's top model is the best one not cooling down.
    const alias = engineFor(configWith(TWO_MODELS, { aliases: { both: { models: ['premium', 'cheap'], route: { strategy: 'quality' } } } }), clock);
    alias.breakers.coolDown('premium-a', clock.now() + 30_000);
    alias.breakers.coolDown('premium-b', clock.now() + 30_000);
    expect(alias.planner.plan(planRequest('both', { controls: { route: { allowFallbacks: false } } })).candidates.map((c) => c.deployment.id)).toEqual(['cheap-a']);
    const down = (): GatewayError[] => [new GatewayError('upstream_error', 'x'), new GatewayError('upstream_error', 'x')];
    const { open, calls } = scripted({ 'premium-b': down(), 'cheap-a': down() });
    const error = await serveWithFailover(plan, open, new AbortController().signal, engine.failover, { stream: false, tokens: 1 }).catch((e: unknown) => e);
    expect(calls).toEqual(['premium-b', 'cheap-a', 'premium-b', 'cheap-a']);
    // Nothing served: the client is told when the skipped deployment takes calls again.
    expect(error).toMatchObject({ kind: 'rate_limited', retryAfterMs: 30_000 });
  });

  it('answers 429 with the remaining Retry-After when the only deployment is cooling down too long', async () => {
    const clock = new ManualClock();
    const engine = engineFor(configWith([TWO_MODELS[0]], { retry: { maxRetryAfterMs: 1000 } }), clock);
    engine.breakers.coolDown('cheap-a', clock.now() + 20_000);
    clock.advance(5_000);
    const { open, calls } = scripted({});
    await expect(serve(engine, open, 'cheap')).rejects.toMatchObject({ kind: 'rate_limited', retryAfterMs: 15_000 });
    expect(calls).toEqual([]);
  });

  it('waits for a deployment cooling down within maxRetryAfterMs before calling it', async () => {
    // Fake timers: the engine's clock (Date.now) and its wait (setTimeout) move only as the test says.
    jest.useFakeTimers();
    try {
      const clock = { now: () => Date.now() };
      const engine = engineFor(configWith([TWO_MODELS[0]], { retry: { maxRetryAfterMs: 1000 } }), clock as ManualClock);
      engine.breakers.coolDown('cheap-a', Date.now() + 60);
      const { open, calls } = scripted({});
      const served = serve(engine, open, 'cheap');
      // Not called while it cools down; called once it has.
      await jest.advanceTimersByTimeAsync(59);
      expect(calls).toEqual([]);
      await jest.advanceTimersByTimeAsync(1);
      expect(calls).toEqual(['cheap-a']);
      expect((await served).candidate.deployment.id).toBe('cheap-a');
    } finally {
      jest.useRealTimers();
    }
  });

  it('gives up at the deadline', async () => {
    const engine = engineFor(configWith([TWO_MODELS[0]], { retry: { baseDelayMs: 0, maxDelayMs: 0, deadlineMs: 1000 } }));
    const { open } = scripted({ 'cheap-a': [new GatewayError('rate_limited', 'slow', { retryAfterMs: 5000 })] });
    await expect(serve(engine, open, 'cheap')).rejects.toMatchObject({ kind: 'rate_limited' });
  });

  it('opens the breaker after consecutive failures and closes it after a successful probe', async () => {
    const clock = new ManualClock();
    const engine = engineFor(config, clock);
    const fail = (): GatewayError => new GatewayError('upstream_error', 'x');
    const { open } = scripted({ 'premium-a': [fail(), fail()] });
    await serve(engine, open);
    await serve(engine, open);
    expect(engine.breakers.of('premium-a').current()).toBe('open');
    expect(engine.planner.plan(planRequest('premium')).candidates.map((c) => c.deployment.id)).not.toContain('premium-a');
    clock.advance(1000);
    expect(engine.breakers.of('premium-a').current()).toBe('half_open');
    const served = await serve(engine, open);
    expect(served.candidate.deployment.id).toBe('premium-a');
    expect(engine.breakers.of('premium-a').current()).toBe('closed');
  });

  it('never retries once the first event arrived', async () => {
    const engine = engineFor(config);
    let calls = 0;
    const open: AttemptOpener<string> = () => {
      calls++;
      return (async function* () {
        yield 'token';
        throw new GatewayError('upstream_error', 'dropped');
      })();
    };
    const served = await serve(engine, open);
    await expect(served.rest.next()).rejects.toMatchObject({ kind: 'upstream_error' });
    served.finish(new Error('dropped'));
    expect(calls).toBe(1);
  });

  it('times out an attempt that produces nothing and tries the next', async () => {
    const engine = engineFor(configWith(TWO_MODELS, { retry: { attemptTimeoutMs: 20, baseDelayMs: 0, maxDelayMs: 0 } }));
    const reasons: unknown[] = [];
    const open: AttemptOpener<adapterv1.ChatResponse | string> = (candidate, signal) =>
      (async function* () {
        if (candidate.deployment.id === 'premium-a') {
          await new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              reasons.push(signal.reason);
              reject(new GatewayError('cancelled', 'x'));
            }),
          );
        }
        yield 'ok';
      })();
    const plan = engine.planner.plan(planRequest('premium', { controls: { route: { providers: { order: ['a'] } } } }));
    const served = await serveWithFailover(plan, open, new AbortController().signal, engine.failover, { stream: true, tokens: 1 });
    expect(served.attempts.map((a) => a.errorKind)).toEqual(['timeout', '']);
    // The attempt's signal says why it was stopped (its telemetry counts a timeout, not a client gone).
    expect(reasons).toEqual([expect.objectContaining({ kind: 'timeout' })]);
  });
  describe('with events that do not commit (a stream that has only named its role)', () => {
    const opening = (id: string): string => `role from ${id}`;
    const commits = (event: string): boolean => !event.startsWith('role');
    const plan = (engine: ReturnType<typeof engineFor>) => engine.planner.plan(planRequest('premium', { controls: { route: { providers: { order: ['a'] } } } }));

    it('moves on when the provider fails after its opening, and serves what was held with the answer', async () => {
      const engine = engineFor(configWith(TWO_MODELS, { retry: { baseDelayMs: 0, maxDelayMs: 0 } }));
      const open: AttemptOpener<string> = (candidate) =>
        (async function* () {
          yield opening(candidate.deployment.id);
          if (candidate.deployment.id === 'premium-a') throw new GatewayError('unavailable', 'overloaded');
          yield opening(candidate.deployment.id);
          yield `answer from ${candidate.deployment.id}`;
          yield 'more';
        })();
      const served = await serveWithFailover(plan(engine), open, new AbortController().signal, engine.failover, { stream: true, tokens: 1, commits });
      expect(served.attempts.map((a) => [a.deployment, a.errorKind])).toEqual([
        ['premium-a', 'unavailable'],
        ['premium-b', ''],
      ]);
      const events = [served.first];
      for (let next = await served.rest.next(); !next.done; next = await served.rest.next()) events.push(next.value);
      expect(events).toEqual(['role from premium-b', 'role from premium-b', 'answer from premium-b', 'more']);
      served.finish();
    });

    it('times out a provider that stalls after its opening, and tries the next', async () => {
      const engine = engineFor(configWith(TWO_MODELS, { retry: { attemptTimeoutMs: 20, baseDelayMs: 0, maxDelayMs: 0 } }));
      const open: AttemptOpener<string> = (candidate, signal) =>
        (async function* () {
          yield opening(candidate.deployment.id);
          if (candidate.deployment.id === 'premium-a') await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new GatewayError('cancelled', 'x'))));
          yield `answer from ${candidate.deployment.id}`;
        })();
      const served = await serveWithFailover(plan(engine), open, new AbortController().signal, engine.failover, { stream: true, tokens: 1, commits });
      expect(served.attempts.map((a) => a.errorKind)).toEqual(['timeout', '']);
      expect(served.first).toBe('role from premium-b');
      served.finish();
    });

    it('serves a stream that ends after its opening as it is, and ends the call when the reader stops early', async () => {
      const engine = engineFor(configWith(TWO_MODELS, { retry: { baseDelayMs: 0, maxDelayMs: 0 } }));
      const empty = await serveWithFailover(plan(engine), () => (async function* () { yield opening('a'); })(), new AbortController().signal, engine.failover, { stream: true, tokens: 1, commits });
      expect([empty.first, await empty.rest.next()]).toEqual(['role from a', { done: true, value: undefined }]);
      empty.finish();
      let ended = false;
      const long: AttemptOpener<string> = () =>
        (async function* () {
          try {
            yield opening('a');
            yield 'answer';
            yield 'never read';
          } finally {
            ended = true;
          }
        })();
      const served = await serveWithFailover(plan(engine), long, new AbortController().signal, engine.failover, { stream: true, tokens: 1, commits });
      expect(await served.rest.next()).toEqual({ done: false, value: 'answer' });
      await served.rest.return?.();
      expect(ended).toBe(true);
      served.finish();
    });
  });

  it('gives a non-streamed attempt completionTimeoutMs to return its whole answer, not the first-event timeout', async () => {
    const engine = engineFor(configWith(TWO_MODELS, { retry: { attemptTimeoutMs: 20, completionTimeoutMs: 5_000, deadlineMs: 30, baseDelayMs: 0, maxDelayMs: 0 } }));
    const calls: string[] = [];
    const slow: AttemptOpener<string> = (candidate, signal) => {
      calls.push(candidate.deployment.id);
      return (async function* () {
        await new Promise((resolve, reject) => {
          const timer = setTimeout(resolve, 80);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(new GatewayError('cancelled', 'aborted'));
          });
        });
        yield 'the whole answer';
      })();
    };
    const plan = () => engine.planner.plan(planRequest('premium'));
    const served = await serveWithFailover(plan(), slow, new AbortController().signal, engine.failover, { stream: false, tokens: 1 });
    expect(served.first).toBe('the whole answer');
    expect(calls).toHaveLength(1);
    // A stream still has to show its first event within attemptTimeoutMs.
    await expect(serveWithFailover(plan(), slow, new AbortController().signal, engine.failover, { stream: true, tokens: 1 })).rejects.toMatchObject({ kind: 'timeout' });
  });

  describe('a whole call given timeoutMs (a guardrail’s moderation call)', () => {
    // completionTimeoutMs far beyond this test's own timeout: only the call's budget can stop an attempt.
    const bounded = configWith(TWO_MODELS, { retry: { completionTimeoutMs: 600_000, baseDelayMs: 0, maxDelayMs: 0 } });
    /** An attempt that answers only by failing once its signal aborts, the clock then `elapsed` further. */
    const hang = (signal: AbortSignal, clock: ManualClock, elapsed: number, reasons: unknown[]): AsyncGenerator<string> =>
      (async function* () {
        await new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            reasons.push(signal.reason);
            clock.advance(elapsed);
            reject(new GatewayError('cancelled', 'aborted'));
          }),
        );
        yield 'never';
      })();

    it('stops a non-streamed attempt at the budget, not completionTimeoutMs, and answers with its timeout', async () => {
      const clock = new ManualClock();
      const engine = engineFor(bounded, clock);
      const reasons: unknown[] = [];
      const told: Array<[string, boolean]> = [];
      const onAttempt: AttemptListener = (_candidate, attempt, _failure, cutShort) => told.push([attempt.errorKind, cutShort]);
      const open: AttemptOpener<string> = (_candidate, signal) => hang(signal, clock, 30, reasons);
      await expect(serveWithFailover(engine.planner.plan(planRequest('premium')), open, new AbortController().signal, engine.failover, { stream: false, tokens: 1, timeoutMs: 30, onAttempt })).rejects.toMatchObject({ kind: 'timeout' });
      // It had the whole budget: its timeout counts against its deployment. The budget spent, no other attempt starts.
      expect(told).toEqual([['timeout', false]]);
      expect(reasons).toEqual([expect.objectContaining({ kind: 'timeout' })]);
    }, 15_000);

    it('gives a later attempt only what is left of the budget, holds its timeout against no one, and answers with the failure before it', async () => {
      const clock = new ManualClock();
      const engine = engineFor(bounded, clock);
      const reasons: unknown[] = [];
      const told: Array<[string, string, boolean]> = [];
      const onAttempt: AttemptListener = (candidate, attempt, _failure, cutShort) => told.push([candidate.deployment.id, attempt.errorKind, cutShort]);
      let calls = 0;
      const open: AttemptOpener<string> = (_candidate, signal) => {
        calls += 1;
        if (calls > 1) return hang(signal, clock, 10, reasons);
        // The first deployment fails after 20 ms of the call's 30.
        clock.advance(20);
        return (async function* () {
          yield* [];
          throw new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 });
        })();
      };
      await expect(serveWithFailover(engine.planner.plan(planRequest('premium')), open, new AbortController().signal, engine.failover, { stream: false, tokens: 1, timeoutMs: 30, onAttempt })).rejects.toMatchObject({ kind: 'upstream_error' });
      expect(told.map(([, kind, cutShort]) => [kind, cutShort])).toEqual([
        ['upstream_error', false],
        ['timeout', true],
      ]);
      expect(reasons).toEqual([expect.objectContaining({ kind: 'timeout' })]);
      const second = told[1]?.[0] ?? '';
      expect(engine.breakers.of(second).snapshot()).toMatchObject({ consecutiveFailures: 0 });
    }, 15_000);
  });

  it('a request refused for its own fault neither closes a half-open circuit nor keeps its probe slot', async () => {
    const clock = new ManualClock();
    const engine = engineFor(config, clock);
    const fail = (): GatewayError => new GatewayError('upstream_error', 'x');
    await serve(engine, scripted({ 'premium-a': [fail()] }).open);
    // A 400 between two failures does not reset the count: the second failure opens the circuit.
    await expect(serve(engine, scripted({ 'premium-a': [new GatewayError('bad_request', 'no')] }).open)).rejects.toMatchObject({ kind: 'bad_request' });
    await serve(engine, scripted({ 'premium-a': [fail()] }).open);
    expect(engine.breakers.of('premium-a').current()).toBe('open');
    clock.advance(1000);
    await expect(serve(engine, scripted({ 'premium-a': [new GatewayError('bad_request', 'no')] }).open)).rejects.toMatchObject({ kind: 'bad_request' });
    expect(engine.breakers.of('premium-a').current()).toBe('half_open');
    expect(engine.breakers.of('premium-a').available()).toBe(true);
  });

  it('treats an opener that throws at once as that deployment failing: the next one serves, nothing leaks', async () => {
    const clock = new ManualClock();
    const engine = engineFor(config, clock);
    const calls: string[] = [];
    const open: AttemptOpener<string> = (candidate) => {
      calls.push(candidate.deployment.id);
      if (candidate.deployment.provider === 'a') throw new Error('no adapter address for provider "a" and no default');
      return (async function* () {
        yield 'ok';
      })();
    };
    const signal = new AbortController().signal;
    const plan = () => engine.planner.plan(planRequest('premium', { controls: { route: { providers: { order: ['a'] } } } }));
    const served = await serveWithFailover(plan(), open, signal, engine.failover, { stream: false, tokens: 1 });
    served.finish();
    expect(calls).toEqual(['premium-a', 'premium-b']);
    expect(served.attempts.map((a) => a.errorKind)).toEqual(['unavailable', '']);
    expect(engine.stats.of('premium-a').outstanding).toBe(0);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    // A half-open probe that throws at once reopens the circuit rather than holding the probe forever.
    await serveWithFailover(plan(), open, signal, engine.failover, { stream: false, tokens: 1 });
    expect(engine.breakers.of('premium-a').current()).toBe('open');
    clock.advance(1000);
    await serveWithFailover(plan(), open, signal, engine.failover, { stream: false, tokens: 1 });
    expect(engine.breakers.of('premium-a').current()).toBe('open');
    clock.advance(1000);
    expect(engine.breakers.of('premium-a').available()).toBe(true);
  });
});

describe('failover after the first event', () => {
  const oneModel = [{ id: 'm', deployments: [{ id: 'm-a', provider: 'a', model: 'x' }] }];
  /** One streamed request whose deployment sends its first token, then fails with `error`. */
  async function cutOff(engine: ReturnType<typeof engineFor>, error: GatewayError): Promise<void> {
    const open: AttemptOpener<string> = () =>
      (async function* () {
        yield 'first token';
        throw error;
      })();
    const served = await serveWithFailover(engine.planner.plan(planRequest('m')), open, new AbortController().signal, engine.failover, { stream: true, tokens: 1 });
    await expect(served.rest.next()).rejects.toBe(error);
    served.finish(error);
  }

  it('counts a stream that fails after its first token once, as a failure: its breaker opens', async () => {
    const clock = new ManualClock();
    const engine = engineFor(configWith(oneModel, { breaker: { consecutiveFailures: 3, minRequests: 1000 } }), clock);
    for (let i = 0; i < 2; i++) await cutOff(engine, new GatewayError('upstream_error', 'dropped'));
    expect(engine.breakers.of('m-a').snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2, windowRequests: 2, windowErrorRate: 1 });
    await cutOff(engine, new GatewayError('upstream_error', 'dropped'));
    expect(engine.breakers.of('m-a').current()).toBe('open');
  });

  it('opens the breaker when overlapping streams all fail after their first token; a stream that ends well resets the count', async () => {
    const clock = new ManualClock();
    const engine = engineFor(configWith(oneModel, { breaker: { consecutiveFailures: 5, minRequests: 1000 } }), clock);
    const dropped = new GatewayError('upstream_error', 'dropped');
    const open: AttemptOpener<string> = () =>
      (async function* () {
        yield 'first token';
        throw dropped;
      })();
    const start = () => serveWithFailover(engine.planner.plan(planRequest('m')), open, new AbortController().signal, engine.failover, { stream: true, tokens: 1 });
    // A stream that answers to its end, then two at a time: each one's first token comes before the one before it fails.
    const whole = await start();
    whole.finish();
    let previous = await start();
    for (let i = 1; i < 16 && engine.breakers.of('m-a').current() === 'closed'; i++) {
      const next = engine.planner.plan(planRequest('m')).candidates.length > 0 ? await start() : undefined;
      await expect(previous.rest.next()).rejects.toBe(dropped);
      previous.finish(dropped);
      if (!next) break;
      previous = next;
    }
    expect(engine.breakers.of('m-a').snapshot()).toMatchObject({ state: 'open', consecutiveFailures: 5 });
  });

  it('does not count a refusal of the request after the first token (content filter) against the deployment', async () => {
    const engine = engineFor(configWith(oneModel, { breaker: { consecutiveFailures: 1 } }));
    await cutOff(engine, new GatewayError('content_filtered', 'filtered'));
    await cutOff(engine, new GatewayError('bad_request', 'no'));
    expect(engine.breakers.of('m-a').snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, windowErrorRate: 0 });
  });
});

describe('larger-context fallback', () => {
  it('queues no deployment twice after a second context_length_exceeded', async () => {
    const models = [
      { id: 'small', contextWindow: 8000, deployments: [{ id: 'small-a', provider: 'a', model: 's' }] },
      { id: 'mid', contextWindow: 16000, deployments: [{ id: 'mid-a', provider: 'a', model: 'm' }] },
      { id: 'big', contextWindow: 32000, deployments: [{ id: 'big-a', provider: 'a', model: 'b' }] },
    ];
    const engine = engineFor(configWith(models, { retry: { baseDelayMs: 0, maxDelayMs: 0, maxAttempts: 4 } }));
    const plan = engine.planner.plan(planRequest('small'));
    const offered: string[] = [];
    const largerContext = plan.largerContext;
    plan.largerContext = (than, exclude) => {
      const larger = largerContext(than, exclude);
      offered.push(...larger.map((c) => c.deployment.id));
      return larger;
    };
    const long = (): GatewayError => new GatewayError('context_length_exceeded', 'long');
    const { open, calls } = scripted({ 'small-a': [long()], 'mid-a': [long()], 'big-a': [new GatewayError('upstream_error', 'boom')] });
    const served = await serveWithFailover(plan, open, new AbortController().signal, engine.failover, { stream: true, tokens: 1 });
    expect(offered).toEqual(['mid-a', 'big-a']);
    // big-a is retried once, in the second round, as a deployment that failed retryably.
    expect(calls).toEqual(['small-a', 'mid-a', 'big-a', 'big-a']);
    expect(served.candidate.deployment.id).toBe('big-a');
    served.finish();
  });
});

describe('failover near the deadline', () => {
  // A healthy deployment expected to send its first token in 20 ms, behind one that fails late.
  const models = [{ id: 'm', expectedLatencyMs: 20, deployments: [{ id: 'm-a', provider: 'a', model: 'x' }, { id: 'm-b', provider: 'b', model: 'x' }] }];
  const settings = { retry: { baseDelayMs: 0, maxDelayMs: 0, deadlineMs: 60_000, attemptTimeoutMs: 30_000 }, breaker: { consecutiveFailures: 1, cooldownMs: 1000 } };
  const badGateway = new GatewayError('upstream_error', 'bad gateway', { upstreamStatus: 502 });
  /** m-a fails `failsAfterMs` into the request; m-b answers only once it is stopped (never in time). */
  function lateFailure(clock: ManualClock, failsAfterMs: number): { open: AttemptOpener<string>; calls: string[] } {
    const calls: string[] = [];
    return {
      calls,
      open: (candidate, signal) => {
        calls.push(candidate.deployment.id);
        return (async function* () {
          if (candidate.deployment.id === 'm-a') {
            clock.advance(failsAfterMs);
            throw badGateway;
          }
          await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new GatewayError('cancelled', 'stopped')), { once: true }));
          yield 'never';
        })();
      },
    };
  }
  const plan = (engine: ReturnType<typeof engineFor>) => engine.planner.plan(planRequest('m', { stream: true, controls: { route: { providers: { order: ['a'] } } } }));

  it('starts no streamed attempt with less time left than its deployment’s expected first token, and answers with the failure before it', async () => {
    const clock = new ManualClock();
    const engine = engineFor(configWith(models, settings), clock);
    const { open, calls } = lateFailure(clock, 59_995);
    await expect(serveWithFailover(plan(engine), open, new AbortController().signal, engine.failover, { stream: true, tokens: 1 })).rejects.toBe(badGateway);
    expect(calls).toEqual(['m-a']);
    expect(engine.breakers.of('m-b').snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, windowRequests: 0 });
  });

  it('holds an attempt the deadline stopped before its own timeout against no one, frees a probe’s slot, and answers with the failure before it', async () => {
    const clock = new ManualClock();
    const engine = engineFor(configWith(models, settings), clock);
    // m-b is half-open: the stopped attempt is its probe.
    engine.breakers.of('m-b').failure();
    clock.advance(1000);
    expect(engine.breakers.of('m-b').current()).toBe('half_open');
    const { open, calls } = lateFailure(clock, 60_000 - 40);
    const told: Array<[string, string, boolean]> = [];
    const onAttempt: AttemptListener = (candidate, attempt, _failure, cutShort) => told.push([candidate.deployment.id, attempt.errorKind, cutShort]);
    await expect(serveWithFailover(plan(engine), open, new AbortController().signal, engine.failover, { stream: true, tokens: 1, onAttempt })).rejects.toBe(badGateway);
    expect(calls).toEqual(['m-a', 'm-b']);
    expect(told).toEqual([
      ['m-a', 'upstream_error', false],
      ['m-b', 'timeout', true],
    ]);
    expect(engine.breakers.of('m-b').current()).toBe('half_open');
    expect(engine.breakers.of('m-b').available()).toBe(true);
  });
});

describe('Retry-After on an overloaded answer', () => {
  it('cools the deployment down like a 429’s: plans put it last until then', async () => {
    const clock = new ManualClock();
    const engine = engineFor(config, clock);
    const { open, calls } = scripted({ 'premium-a': [new GatewayError('overloaded', 'busy', { upstreamStatus: 529, retryAfterMs: 30_000 })] });
    const served = await serve(engine, open);
    expect(calls).toEqual(['premium-a', 'premium-b']);
    expect(served.candidate.deployment.id).toBe('premium-b');
    expect(engine.breakers.coolingUntil('premium-a')).toBe(clock.now() + 30_000);
    expect(engine.planner.plan(planRequest('premium', { controls: { route: { providers: { order: ['a'] } } } })).candidates.map((c) => c.deployment.id)).toEqual(['premium-b', 'cheap-a', 'premium-a']);
    clock.advance(30_000);
    expect(engine.breakers.coolingUntil('premium-a')).toBe(0);
  });
});

describe('a stream that fails after its first event', () => {
  const oneModel = [{ id: 'm', deployments: [{ id: 'm-a', provider: 'a', model: 'x' }] }];
  async function served(engine: ReturnType<typeof engineFor>, signal: AbortSignal, onAnswerFailed: AnswerFailureListener) {
    const open: AttemptOpener<string> = () =>
      (async function* () {
        yield 'first token';
      })();
    return serveWithFailover(engine.planner.plan(planRequest('m')), open, signal, engine.failover, { stream: true, tokens: 1, onAnswerFailed });
  }

  it('is told to the listener when the deployment broke it, not when the request was refused or the client left', async () => {
    const engine = engineFor(configWith(oneModel, { breaker: { consecutiveFailures: 1000 } }));
    const told: Array<[string, string]> = [];
    const listener: AnswerFailureListener = (candidate, failure) => told.push([candidate.deployment.id, failure.kind]);
    (await served(engine, new AbortController().signal, listener)).finish(new GatewayError('upstream_error', 'dropped'));
    (await served(engine, new AbortController().signal, listener)).finish(new GatewayError('content_filtered', 'filtered'));
    (await served(engine, new AbortController().signal, listener)).finish();
    const client = new AbortController();
    const gone = await served(engine, client.signal, listener);
    client.abort();
    gone.finish(new GatewayError('upstream_error', 'dropped as the client left'));
    expect(told).toEqual([['m-a', 'upstream_error']]);
  });
});

describe('timing an attempt', () => {
  it('reads its durations on the monotonic clock, whatever the wall clock does meanwhile', async () => {
    const wall = new ManualClock();
    let monotonic = 0;
    const clock: Clock = { now: () => wall.now(), monotonic: () => monotonic };
    const engine = createRoutingEngine(configWith([TWO_MODELS[0]]), { clock, random: seededRandom(1) });
    const open: AttemptOpener<string> = () =>
      (async function* () {
        // The wall clock is set back an hour while the deployment works on its first token.
        wall.advance(-3_600_000);
        monotonic += 40;
        yield 'first token';
        monotonic += 60;
        yield 'last token';
      })();
    const served = await serveWithFailover(engine.planner.plan(planRequest('cheap')), open, new AbortController().signal, engine.failover, { stream: true, tokens: 1 });
    expect(served.attempts.map((a) => a.latencyMs)).toEqual([40]);
    await served.rest.next();
    served.finish();
    expect(engine.stats.of('cheap-a')).toMatchObject({ ttftEwmaMs: 40, latencyEwmaMs: 100 });
  });
});

describe('a client gone before failover begins (during a guardrail’s moderation call)', () => {
  it('calls no deployment and takes no permit', async () => {
    const engine = engineFor(configWith([TWO_MODELS[0]], { breaker: { consecutiveFailures: 1, cooldownMs: 1000 } }));
    const { open, calls } = scripted({});
    const client = new AbortController();
    client.abort();
    await expect(serveWithFailover(engine.planner.plan(planRequest('cheap')), open, client.signal, engine.failover, { stream: true, tokens: 1 })).rejects.toMatchObject({ kind: 'cancelled' });
    expect(calls).toEqual([]);
    expect(engine.stats.of('cheap-a').outstanding).toBe(0);
    expect(engine.breakers.of('cheap-a').available()).toBe(true);
  });
});
