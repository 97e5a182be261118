import { RepeatedFailureLog } from './repeated-failure-log';

describe('RepeatedFailureLog', () => {
  it('warns on the first failure, on a new error and every period while failures go on; debug otherwise', () => {
    const now = { at: 0 };
    const log = new RepeatedFailureLog(60_000, () => now.at);
    const levels = (error: Error, at: number): string => {
      now.at = at;
      return log.failed(error).level;
    };
    const down = new Error('Kafka connect timed out after 5000 ms');
    expect(levels(down, 0)).toBe('warn');
    expect(levels(down, 1_000)).toBe('debug');
    expect(levels(down, 59_000)).toBe('debug');
    // Still failing a minute later: seen again.
    expect(levels(down, 60_000)).toBe('warn');
    expect(levels(down, 61_000)).toBe('debug');
    // Another cause (Kafka is back, the outbox's disk is not): seen at once, then not again while the two alternate.
    const disk = new Error('ENOENT: no such file or directory, open segment-000000000002.log');
    expect(levels(disk, 62_000)).toBe('warn');
    expect(levels(down, 63_000)).toBe('debug');
    expect(levels(disk, 64_000)).toBe('debug');
    expect(log.failed(disk)).toEqual({ level: 'debug', failures: 9, failingForMs: 64_000 });
    expect(log.succeeded()).toBe(9);
    // A new outage starts over.
    expect(levels(down, 100_000)).toBe('warn');
    expect(log.failed(down)).toEqual({ level: 'debug', failures: 2, failingForMs: 0 });
  });
});
