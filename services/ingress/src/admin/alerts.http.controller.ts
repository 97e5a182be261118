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
    return { object: 'list', data: entries.map(view) };
  }
}

function view(e: AlertHistoryEntry) {
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
