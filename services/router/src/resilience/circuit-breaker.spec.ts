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

  it('a neutral result does not reset the consecutive failures of a closed circuit', () => {
    const breaker = new CircuitBreaker(SETTINGS, new ManualClock());
    breaker.failure(acquired(breaker));
    breaker.release(acquired(breaker));
    breaker.failure(acquired(breaker));
    expect(breaker.current()).toBe('open');
  });
});
