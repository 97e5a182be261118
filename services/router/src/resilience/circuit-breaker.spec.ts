import { ManualClock } from '../routing/test-engine.testing';
import { CircuitBreaker, type BreakerPermit } from './circuit-breaker';

const SETTINGS = { consecutiveFailures: 2, errorRate: 0.5, minRequests: 100, windowMs: 30_000, cooldownMs: 1_000 };

function acquired(breaker: CircuitBreaker): BreakerPermit {
  const permit = breaker.tryAcquire();
  if (!permit) throw new Error('the breaker let nothing through');
  return permit;
}

describe('CircuitBreaker', () => {
  it('stays open when a call let through before it opened succeeds late', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker(SETTINGS, clock);
    const slow = acquired(breaker);
    breaker.failure(acquired(breaker));
    breaker.failure(acquired(breaker));
    expect(breaker.current()).toBe('open');
    breaker.success(slow);
    expect(breaker.current()).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
    clock.advance(1_000);
    expect(breaker.current()).toBe('half_open');
  });

  it('while half-open, changes state only on the probe’s result', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker(SETTINGS, clock);
    const early = acquired(breaker);
    const earlier = acquired(breaker);
    breaker.failure(acquired(breaker));
    breaker.failure(acquired(breaker));
    clock.advance(1_000);
    const probe = acquired(breaker);
    expect(probe.probe).toBe(true);
    // Calls let through before the circuit opened neither close nor reopen it.
    breaker.success(early);
    breaker.failure(earlier);
    expect(breaker.current()).toBe('half_open');
    expect(breaker.tryAcquire()).toBeUndefined();
    breaker.success(probe);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
  });

  it('a probe refused for the request’s own fault frees its slot without closing or reopening', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker(SETTINGS, clock);
    breaker.failure(acquired(breaker));
    breaker.failure(acquired(breaker));
    clock.advance(1_000);
    breaker.release(acquired(breaker));
    expect(breaker.current()).toBe('half_open');
    const next = acquired(breaker);
    expect(next.probe).toBe(true);
    breaker.failure(next);
    expect(breaker.current()).toBe('open');
  });

  it('after a probe closed it, calls let through before it opened neither reopen it nor count', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker(SETTINGS, clock);
    const [first, second, third, fourth, slow] = [acquired(breaker), acquired(breaker), acquired(breaker), acquired(breaker), acquired(breaker)] as const;
    breaker.failure(first);
    breaker.failure(second);
    expect(breaker.current()).toBe('open');
    clock.advance(1_000);
    breaker.success(acquired(breaker));
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, windowRequests: 1 });
    breaker.failure(third);
    breaker.failure(fourth);
    breaker.success(slow);
    breaker.finished(slow);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, windowRequests: 1, windowErrorRate: 0 });
    // Calls let through since count as ever.
    breaker.failure(acquired(breaker));
    breaker.failure(acquired(breaker));
    expect(breaker.current()).toBe('open');
  });

  it('cools down for its cooldown once open, even when the clock is set back meanwhile', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker(SETTINGS, clock);
    breaker.failure(acquired(breaker));
    breaker.failure(acquired(breaker));
    clock.advance(-3_600_000);
    expect(breaker.current()).toBe('open');
    clock.advance(SETTINGS.cooldownMs);
    expect(breaker.current()).toBe('half_open');
  });

  it('a neutral result does not reset the consecutive failures of a closed circuit', () => {
    const breaker = new CircuitBreaker(SETTINGS, new ManualClock());
    breaker.failure(acquired(breaker));
    breaker.release(acquired(breaker));
    breaker.failure(acquired(breaker));
    expect(breaker.current()).toBe('open');
  });
});

