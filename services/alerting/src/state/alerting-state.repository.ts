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
   * Takes the deliveries handed over, oldest first, into delivery: they stay in the store until
   * `finishHandedOver` is told of each, so a replica that dies before sending them loses none.
   * With `retake`, also those already in delivery — taken by a previous active replica that never
   * told their outcome (a replica takes these once, as it becomes the active one).
   */
  claimHandedOver(options?: { retake?: boolean }): Promise<ClaimedDelivery[]>;
  /** A claimed delivery has an outcome (or no channel left to go to): it is no longer kept. */
  finishHandedOver(receipt: string): Promise<void>;
  /** When each alert (by fingerprint) last had a notification reach a channel (ms since the epoch). */
  cooldowns(): Promise<Map<string, number>>;
  /** An alert's notification reached a channel at `at`. */
  saveCooldown(fingerprint: string, at: number): Promise<void>;
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
 * than ARGV[1], in one step; returns what was moved, after what was already in delivery when
 * ARGV[2] is '1'. LPOP + RPUSH rather than LMOVE: the same on every Redis version.
 */
const CLAIM_SCRIPT = `
local taken = {}
if ARGV[2] == '1' then taken = redis.call('LRANGE', KEYS[2], 0, -1) end
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[2])
for i = 1, room do
  local item = redis.call('LPOP', KEYS[1])
  if not item then break end
  redis.call('RPUSH', KEYS[2], item)
  taken[#taken + 1] = item
end
return taken
`;

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

  async claimHandedOver(options: { retake?: boolean } = {}): Promise<ClaimedDelivery[]> {
    const items = (await this.redis.eval(CLAIM_SCRIPT, 2, this.outboxKey, this.deliveringKey, String(IN_DELIVERY_LIMIT), options.retake ? '1' : '0')) as string[];
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
    const stale: string[] = [];
    for (const [fingerprint, text] of Object.entries(all)) {
      const at = Number(text);
      if (Number.isFinite(at) && now - at <= this.cooldownRetentionMs) kept.set(fingerprint, at);
      else stale.push(fingerprint);
    }
    if (stale.length > 0) await this.redis.hdel(this.cooldownsKey, ...stale);
    return kept;
  }

  async saveCooldown(fingerprint: string, at: number): Promise<void> {
    await this.redis.hset(this.cooldownsKey, fingerprint, String(at));
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
