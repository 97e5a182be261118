import { alertThresholdsSchema, budgetCurrencyIssues, type BudgetConfig, type GatewayConfig } from '@openrouter/config';
import type { AccountState, BudgetAccount, BudgetStore, CatalogEntry, StoredBudget } from '@openrouter/budgets';
import { GatewayError } from '@openrouter/errors';
import type { Logger } from '@openrouter/observability';
import { auditEntryOf, type Actor } from '../access/access.service';
import { inScope, requireFilterInScope, requireInScope } from '../access/admin-scope';
import type { BudgetService } from './budget.service';

/** A budget with its current period and where it stands in the ledger. */
export interface BudgetStatus {
  entry: CatalogEntry;
  account: BudgetAccount;
  state: AccountState;
}

/** Budget lists filter on the scope's fields (each equal) and on where the budget is defined. */
export interface BudgetListFilter {
  org?: string | undefined;
  team?: string | undefined;
  project?: string | undefined;
  key?: string | undefined;
  source?: 'config' | 'api' | undefined;
}

/** What a change may touch: the amount, the enforcement and the alert thresholds — never what keys the spend. */
export interface BudgetPatch {
  amount?: string | undefined;
  enforcement?: BudgetConfig['enforcement'] | undefined;
  alertThresholds?: number[] | undefined;
}

/**
 * The admin side of budgets: where each stands (read from the ledger enforcement uses), and the
 * budgets created, changed and deleted at run time — stored (Redis, or memory in the embedded mode
 * without it) and announced to every replica, each change with its audit entry in the same write.
 * Configured budgets are shown but only changed in the configuration. A key scoped to an org (and
 * a project) sees and changes only budgets whose scope lies inside its own.
 */
