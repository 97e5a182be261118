import type { BudgetConfig, GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { Coalesced } from '@openrouter/service-runtime';
import { BudgetBook, type Budget } from './budget-book';
import { connectBudgetStore, type BudgetStore, type StoredBudget } from './budget-store';

/** Where a budget is defined: the configuration file, or the admin API (stored in Redis or memory). */
export type BudgetSource = 'config' | 'api';

export interface CatalogEntry {
  /** An API budget's carries its creation (`creation`), which names its ledger account. */
  budget: Budget;
  source: BudgetSource;
  /** When an API budget was created and last changed (ISO instants); a configured one has neither. */
  createdAt?: string | undefined;
  updatedAt?: string | undefined;
}

/** How often a catalog compares the store's version with the one it loaded, by default. */
export const BUDGET_CHECK_INTERVAL_MS = 30_000;

export interface BudgetCatalogOptions {
  /**
   * How often the store's version is compared with the one loaded, and the budgets reloaded when
   * it moved (or when they never loaded): the bound on how long a lost announcement, or a
   * subscriber whose connection is half-open, leaves this replica on an old list.
   */
  checkEveryMs?: number;
}

/**
 * Every budget in force: the configured ones and those created through the admin API, one list
 * for everything that reads budgets — ingress's enforcement and admin API, billing's
 * reconciliation and its threshold events, alerting. The stored part is loaded at start, on every
 * change announced by the store, whenever changes may have been missed (the store's connection
 * or its subscription came back), and when the store's version, compared every
 * {@link BUDGET_CHECK_INTERVAL_MS}, is not the one it loaded. Configuration wins for the ids it declares.
 */
export class BudgetCatalog {
  private entries: readonly CatalogEntry[] = [];
  private byId = new Map<string, CatalogEntry>();
  private currentBook: BudgetBook;
  private readonly configuredIds: ReadonlySet<string>;
  /** A reload asked for while one runs gets the next one: the one running may have read before the change. */
  private readonly loads = new Coalesced(() => this.load());
  /** The store's version read just before the list in force was (undefined: never loaded). */
  private loadedVersion: string | undefined;
  private checker: NodeJS.Timeout | undefined;
  private checking = false;
  private closed = false;

  constructor(
    private readonly configured: readonly BudgetConfig[],
    private readonly store: BudgetStore | undefined,
    private readonly logger?: Logger,
    private readonly options: BudgetCatalogOptions = {},
  ) {
    this.configuredIds = new Set(configured.map((b) => b.id));
    this.currentBook = this.install([]);
    store?.onChange(() => void this.reload());
  }

  /** The configured budgets alone (no store: nothing can be added at run time). */
  static of(configured: readonly BudgetConfig[]): BudgetCatalog {
    return new BudgetCatalog(configured, undefined);
  }

  /**
   * Loads the stored budgets, after waiting up to `readyWithinMs` for the store (they follow once it
   * is reachable), and starts comparing the store's version periodically. Resolves to whether they
   * loaded: until they have (`loaded`), the budgets created through the API are not known here.
   */
  async start(readyWithinMs = 3_000): Promise<boolean> {
    if (!this.store) return true;
    this.watch();
    if ((await this.store.ready(readyWithinMs)) && (await this.reload())) return true;
    this.logger?.warn('the budget store is not reachable yet: budgets created through the admin API are loaded once it is');
    return this.loaded;
  }

  /**
   * Whether the stored budgets have loaded at least once (always, without a store). Until then the
   * catalog holds the configured budgets alone, and a budget created through the API is not enforced.
   */
  get loaded(): boolean {
    return !this.store || this.loadedVersion !== undefined;
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

  budgets(): readonly Budget[] {
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
    this.closed = true;
    clearInterval(this.checker);
    await this.loads.idle();
    await this.store?.close();
  }

  /** Compares the store's version every `checkEveryMs`; a timer that never keeps the process alive. */
  private watch(): void {
    if (this.checker || this.closed) return;
    this.checker = setInterval(() => void this.check(), this.options.checkEveryMs ?? BUDGET_CHECK_INTERVAL_MS);
    this.checker.unref();
  }

  /** Reloads when the store's version moved since the list in force was read, or nothing loaded yet. */
  private async check(): Promise<void> {
    if (!this.store || this.checking) return;
    this.checking = true;
    try {
      const version = this.loaded ? await this.store.version() : undefined;
      if (version === undefined || version !== this.loadedVersion) {
        if ((await this.reload()) && version !== undefined) this.logger?.info({ version }, 'budgets changed without this replica hearing of it: reloaded');
      }
    } catch {
      // The store is away: its next reconnection reloads, or the next check.
    } finally {
      this.checking = false;
    }
  }

  private async load(): Promise<boolean> {
    if (!this.store) return true;
    try {
      // The version first: a change written after it is read moves it, and the next check reloads.
      const version = await this.store.version();
      this.install(await this.store.list());
      this.loadedVersion = version;
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
      entries.push(catalogEntryOf(s));
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
 * A stored budget as the catalog holds it: its budget carries its creation (when, and the
 * creation's id), which names its ledger account and where reconciliation starts counting.
 */
export function catalogEntryOf(stored: StoredBudget): CatalogEntry {
  const { createdAt, updatedAt, creationId, ...fields } = stored;
  const atMs = Date.parse(createdAt);
  // A creation time that cannot be read counts from the period's start, as before creations were kept.
  const budget: Budget = { ...fields, creation: { atMs: Number.isFinite(atMs) ? atMs : 0, ...(creationId !== undefined && { id: creationId }) } };
  return { budget, source: 'api', createdAt, updatedAt };
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
