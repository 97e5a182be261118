import { randomBytes } from 'node:crypto';
import { alertThresholdsSchema, budgetCurrencyIssues, budgetScopeIssue, DEV_KEY_ID, type BudgetConfig, type GatewayConfig, type OrgConfig } from '@openrouter/config';
import { catalogEntryOf, type AccountState, type BudgetAccount, type BudgetAudit, type BudgetStore, type CatalogEntry, type SpendForecast, type StoredBudget } from '@openrouter/budgets';
import { GatewayError } from '@openrouter/errors';
import type { Logger } from '@openrouter/observability';
import { Reannouncer } from '@openrouter/service-runtime';
import { auditEntryOf, type AccessService, type Actor } from '../access/access.service';
import { inScope, requireFilterInScope, requireInScope } from '../access/admin-scope';
import type { BudgetService } from './budget.service';

/** A budget with its current period, where it stands in the ledger, and where its spend is heading. */
export interface BudgetStatus {
  entry: CatalogEntry;
  account: BudgetAccount;
  state: AccountState;
  /** The spend projected to the period's end; undefined until enough of the period has passed. */
  forecast?: SpendForecast | undefined;
}

/** Budget lists filter on the scope's fields (each equal) and on where the budget is defined. */
export interface BudgetListFilter {
  org?: string | undefined;
  team?: string | undefined;
  project?: string | undefined;
  key?: string | undefined;
  source?: 'config' | 'api' | undefined;
}

/** What a change may touch: the amount, the enforcement and the alert and forecast thresholds — never what keys the spend. */
export interface BudgetPatch {
  amount?: string | undefined;
  enforcement?: BudgetConfig['enforcement'] | undefined;
  alertThresholds?: number[] | undefined;
  forecastThresholds?: number[] | undefined;
}

/**
 * Where a budget's scope is checked when it is created: the tenants (configured and added at run
 * time) and the keys issued at run time — the access service.
 */
export type BudgetScopeDirectory = Pick<AccessService, 'tenants' | 'getKey' | 'reloadTenants'>;

/** The development key's id and org (`ingress.devKey`): a bare tenant no other key may name. */
const DEV_KEY = { id: DEV_KEY_ID, org: 'default' };

/** After a stored change could not be announced, when to announce it again (ms after each failure). */
export const REANNOUNCE_DELAYS_MS: readonly number[] = [1_000, 5_000, 15_000];

/**
 * The admin side of budgets: where each stands (read from the ledger enforcement uses), and the
 * budgets created, changed and deleted at run time — stored (Redis, or memory in the embedded mode
 * without it) and announced to every replica, each change with its audit entry in the same write.
 * Configured budgets are shown but only changed in the configuration. A key scoped to an org (and
 * a project) sees and changes only budgets whose scope lies inside its own.
 */
export class BudgetAdminService {
  /** A background announcement is pending (one at a time: an announcement says only "reload"). */
  /** Sends a budget change's announcement again after it failed. */
  private readonly reannouncer: Reannouncer;
  private closed = false;
  private directory: BudgetScopeDirectory | undefined;

  constructor(
    private readonly budgets: BudgetService,
    private readonly store: BudgetStore,
    /**
     * The priced models (a budget must be in the currency of every price), `budgets.maxPerOrg`, and
     * the keys of the configuration and the development key (a budget may name them in its scope).
     */
    private readonly config: Pick<GatewayConfig, 'models'> & {
      budgets: Pick<GatewayConfig['budgets'], 'maxPerOrg'>;
      access: Pick<GatewayConfig['access'], 'keys'>;
      ingress: Pick<GatewayConfig['ingress'], 'devKey'>;
    },
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
    reannounceDelaysMs: readonly number[] = REANNOUNCE_DELAYS_MS,
  ) {
    this.reannouncer = new Reannouncer(() => this.store.publish(), 'budget', reannounceDelaysMs, logger);
  }

  private get catalog() {
    return this.budgets.catalog;
  }

  /**
   * Gives the tenants and keys a created budget's scope is checked against (the access service,
   * which is built beside this service and handed to it where the HTTP module is put together).
   */
  checkScopesIn(directory: BudgetScopeDirectory): void {
    this.directory = directory;
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
    const [status] = await this.statusOf([await this.visible(actor, id)]);
    if (!status) throw budgetNotFound(id);
    return status;
  }

