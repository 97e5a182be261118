import type { AlertRuleConfig } from '@openrouter/config';
import type { AlertTransition } from '../rules/alert-tracker';
import type { DeliveryOutcome } from './delivery-queue';

/** Where an alert's firing stands on one channel: on its way, taken by the receiver, or refused by it for good. */
export type Notice = 'sending' | 'delivered' | 'refused';

/**
 * How a history entry's `channels` names a channel that refused the firing for good: `refused:<id>`
 * (a channel id has no `:`, so no channel is ever read as another). A plain id is a channel the
 * firing reached (or was on its way to); entries written before refusals were recorded have only those.
 */
const REFUSED = 'refused:';

/**
 * How an entry of a firing that did not reach every channel names one it is still owed (given up,
 * or dropped): `owed:<id>`. Its restart sends the firing there again, as to any channel the entry
 * does not name; naming it tells the entry of a firing that reached no channel from one a cooldown
 * held back (both `notified: false`), which is not due.
 */
const OWED = 'owed:';

/** The `channels` of a firing's history entry, as `FiringNotices.recorded` writes them. */
function recordedChannels(notices: Iterable<readonly [string, Notice]>, sending: boolean): string[] {
  const channels: string[] = [];
  for (const [channel, notice] of notices) {
    if (notice === 'refused') channels.push(`${REFUSED}${channel}`);
    else if (notice === 'delivered' || sending) channels.push(channel);
  }
  return channels;
}

/** Recorded channels compared regardless of their order. */
function channelsKey(channels: readonly string[]): string {
  return [...channels].sort().join('\u0000');
}

/** What a firing's history entry says of each channel in its `channels` it settled: reached, or refused for good. */
function readRecordedChannels(channels: readonly string[]): Map<string, 'delivered' | 'refused'> {
  return new Map(channels.filter((c) => !c.startsWith(OWED)).map((c) => (c.startsWith(REFUSED) ? [c.slice(REFUSED.length), 'refused'] : [c, 'delivered'])));
}

/**
 * What an alert's latest history entry of a firing says of its notification: whether it was due
 * (false: a cooldown held it back), and whether it reached a channel or was refused there for good
 * (either started the alert's cooldown). A due firing's entry is `notified`, or names channels: those
 * it reached or that refused it, and those it is owed.
 */
export function readFiringEntry(entry: { notified: boolean; channels: readonly string[] }): { due: boolean; settledSomewhere: boolean } {
  return { due: entry.notified || entry.channels.length > 0, settledSomewhere: entry.notified || entry.channels.some((c) => !c.startsWith(OWED)) };
}

/** What a delivery outcome changed that the alert history must be told. */
export type NoticeChange =
  /** A channel did not get the firing (given up, dropped: a restart must send it again; or refused, which it must not). */
  | 'short'
  /** Every channel got it after all. */
  | 'whole';

interface Episode {
  /** The firing as notified: sent again as it is to a channel it has not reached. */
  firing: AlertTransition;
  notices: Map<string, Notice>;
  /** The alert's latest history entry says its firing has not reached every channel. */
  recordedShort: boolean;
  /** The channels that entry names (`recordedChannels` without those on their way), when `recordedShort`. */
  recordedAs?: string;
  /** When the alert's latest history entry was made (ms): the next one is later, for a restart to read it as the latest. */
  recordedAt: number;
}

/**
 * Which channels each firing alert (one whose notification is due, not held back by a cooldown)
 * has reached. An alert counts as notified on a channel only once a delivery there succeeded: a
 * delivery given up or dropped leaves the channel owed the firing, which the next round sends
 * again; a permanent refusal settles the channel (sending the same notification again would only
 * be refused again). A resolution goes only to channels that got the firing or have it on its way
 * (the delivery queue withdraws it if that firing then fails), so a receiver never sees an alert
 * resolve that it never saw fire.
 */
export class FiringNotices {
  private readonly episodes = new Map<string, Episode>();
  /**
   * Resolutions whose delivery was given up or dropped, by alert: the channels still owed each.
   * Sent again every round until they get through, unless the alert fires again first (the
   * receiver then has its new firing, which an old resolution would read as ended).
   */
  private readonly resolutions = new Map<string, { resolution: AlertTransition; channels: Set<string> }>();

  /** A firing alert whose notification is now due: its channels are owed it. */
  due(firing: AlertTransition): void {
    const known = this.episodes.get(firing.fingerprint);
    if (known && known.firing.startedAt === firing.startedAt) {
      // Its new history entry says notified again.
      known.firing = firing;
      known.recordedShort = false;
      known.recordedAs = undefined;
      known.recordedAt = Math.max(known.recordedAt, firing.at);
    } else {
      this.episodes.set(firing.fingerprint, { firing, notices: new Map(), recordedShort: false, recordedAt: firing.at });
      this.resolutions.delete(firing.fingerprint);
    }
  }

  /** A resolution did not reach `channel` (given up, or dropped): the channel is owed it, unless the alert has fired again since. */
  resolutionMissed(resolution: AlertTransition, channel: string): void {
    if (this.episodes.has(resolution.fingerprint)) return;
    const owed = this.resolutions.get(resolution.fingerprint);
    if (owed && owed.resolution.startedAt === resolution.startedAt) owed.channels.add(channel);
    else this.resolutions.set(resolution.fingerprint, { resolution, channels: new Set([channel]) });
  }

