import type { BudgetConfig, GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { Coalesced } from '@openrouter/service-runtime';
import { BudgetBook } from './budget-book';
import { connectBudgetStore, type BudgetStore, type StoredBudget } from './budget-store';

/** Where a budget is defined: the configuration file, or the admin API (stored in Redis or memory). */
export type BudgetSource = 'config' | 'api';

export interface CatalogEntry {
  budget: BudgetConfig;
  source: BudgetSource;
  /** When an API budget was created and last changed (ISO instants); a configured one has neither. */
  createdAt?: string | undefined;
  updatedAt?: string | undefined;
}

/**
 * Every budget in force: the configured ones and those created through the admin API, one list
 * for everything that reads budgets — ingress's enforcement and admin API, billing's
 * reconciliation and its threshold events, alerting. The stored part is loaded at start, on every
 * change announced by the store, and whenever changes may have been missed (the store's connection
 * or its subscription came back). Configuration wins for the ids it declares.
 */
export class BudgetCatalog {
  private entries: readonly CatalogEntry[] = [];
  private byId = new Map<string, CatalogEntry>();
  private currentBook: BudgetBook;
  private readonly configuredIds: ReadonlySet<string>;
  /** A reload asked for while one runs gets the next one: the one running may have read before the change. */
  private readonly loads = new Coalesced(() => this.load());

  constructor(
    private readonly configured: readonly BudgetConfig[],
    private readonly store: BudgetStore | undefined,
    private readonly logger?: Logger,
  ) {
    this.configuredIds = new Set(configured.map((b) => b.id));
    this.currentBook = this.install([]);
    store?.onChange(() => void this.reload());
  }

  /** The configured budgets alone (no store: nothing can be added at run time). */
  static of(configured: readonly BudgetConfig[]): BudgetCatalog {
    return new BudgetCatalog(configured, undefined);
  }

  /** Loads the stored budgets, after waiting up to `readyWithinMs` for the store (they follow once it is reachable). */
  async start(readyWithinMs = 3_000): Promise<void> {
    if (!this.store) return;
    if (await this.store.ready(readyWithinMs)) await this.reload();
    else this.logger?.warn('the budget store is not reachable yet: budgets created through the admin API are loaded once it is');
  }

  /** The budgets in force, for enforcement: which apply to a request. Replaced, never changed, on each load. */
  get book(): BudgetBook {
    return this.currentBook;
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  /** Whether budgets can be created at run time (it has a store), so an empty catalog may not stay empty. */
  get canChange(): boolean {
    return this.store !== undefined;
  }

  /** Configured budgets first, in configuration order, then those created through the API by id. */
  list(): readonly CatalogEntry[] {
    return this.entries;
  }

  budgets(): readonly BudgetConfig[] {
    return this.currentBook.budgets;
  }

  entry(id: string): CatalogEntry | undefined {
    return this.byId.get(id);
  }

  /** Whether the configuration declares the id (such a budget is never changed through the API). */
  isConfigured(id: string): boolean {
    return this.configuredIds.has(id);
  }

  /** Reloads the stored budgets; true when it loaded. */
  reload(): Promise<boolean> {
    return this.loads.run();
  }

  async close(): Promise<void> {
    await this.loads.idle();
    await this.store?.close();
  }

  private async load(): Promise<boolean> {
    if (!this.store) return true;
    try {
      this.install(await this.store.list());
      return true;
    } catch (error) {
      this.logger?.warn({ err: error }, 'could not load the budgets created through the admin API');
      return false;
    }
  }

  private install(stored: readonly StoredBudget[]): BudgetBook {
    const entries: CatalogEntry[] = this.configured.map((budget) => ({ budget, source: 'config' }));
    const shadowed: string[] = [];
    for (const s of [...stored].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
      if (this.configuredIds.has(s.id)) {
        shadowed.push(s.id);
        continue;
      }
      const { createdAt, updatedAt, ...budget } = s;
      entries.push({ budget, source: 'api', createdAt, updatedAt });
    }
    // Created through the API before the configuration declared the same id: the configuration's applies.
    if (shadowed.length > 0) this.logger?.warn({ budgets: shadowed }, 'budgets created through the admin API have ids the configuration declares; the configured ones apply');
    this.entries = entries;
    this.byId = new Map(entries.map((e) => [e.budget.id, e]));
    this.currentBook = new BudgetBook(entries.map((e) => e.budget));
    return this.currentBook;
  }
}

/**
 * The budget catalog of a service that only reads budgets (billing, alerting): with
 * `access.redis.url`, the configured budgets and those stored in Redis, kept current over pub/sub;
 * without it, the configured ones (budgets created through the API then live in the embedded
 * ingress's memory, and nothing else needs them). Not yet loaded: call `start()` to wait for it.
 */
export function budgetCatalogFor(config: Pick<GatewayConfig, 'access' | 'budgets'>, logger: Logger): BudgetCatalog {
  const { url, keyPrefix } = config.access.redis;
  return new BudgetCatalog(config.budgets.list, url ? connectBudgetStore(config.access.redis, keyPrefix) : undefined, logger);
}