  /**
   * Creates a budget. A project-scoped key creates budgets of its own project (naming none means
   * it); an org-scoped key of its org. The id must be new among configured and created budgets
   * (one namespace for every org: a taken id is refused alike wherever it is taken), and the org
   * may hold at most `budgets.maxPerOrg` created budgets. Its creation gets an id of its own, which
   * names its ledger account: it starts from nothing even under the id of a deleted budget. Its
   * scope must name tenants and a key that exist and lie inside one another, or it would never
   * apply to a request.
   */
  async create(actor: Actor, input: BudgetConfig): Promise<BudgetStatus> {
    const budget: BudgetConfig = actor.project !== undefined && input.scope.project === undefined ? { ...input, scope: { ...input.scope, project: actor.project } } : input;
    requireInScope(actor, budget.scope.org, budget.scope.project ?? '');
    await this.requireReachable(actor, budget.scope);
    const [currency] = budgetCurrencyIssues([budget], this.config.models);
    if (currency) throw new GatewayError('bad_request', `Invalid currency: ${currency.message}.`, { param: 'currency', code: 'invalid_value' });
    if (this.catalog.isConfigured(budget.id) || this.catalog.entry(budget.id)) throw budgetIdTaken(budget.id);
    await this.requireRoomFor(budget.scope.org);
    const at = new Date(this.clock()).toISOString();
    const creationId = randomBytes(8).toString('hex');
    const entry = auditEntryOf(actor, 'budget.create', budget.id, { ...concerned(budget), amount: budget.amount, currency: budget.currency, period: budget.period, enforcement: budget.enforcement });
    const written = await this.store.update(
      budget.id,
      (stored) => {
        // Created meanwhile on another replica.
        if (stored) throw budgetIdTaken(budget.id);
        return { ...budget, createdAt: at, updatedAt: at, creationId };
      },
      entry,
    );
    return this.changed(entry, written);
  }

  /**
   * Refuses a scope no request can match (budgets apply when every field of their scope equals the
   * request's): an org nothing declares and no key names, a team not in it, a project not in that
   * team (or in none of the org's), a key that does not exist or sits elsewhere than the scope says.
   */
  private async requireReachable(actor: Actor, scope: BudgetConfig['scope']): Promise<void> {
    const directory = this.directory;
    if (!directory) throw new GatewayError('internal', 'Budget scopes cannot be checked: no tenant directory was given to the budget admin service.');
    const tenantIssue = (): { org: OrgConfig | undefined; issue: ReturnType<typeof budgetScopeIssue> } => {
      const org = directory.tenants.org(scope.org);
      if (!org && !this.bareOrgs().has(scope.org)) return { org, issue: { field: 'org', message: `the organisation "${scope.org}" does not exist` } };
      return { org, issue: budgetScopeIssue(scope, org) };
    };
    let { org, issue } = tenantIssue();
    // A tenant added a moment ago on another replica may not be announced here yet: look again after a reload.
    if (issue && (await directory.reloadTenants())) ({ org, issue } = tenantIssue());
    if (issue) throw invalidScope(issue.field, issue.message);
    if (scope.key === undefined) return;
    const key = await this.keyOf(directory, actor, scope.key);
    if (!key) throw invalidScope('key', `the key "${scope.key}" does not exist`);
    // A key that can no longer make requests would leave the budget never applied.
    if (key.ended) throw invalidScope('key', `the key "${scope.key}" ${key.ended}: no request can come from it, so the budget would never apply`);
    // A key's team is where its project sits when the key names only the project (as requests place it).
    const team = key.team || org?.teams.find((t) => t.projects.some((p) => p.id === key.project))?.id || '';
    const elsewhere = key.org !== scope.org ? `the organisation "${key.org}"` : scope.team !== undefined && team !== scope.team ? `the team "${team}"` : scope.project !== undefined && key.project !== scope.project ? `the project "${key.project}"` : undefined;
    if (elsewhere) throw invalidScope('key', `the key "${scope.key}" belongs to ${elsewhere}, outside the budget's scope: the budget would never apply`);
  }

  /** Orgs declared nowhere that requests still come from: those the configured keys (and the development key) name. */
  private bareOrgs(): Set<string> {
    const orgs = new Set(this.config.access.keys.map((k) => k.org));
    if (this.config.ingress.devKey !== 'disabled') orgs.add(DEV_KEY.org);
    return orgs;
  }