export class BudgetAdminService {
  constructor(
    private readonly budgets: BudgetService,
    private readonly store: BudgetStore,
    /** The priced models: a budget must be in the currency of every price. */
    private readonly models: GatewayConfig['models'],
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  private get catalog() {
    return this.budgets.catalog;
  }

  /**
   * One page of the budgets the actor may see, by id: `limit` after the id `after` (the previous
   * page's last), with where each stands. The actor's scope narrows the filter.
   */
  async list(actor: Actor, query: BudgetListFilter & { limit: number; after?: string | undefined }): Promise<{ data: BudgetStatus[]; hasMore: boolean }> {
    requireFilterInScope(actor, query);
    const after = query.after;
    const matching = this.catalog
      .list()
      .filter((e) => visibleTo(actor, e.budget) && matches(e, query) && (after === undefined || e.budget.id > after))
      .sort((a, b) => (a.budget.id < b.budget.id ? -1 : 1));
    const page = matching.slice(0, query.limit);
    return { data: await this.statusOf(page), hasMore: matching.length > page.length };
  }

  async get(actor: Actor, id: string): Promise<BudgetStatus> {
    const [status] = await this.statusOf([this.visible(actor, id)]);
    if (!status) throw budgetNotFound(id);
    return status;
  }

  /**
   * Creates a budget. A project-scoped key creates budgets of its own project (naming none means
   * it); an org-scoped key of its org. The id must be new among configured and created budgets.
   */
  async create(actor: Actor, input: BudgetConfig): Promise<BudgetStatus> {
    const budget: BudgetConfig = actor.project !== undefined && input.scope.project === undefined ? { ...input, scope: { ...input.scope, project: actor.project } } : input;
    requireInScope(actor, budget.scope.org, budget.scope.project ?? '');
    const [currency] = budgetCurrencyIssues([budget], this.models);
    if (currency) throw new GatewayError('bad_request', `Invalid currency: ${currency.message}.`, { param: 'currency', code: 'invalid_value' });
    if (this.catalog.isConfigured(budget.id) || this.catalog.entry(budget.id)) throw budgetExists(budget.id);
    const at = new Date(this.clock()).toISOString();
    const entry = auditEntryOf(actor, 'budget.create', budget.id, { ...concerned(budget), amount: budget.amount, currency: budget.currency, period: budget.period, enforcement: budget.enforcement });
    await this.store.update(
      budget.id,
      (stored) => {
        // Created meanwhile on another replica.
        if (stored) throw budgetExists(budget.id);
        return { ...budget, createdAt: at, updatedAt: at };
      },
      entry,
    );
    return this.changed(entry, budget.id);
  }

  /** Changes a created budget's amount, enforcement or thresholds; they apply from the next request. */
  async update(actor: Actor, id: string, change: BudgetPatch): Promise<BudgetStatus> {
    const current = this.writable(actor, id);
    // Kept as the configuration keeps them: sorted, each once.
    const patch = { ...change, alertThresholds: change.alertThresholds && alertThresholdsSchema.parse(change.alertThresholds) };
    const changes: Record<string, { from: unknown; to: unknown }> = {};
    if (patch.amount !== undefined) changes['amount'] = { from: current.budget.amount, to: patch.amount };
    if (patch.enforcement !== undefined) changes['enforcement'] = { from: current.budget.enforcement, to: patch.enforcement };
    if (patch.alertThresholds !== undefined) changes['alert_thresholds'] = { from: current.budget.alertThresholds, to: patch.alertThresholds };
    if (Object.keys(changes).length === 0) throw new GatewayError('bad_request', 'Nothing to change: send amount, enforcement or alert_thresholds.', { code: 'invalid_value' });
    const entry = auditEntryOf(actor, 'budget.update', id, { ...concerned(current.budget), changes });
    await this.store.update(
      id,
      (stored) => {
        if (!stored) throw budgetNotFound(id);
        const next: StoredBudget = { ...stored, updatedAt: new Date(this.clock()).toISOString() };
        if (patch.amount !== undefined) next.amount = patch.amount;
        if (patch.enforcement !== undefined) next.enforcement = patch.enforcement;
        if (patch.alertThresholds !== undefined) next.alertThresholds = patch.alertThresholds;
        return next;
      },
      entry,
    );
    return this.changed(entry, id);
  }

  /**
   * Deletes a created budget: requests stop being counted against it at once. Its period's spend
   * stays in the ledger until the counters expire, so a budget created again with the same id in
   * the same period continues from it (deleting and creating it again does not reset a cap).
   */
  async remove(actor: Actor, id: string): Promise<{ id: string }> {
    const current = this.writable(actor, id);
    const entry = auditEntryOf(actor, 'budget.delete', id, { ...concerned(current.budget), amount: current.budget.amount });
    await this.store.update(
      id,
      (stored) => {
        if (!stored) throw budgetNotFound(id);
        return undefined;
      },
      entry,
    );
    await this.announce(entry);
    return { id };
  }

  /** After a write: this replica's catalog first (its next request and the answer see the change), then every other replica's. */
  private async announce(entry: Record<string, unknown>): Promise<void> {
    this.logger.info({ audit: entry }, 'admin change');
    await this.catalog.reload();
    await this.store.publish();
  }

  /** A budget as it stands after a write of it. */
  private async changed(entry: Record<string, unknown>, id: string): Promise<BudgetStatus> {
    await this.announce(entry);
    const found = this.catalog.entry(id);
    // Deleted again by another replica in the meantime.
    if (!found) throw budgetNotFound(id);
    const [status] = await this.statusOf([found]);
    if (!status) throw budgetNotFound(id);
    return status;
  }

  /** A budget the actor may see; another scope's is answered like a missing one. */
  private visible(actor: Actor, id: string): CatalogEntry {
    const entry = this.catalog.entry(id);
    if (!entry || !visibleTo(actor, entry.budget)) throw budgetNotFound(id);
    return entry;
  }

  /** A budget the actor may change: visible, and created through the API. */
  private writable(actor: Actor, id: string): CatalogEntry {
    const entry = this.visible(actor, id);
    if (entry.source === 'config') {
      throw new GatewayError('permission_denied', `The budget "${id}" is defined in the configuration file (budgets.list): change or remove it there, not through the admin API.`, {
        code: 'budget_in_configuration',
      });
    }
    return entry;
  }

  private async statusOf(entries: readonly CatalogEntry[]): Promise<BudgetStatus[]> {
    const standings = await this.budgets.standing(entries.map((e) => e.budget));
    return entries.flatMap((entry, i) => {
      const standing = standings[i];
      return standing ? [{ entry, account: standing.account, state: standing.state }] : [];
    });
  }
}

/**
 * A budget lies inside an admin key's scope when its own scope does: an org key sees its org's
 * budgets, a project key only those of its project (not the org's or a team's, which count more
 * than its project).
 */
export function visibleTo(actor: Actor, budget: BudgetConfig): boolean {
  return inScope(actor, budget.scope.org, budget.scope.project ?? '');
}

function matches(entry: CatalogEntry, filter: BudgetListFilter): boolean {
  const scope = entry.budget.scope;
  return (
    (filter.org === undefined || scope.org === filter.org) &&
    (filter.team === undefined || scope.team === filter.team) &&
    (filter.project === undefined || scope.project === filter.project) &&
    (filter.key === undefined || scope.key === filter.key) &&
    (filter.source === undefined || entry.source === filter.source)
  );
}

/** The tenant a budget concerns, as audit entries name it (a scoped key sees the entries of its own). */
function concerned(budget: BudgetConfig): Record<string, string> {
  const { org, team, project, key } = budget.scope;
  return { org, ...(team !== undefined && { team }), ...(project !== undefined && { project }), ...(key !== undefined && { key }) };
}

function budgetNotFound(id: string): GatewayError {
  return new GatewayError('not_found', `No budget has the id "${id}".`, { param: 'id' });
}

function budgetExists(id: string): GatewayError {
  return new GatewayError('bad_request', `The budget "${id}" already exists (budget ids are unique across the configuration and the admin API).`, { param: 'id', code: 'already_exists' });
}
