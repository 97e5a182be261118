import type { Migration } from '../migration';
import { usageEvents } from './0001-usage-events';
import { usageEventIds } from './0002-usage-event-ids';
import { usageDaily } from './0003-usage-daily';
import { alertHistory } from './0004-alert-history';
import { usageDailySigned } from './0005-usage-daily-signed';
import { usageEventRequestId } from './0006-usage-event-request-id';
import { usageEventCacheHit } from './0007-usage-event-cache-hit';
import { usageDailyCacheHits } from './0008-usage-daily-cache-hits';
import { usageEventAudio } from './0009-usage-event-audio';
import { usageEventImages } from './0010-usage-event-images';
import { usageDurableInserts } from './0011-usage-durable-inserts';
import { usageRetentionChanges } from './0012-usage-retention-changes';

/** Every ClickHouse migration, in order. Applied migrations never change: add a new one. */
export const USAGE_MIGRATIONS: readonly Migration[] = [usageEvents, usageEventIds, usageDaily, alertHistory, usageDailySigned, usageEventRequestId, usageEventCacheHit, usageDailyCacheHits, usageEventAudio, usageEventImages, usageDurableInserts, usageRetentionChanges];
