/**
 * Claims on work that any replica may run (batches, background responses): one holder at a time,
 * for a lease it renews while it runs, so that a replica that dies lets its work go within a lease.
 */

/**
 * Renews a claim every third of its lease (`renew` answers whether it is still the holder's) while
 * its work runs: `lost` when it is no longer the holder's, `failed` when the store could not be
 * reached (the next renewal tries again). Returns what stops renewing.
 */
export function renewWhileRunning(renew: () => Promise<boolean>, leaseMs: number, lost: () => void, failed: (error: unknown) => void): () => void {
  const timer = setInterval(() => {
    renew().then((held) => {
      if (!held) lost();
    }, failed);
  }, Math.max(50, Math.floor(leaseMs / 3)));
  timer.unref();
  return () => clearInterval(timer);
}

/** Claims held in this process (for the stores of a gateway without Redis). */
export class MemoryClaims {
  private readonly claims = new Map<string, { holder: string; until: number }>();

  constructor(private readonly now: () => number) {}

  /** Claims `id` for `holder` for `ms` when no other holder's claim runs; true when claimed (or extended). */
  claim(id: string, holder: string, ms: number): boolean {
    const claim = this.claims.get(id);
    if (claim && claim.until > this.now() && claim.holder !== holder) return false;
    this.claims.set(id, { holder, until: this.now() + ms });
    return true;
  }

  /** Extends `holder`'s running claim; false when it is no longer its own. */
  renew(id: string, holder: string, ms: number): boolean {
    const claim = this.claims.get(id);
    if (!claim || claim.holder !== holder || claim.until <= this.now()) return false;
    claim.until = this.now() + ms;
    return true;
  }

  release(id: string, holder: string): void {
    if (this.claims.get(id)?.holder === holder) this.claims.delete(id);
  }

  /** The work is gone: so is its claim, whoever held it. */
  drop(id: string): void {
    this.claims.delete(id);
  }
}
