import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { AlertRuleConfig } from '@openrouter/config';
import type { AlertHistoryEntry, AlertHistoryStore } from '@openrouter/observability';
import type { AlertNotification } from '../channels/notification';

/** A notification left undelivered by a replica that stopped, for the next holder of the lease to send. */
export interface HandedOverDelivery {
  channel: string;
  notification: AlertNotification;
}

/** A handed-over delivery taken into delivery; `receipt` tells the store which one has an outcome. */
export interface ClaimedDelivery extends HandedOverDelivery {
  receipt: string;
}

/** Where the alerting replicas keep what must outlive one of them: the delivery outbox, cooldowns and firing alerts. */
export interface AlertingStateRepository extends Pick<AlertHistoryStore, 'append' | 'firing'> {
  /** Keeps deliveries for the next active replica, in order. */
  handOff(deliveries: readonly HandedOverDelivery[]): Promise<void>;
  /**
   * Takes the deliveries handed over, oldest first, into delivery, at most `limit` of them (what the
   * delivery queue has room for: more would push out what it holds): they stay in the store until
   * `finishHandedOver` is told of each, so a replica that dies before sending them loses none. With
   * `retake`, those already in delivery — taken by a previous active replica that never told their
   * outcome (a replica takes these once, as it becomes the active one) — are first put back ahead of
   * the others, to be taken as they are.
   */
  claimHandedOver(options?: { retake?: boolean; limit?: number }): Promise<ClaimedDelivery[]>;
  /** A claimed delivery has an outcome (or no channel left to go to): it is no longer kept. */
  finishHandedOver(receipt: string): Promise<void>;
  /** When each alert (by fingerprint) last had a notification reach a channel (ms since the epoch). */
  cooldowns(): Promise<Map<string, number>>;
  /** An alert's notification reached a channel at `at`. */
  saveCooldown(fingerprint: string, at: number): Promise<void>;
  /** Forgets the cooldowns past their retention (as `cooldowns` does when it reads them); returns how many. */
  pruneCooldowns(): Promise<number>;
}

const transitionSchema = z
  .object({
    fingerprint: z.string(),
    rule: z.object({ id: z.string(), kind: z.string(), channels: z.array(z.string()) }).passthrough(),
    status: z.enum(['firing', 'resolved']),
    labels: z.record(z.string(), z.string()),
    value: z.number(),
    threshold: z.number(),
    summary: z.string(),
    startedAt: z.number(),
    at: z.number(),
    notify: z.boolean(),
  })
  .passthrough();

const handedOverSchema = z.object({
  channel: z.string(),
  notification: z.object({
    id: z.string(),
    status: z.enum(['firing', 'resolved']),
    ruleId: z.string(),
    ruleKind: z.string(),
    severity: z.string(),
    alerts: z.array(transitionSchema),
    sentAt: z.number(),
  }),
});

/** An alert's latest history entry, as kept for restore: the fields `AlertingService.restore` reads. */
const firingEntrySchema = z
  .object({ at: z.string(), alertId: z.string(), ruleId: z.string(), ruleKind: z.string(), status: z.string(), startedAt: z.string(), labels: z.record(z.string(), z.string()), notified: z.boolean(), channels: z.array(z.string()) })
  .passthrough();

/**
 * At most this many handed-over deliveries are in delivery at once; past it they wait in the outbox
 * until those in delivery have an outcome (taken at a later round). The outbox keeps at most
 * `OUTBOX_LIMIT`: a hand-over past it pushes out the oldest.
 */
export const IN_DELIVERY_LIMIT = 1_000;
export const OUTBOX_LIMIT = 10_000;

/**
 * Moves the oldest of the outbox (KEYS[1]) to the in-delivery list (KEYS[2]) while it holds fewer
 * than ARGV[1], and ARGV[3] at most, in one step; returns what was moved. When ARGV[2] is '1', what
 * was already in delivery is first put back at the front of the outbox, in its order. LPOP + RPUSH
 * rather than LMOVE: the same on every Redis version.
 */
const CLAIM_SCRIPT = `
if ARGV[2] == '1' then
  local stranded = redis.call('LRANGE', KEYS[2], 0, -1)
  for i = #stranded, 1, -1 do redis.call('LPUSH', KEYS[1], stranded[i]) end
  redis.call('DEL', KEYS[2])
end
local taken = {}
local room = math.min(tonumber(ARGV[1]) - redis.call('LLEN', KEYS[2]), tonumber(ARGV[3]))
for i = 1, room do
  local item = redis.call('LPOP', KEYS[1])
  if not item then break end
  redis.call('RPUSH', KEYS[2], item)
  taken[#taken + 1] = item
end
return taken
`;

/**
 * Removes each field ARGV[i] of the hash KEYS[1] whose value is still ARGV[i + 1]: a cooldown found
 * stale is not removed if it was saved again meanwhile. Returns how many were removed.
 */
const FORGET_SCRIPT = `
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then removed = removed + redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return removed
`;

/** Cooldown fields read per HSCAN step, and removed per script run, when pruning. */
const PRUNE_BATCH = 500;

/** Cooldowns older than this are forgotten when read, unless told to keep them longer (`cooldownRetentionOf`). */
const DEFAULT_COOLDOWN_RETENTION_MS = 24 * 60 * 60_000;

/**
 * How long to keep the cooldowns of alerts of `rules`: as long as the longest of theirs (a day at
 * least), so that one longer than a day still holds after a restart or hand-over.
 */
export function cooldownRetentionOf(rules: ReadonlyArray<Pick<AlertRuleConfig, 'cooldownMs'>>): number {
  return Math.max(DEFAULT_COOLDOWN_RETENTION_MS, ...rules.map((r) => r.cooldownMs));
}

