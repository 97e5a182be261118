import { Controller, Get, Inject, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import type { AlertHistoryEntry, AlertHistoryStore } from '@openrouter/observability';
import { z } from 'zod';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { parseInput } from './admin-input';

/** The alert history, or undefined when this ingress has no ClickHouse server to read it from. */
export const ALERT_HISTORY = Symbol('ALERT_HISTORY');

export const alertsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  status: z.enum(['firing', 'resolved']).optional(),
  rule: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
});

/**
 * Alert history written by the alerting service, newest first. Read straight from ClickHouse: the
 * alerting service owns the writes, the admin API only reads. Keys scoped to an organisation see
 * only alerts labelled with it (budget and spend alerts).
 */
@Controller('admin/v1/alerts')
@UseGuards(AdminGuard)
@Roles('viewer', 'finance')
export class AlertsHttpController {
  constructor(@Inject(ALERT_HISTORY) private readonly history: AlertHistoryStore | undefined) {}

  @Get()
  async list(@Req() req: FastifyRequest, @Query() query: unknown) {
    const input = parseInput(alertsQuery, query);
    if (!this.history) throw new GatewayError('unavailable', 'Alert history needs a ClickHouse server (usage.clickhouse.url) when ingress runs on its own.', { code: 'alert_history_unavailable' });
    const admin = adminOf(req);
    const entries = await this.history.list({ limit: input.limit, status: input.status, ruleId: input.rule, sinceMs: input.since ? Date.parse(input.since) : undefined, org: admin.org });
    return { object: 'list', data: entries.map(alertView) };
  }
}

/** An alert transition as the API answers it (and the OpenAPI document describes it). */
export const alertViewSchema = z.strictObject({
  object: z.literal('alert'),
  at: z.string().describe('When the alert fired or resolved (ISO 8601, UTC)'),
  alert_id: z.string().describe('Stable id of the alert: its rule and group labels; the same for its firing and its resolution'),
  rule: z.string().describe('The id of the rule (observability.alerting.rules[].id)'),
  kind: z.string().describe('The rule kind: error_rate, latency_p95, circuit_open, canary_rolled_back, budget_threshold, spend_anomaly, router_unreachable, …'),
  severity: z.string(),
  status: z.enum(['firing', 'resolved']),
  labels: z.record(z.string(), z.string()).describe('What the alert is about: provider, deployment, org, budget, …'),
  value: z.number().describe('The measured value when it fired or resolved'),
  threshold: z.number(),
  summary: z.string(),
  started_at: z.string().describe('When this episode of the alert started firing (ISO 8601, UTC)'),
  notified: z.boolean().describe('False when a cooldown held the notification back'),
  channels: z.array(z.string()).describe('The channels notified'),
});
export type AlertView = z.infer<typeof alertViewSchema>;
export const alertListViewSchema = z.strictObject({ object: z.literal('list'), data: z.array(alertViewSchema) });

export function alertView(e: AlertHistoryEntry): AlertView {
  return {
    object: 'alert',
    at: e.at,
    alert_id: e.alertId,
    rule: e.ruleId,
    kind: e.ruleKind,
    severity: e.severity,
    status: e.status,
    labels: e.labels,
    value: e.value,
    threshold: e.threshold,
    summary: e.summary,
    started_at: e.startedAt,
    notified: e.notified,
    channels: e.channels,
  };
}
