import { z } from 'zod';
import { decimal, identifier, kafkaTopic, listenSchema, MAX_TIMER_MS, numeric, port, strictObject, TIMER_TOO_LONG } from './primitives';

const positiveInt = numeric(z.number().int().positive());
/** Durations waited for with a timer (an interval, a renewal): at most MAX_TIMER_MS. */
const positiveMs = numeric(z.number().int().positive().max(MAX_TIMER_MS, TIMER_TOO_LONG));
const nonNegativeMs = numeric(z.number().int().nonnegative().max(MAX_TIMER_MS, TIMER_TOO_LONG));

/** An IANA time zone that this runtime knows (`Europe/Berlin`, `UTC`). */
const timeZone = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be an IANA time zone such as UTC or Europe/Berlin' },
);

/**
 * Which traffic a budget counts. `org` is required; every other field set narrows it, so
 * `{ org: acme, project: search }` is the search project's budget and `{ org: acme, key: k1 }`
 * one key's.
 */
export const budgetScopeSchema = strictObject({
  org: identifier,
  team: identifier.optional(),
  project: identifier.optional(),
  /** An API key id (config key id or issued key id). */
  key: z.string().min(1).max(128).optional(),
});
export type BudgetScope = z.infer<typeof budgetScopeSchema>;

/**
 * The largest budget amount: budgets count in integer micro-units (10⁻⁶ of the currency), exact
 * only up to 2⁵³ − 1 in JavaScript, Redis and Lua. Some nine billion in the currency: enough for
 * any USD or EUR budget, not for every IDR or VND one.
 */
export const MAX_BUDGET_AMOUNT = '9007199254.740991';
const MAX_BUDGET_MICROS = BigInt(Number.MAX_SAFE_INTEGER);

/** An amount (decimal text) in micro-units, rounded up as the ledger rounds it; exact at any size. */
function amountMicros(amount: string): bigint {
  const [whole = '0', fraction = ''] = amount.split('.');
  const kept = BigInt(whole) * 1_000_000n + BigInt(fraction.slice(0, 6).padEnd(6, '0'));
  return /[1-9]/.test(fraction.slice(6)) ? kept + 1n : kept;
}