  /** Where a key sits: a configured one, the development key, or one issued at run time (undefined: none such the actor may see). */
  private async keyOf(directory: BudgetScopeDirectory, actor: Actor, id: string): Promise<{ org: string; team: string; project: string; ended?: string } | undefined> {
    // A configured key (or the development key) outside the actor's scope is answered as missing,
    // as an issued one is: naming where it sits would tell a scoped key about other tenants.
    const configured = this.config.access.keys.find((k) => k.id === id);
    if (configured) return inScope(actor, configured.org, configured.project ?? '') ? { org: configured.org, team: configured.team ?? '', project: configured.project ?? '' } : undefined;
    if (id === DEV_KEY.id && this.config.ingress.devKey !== 'disabled') return inScope(actor, DEV_KEY.org, '') ? { org: DEV_KEY.org, team: '', project: '' } : undefined;
    try {
      const issued = await directory.getKey(actor, id);
      const ended = issued.revokedAt !== undefined ? 'is revoked' : issued.expiresAt !== undefined && Date.parse(issued.expiresAt) <= Date.now() ? 'has expired' : undefined;
      return { org: issued.orgId, team: issued.teamId, project: issued.projectId, ...(ended && { ended }) };
    } catch (error) {
      if (error instanceof GatewayError && error.kind === 'not_found') return undefined;
      throw error;
    }
  }

  /**
   * Refuses a create past `budgets.maxPerOrg`, counted over what is stored now (not this replica's
   * catalog, which may lag). Two creates racing on different replicas may each pass at the limit
   * minus one: the limit bounds what an org's budgets cost its requests, not an exact count.
   */
  private async requireRoomFor(org: string): Promise<void> {
    const max = this.config.budgets.maxPerOrg;
    const held = (await this.store.list()).filter((b) => b.scope.org === org).length;
    if (held >= max) {
      throw new GatewayError('bad_request', `The org "${org}" already has ${held} budgets created through the admin API, and budgets.maxPerOrg allows ${max}: delete one first, or declare the budget in the configuration file.`, {
        param: 'scope.org',
        code: 'budget_limit_reached',
      });
    }
  }

  /**
   * Changes a created budget's amount, enforcement or alert or forecast thresholds; they apply from the next request.
   * Only the budget the actor was allowed to change: the scope check reads this replica's catalog,
   * so the write requires the stored budget to be that same one (its scope and creation), and its
   * audit entry says what the stored budget held before.
   */
  async update(actor: Actor, id: string, change: BudgetPatch): Promise<BudgetStatus> {
    const current = await this.writable(actor, id);
    // Kept as the configuration keeps them: sorted, each once.
    const patch = {
      ...change,
      alertThresholds: change.alertThresholds && alertThresholdsSchema.parse(change.alertThresholds),
      forecastThresholds: change.forecastThresholds && alertThresholdsSchema.parse(change.forecastThresholds),
    };
    if (patch.amount === undefined && patch.enforcement === undefined && patch.alertThresholds === undefined && patch.forecastThresholds === undefined) {
      throw new GatewayError('bad_request', 'Nothing to change: send amount, enforcement, alert_thresholds or forecast_thresholds.', { code: 'invalid_value' });
    }
    let entry: BudgetAudit = {};
    const written = await this.store.update(
      id,
      (stored) => {
        const was = requireSame(stored, current, id);
        const next: StoredBudget = { ...was, updatedAt: new Date(this.clock()).toISOString() };
        if (patch.amount !== undefined) next.amount = patch.amount;
        if (patch.enforcement !== undefined) next.enforcement = patch.enforcement;
        if (patch.alertThresholds !== undefined) next.alertThresholds = patch.alertThresholds;
        if (patch.forecastThresholds !== undefined) next.forecastThresholds = patch.forecastThresholds;
        return next;
      },
      (stored) => {
        const was = requireSame(stored, current, id);
        const changes: Record<string, { from: unknown; to: unknown }> = {};
        if (patch.amount !== undefined) changes['amount'] = { from: was.amount, to: patch.amount };
        if (patch.enforcement !== undefined) changes['enforcement'] = { from: was.enforcement, to: patch.enforcement };
        if (patch.alertThresholds !== undefined) changes['alert_thresholds'] = { from: was.alertThresholds, to: patch.alertThresholds };
        if (patch.forecastThresholds !== undefined) changes['forecast_thresholds'] = { from: was.forecastThresholds, to: patch.forecastThresholds };
        entry = auditEntryOf(actor, 'budget.update', id, { ...concerned(was), changes });
        return entry;
      },
    );
    return this.changed(entry, written);
  }

  /**
   * Deletes a created budget (the one the actor was allowed to, as `update` requires): requests
   * stop being counted against it at once. Its period's spend stays in the ledger until the
   * counters expire, under that creation's account: a budget created again with the same id is
   * another budget and starts from nothing.
   */
  async remove(actor: Actor, id: string): Promise<{ id: string }> {
    const current = await this.writable(actor, id);
    let entry: BudgetAudit = {};
    await this.store.update(
      id,
      (stored) => {
        requireSame(stored, current, id);
        return undefined;
      },
      (stored) => {
        const was = requireSame(stored, current, id);
        entry = auditEntryOf(actor, 'budget.delete', id, { ...concerned(was), amount: was.amount });
        return entry;
      },
    );
    await this.announce(entry);
    return { id };
  }