describe('CircuitBreaker with a call that fails after its success was counted (a stream cut off after its first token)', () => {
  const settings = { ...SETTINGS, consecutiveFailures: 3 };

  it('counts the call once, as a failure, when the clock stepped back before its success', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker(settings, clock);
    breaker.failure(acquired(breaker));
    // The clock steps back by less than the window: the success goes into the newest bucket, not that of its time.
    clock.advance(-SETTINGS.windowMs / 2);
    const stream = acquired(breaker);
    breaker.success(stream);
    breaker.failure(stream);
    expect(breaker.snapshot()).toMatchObject({ windowRequests: 2, windowErrorRate: 1 });
    // Its failure leaves the window with its request, not before it.
    clock.advance(SETTINGS.windowMs / 2 + SETTINGS.windowMs - 1);
    expect(breaker.snapshot().windowErrorRate).toBe(1);
  });

  it('counts the call once, as a failure, and the failures in a row go on from before its success', () => {
    const breaker = new CircuitBreaker(settings, new ManualClock());
    breaker.failure(acquired(breaker));
    const stream = acquired(breaker);
    breaker.success(stream);
    // A success in the window at its first token; the failures in a row end only when it does.
    expect(breaker.snapshot()).toMatchObject({ consecutiveFailures: 1, windowRequests: 2, windowErrorRate: 0.5 });
    breaker.failure(stream);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2, windowRequests: 2, windowErrorRate: 1 });
    const next = acquired(breaker);
    breaker.success(next);
    breaker.failure(next);
    expect(breaker.current()).toBe('open');
  });

  it('reads a deployment that always fails mid-stream at its true error rate', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ ...SETTINGS, consecutiveFailures: 1000, minRequests: 10 }, clock);
    for (let i = 0; i < 9; i++) {
      const stream = acquired(breaker);
      breaker.success(stream);
      clock.advance(10);
      breaker.failure(stream);
    }
    expect(breaker.snapshot()).toMatchObject({ windowRequests: 9, windowErrorRate: 1 });
    // A call whose success has left the window counts as a failure when it fails.
    const slow = acquired(breaker);
    breaker.success(slow);
    clock.advance(SETTINGS.windowMs);
    breaker.failure(slow);
    expect(breaker.snapshot()).toMatchObject({ windowRequests: 1, windowErrorRate: 1 });
  });

  it('opens by consecutive failures when overlapping streams all fail after their first token', () => {
    const clock = new ManualClock();
    // Low traffic: the error rate's minRequests is never reached, so only the failures in a row can open it.
    const breaker = new CircuitBreaker({ ...SETTINGS, consecutiveFailures: 5, minRequests: 1000 }, clock);
    // 16 streams, two at a time: each new stream's first token arrives before the one before it fails.
    let previous: BreakerPermit | undefined;
    let failed = 0;
    for (let i = 0; i < 16; i++) {
      const stream = breaker.tryAcquire();
      if (stream) breaker.success(stream);
      clock.advance(10);
      if (previous) {
        breaker.failure(previous);
        failed++;
      }
      if (breaker.current() === 'open') break;
      previous = stream;
    }
    expect(failed).toBe(5);
    // The sixth stream is still in flight (a success so far).
    expect(breaker.snapshot()).toMatchObject({ state: 'open', consecutiveFailures: 5, windowRequests: 6 });
  });

  it('ends the failures in a row when a stream finishes without failing, not at its first token', () => {
    const breaker = new CircuitBreaker(settings, new ManualClock());
    const long = acquired(breaker);
    breaker.success(long);
    const cut = acquired(breaker);
    breaker.success(cut);
    breaker.failure(cut);
    breaker.failure(acquired(breaker));
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
    breaker.finished(long);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, windowRequests: 3 });
    // Finished twice, or after its failure, changes nothing.
    breaker.failure(acquired(breaker));
    breaker.finished(long);
    breaker.finished(cut);
    expect(breaker.snapshot()).toMatchObject({ consecutiveFailures: 1 });
  });

  it('a success since then keeps its reset: the late failure counts one more', () => {
    const breaker = new CircuitBreaker(settings, new ManualClock());
    breaker.failure(acquired(breaker));
    const stream = acquired(breaker);
    breaker.success(stream);
    // Another call answers in full meanwhile.
    const other = acquired(breaker);
    breaker.success(other);
    breaker.finished(other);
    breaker.failure(stream);
    expect(breaker.snapshot()).toMatchObject({ consecutiveFailures: 1, windowRequests: 3 });
  });

  it('reopens the circuit when the probe that closed it fails before any other call succeeds; a stale probe’s failure changes nothing', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker(SETTINGS, clock);
    breaker.failure(acquired(breaker));
    breaker.failure(acquired(breaker));
    clock.advance(1_000);
    const probe = acquired(breaker);
    breaker.success(probe);
    expect(breaker.current()).toBe('closed');
    breaker.failure(probe);
    expect(breaker.current()).toBe('open');
    clock.advance(1_000);
    const second = acquired(breaker);
    breaker.success(second);
    breaker.failure(acquired(breaker));
    breaker.failure(acquired(breaker));
    clock.advance(1_000);
    const third = acquired(breaker);
    expect(third.probe).toBe(true);
    // The second probe's stream fails long after the circuit reopened: the probe in flight decides.
    breaker.failure(second);
    expect(breaker.current()).toBe('half_open');
    breaker.success(third);
    expect(breaker.current()).toBe('closed');
  });
});
