/** One budget's account for one period, as the ledger stores it. */
export interface LedgerLine {
  /** `<budget id>:<period key>`: where spend and reservations of that period are counted. */
  account: string;
  limitMicros: number;
  /** Only hard lines refuse a reservation; soft lines count it. */
  hard: boolean;
  /** How long the account's counters are kept (past the period's end, for reconciliation). */
  keepMs: number;
}

export interface ReserveRequest {
  id: string;
  lines: readonly LedgerLine[];
  /** The most the request can cost. */
  worstMicros: number;
  /** The least worth reserving (a stream may start with less than its worst case); ≤ worstMicros. */
  floorMicros: number;
  /**
   * After this long without settle, release or renewal, the reservation is returned (its process
   * died). A live request renews it (see {@link BudgetLedger.renew}) for as long as it runs.
   */
  ttlMs: number;
}

export type ReserveOutcome =
  | { ok: true; amountMicros: number }
  | { ok: false; line: number; spentMicros: number; reservedMicros: number };

export interface AccountState {
  spentMicros: number;
  reservedMicros: number;
}

export interface Lowered {
  /** The account's spend afterwards. */
  spentMicros: number;
  /** What was taken off (≤ what was asked, ≤ what was left of the allowance). */
  loweredMicros: number;
}

/**
 * Where budget spend lives: Redis (shared by every ingress replica, one Lua script per operation)
 * or this process's memory. Every operation is atomic across all the lines it names.
 */
export interface BudgetLedger {
  /**
   * Reserves min(worst, what every hard line has left) on every line, or nothing when a hard
   * line has less than `floorMicros` (or nothing) left.
   */
  reserve(request: ReserveRequest): Promise<ReserveOutcome>;
  /**
   * Returns reservation `id` (if it is still held) and adds `actualMicros` to every line's spend
   * — also when the reservation had expired. Resolves to each line's spend afterwards.
   */
  settle(id: string, lines: readonly LedgerLine[], actualMicros: number): Promise<number[]>;
  /**
   * Pushes reservation `id`'s expiry back to `ttlMs` from now, so a request that outlives its ttl
   * keeps the room it holds. False, and nothing changed, when the reservation is no longer held
   * (settled, released, or already past its expiry: a late renewal never revives one).
   */
  renew(id: string, ttlMs: number): Promise<boolean>;
  read(accounts: readonly string[]): Promise<AccountState[]>;
  /**
   * Where each account stands now, for showing it (the admin API): its spend, and its reservations
   * still live — those past their expiry that no call has swept yet are left out, as the next
   * reservation would return them first. One atomic read that changes nothing (no sweep, no expiry).
   */
  standing(accounts: readonly string[]): Promise<AccountState[]>;
  /** Corrects an account's spend by `deltaMicros` (reconciliation); resolves to the new spend. */
  adjust(line: LedgerLine, deltaMicros: number): Promise<number>;
  /**
   * Lowers an account's spend by up to `micros`, but by no more than what is left of
   * `allowanceMicros` after every earlier call for the account took its part: the allowance is the
   * period's total (the rounding its stored requests explain), so however often a surplus is seen
   * the account is never lowered past it. The part taken is recorded with the spend, atomically.
   */
  lowerWithin(line: LedgerLine, micros: number, allowanceMicros: number): Promise<Lowered>;
  /** Records that `marker` happened, for `keepMs`; false when it is recorded already (threshold alerts, once each). */
  markOnce(marker: string, keepMs: number): Promise<boolean>;
  /** Keeps a recorded marker for `keepMs` from now; nothing when it is not recorded. */
  keepMark(marker: string, keepMs: number): Promise<void>;
  unmark(marker: string): Promise<void>;
  /** Returns reservations whose time is up; resolves to how many. */
  sweep(): Promise<number>;
  close(): Promise<void>;
}
