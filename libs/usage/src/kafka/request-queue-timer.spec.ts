import { fixRequestQueueTimer, requestQueueClass, type RequestQueueInternals } from './request-queue-timer';

type RequestQueueConstructor = new (options: Record<string, unknown>) => RequestQueueInternals;

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function newQueue(): RequestQueueInternals & { checks: number } {
  const RequestQueue = requestQueueClass() as unknown as RequestQueueConstructor;
  const queue = new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'spec', broker: '127.0.0.1:9092', logger: silent }) as RequestQueueInternals & { checks: number };
  queue.checks = 0;
  const check = queue.checkPendingRequests.bind(queue);
  queue.checkPendingRequests = () => {
    queue.checks += 1;
    check();
  };
  return queue;
}

describe('the kafkajs request queue timer', () => {
  // Read before the fix is applied: this module registry has not loaded kafka-client.
  const upstream = requestQueueClass().prototype.scheduleCheckPendingRequests;

  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('upstream re-arms a 1 ms check forever when nothing is pending (the defect the fix removes)', () => {
    const queue = newQueue();
    upstream.call(queue);
    jest.advanceTimersByTime(50);
    // Each check schedules the next, although the queue is empty throughout.
    expect(queue.checks).toBeGreaterThanOrEqual(40);
    expect(jest.getTimerCount()).toBe(1);
  });

  describe('fixed', () => {
    beforeAll(() => fixRequestQueueTimer());

    it('schedules nothing when nothing is pending and no throttle applies', () => {
      const queue = newQueue();
      queue.scheduleCheckPendingRequests();
      expect(jest.getTimerCount()).toBe(0);
      jest.advanceTimersByTime(50);
      expect(queue.checks).toBe(0);
    });

    it('checks pending requests after the usual 10 ms, once, and stops when the queue is empty', () => {
      const queue = newQueue();
      queue.pending.push({ placeholder: true });
      queue.scheduleCheckPendingRequests();
      jest.advanceTimersByTime(9);
      expect(queue.checks).toBe(0);
      queue.pending.length = 0;
      jest.advanceTimersByTime(1);
      expect(queue.checks).toBe(1);
      jest.advanceTimersByTime(100);
      expect(queue.checks).toBe(1);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('waits out a broker throttle before checking, with or without pending requests', () => {
      const queue = newQueue();
      queue.throttledUntil = Date.now() + 250;
      queue.scheduleCheckPendingRequests();
      jest.advanceTimersByTime(249);
      expect(queue.checks).toBe(0);
      jest.advanceTimersByTime(1);
      expect(queue.checks).toBe(1);
      // The throttle is over and nothing is pending: no further checks.
      jest.advanceTimersByTime(100);
      expect(queue.checks).toBe(1);
    });

    it('keeps a single timer however often it is asked', () => {
      const queue = newQueue();
      queue.pending.push({ placeholder: true });
      for (let i = 0; i < 5; i++) queue.scheduleCheckPendingRequests();
      expect(jest.getTimerCount()).toBe(1);
    });

    it('is applied once: a second call keeps the same scheduling', () => {
      const fixedSchedule = requestQueueClass().prototype.scheduleCheckPendingRequests;
      fixRequestQueueTimer();
      expect(requestQueueClass().prototype.scheduleCheckPendingRequests).toBe(fixedSchedule);
      expect(fixedSchedule).not.toBe(upstream);
    });
  });
});