export const BUDGET_PERIODS = ['daily', 'weekly', 'monthly'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

/*
 * A budget's fields that the admin API also takes (creating and changing budgets at run time),
 * so a budget created there is held to the same rules as one in the file.
 */
/**
 * The most that may be spent in one period, in the budget's currency (a decimal, e.g. "250.00").
 * Refused above {@link MAX_BUDGET_AMOUNT}: past it every reservation would fail (a 500).
 */
export const budgetAmountSchema = decimal.pipe(
  // Piped: these read decimal text only.
  z
    .string()
    .refine((v) => Number(v) > 0, 'must be greater than 0')
    .refine((v) => amountMicros(v) <= MAX_BUDGET_MICROS, `must be at most ${MAX_BUDGET_AMOUNT} (budgets count in millionths of the currency, exactly up to 2^53 - 1 of them)`),
);
/** `hard`: requests that would overspend are refused (402) and streams are cut; `soft`: alerts only. */
export const budgetEnforcementSchema = z.enum(['hard', 'soft']);
/** Percentages of the amount at which an alert is published (once per period each); kept sorted, each once. */
export const alertThresholdsSchema = z
  .array(z.number().int().min(1).max(1000))
  .transform((t) => [...new Set(t)].sort((a, b) => a - b));
export { timeZone as budgetTimeZoneSchema };

export const budgetSchema = strictObject({
  id: identifier,
  scope: budgetScopeSchema,
  /** Days start at midnight, weeks on Monday, months on the 1st — in `timezone`. */
  period: z.enum(BUDGET_PERIODS),
  timezone: timeZone.default('UTC'),
  /** Refused above {@link MAX_BUDGET_AMOUNT} here, at load. */
  amount: budgetAmountSchema,
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as USD').default('USD'),
  enforcement: budgetEnforcementSchema.default('hard'),
  alertThresholds: alertThresholdsSchema.default([50, 80, 100]),
  /**
   * Percentages of the amount that the spend projected to the period's end (on the run rate so
   * far) may reach before a forecast event is published (once per period each). Absent: none.
   */
  forecastThresholds: alertThresholdsSchema.optional(),
});
export type BudgetConfig = z.infer<typeof budgetSchema>;

/** Budgets: spend limits per org, team, project or key, enforced at ingress. */
export const budgetsSchema = strictObject({
  /** Output tokens reserved when a request sets no `max_tokens`/`max_completion_tokens` and its model no `maxOutputTokens` below. */
  defaultMaxOutputTokens: positiveInt.default(4_096),
  /** Per public model id: the most output tokens it can produce (caps the reservation). */
  maxOutputTokens: z.record(z.string().min(1), positiveInt).default({}),
  /**
   * Audio uploaded for transcription or translation, whose length the gateway cannot read from the
   * file (it reads WAV headers only): reserved as this long. Token-billed transcription models
   * reserve the audio's input at `tokensPerSecond`.
   */
  audio: strictObject({
    maxSeconds: positiveInt.default(1_500),
    tokensPerSecond: positiveInt.default(25),
  }).prefault({}),
  /**
   * A stream may start with less than its worst case reserved when a hard budget has at least
   * this many output tokens' worth left; it is then ended (finish_reason "length") when its
   * running cost reaches what was reserved. 0 turns partial reservations off.
   */
  minStreamOutputTokens: numeric(z.number().int().nonnegative()).default(16),
  /**
   * A reservation neither settled nor renewed within this long is returned to the budget. A
   * running request renews its own every third of this, so only a crashed process's expire.
   */
  reservationTtlMs: positiveMs.default(15 * 60_000),
  /** Kafka topic of threshold crossings (the brokers are `usage.kafka`'s). */
  topic: kafkaTopic.default('openrouter.budget.v1'),
  /**
   * What happens to a request under a budget when Redis cannot be reached or does not answer in
   * time: `closed` refuses it with 503 (no budget is ever overspent), `open` admits it unreserved.
   */
  failMode: z.enum(['open', 'closed']).default('closed'),
  /**
   * The most budgets the admin API keeps for one org (those in `list` are not counted): every
   * budget whose scope matches a request is checked in its reservation script, two Redis keys
   * each, so an org's traffic pays for every budget created for it.
   */
  maxPerOrg: numeric(z.number().int().min(1).max(10_000)).default(100),
  /** Spend forecasts: each budget's spend projected to its period's end on the run rate so far. */
  forecast: strictObject({
    /**
     * How much of the period (counted from its start, or from the budget's creation when it was
     * created during it) must have passed before spend is projected: earlier, a few requests would
     * project wildly. Shown as `forecast: null` until then, and no forecast event is published.
     */
    minElapsedFraction: numeric(z.number().gt(0).lt(1)).default(0.1),
  }).prefault({}),
  /** Billing compares Redis spend with ClickHouse this often and corrects drift; 0 disables it. */
  reconcileIntervalMs: nonNegativeMs.default(5 * 60_000),
  list: z.array(budgetSchema).default([]),
})
  .superRefine((b, ctx) => {
    const seen = new Set<string>();
    b.list.forEach((budget, i) => {
      if (seen.has(budget.id)) ctx.addIssue({ code: 'custom', path: ['list', i, 'id'], message: `duplicate budget id "${budget.id}"` });
      seen.add(budget.id);
    });
  });
export type BudgetsConfig = z.infer<typeof budgetsSchema>;

/** Billing's own settings: listen addresses, the chargeback allocation rules, the rollup's reconciliation and the reports' size. */
export const billingSchema = strictObject({
  http: listenSchema,
  grpc: strictObject({ host: z.string().min(1).default('127.0.0.1'), port: port.default(50071) }).prefault({}),
  chargeback: strictObject({
    /** Cost centres whose spend is shared and allocated to the others (spend with no cost centre always is). */
    sharedCostCenters: z.array(z.string().min(1)).default([]),
    /** The default rule: `proportional` to each cost centre's direct spend, or `fixed` shares. */
    allocation: z.enum(['proportional', 'fixed']).default('proportional'),
    /** Cost centre → weight (decimal); normalised to sum to 1. Used by `fixed`. */
    fixedShares: z.record(z.string().min(1), decimal).default({}),
  })
    .superRefine((c, ctx) => {
      // A shared cost centre's spend is the pool: given a share of it too, it would get part of its own spend back as "allocated".
      const shared = new Set(c.sharedCostCenters);
      for (const cc of Object.keys(c.fixedShares)) {
        if (shared.has(cc)) ctx.addIssue({ code: 'custom', path: ['fixedShares', cc], message: `"${cc}" is a shared cost centre (sharedCostCenters): its spend is the pool, so it takes no share of it` });
      }
    })
    .prefault({}),
  /**
   * The daily rollup's reconciliation: each closed UTC day of the last `lookbackDays` is compared
   * with the raw events, and what the rollup counted twice (two consumers storing one batch in a
   * rebalance race) or missed is corrected. One billing replica at a time does it (a lease in
   * `access.redis` when set).
   */
  rollup: strictObject({
    /** How often; 0 disables it. */
    reconcileIntervalMs: nonNegativeMs.default(60 * 60_000),
    lookbackDays: numeric(z.number().int().min(1).max(400)).default(7),
    /** A day is corrected only when two reads this far apart agree (no insert was half-way). */
    settleMs: nonNegativeMs.default(2_000),
  }).prefault({}),
  reports: strictObject({
    /**
     * The most rows one report may have (usage rows, invoice and chargeback lines, FOCUS rows); a
     * report with more is refused with 400 `report_too_large`. The whole report is one gRPC
     * message, capped at 64 MiB: past it the call fails as a 5xx. A FOCUS row with long names
     * and three tags is some 310 bytes: the default answers in about 30 MB, the maximum in 60.
     */
    maxRows: numeric(z.number().int().min(1).max(200_000)).default(100_000),
  }).prefault({}),
});
export type BillingConfig = z.infer<typeof billingSchema>;
