import { Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { fromMicros, type SpendForecast } from '@openrouter/budgets';
import { Money } from '@openrouter/usage';
import { BudgetAdminService, type BudgetStatus } from '../budgets/budget-admin.service';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { Idempotent } from './idempotency.interceptor';
import { budgetBody, budgetListQuery, budgetPatchInput, parseInput } from './admin-input';

/**
 * Budgets: where each stands in its current period (admin, finance and project keys, each within
 * its scope), and those created, changed and deleted at run time (admin keys).
 */
@Controller('admin/v1/budgets')
@UseGuards(AdminGuard)
@Roles('admin')
export class BudgetsHttpController {
  constructor(@Inject(BudgetAdminService) private readonly budgets: BudgetAdminService) {}

  /** One page of budgets by id, in OpenAI's list shape; the next page is `?after=<last_id>`. */
  @Get()
  @Roles('admin', 'finance', 'project')
  async list(@Req() req: FastifyRequest, @Query() query: unknown) {
    const page = await this.budgets.list(adminOf(req), parseInput(budgetListQuery, query));
    const data = page.data.map(budgetView);
    return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
  }

  @Get(':id')
  @Roles('admin', 'finance', 'project')
  async get(@Req() req: FastifyRequest, @Param('id') id: string) {
    return budgetView(await this.budgets.get(adminOf(req), id));
  }

  @Post()
  @HttpCode(201)
  @Idempotent()
  async create(@Req() req: FastifyRequest) {
    const input = parseInput(budgetBody, req.body);
    const { alert_thresholds: alertThresholds, forecast_thresholds: forecastThresholds, ...rest } = input;
    return budgetView(await this.budgets.create(adminOf(req), { ...rest, alertThresholds, forecastThresholds }));
  }

  @Patch(':id')
  @Idempotent()
  async update(@Req() req: FastifyRequest, @Param('id') id: string) {
    const input = budgetPatchInput(req.body);
    return budgetView(
      await this.budgets.update(adminOf(req), id, { amount: input.amount, enforcement: input.enforcement, alertThresholds: input.alert_thresholds, forecastThresholds: input.forecast_thresholds }),
    );
  }

  @Delete(':id')
  async remove(@Req() req: FastifyRequest, @Param('id') id: string) {
    const { id: deleted } = await this.budgets.remove(adminOf(req), id);
    return { object: 'budget', id: deleted, deleted: true };
  }
}

/*
 * How a budget is shown: the admin API's snake_case names, money as decimal strings. This schema
 * also describes the responses in the OpenAPI document.
 */
const money = z.string().describe('A decimal amount in the budget currency, e.g. "12.5"');
/** Where the current period's spend is heading on its run rate so far (see docs/billing.md, Forecasts). */
export const budgetForecastSchema = z
  .strictObject({
    spend: money.describe("The spend projected to the period's end: spent + spent / elapsed × (period end − now), rounded up to millionths"),
    exceeds: z.boolean().describe('Whether the projection reaches the amount by the period end'),
    exceeds_at: z
      .string()
      .nullable()
      .describe('When the run rate reaches the amount (ISO instant, at the latest the period end); the time of this answer when the spend is there already; null when the projection stays under the amount'),
  })
  .nullable()
  .describe("The current period's spend projected to its end; null until budgets.forecast.minElapsedFraction of the period has passed (counted from the budget's creation when it was created during the period)");
export const budgetViewSchema = z.strictObject({
  object: z.literal('budget'),
  id: z.string(),
  source: z.enum(['config', 'api']).describe('config: declared in budgets.list (changed only there); api: created through this API'),
  scope: z.strictObject({ org: z.string(), team: z.string().nullable(), project: z.string().nullable(), key: z.string().nullable() }),
  period: z.enum(['daily', 'weekly', 'monthly']),
  timezone: z.string(),
  amount: money,
  currency: z.string(),
  enforcement: z.enum(['hard', 'soft']),
  alert_thresholds: z.array(z.number().int()),
  forecast_thresholds: z.array(z.number().int()).describe("Percentages of the amount the projected spend may reach before a forecast event is published (once per period each)"),
  current_period: z
    .strictObject({ key: z.string(), start: z.string(), end: z.string() })
    .describe('The period holding now, in the budget time zone: its key (2025-06, 2025-06-14, or the Monday of the week) and its bounds as ISO instants, end exclusive'),
  spent: money.describe('Settled spend of the current period, as the ledger enforcing the budget counts it (micro-units, each request rounded up)'),
  reserved: money.describe('Held by requests in flight (their worst-case cost), returned or settled when they end'),
  remaining: money.describe('amount − spent − reserved, never below 0: what new requests may still reserve'),
  forecast: budgetForecastSchema,
  created_at: z.string().nullable(),
  updated_at: z.string().nullable(),
});
export type BudgetView = z.infer<typeof budgetViewSchema>;

export function budgetView(status: BudgetStatus): BudgetView {
  const { budget, source, createdAt, updatedAt } = status.entry;
  const { spentMicros, reservedMicros } = status.state;
  const { window, line } = status.account;
  return {
    object: 'budget',
    id: budget.id,
    source,
    scope: { org: budget.scope.org, team: budget.scope.team ?? null, project: budget.scope.project ?? null, key: budget.scope.key ?? null },
    period: budget.period,
    timezone: budget.timezone,
    amount: new Money(budget.amount).toFixed(),
    currency: budget.currency,
    enforcement: budget.enforcement,
    alert_thresholds: budget.alertThresholds,
    forecast_thresholds: budget.forecastThresholds ?? [],
    current_period: { key: window.key, start: new Date(window.startMs).toISOString(), end: new Date(window.endMs).toISOString() },
    spent: fromMicros(spentMicros),
    reserved: fromMicros(reservedMicros),
    remaining: fromMicros(Math.max(0, line.limitMicros - spentMicros - reservedMicros)),
    forecast: forecastView(status.forecast),
    created_at: createdAt ?? null,
    updated_at: updatedAt ?? null,
  };
}

/** A forecast as the API shows it: null while the period is too young to project. */
export function forecastView(forecast: SpendForecast | undefined): z.infer<typeof budgetForecastSchema> {
  if (!forecast) return null;
  return { spend: forecast.projected, exceeds: forecast.exceeds, exceeds_at: forecast.exceedsAtMs === undefined ? null : new Date(forecast.exceedsAtMs).toISOString() };
}
