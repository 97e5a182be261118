import { createLogger } from '@openrouter/observability';
import { ingressTestConfig } from '../test-config.testing';
import type { AccessRepository, AuditAction, AuditEntry } from './access.repository';
import { AccessService, AUDIT_SCAN, type Actor, type AuditPage, type AuditQuery } from './access.service';
import { MemoryCounterStore } from './counter.store';

/**
 * The audit log's cases, run against each store: the memory one (a unit spec) and Redis (an
 * integration spec), through the access service's paging and filters.
 */
export interface AuditLogHarness {
  repository: AccessRepository;
  /** Appends entries as the gateway does (each with the next id), in this order. */
  append(entries: AuditEntry[]): Promise<void>;
}

const config = ingressTestConfig({ access: { keyHashSecret: 'audit-log-cases-secret' } });
const logger = createLogger('audit-log-cases', 'silent');
const admin: Actor = { id: 'ops', role: 'admin' };
const START = Date.UTC(2025, 5, 1);

/** The i-th entry of a log: a minute after the one before, on acme/search unless told otherwise. */
export function auditEntry(i: number, change: Partial<AuditEntry> & { action?: AuditAction } = {}): AuditEntry {
  return { at: new Date(START + i * 60_000).toISOString(), actor: 'ops', action: 'key.issue', target: `t${i}`, details: { org: 'acme', project: 'search', role: 'admin' }, ...change };
}

/** Every page of a query, following `after` (or `before`, newer) from each page's edge; `between` runs before each next page. */
async function walk(access: AccessService, actor: Actor, query: AuditQuery, between: (page: number) => Promise<void> = async () => undefined): Promise<AuditPage[]> {
  const pages: AuditPage[] = [];
  const newer = query.before !== undefined;
  for (let page = await access.auditPage(actor, query); ; ) {
    pages.push(page);
    if (!page.hasMore) return pages;
    expect(pages.length).toBeLessThan(200);
    await between(pages.length);
    page = await access.auditPage(actor, newer ? { ...query, before: page.firstId } : { ...query, after: page.lastId });
  }
}

const targets = (pages: AuditPage[]): string[] => pages.flatMap((p) => p.data.map((e) => e.target));

