import type { AccountState, BudgetLedger, LedgerLine, Lowered, ReserveOutcome, ReserveRequest } from './budget-ledger';

interface Held {
  amount: number;
  accounts: string[];
  expiresAt: number;
}

interface Account {
  spent: number;
  reserved: number;
  /** Rounding allowance already taken off the spend (see `lowerWithin`). */
  lowered: number;
  expiresAt: number;
}

/** The ledger of one process (embedded mode without Redis): the same rules as the Redis script. */
export class MemoryBudgetLedger implements BudgetLedger {
  private readonly accounts = new Map<string, Account>();
  private readonly held = new Map<string, Held>();
  private readonly markers = new Map<string, number>();

  constructor(private readonly clock: () => number = Date.now) {}

  async reserve(request: ReserveRequest): Promise<ReserveOutcome> {
    const now = this.clock();
    this.sweepAt(now);
    let amount = request.worstMicros;
    for (const [i, line] of request.lines.entries()) {
      if (!line.hard) continue;
      const a = this.account(line.account, now);
      const left = line.limitMicros - a.spent - a.reserved;
      if (left <= 0 || left < request.floorMicros) return { ok: false, line: i, spentMicros: a.spent, reservedMicros: a.reserved };
      amount = Math.min(amount, left);
    }
    for (const line of request.lines) {
      const a = this.account(line.account, now);
      a.reserved += amount;
      a.expiresAt = Math.max(a.expiresAt, now + line.keepMs);
      this.accounts.set(line.account, a);
    }
    this.held.set(request.id, { amount, accounts: request.lines.map((l) => l.account), expiresAt: now + request.ttlMs });
    return { ok: true, amountMicros: amount };
  }

  async settle(id: string, lines: readonly LedgerLine[], actualMicros: number): Promise<number[]> {
    const now = this.clock();
    this.sweepAt(now);
    this.returnHeld(id, now);
    return lines.map((line) => {
      const a = this.account(line.account, now);
      if (actualMicros > 0) {
        a.spent += actualMicros;
        a.expiresAt = Math.max(a.expiresAt, now + line.keepMs);
        this.accounts.set(line.account, a);
      }
      return a.spent;
    });
  }

  async renew(id: string, ttlMs: number): Promise<boolean> {
    const now = this.clock();
    this.sweepAt(now);
    const h = this.held.get(id);
    if (!h) return false;
    h.expiresAt = now + ttlMs;
    return true;
  }

  async read(accounts: readonly string[]): Promise<AccountState[]> {
    const now = this.clock();
    this.sweepAt(now);
    return accounts.map((name) => {
      const a = this.account(name, now);
      return { spentMicros: a.spent, reservedMicros: a.reserved };
    });
  }

  async standing(accounts: readonly string[]): Promise<AccountState[]> {
    const now = this.clock();
    // What a sweep would return, counted without sweeping.
    const due = new Map<string, number>();
    for (const h of this.held.values()) {
      if (h.expiresAt > now) continue;
      for (const name of h.accounts) due.set(name, (due.get(name) ?? 0) + h.amount);
    }
    return accounts.map((name) => {
      const a = this.accounts.get(name);
      if (!a || a.expiresAt <= now) return { spentMicros: 0, reservedMicros: 0 };
      return { spentMicros: a.spent, reservedMicros: Math.max(0, a.reserved - (due.get(name) ?? 0)) };
    });
  }

  async adjust(line: LedgerLine, deltaMicros: number): Promise<number> {
    const now = this.clock();
    const a = this.account(line.account, now);
    a.spent += deltaMicros;
    a.expiresAt = Math.max(a.expiresAt, now + line.keepMs);
    this.accounts.set(line.account, a);
    return a.spent;
  }

  async lowerWithin(line: LedgerLine, micros: number, allowanceMicros: number): Promise<Lowered> {
    const now = this.clock();
    const a = this.account(line.account, now);
    const lowered = Math.max(0, Math.min(micros, allowanceMicros - a.lowered));
    if (lowered > 0) {
      a.spent -= lowered;
      a.lowered += lowered;
      a.expiresAt = Math.max(a.expiresAt, now + line.keepMs);
      this.accounts.set(line.account, a);
    }
    return { spentMicros: a.spent, loweredMicros: lowered };
  }

  async markOnce(marker: string, keepMs: number): Promise<boolean> {
    const now = this.clock();
    const until = this.markers.get(marker);
    if (until !== undefined && until > now) return false;
    this.markers.set(marker, now + keepMs);
    return true;
  }

  async keepMark(marker: string, keepMs: number): Promise<void> {
    const now = this.clock();
    const until = this.markers.get(marker);
    if (until !== undefined && until > now) this.markers.set(marker, now + keepMs);
  }

  async unmark(marker: string): Promise<void> {
    this.markers.delete(marker);
  }

  async sweep(): Promise<number> {
    return this.sweepAt(this.clock());
  }

  async close(): Promise<void> {
    this.held.clear();
  }

  private account(name: string, now: number): Account {
    const a = this.accounts.get(name);
    if (a && a.expiresAt > now) return a;
    if (a) this.accounts.delete(name);
    return { spent: 0, reserved: 0, lowered: 0, expiresAt: 0 };
  }

  private returnHeld(id: string, now: number): void {
    const h = this.held.get(id);
    if (!h) return;
    this.held.delete(id);
    for (const name of h.accounts) {
      const a = this.account(name, now);
      if (a.expiresAt === 0) continue;
      a.reserved = Math.max(0, a.reserved - h.amount);
    }
  }

  private sweepAt(now: number): number {
    let returned = 0;
    for (const [id, h] of this.held) {
      if (h.expiresAt > now) continue;
      this.returnHeld(id, now);
      returned++;
    }
    if (this.markers.size > 10_000) for (const [m, until] of this.markers) if (until <= now) this.markers.delete(m);
    return returned;
  }
}
