import { createLogger } from '@openrouter/observability';
import { ConsumerSupervisor, failureOf, type ConsumerRun } from './consumer-supervisor';

/** A consumer run driven by the spec: it crashes, fetches or fails to start when told. */
class FakeRun implements ConsumerRun {
  crash: (error: unknown, restart: boolean) => void = () => undefined;
  fetch: () => void = () => undefined;
  stopped = false;

  constructor(private readonly startError?: Error) {}

  onCrash(listener: (error: unknown, restart: boolean) => void): void {
    this.crash = listener;
  }
  onFetch(listener: () => void): void {
    this.fetch = listener;
  }
  async start(): Promise<void> {
    if (this.startError) throw this.startError;
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

interface LogLine {
  level: number;
  msg: string;
  failure?: { name: string; message: string };
}

const lz4 = Object.assign(new Error('LZ4 compression not implemented'), { name: 'KafkaJSNotImplemented' });
const T0 = Date.parse('2025-06-10T12:00:00.000Z');

function setUp(startErrors: Array<Error | undefined> = [], given: FakeRun[] = []) {
  const runs: FakeRun[] = [];
  const lines: LogLine[] = [];
  const logger = createLogger('spec', 'info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const supervisor = new ConsumerSupervisor({
    group: 'billing',
    logger,
    create: () => {
      const run = given.shift() ?? new FakeRun(startErrors.shift());
      runs.push(run);
      return run;
    },
  });
  const last = (): FakeRun => {
    const run = runs[runs.length - 1];
    if (!run) throw new Error('no consumer started');
    return run;
  };
  return { supervisor, runs, lines, last };
}

/** Lets the promises a timer started settle. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('ConsumerSupervisor', () => {
  beforeEach(() => jest.useFakeTimers({ now: T0 }));
  afterEach(() => jest.useRealTimers());

  it('runs after its start, and leaves a crash that kafkajs restarts itself alone', async () => {
    const { supervisor, runs, lines, last } = setUp();
    await supervisor.start();
    expect(supervisor.status()).toEqual({ state: 'running', since: '2025-06-10T12:00:00.000Z' });
    last().crash(Object.assign(new Error('Connection timeout'), { name: 'KafkaJSConnectionError' }), true);
    await jest.advanceTimersByTimeAsync(120_000);
    expect(supervisor.isRunning()).toBe(true);
    expect(runs).toHaveLength(1);
    expect(lines).toEqual([]);
  });

  it('is stopped after a crash kafkajs gives up on, logs it once, and is running again once a fresh consumer fetched', async () => {
    const { supervisor, runs, lines, last } = setUp();
    await supervisor.start();
    jest.setSystemTime(T0 + 5_000);
    last().crash(lz4, false);
    expect(supervisor.isRunning()).toBe(false);
    expect(supervisor.status()).toEqual({
      state: 'stopped',
      since: '2025-06-10T12:00:05.000Z',
      error: { name: 'KafkaJSNotImplemented', message: 'LZ4 compression not implemented' },
      failedRestarts: 0,
      nextAttemptAt: '2025-06-10T12:00:06.000Z',
      hint: expect.stringContaining('compression.type') as string,
    });
    expect(lines).toEqual([expect.objectContaining({ level: 50, failure: { name: 'KafkaJSNotImplemented', message: 'LZ4 compression not implemented' } })]);

    await jest.advanceTimersByTimeAsync(999);
    expect(runs).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(2);
    expect(runs[0]?.stopped).toBe(true);
    // Started, but not running until a fetch returned: the batch may still be there.
    expect(supervisor.status()).toMatchObject({ state: 'stopped', nextAttemptAt: null, failedRestarts: 0 });
    last().fetch();
    expect(supervisor.status()).toEqual({ state: 'running', since: '2025-06-10T12:00:06.000Z' });
    expect(lines.map((l) => l.level)).toEqual([50, 30]);
    expect(lines[1]).toMatchObject({ msg: 'Kafka consumer running again', stoppedForMs: 1_000 });
  });

  it('tries fresh consumers with a doubling backoff up to a minute while they fail the same way, saying so', async () => {
    const { supervisor, runs, lines, last } = setUp();
    await supervisor.start();
    last().crash(lz4, false);
    const delays: number[] = [];
    let at = Date.now();
    for (let i = 0; i < 9; i++) {
      const before = runs.length;
      while (runs.length === before) await jest.advanceTimersByTimeAsync(100);
      delays.push(Date.now() - at);
      at = Date.now();
      last().crash(lz4, false);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    expect(supervisor.status()).toMatchObject({ state: 'stopped', since: '2025-06-10T12:00:00.000Z', failedRestarts: 9 });
    expect(lines.filter((l) => l.level === 50)).toHaveLength(1);
    expect(lines.filter((l) => l.level === 40).every((l) => /failed the same way/.test(l.msg))).toBe(true);
    // Events of a consumer already replaced change nothing.
    runs[0]?.fetch();
    runs[0]?.crash(lz4, false);
    expect(supervisor.status()).toMatchObject({ state: 'stopped', failedRestarts: 9 });
  });

  it('counts a fresh consumer that cannot even start as a failed restart', async () => {
    const { supervisor, runs, last } = setUp([undefined, Object.assign(new Error('Connection error: ECONNREFUSED'), { name: 'KafkaJSConnectionError' })]);
    await supervisor.start();
    last().crash(lz4, false);
    await jest.advanceTimersByTimeAsync(1_000);
    await settle();
    expect(supervisor.status()).toMatchObject({ state: 'stopped', failedRestarts: 1, error: { name: 'KafkaJSConnectionError' }, nextAttemptAt: '2025-06-10T12:00:03.000Z' });
    await jest.advanceTimersByTimeAsync(2_000);
    expect(runs).toHaveLength(3);
    last().fetch();
    expect(supervisor.isRunning()).toBe(true);
  });

  it('is stopped when the first consumer crashes while it starts (a refused group join)', async () => {
    const { supervisor, runs } = setUp();
    const starting = supervisor.start();
    runs[0]?.crash(Object.assign(new Error('The group member protocol is not compatible'), { name: 'KafkaJSProtocolError' }), false);
    await starting;
    expect(supervisor.status()).toMatchObject({ state: 'stopped', error: { name: 'KafkaJSProtocolError' } });
  });

  it('tries no more once closed', async () => {
    const { supervisor, runs, last } = setUp();
    await supervisor.start();
    last().crash(lz4, false);
    await supervisor.close();
    await jest.advanceTimersByTimeAsync(120_000);
    expect(runs).toHaveLength(1);
    expect(supervisor.status()).toEqual({ state: 'closed' });
  });

  it('treats a crash soon after a fresh consumer fetched as the same stop: one error line, and the backoff keeps growing (several brokers)', async () => {
    const { supervisor, runs, lines, last } = setUp();
    await supervisor.start();
    last().crash(lz4, false);
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const status = supervisor.status() as { nextAttemptAt: string | null };
      delays.push(Date.parse(status.nextAttemptAt ?? '') - Date.now());
      await jest.advanceTimersByTimeAsync(delays[i] ?? 0);
      // A healthy broker answers the fresh consumer first; the broker with the unreadable batch fails it next.
      last().fetch();
      expect(supervisor.isRunning()).toBe(true);
      last().crash(lz4, false);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000]);
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(1);
    expect(supervisor.status()).toMatchObject({ state: 'stopped', since: '2025-06-10T12:00:00.000Z', failedRestarts: 5 });
    // Once a fresh consumer has run for a while, a later crash is a new stop.
    await jest.advanceTimersByTimeAsync(32_000);
    last().fetch();
    await jest.advanceTimersByTimeAsync(120_000);
    last().crash(lz4, false);
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(2);
    expect(supervisor.status()).toMatchObject({ state: 'stopped', failedRestarts: 0 });
    expect(runs.length).toBe(7);
    await supervisor.close();
  });

  it('stops a fresh consumer that was still starting when it was closed', async () => {
    let release: () => void = () => undefined;
    // The second consumer's start hangs (connecting) until released.
    const slow = new FakeRun();
    slow.start = () => new Promise<void>((resolve) => (release = resolve));
    const { supervisor, last } = setUp([], [new FakeRun(), slow]);
    await supervisor.start();
    last().crash(lz4, false);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(last()).toBe(slow);
    const closing = supervisor.close();
    slow.stopped = false; // The stop during its start does not keep kafkajs from connecting again.
    release();
    await closing;
    await settle();
    expect(slow.stopped).toBe(true);
    expect(supervisor.status()).toEqual({ state: 'closed' });
  });

  it("keeps the message of the Kafka client's errors only: another error's message could quote a record", () => {
    expect(failureOf(lz4)).toEqual({ name: 'KafkaJSNotImplemented', message: 'LZ4 compression not implemented' });
    expect(failureOf(new SyntaxError('Unexpected token s in JSON at position 0: secret'))).toEqual({ name: 'SyntaxError', message: '' });
    expect(failureOf('boom')).toEqual({ name: 'string', message: '' });
  });
});
