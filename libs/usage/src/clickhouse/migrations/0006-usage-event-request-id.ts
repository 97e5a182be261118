import type { Migration } from '../migration';

/**
 * The client's request id gets a column of its own: `event_id` is a unique id the gateway makes,
 * because clients may reuse a request id (one trace id for several calls, WebSocket frame ids).
 * Rows written before keep '' (their `event_id` was the request id).
 */
export const usageEventRequestId: Migration = {
  version: 6,
  name: 'usage_event_request_id',
  statements: [`ALTER TABLE {db:Identifier}.usage_events ADD COLUMN IF NOT EXISTS request_id String DEFAULT '' AFTER http_status`],
};