  /**
   * A firing alert taken back from history after a restart, with its latest entry's `channels`: those
   * it had reached, and those that refused it for good (settled as well: not sent it again).
   */
  restore(firing: AlertTransition, recorded: readonly string[], recordedShort: boolean): void {
    const notices = new Map<string, Notice>(readRecordedChannels(recorded));
    this.episodes.set(firing.fingerprint, { firing, notices, recordedShort, recordedAs: channelsKey(recordedChannels(notices, false)), recordedAt: firing.at });
  }

  /**
   * A firing handed over by a replica that stopped is on its way to `channel` from this one: the
   * channel is no longer owed it here. The history it was restored from says it is when the firing
   * was being sent again (after a give-up) as that replica stopped, and the next round would
   * otherwise send the channel a second copy. The delivery's outcome settles it as any other's.
   */
  handedOver(alert: AlertTransition, channel: string): void {
    const episode = this.episodeOf(alert);
    if (episode && !episode.notices.has(channel)) episode.notices.set(channel, 'sending');
  }

  /**
   * When a history entry of `alert`'s firing made at `now` is to be stamped: later than the alert's
   * previous entry (two outcomes may come within one millisecond), so a restart reads the last one
   * written as the latest.
   */
  entryTime(alert: AlertTransition, now: number): number {
    const episode = this.episodeOf(alert);
    const at = Math.max(now, (episode?.recordedAt ?? alert.at) + 1);
    if (episode) episode.recordedAt = at;
    return at;
  }

  /**
   * The firings owed to channels (of those `targets` names for the alert's rule), each then marked
   * on its way, and the resolutions owed (each then no longer owed: it is on its way again).
   */
  owed(targets: (rule: AlertRuleConfig) => readonly string[]): Array<{ alert: AlertTransition; channel: string }> {
    const sends: Array<{ alert: AlertTransition; channel: string }> = [];
    for (const episode of this.episodes.values()) {
      for (const channel of targets(episode.firing.rule)) {
        if (episode.notices.has(channel)) continue;
        episode.notices.set(channel, 'sending');
        sends.push({ alert: episode.firing, channel });
      }
    }
    for (const { resolution, channels } of this.resolutions.values()) {
      for (const channel of channels) if (targets(resolution.rule).includes(channel)) sends.push({ alert: resolution, channel });
    }
    this.resolutions.clear();
    return sends;
  }

  /** The resolutions owed to channels (of those `targets` names), then no longer owed: at shutdown, to be sent or handed over. */
  owedResolutions(targets: (rule: AlertRuleConfig) => readonly string[]): Array<{ alert: AlertTransition; channel: string }> {
    const sends: Array<{ alert: AlertTransition; channel: string }> = [];
    for (const { resolution, channels } of this.resolutions.values()) {
      for (const channel of channels) if (targets(resolution.rule).includes(channel)) sends.push({ alert: resolution, channel });
    }
    this.resolutions.clear();
    return sends;
  }

  /**
   * The `channels` of a history entry of an alert's firing: the channels it has reached, those that
   * refused it for good (as `refused:<id>`, so that a restart does not send it there again), and,
   * with `sending` (the entry of the firing itself), those it is on its way to; else, of `owed` (its
   * rule's channels), those it is owed (as `owed:<id>`).
   */
  recorded(alert: AlertTransition, sending: boolean, owed: readonly string[] = []): string[] {
    const episode = this.episodeOf(alert);
    if (!episode) return [];
    const channels = recordedChannels(episode.notices, sending);
    if (!sending) for (const channel of owed) if (!episode.notices.has(channel)) channels.push(`${OWED}${channel}`);
    return channels;
  }

  /** The alert resolved: the channels its resolution goes to (those that have, or will first get, its firing); then forgotten. */
  resolve(alert: AlertTransition): string[] {
    const episode = this.episodeOf(alert);
    if (!episode) return [];
    this.episodes.delete(alert.fingerprint);
    return [...episode.notices].filter(([, n]) => n === 'delivered' || n === 'sending').map(([c]) => c);
  }

  /**
   * A delivery of an alert's firing to `channel` ended. Returns what the history must now be told:
   * that the firing has not reached every one of `targets` (naming, per channel, those it reached
   * or that refused it), or that it now has; nothing when that is what it last said, or the episode
   * has ended meanwhile. Each channel's outcome is recorded on its own, in whatever order the
   * outcomes arrive: one that arrives after another channel's give-up was recorded is recorded too,
   * so a restart never sends the firing again to a channel it reached.
   */
  settle(alert: AlertTransition, channel: string, outcome: DeliveryOutcome, targets: readonly string[]): NoticeChange | undefined {
    const episode = this.episodeOf(alert);
    if (!episode) return undefined;
    if (outcome === 'delivered' || outcome === 'refused') episode.notices.set(channel, outcome);
    else episode.notices.delete(channel);
    const missed = targets.some((c) => !episode.notices.has(c) || episode.notices.get(c) === 'refused');
    const whole = targets.every((c) => episode.notices.get(c) === 'delivered');
    if (whole) {
      if (!episode.recordedShort) return undefined;
      episode.recordedShort = false;
      episode.recordedAs = undefined;
      return 'whole';
    }
    if (!missed) return undefined;
    const recordedAs = channelsKey(recordedChannels(episode.notices, false));
    if (episode.recordedShort && episode.recordedAs === recordedAs) return undefined;
    episode.recordedShort = true;
    episode.recordedAs = recordedAs;
    return 'short';
  }

  /** The episode `alert` belongs to, while it lasts (a later episode of the same alert is another). */
  private episodeOf(alert: AlertTransition): Episode | undefined {
    const episode = this.episodes.get(alert.fingerprint);
    return episode && episode.firing.startedAt === alert.startedAt ? episode : undefined;
  }
}