  /**
   * After a write, which stands whatever follows: this replica's catalog first (its next request
   * sees the change), then every other replica's. An announcement that fails (Redis dropped the
   * connection just after the write) does not make the change fail: it is sent again in the
   * background, and every replica finds the change by the store's version within its check
   * interval anyway. A reload that fails here is done again on reconnection or at the next check.
   */
  private async announce(entry: BudgetAudit): Promise<void> {
    this.logger.info({ audit: entry }, 'admin change');
    await this.catalog.reload();
    try {
      await this.store.publish();
    } catch (error) {
      this.logger.warn({ err: error, target: entry['target'] }, 'a budget change was stored but could not be announced to the other replicas: announcing it again in the background');
      this.reannouncer.start();
    }
  }

  /** Stops announcing again (the process is closing: the other replicas' version checks catch up). */
  close(): void {
    this.closed = true;
    this.reannouncer.close();
  }

  /**
   * A budget as written: what the write stored, where it stands in the ledger. Not read back from
   * the catalog, whose reload may have failed (the change is stored all the same) or may already
   * show a later change from another replica.
   */
  private async changed(entry: BudgetAudit, written: StoredBudget | undefined): Promise<BudgetStatus> {
    if (!written) throw new GatewayError('internal', 'The budget store returned nothing for a budget it wrote.');
    await this.announce(entry);
    const [status] = await this.statusOf([catalogEntryOf(written)]);
    if (!status) throw budgetNotFound(written.id);
    return status;
  }

  /**
   * A budget the actor may see; another scope's is answered like a missing one. An id this
   * replica's catalog does not hold reloads it once before the 404: a budget created a moment ago
   * on another replica may not be announced here yet (pub/sub is not instant), and a client that
   * reads a 404 as "gone" would create it again.
   */
  private async visible(actor: Actor, id: string): Promise<CatalogEntry> {
    if (!this.catalog.entry(id) && !(await this.catalog.reload())) {
      throw new GatewayError('unavailable', `The budget "${id}" is not loaded on this replica and the budget store cannot be read right now. Please retry.`, { code: 'budget_store_unavailable' });
    }
    const entry = this.catalog.entry(id);
    if (!entry || !visibleTo(actor, entry.budget)) throw budgetNotFound(id);
    return entry;
  }

  /** A budget the actor may change: visible, and created through the API. */
  private async writable(actor: Actor, id: string): Promise<CatalogEntry> {
    const entry = await this.visible(actor, id);
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
      return standing ? [{ entry, account: standing.account, state: standing.state, forecast: standing.forecast }] : [];
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

/**
 * The stored budget, when it is the one the actor's scope was checked against (this replica's
 * catalog): same scope, same creation. Another — deleted and created again elsewhere, or changed
 * by a replica this one has not heard from — is answered as missing, like any budget out of scope.
 */
function requireSame(stored: StoredBudget | undefined, checked: CatalogEntry, id: string): StoredBudget {
  if (!stored || stored.createdAt !== checked.createdAt || stored.creationId !== checked.budget.creation?.id || !sameScope(stored.scope, checked.budget.scope)) throw budgetNotFound(id);
  return stored;
}

function sameScope(a: BudgetConfig['scope'], b: BudgetConfig['scope']): boolean {
  return a.org === b.org && a.team === b.team && a.project === b.project && a.key === b.key;
}

function invalidScope(field: 'org' | 'team' | 'project' | 'key', message: string): GatewayError {
  return new GatewayError('bad_request', `Invalid scope.${field}: ${message}.`, { param: `scope.${field}`, code: 'invalid_value' });
}

function budgetNotFound(id: string): GatewayError {
  return new GatewayError('not_found', `No budget has the id "${id}".`, { param: 'id', code: 'not_found' });
}

/**
 * Budget ids are one namespace, for the configuration and every org (they name the budget in
 * threshold events, alerts, the audit log and these paths): a taken id gets this one answer,
 * whoever holds it, naming no scope. That the id is taken is all it tells — the budget holding it
 * stays invisible out of scope, and its spend is counted under its own creation.
 */
function budgetIdTaken(id: string): GatewayError {
  return new GatewayError('conflict', `The budget id "${id}" is taken: budget ids are unique across the configuration and every org. Choose another (an id that starts with your org's avoids clashes).`, {
    param: 'id',
    code: 'already_exists',
  });
}
