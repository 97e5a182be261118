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
  /** After this long without settle or release, the reservation is returned (its process died). */
  ttlMs: number;
}

export type ReserveOutcome =
  | { ok: true; amountMicros: number }
  | { ok: false; line: number; spentMicros: number; reservedMicros: number };

export interface AccountState {
  spentMicros: number;
  reservedMicros: number;
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
  read(accounts: readonly string[]): Promise<AccountState[]>;
  /** Corrects an account's spend by `deltaMicros` (reconciliation); resolves to the new spend. */
  adjust(line: LedgerLine, deltaMicros: number): Promise<number>;
  /** Records that `marker` happened, for `keepMs`; false when it is recorded already (threshold alerts, once each). */
  markOnce(marker: string, keepMs: number): Promise<boolean>;
  /** Keeps a recorded marker for `keepMs` from now; nothing when it is not recorded. */
  keepMark(marker: string, keepMs: number): Promise<void>;
  unmark(marker: string): Promise<void>;
  /** Returns reservations whose time is up; resolves to how many. */
  sweep(): Promise<number>;
  close(): Promise<void>;
}