/**
 * The alerting state in Redis (`<keyPrefix>alerting:outbox` and `…:outbox:delivering`, lists;
 * `…:cooldowns` and `…:firing`, hashes by alert). Only the active replica (the lease holder) writes
 * and reads it, so one in-delivery list serves every holder in turn. What was made by an older
 * version, or is not readable, is skipped rather than stopping the start.
 */
export class RedisAlertingState implements AlertingStateRepository {
  private readonly outboxKey: string;
  private readonly deliveringKey: string;
  private readonly cooldownsKey: string;
  private readonly firingKey: string;

  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    private readonly onUnreadable: (what: string) => void,
    private readonly clock: () => number = Date.now,
    private readonly cooldownRetentionMs = DEFAULT_COOLDOWN_RETENTION_MS,
  ) {
    this.outboxKey = `${keyPrefix}alerting:outbox`;
    this.deliveringKey = `${keyPrefix}alerting:outbox:delivering`;
    this.cooldownsKey = `${keyPrefix}alerting:cooldowns`;
    this.firingKey = `${keyPrefix}alerting:firing`;
  }

  async handOff(deliveries: readonly HandedOverDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    const replies = await this.redis
      .multi()
      .rpush(this.outboxKey, ...deliveries.map((d) => JSON.stringify(d)))
      .ltrim(this.outboxKey, -OUTBOX_LIMIT, -1)
      .exec();
    const failed = replies?.find(([error]) => error);
    if (!replies || failed) throw failed?.[0] ?? new Error('the alert delivery outbox could not be written');
  }

  async claimHandedOver(options: { retake?: boolean; limit?: number } = {}): Promise<ClaimedDelivery[]> {
    const limit = Math.max(0, Math.floor(options.limit ?? IN_DELIVERY_LIMIT));
    const items = (await this.redis.eval(CLAIM_SCRIPT, 2, this.outboxKey, this.deliveringKey, String(IN_DELIVERY_LIMIT), options.retake ? '1' : '0', String(limit))) as string[];
    const read: ClaimedDelivery[] = [];
    for (const item of items) {
      const parsed = handedOverSchema.safeParse(parseJson(item));
      if (parsed.success) {
        read.push({ ...(parsed.data as unknown as HandedOverDelivery), receipt: item });
        continue;
      }
      this.onUnreadable('a handed-over alert notification');
      // Never readable: not kept for another replica to skip again.
      await this.finishHandedOver(item);
    }
    return read;
  }

  async finishHandedOver(receipt: string): Promise<void> {
    await this.redis.lrem(this.deliveringKey, 1, receipt);
  }

  async cooldowns(): Promise<Map<string, number>> {
    const all = await this.redis.hgetall(this.cooldownsKey);
    const now = this.clock();
    const kept = new Map<string, number>();
    const stale: Array<[string, string]> = [];
    for (const [fingerprint, text] of Object.entries(all)) {
      const at = this.keptCooldown(text, now);
      if (at !== undefined) kept.set(fingerprint, at);
      else stale.push([fingerprint, text]);
    }
    await this.forgetCooldowns(stale);
    return kept;
  }

  async saveCooldown(fingerprint: string, at: number): Promise<void> {
    await this.redis.hset(this.cooldownsKey, fingerprint, String(at));
  }

  /**
   * Read in steps (HSCAN), so a large hash neither blocks Redis nor comes back in one reply. The
   * active replica saves a cooldown at every delivery and reads the hash only as it becomes active:
   * without this, one that stays active for months keeps every alert it ever notified.
   */
  async pruneCooldowns(): Promise<number> {
    const now = this.clock();
    let removed = 0;
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.cooldownsKey, cursor, 'COUNT', PRUNE_BATCH);
      cursor = next;
      const stale: Array<[string, string]> = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const fingerprint = flat[i] ?? '';
        const text = flat[i + 1] ?? '';
        if (this.keptCooldown(text, now) === undefined) stale.push([fingerprint, text]);
      }
      removed += await this.forgetCooldowns(stale);
    } while (cursor !== '0');
    return removed;
  }

  /** A kept cooldown's start, unless it is unreadable or past its retention at `now`. */
  private keptCooldown(text: string, now: number): number | undefined {
    const at = Number(text);
    return Number.isFinite(at) && now - at <= this.cooldownRetentionMs ? at : undefined;
  }

  /** Removes these cooldowns (fingerprint, the value found stale) unless saved again meanwhile. */
  private async forgetCooldowns(stale: ReadonlyArray<[string, string]>): Promise<number> {
    let removed = 0;
    for (let i = 0; i < stale.length; i += PRUNE_BATCH) {
      removed += Number(await this.redis.eval(FORGET_SCRIPT, 1, this.cooldownsKey, ...stale.slice(i, i + PRUNE_BATCH).flat()));
    }
    return removed;
  }

  /** Keeps each alert's latest entry while it fires; a resolution removes it. Entries come in the order they were made. */
  async append(entries: readonly AlertHistoryEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const multi = this.redis.multi();
    for (const e of entries) {
      if (e.status === 'firing') multi.hset(this.firingKey, e.alertId, JSON.stringify(e));
      else multi.hdel(this.firingKey, e.alertId);
    }
    const replies = await multi.exec();
    const failed = replies?.find(([error]) => error);
    if (!replies || failed) throw failed?.[0] ?? new Error('the firing alerts could not be written');
  }

  async firing(): Promise<AlertHistoryEntry[]> {
    const all = await this.redis.hvals(this.firingKey);
    const entries: AlertHistoryEntry[] = [];
    for (const text of all) {
      const parsed = firingEntrySchema.safeParse(parseJson(text));
      if (parsed.success) entries.push(parsed.data as unknown as AlertHistoryEntry);
      else this.onUnreadable('a firing alert');
    }
    return entries;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
