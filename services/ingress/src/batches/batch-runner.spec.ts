import { retryDelayMs } from './batch-runner';

const withHeader = (value: string | string[] | number | undefined) => ({ headers: { 'retry-after': value } });
const noHeader = { headers: {} };

describe('retryDelayMs', () => {
  it("waits the answer's Retry-After in seconds, whatever the attempt", () => {
    expect(retryDelayMs(withHeader('2'), 1)).toBe(2_000);
    expect(retryDelayMs(withHeader('0'), 5)).toBe(0);
    expect(retryDelayMs(withHeader('1.5'), 3)).toBe(1_500);
    expect(retryDelayMs(withHeader(7), 1)).toBe(7_000);
  });

  it('waits a minute at most, however long Retry-After asks', () => {
    expect(retryDelayMs(withHeader('60'), 1)).toBe(60_000);
    expect(retryDelayMs(withHeader('3600'), 1)).toBe(60_000);
  });

  it('takes the first value of a header given more than once', () => {
    expect(retryDelayMs(withHeader(['3', '30']), 1)).toBe(3_000);
  });

  it('without a usable Retry-After (none, a date, negative, not a number), waits a growing delay with jitter: between half of 1, 2, 4 … s and all of it', () => {
    const jitter = jest.spyOn(Math, 'random');
    try {
      for (const response of [noHeader, withHeader(undefined), withHeader('Wed, 21 Oct 2025 07:28:00 GMT'), withHeader('-1'), withHeader('soon')]) {
        for (const [attempt, base] of [
          [1, 1_000],
          [2, 2_000],
          [3, 4_000],
          [6, 32_000],
        ] as const) {
          jitter.mockReturnValueOnce(0);
          expect(retryDelayMs(response, attempt)).toBe(base / 2);
          jitter.mockReturnValueOnce(0.999_999);
          expect(retryDelayMs(response, attempt)).toBeCloseTo(base, -1);
          jitter.mockReturnValueOnce(0.5);
          expect(retryDelayMs(response, attempt)).toBe((base * 3) / 4);
        }
      }
    } finally {
      jitter.mockRestore();
    }
  });

  it('grows to a minute and no further, for any number of attempts', () => {
    for (const attempt of [7, 8, 20, 1_100]) {
      const delay = retryDelayMs(noHeader, attempt);
      expect(delay).toBeGreaterThanOrEqual(30_000);
      expect(delay).toBeLessThanOrEqual(60_000);
    }
  });

  it('spreads the waits of lines refused together: random draws within [base/2, base]', () => {
    const delays = Array.from({ length: 200 }, () => retryDelayMs(noHeader, 3));
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(2_000);
      expect(delay).toBeLessThanOrEqual(4_000);
    }
    expect(new Set(delays).size).toBeGreaterThan(150);
  });
});
