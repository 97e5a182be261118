import { waitFor } from './infra/wait-for';

const DAY_MS = 86_400_000;

/** The milliseconds left in the current UTC day. */
export function msLeftInUtcDay(now: number = Date.now()): number {
  return DAY_MS - (now % DAY_MS);
}

/** How long a spec waits, at most, for {@link clearOfUtcMidnight}: add it to the hook's timeout. */
export const CLEAR_OF_UTC_MIDNIGHT_MS = 6 * 60_000;

/**
 * Waits, in the last `minutesLeft` minutes of a UTC day, for the next day to begin. Specs that spend
 * on daily or monthly budgets, or read the day's or month's usage, in real time call it first: their
 * spend and reads must fall in one period, which a run across midnight would split.
 */
export async function clearOfUtcMidnight(minutesLeft = 5): Promise<void> {
  await waitFor(() => msLeftInUtcDay() > minutesLeft * 60_000, {
    timeoutMs: minutesLeft * 60_000 + 30_000,
    intervalMs: 1_000,
    what: `a UTC day with more than ${minutesLeft} minutes left`,
  });
}
