import { Controller, Get, Inject, Optional, Param, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { billingv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { requireFilterInScope } from '../access/admin-scope';
import { BillingClient } from '../billing.client';
import type { AdminPrincipal } from './admin-auth';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { parseInput } from './admin-input';
import { toCsv } from './csv';
import { chargebackQuery, experimentId, experimentQuery, focusQuery, invoiceParams, invoiceQuery, STORE_END_MS, usageQuery } from './reports-input';

const DAY_MS = 86_400_000;

/**
 * What the caller may see. A key without an org (`admin`, `finance`, `viewer`) sees every tenant;
 * a key of any role that names an org (and a project) sees only that org (and project), and asking
 * for anything else is answered as if it did not exist (404).
 */
export function reportScope(admin: AdminPrincipal, requested: { org?: string | undefined; project?: string | undefined }): billingv1.TenantScope {
  if (admin.org === undefined && admin.project === undefined) return { orgId: '', projectId: '' };
  requireFilterInScope(admin, requested);
  return { orgId: admin.org ?? '', projectId: admin.project ?? '' };
}

/**
 * The end billing reads a usage range up to. Nothing is stored at or after {@link STORE_END_MS}, so
 * a range clamped there is read to the end of that UTC day: the same events, in whole days, which
 * the daily rollup answers like any other whole-day range. Read to the instant itself, the range
 * would go to the raw events, whose days past `usage.clickhouse.retentionDays` are gone.
 */
function readEnd(toMs: number): number {
  return toMs >= STORE_END_MS ? Math.ceil(toMs / DAY_MS) * DAY_MS : toMs;
}

/** The first instant of the UTC month `ms` is in. */
function monthStart(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Usage reports, invoices, chargeback and exports, served by billing (roles `admin`, `finance`, `project`). */
@Controller('admin/v1')
@UseGuards(AdminGuard)
@Roles('finance', 'project')
export class ReportsHttpController {
  constructor(@Optional() @Inject(BillingClient) private readonly billing?: BillingClient) {}

  @Get('usage')
  async usage(@Req() req: FastifyRequest, @Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const q = parseInput(usageQuery, query);
    const scope = reportScope(adminOf(req), q);
    const now = Date.now();
    const toMs = q.to ?? Math.ceil((now + 1) / DAY_MS) * DAY_MS;
    // Without `from`: this month so far, or the month `to` ends in when that is earlier (never before 1970, where the store starts).
    const fromMs = q.from ?? Math.max(0, Math.min(monthStart(now), monthStart(toMs - 1)));
    if (!(toMs > fromMs)) throw new GatewayError('bad_request', 'Invalid to: must be after from.', { param: 'to', code: 'invalid_value' });
    const report = await this.client().usage({
      scope,
      fromMs,
      toMs: readEnd(toMs),
      groupBy: q.group_by,
      filter: {
        orgId: q.org ?? '',
        projectId: q.project ?? '',
        teamId: q.team ?? '',
        appId: q.app ?? '',
        costCenter: q.cost_center ?? '',
        keyId: q.key ?? '',
        model: q.model ?? '',
        provider: q.provider ?? '',
        operation: q.operation ?? '',
        status: q.status ?? '',
        experiment: q.experiment ?? '',
      },
    });
    const rows = report.rows.map((r) => ({ ...r.dimensions, currency: r.currency, ...totals(r.totals) }));
    if (q.format === 'csv') {
      const header = [...q.group_by, 'currency', ...TOTAL_COLUMNS];
      return csv(reply, 'usage.csv', header, rows.map((r) => header.map((h) => (r as Record<string, string | number>)[h] ?? '')));
    }
    // Costs in different currencies are never added up: `total.cost` and `total.cache_saved_cost`
    // are null then, and `cost_by_currency` and `cache_saved_cost_by_currency` have each.
    const total = {
      ...totals(report.total),
      cost: report.total?.cost || null,
      cache_saved_cost: report.total?.cacheSavedCost || null,
      cost_by_currency: report.costByCurrency,
      cache_saved_cost_by_currency: report.cacheSavedCostByCurrency,
    };
    return { object: 'usage_report', from: iso(fromMs), to: iso(toMs), group_by: q.group_by, source: report.source, data: rows, total };
  }

  @Get('invoices/:org/:month')
  async invoice(@Req() req: FastifyRequest, @Param() params: unknown, @Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const p = parseInput(invoiceParams, params);
    const q = parseInput(invoiceQuery, query);
    const scope = reportScope(adminOf(req), { org: p.org });
    const invoice = await this.client().invoice({ scope, orgId: p.org, month: p.month });
    const lines = invoice.lines.map((l) => ({
      model: l.model,
      currency: l.currency,
      requests: l.requests,
      prompt_tokens: l.promptTokens,
      completion_tokens: l.completionTokens,
      cached_read_tokens: l.cachedReadTokens,
      cache_write_tokens: l.cacheWriteTokens,
      amount: l.amount,
      // Informational: hits are billed in `amount` at 0; what they would have cost is not billed.
      cache_hits: l.cacheHits,
      cache_saved_cost: l.cacheSavedCost || '0',
    }));
    if (q.format === 'csv') {
      const header = ['model', 'currency', 'requests', 'prompt_tokens', 'completion_tokens', 'cached_read_tokens', 'cache_write_tokens', 'amount', 'cache_hits', 'cache_saved_cost'] as const;
      return csv(reply, `invoice-${p.org}-${p.month}.csv`, header, lines.map((l) => header.map((h) => l[h])));
    }
    return {
      object: 'invoice',
      org: invoice.orgId,
      month: invoice.month,
      period_start: iso(invoice.periodStartMs),
      period_end: iso(invoice.periodEndMs),
      project: scope.projectId || null,
      lines,
      totals: invoice.totals,
    };
  }

  @Get('chargeback')
  async chargeback(@Req() req: FastifyRequest, @Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const q = parseInput(chargebackQuery, query);
    const scope = reportScope(adminOf(req), { org: q.org });
    const allocation = q.allocation === 'fixed' ? billingv1.Allocation.ALLOCATION_FIXED : q.allocation === 'proportional' ? billingv1.Allocation.ALLOCATION_PROPORTIONAL : billingv1.Allocation.ALLOCATION_UNSPECIFIED;
    const report = await this.client().chargeback({ scope, month: q.month, orgId: q.org ?? '', allocation });
    const line = (l: billingv1.ChargebackLine) => ({
      org: l.orgId,
      cost_center: l.costCenter,
      currency: l.currency,
      direct: l.direct,
      allocated: l.allocated,
      total: l.total,
      requests: l.requests,
      cache_hits: l.cacheHits,
      cache_saved_cost: l.cacheSavedCost || '0',
    });
    const lines = report.lines.map(line);
    const unallocated = report.unallocated.map(line);
    if (q.format === 'csv') {
      const header = ['org', 'cost_center', 'currency', 'direct', 'allocated', 'total', 'requests', 'cache_hits', 'cache_saved_cost'] as const;
      return csv(reply, `chargeback-${q.month}.csv`, header, [...lines, ...unallocated.map((u) => ({ ...u, cost_center: '(unallocated)' }))].map((l) => header.map((h) => l[h])));
    }
    return {
      object: 'chargeback',
      month: report.month,
      allocation: report.allocation === billingv1.Allocation.ALLOCATION_FIXED ? 'fixed' : 'proportional',
      lines,
      unallocated,
      totals: report.totals,
    };
  }

  @Get('exports/focus')
  async focus(@Req() req: FastifyRequest, @Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const q = parseInput(focusQuery, query);
    const scope = reportScope(adminOf(req), { org: q.org });
    const report = await this.client().focus({ scope, month: q.month, orgId: q.org ?? '' });
    const rows = report.rows.map((r): Record<FocusColumn, unknown> & { Tags: Record<string, string> } => ({
      BilledCost: r.billedCost,
      EffectiveCost: r.effectiveCost,
      ListCost: r.listCost,
      ConsumedQuantity: r.consumedQuantity,
      ConsumedUnit: r.consumedUnit,
      ChargeCategory: 'Usage',
      ChargePeriodStart: iso(r.chargePeriodStartMs),
      ChargePeriodEnd: iso(r.chargePeriodEndMs),
      BillingPeriodStart: iso(report.billingPeriodStartMs),
      BillingPeriodEnd: iso(report.billingPeriodEndMs),
      BillingAccountId: r.billingAccountId,
      BillingCurrency: r.billingCurrency,
      SubAccountId: r.subAccountId,
      ServiceName: r.serviceName,
      ServiceCategory: 'AI and Machine Learning',
      SkuId: r.skuId,
      ProviderName: r.providerName,
      Tags: r.tags,
    }));
    if (q.format === 'csv') {
      // Every column, with rows or without: an empty month is still a FOCUS file.
      return csv(reply, `focus-${q.month}.csv`, FOCUS_COLUMNS, rows.map((r) => FOCUS_COLUMNS.map((h) => (h === 'Tags' ? JSON.stringify(r.Tags) : (r[h] as string)))));
    }
    return { object: 'focus_export', month: q.month, data: rows };
  }

  @Get('experiments/:id/report')
  async experiment(@Req() req: FastifyRequest, @Param('id') id: string, @Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const experiment = parseInput(experimentId, id);
    const q = parseInput(experimentQuery, query);
    const scope = reportScope(adminOf(req), {});
    // Without `from`, billing starts the report 30 days before `to` (now by default), or at the
    // oldest raw event it keeps when that is later, and answers where it started.
    const toMs = q.to ?? Date.now() + 1;
    const report = await this.client().experiment({ scope, experiment, fromMs: q.from, toMs });
    // An arm's own figures are over all its requests; its money is per currency, and its single
    // `cost` only when all of it is in one (costs in different currencies are never added up).
    const arms = report.arms.map((a) => ({
      arm: a.arm,
      currency: a.currency || null,
      requests: a.requests,
      errors: a.errors,
      error_rate: a.errorRate,
      latency_p50_ms: a.latencyP50Ms,
      latency_p95_ms: a.latencyP95Ms,
      ttft_p50_ms: a.ttftP50Ms,
      ttft_p95_ms: a.ttftP95Ms,
      prompt_tokens_per_request: a.promptTokensPerRequest,
      completion_tokens_per_request: a.completionTokensPerRequest,
      cost: a.currency ? a.cost : null,
      cost_per_request: a.currency ? a.costPerRequest : null,
      cost_by_currency: Object.fromEntries(a.costs.map((c) => [c.currency, { requests: c.requests, cost: c.cost, cost_per_request: c.costPerRequest }])),
    }));
    if (q.format === 'csv') {
      // One line per arm and currency: the arm's figures on each, the money (and its request count)
      // of that currency. An arm priced in no currency still has its line, its money cells empty.
      const lines = arms.flatMap((a): Array<Record<ExperimentColumn, string | number>> => {
        const costs = Object.entries(a.cost_by_currency);
        if (costs.length === 0) return [{ ...a, currency: '', cost: '', cost_per_request: '', currency_requests: '' }];
        return costs.map(([currency, c]) => ({ ...a, currency, cost: c.cost, cost_per_request: c.cost_per_request, currency_requests: c.requests }));
      });
      return csv(reply, `experiment-${experiment}.csv`, EXPERIMENT_COLUMNS, lines.map((l) => EXPERIMENT_COLUMNS.map((h) => l[h])));
    }
    return { object: 'experiment_report', experiment: report.experiment, from: iso(report.fromMs), to: iso(toMs), arms };
  }

  private client(): BillingClient {
    if (!this.billing) throw new GatewayError('unavailable', 'Reports are not available: ingress.billing names no billing address.', { code: 'billing_unavailable' });
    return this.billing;
  }
}

const TOTAL_COLUMNS = ['requests', 'errors', 'prompt_tokens', 'completion_tokens', 'cached_read_tokens', 'cache_write_tokens', 'reasoning_tokens', 'cost', 'cache_hits', 'cache_saved_cost'] as const;
/** The FOCUS export's columns, in order. */
const FOCUS_COLUMNS = [
  'BilledCost',
  'EffectiveCost',
  'ListCost',
  'ConsumedQuantity',
  'ConsumedUnit',
  'ChargeCategory',
  'ChargePeriodStart',
  'ChargePeriodEnd',
  'BillingPeriodStart',
  'BillingPeriodEnd',
  'BillingAccountId',
  'BillingCurrency',
  'SubAccountId',
  'ServiceName',
  'ServiceCategory',
  'SkuId',
  'ProviderName',
  'Tags',
] as const;
type FocusColumn = (typeof FOCUS_COLUMNS)[number];
/** An experiment report's CSV columns, per arm and currency, in order. */
const EXPERIMENT_COLUMNS = [
  'arm',
  'currency',
  'requests',
  'errors',
  'error_rate',
  'latency_p50_ms',
  'latency_p95_ms',
  'ttft_p50_ms',
  'ttft_p95_ms',
  'prompt_tokens_per_request',
  'completion_tokens_per_request',
  'cost',
  'cost_per_request',
  'currency_requests',
] as const;
type ExperimentColumn = (typeof EXPERIMENT_COLUMNS)[number];

function totals(t: billingv1.UsageTotals | undefined) {
  return {
    requests: t?.requests ?? 0,
    errors: t?.errors ?? 0,
    prompt_tokens: t?.promptTokens ?? 0,
    completion_tokens: t?.completionTokens ?? 0,
    cached_read_tokens: t?.cachedReadTokens ?? 0,
    cache_write_tokens: t?.cacheWriteTokens ?? 0,
    reasoning_tokens: t?.reasoningTokens ?? 0,
    cost: t?.cost ?? '0',
    cache_hits: t?.cacheHits ?? 0,
    // A billing from before cache hits were reported sends no savings: none were counted.
    cache_saved_cost: t?.cacheSavedCost || '0',
  };
}

function csv(reply: FastifyReply, filename: string, header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  void reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', contentDisposition(filename));
  return toCsv(header, rows);
}

/**
 * An attachment header for any file name: a plain-ASCII `filename` for old clients and the exact
 * name RFC 5987-encoded in `filename*`, so quotes, line breaks or non-Latin-1 letters in a name
 * (an experiment id) can neither break the header nor fail to send it.
 */
export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^A-Za-z0-9._-]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return ascii === filename ? `attachment; filename="${filename}"` : `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