export function describeAuditLog(store: string, make: () => Promise<AuditLogHarness>): void {
  describe(`the audit log (${store})`, () => {
    let harness: AuditLogHarness;
    let access: AccessService;
    /** Entries the store read for the access service since the count was last reset. */
    let examined = 0;

    beforeEach(async () => {
      examined = 0;
      harness = await make();
      const repository = harness.repository;
      const counting = new Proxy(repository, {
        get(target, property) {
          if (property === 'readAudit') {
            return async (...args: Parameters<AccessRepository['readAudit']>) => {
              const batch = await target.readAudit(...args);
              examined += batch.examined;
              return batch;
            };
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      access = new AccessService(config, counting, new MemoryCounterStore(), logger, undefined);
    });
    afterEach(async () => access.close());

    it('numbers entries 1, 2, 3… in the order they were appended, and answers them newest first', async () => {
      expect(await access.auditPage(admin, { limit: 10 })).toEqual({ data: [], firstId: undefined, lastId: undefined, hasMore: false });
      await harness.append([auditEntry(0), auditEntry(1), auditEntry(2)]);
      const page = await access.auditPage(admin, { limit: 10 });
      expect(page.data.map((e) => [e.id, e.target])).toEqual([[3, 't2'], [2, 't1'], [1, 't0']]);
      expect(page.data[0]).toEqual({ id: 3, ...auditEntry(2) });
      expect(page).toMatchObject({ firstId: 3, lastId: 1, hasMore: false });
      expect((await access.listAudit(admin, 2)).map((e) => e.id)).toEqual([3, 2]);
      // Past either end: nothing more.
      await expect(access.auditPage(admin, { limit: 10, after: 1 })).resolves.toMatchObject({ data: [], hasMore: false });
      await expect(access.auditPage(admin, { limit: 10, before: 3 })).resolves.toMatchObject({ data: [], hasMore: false });
      await expect(access.auditPage(admin, { limit: 10, after: 1_000 })).resolves.toMatchObject({ data: [{ id: 3 }, { id: 2 }, { id: 1 }], hasMore: false });
    });

    it('walks the whole log once, page after page, while entries are appended between pages: none skipped, none twice', async () => {
      await harness.append(Array.from({ length: 250 }, (_, i) => auditEntry(i)));
      let next = 250;
      const pages = await walk(access, admin, { limit: 40 }, async () => harness.append(Array.from({ length: 7 }, () => auditEntry(next++))));
      expect(pages.map((p) => p.data.length)).toEqual([40, 40, 40, 40, 40, 40, 10]);
      expect(pages.flatMap((p) => p.data.map((e) => e.id))).toEqual(Array.from({ length: 250 }, (_, i) => 250 - i));
      expect(pages.every((p) => p.firstId === p.data[0]?.id && p.lastId === p.data.at(-1)?.id)).toBe(true);

      // Forward from the start (`before` 0: newer than nothing), each page newest first, up to what was appended meanwhile.
      const forward = await walk(access, admin, { limit: 64, before: 0 }, async (n) => (n < 3 ? harness.append([auditEntry(next++)]) : undefined));
      const ids = forward.flatMap((p) => p.data.map((e) => e.id).reverse());
      expect(ids).toEqual(Array.from({ length: next }, (_, i) => i + 1));
      expect(forward.map((p) => p.data.length)).toEqual([64, 64, 64, 64, next - 4 * 64]);
    });

    it('filters by actions, actor, target, since (inclusive), until (exclusive), org and project, and pages what matches', async () => {
      const actions: AuditAction[] = ['key.issue', 'key.revoke', 'budget.create', 'team.create'];
      await harness.append(
        Array.from({ length: 120 }, (_, i) =>
          auditEntry(i, {
            action: actions[i % 4]!,
            actor: i % 3 === 0 ? 'fin-ops' : 'ops',
            target: `t${i % 10}`,
            details: { org: i % 5 === 0 ? 'initech' : 'acme', ...(i % 2 ? { project: 'search' } : {}), role: 'admin' },
          }),
        ),
      );
      const at = (i: number): number => START + i * 60_000;
      const expected = (keep: (i: number) => boolean): string[] => Array.from({ length: 120 }, (_, i) => 119 - i).filter(keep).map((i) => `t${i % 10}@${i}`);
      const shown = async (query: Omit<AuditQuery, 'limit'>, limit = 7): Promise<string[]> =>
        (await walk(access, admin, { ...query, limit })).flatMap((p) => p.data.map((e) => `${e.target}@${(Date.parse(e.at) - START) / 60_000}`));

      expect(await shown({ actions: ['key.revoke', 'team.create'] })).toEqual(expected((i) => i % 4 === 1 || i % 4 === 3));
      expect(await shown({ actor: 'fin-ops' })).toEqual(expected((i) => i % 3 === 0));
      expect(await shown({ target: 't4' }, 3)).toEqual(expected((i) => i % 10 === 4));
      expect(await shown({ since: at(30), until: at(45) })).toEqual(expected((i) => i >= 30 && i < 45));
      expect(await shown({ org: 'initech' })).toEqual(expected((i) => i % 5 === 0));
      expect(await shown({ project: 'search', org: 'acme' })).toEqual(expected((i) => i % 2 === 1 && i % 5 !== 0));
      expect(await shown({ actions: ['budget.create'], actor: 'ops', since: at(50) }, 2)).toEqual(expected((i) => i % 4 === 2 && i % 3 !== 0 && i >= 50));
      expect(await shown({ actions: ['org.create'] })).toEqual([]);
      // Backwards (newer than an id) with a filter: the matches closest to it, shown newest first.
      const back = await access.auditPage(admin, { limit: 3, before: 60, actions: ['key.issue'] });
      expect(back.data.map((e) => e.id)).toEqual([69, 65, 61]);
      expect(back).toMatchObject({ firstId: 69, lastId: 61, hasMore: true });
    });

    it("keeps a scoped key to its scope, and pages past long runs of others' entries: at most AUDIT_SCAN examined per page, has_more until the last match", async () => {
      const other = (n: number, from: number): AuditEntry[] => Array.from({ length: n }, (_, i) => auditEntry(from + i, { details: { org: 'initech', role: 'admin' } }));
      const mine = (i: number): AuditEntry => auditEntry(i, { target: `mine${i}`, details: { org: 'acme', project: 'search', role: 'admin' } });
      const orgWide = (i: number): AuditEntry => auditEntry(i, { target: `org${i}`, details: { org: 'acme', role: 'admin' } });
      // Oldest first: a match, a long run of others, two matches, another run, a match and a few others on top.
      await harness.append([mine(0), ...other(21_000, 1), mine(21_001), orgWide(21_002), ...other(3_000, 21_003), mine(24_003), ...other(50, 24_004)]);

      const project: Actor = { id: 'search-ops', role: 'admin', org: 'acme', project: 'search' };
      const perPage: number[] = [];
      const pages = await walk(access, project, { limit: 2 }, async () => void perPage.push(examined));
      expect(targets(pages)).toEqual(['mine24003', 'mine21001', 'mine0']);
      // Pages that stopped at the bound say so (one found nothing in its 10,000), and go on from the last entry examined.
      expect(pages.map((p) => [p.data.length, p.hasMore])).toEqual([[2, true], [0, true], [1, false]]);
      expect(pages.map((p) => p.lastId)).toEqual([24_054 - AUDIT_SCAN + 1, 24_054 - 2 * AUDIT_SCAN + 1, 1]);
      perPage.push(examined);
      const each = perPage.map((total, i) => total - (perPage[i - 1] ?? 0));
      expect(Math.max(...each)).toBeLessThanOrEqual(AUDIT_SCAN);

      const org: Actor = { id: 'acme-ops', role: 'admin', org: 'acme' };
      expect(targets(await walk(access, org, { limit: 10 }))).toEqual(['mine24003', 'org21002', 'mine21001', 'mine0']);
      // A filter narrows the scope, never widens it.
      expect(targets(await walk(access, org, { limit: 10, project: 'search' }))).toEqual(['mine24003', 'mine21001', 'mine0']);
      await expect(access.auditPage(org, { limit: 10, org: 'initech' })).rejects.toMatchObject({ kind: 'not_found' });
      await expect(access.auditPage(project, { limit: 10, project: 'ads' })).rejects.toMatchObject({ kind: 'not_found' });
      // The unscoped key sees every entry, the first page with one read of limit + 1.
      examined = 0;
      await expect(access.auditPage(admin, { limit: 5 })).resolves.toMatchObject({ firstId: 24_054, lastId: 24_050, hasMore: true });
      expect(examined).toBe(6);
    }, 60_000);
  });
}
