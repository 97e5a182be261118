import type { Fault, FaultPath } from './behaviour-config';
import { SeededRandom } from './seeded-random';

export interface FaultTarget {
  model?: string;
  path: FaultPath;
}

interface ArmedFault {
  readonly fault: Fault;
  remaining: number | undefined;
}

/**
 * Chooses the fault for a request. A fault matches when its model/path filters match,
 * it has hits left, and (for rate < 1) the seeded PRNG says so; the first match wins and
 * uses up one of its `remaining` hits. A rate roll that misses falls through to later faults.
 */
export class FaultInjector {
  private armed: ArmedFault[] = [];
  private random: SeededRandom;

  constructor(private readonly seed: number) {
    this.random = new SeededRandom(seed);
  }

  setFaults(faults: readonly Fault[]): void {
    this.armed = faults.map((fault) => ({ fault: { ...fault }, remaining: fault.remaining }));
  }

  /** Restarts the PRNG so a scenario replays identically. */
  reset(faults: readonly Fault[]): void {
    this.random = new SeededRandom(this.seed);
    this.setFaults(faults);
  }

  select(target: FaultTarget): Fault | undefined {
    for (const entry of this.armed) {
      const { fault } = entry;
      if (entry.remaining !== undefined && entry.remaining <= 0) continue;
      if (fault.model !== undefined && fault.model !== target.model) continue;
      if (fault.path !== undefined && fault.path !== target.path) continue;
      const rate = fault.rate ?? 1;
      if (rate < 1 && !(this.random.next() < rate)) continue;
      if (entry.remaining !== undefined) entry.remaining--;
      return fault;
    }
    return undefined;
  }
}
