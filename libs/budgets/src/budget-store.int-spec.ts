import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { budgetSchema } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { accountAt } from './budget-book';
import { BudgetCatalog } from './budget-catalog';
import { RedisBudgetStore, type StoredBudget } from './budget-store';
import { RedisBudgetLedger } from './redis-budget-ledger';

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

/** Polls `condition` every 20 ms until it holds; fails after `timeoutMs`. */
async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

/** A TCP proxy in front of Redis that can cut its connections and refuse new ones (one replica's network). */
async function cuttableProxy(target: URL): Promise<{ url: string; cut(): void; restore(): void; close(): Promise<void> }> {
  let refusing = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: () => {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    restore: () => void (refusing = false),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function budget(id: string, amount = '10'): StoredBudget {
  return { ...budgetSchema.parse({ id, scope: { org: 'acme' }, period: 'monthly', amount }), createdAt: '2025-06-14T12:00:00.000Z', updatedAt: '2025-06-14T12:00:00.000Z' };
}

const retry = (attempt: number): number => Math.min(attempt * 50, 200);

/**
 * A stand-in of the audit log's `append_audit`, which its owner (ingress's access layer, whose own
 * specs test the real one with this store) passes in: the next id of the counter, first in the entry.
 */
const APPEND_AUDIT = `local function append_audit(log, sequence, entry, keep)
  local id = redis.call('INCR', sequence)
  redis.call('LPUSH', log, '{"id":' .. id .. ',' .. string.sub(entry, 2))
  redis.call('LTRIM', log, 0, keep - 1)
end
`;

describe('budgets created at run time, in Redis (redis-server)', () => {
  let prefix: string;
  let control: Redis;
  const closing: Array<{ close(): Promise<void> }> = [];

  /** One replica's store and catalog, on connections of its own (its subscriber through `subscriberUrl` when given). */
  function replica(subscriberUrl = redisUrl(), checkEveryMs?: number): { store: RedisBudgetStore; catalog: BudgetCatalog } {
    const store = new RedisBudgetStore(
      new Redis(redisUrl(), { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: retry }),
      new Redis(subscriberUrl, { autoResubscribe: false, maxRetriesPerRequest: null, retryStrategy: retry }),
      prefix,
      { auditLog: { key: `${prefix}audit`, sequence: `${prefix}audit:seq`, keep: 100, appendLua: APPEND_AUDIT } },
    );
    const catalog = new BudgetCatalog([], store, undefined, checkEveryMs === undefined ? {} : { checkEveryMs });
    closing.push(catalog);
    return { store, catalog };
  }

  beforeEach(() => {
    prefix = `budget-store-${randomBytes(4).toString('hex')}:`;
    control = new Redis(redisUrl());
  });
  afterEach(async () => {
    for (const c of closing.splice(0)) await c.close();
    control.disconnect();
  });

  it("shows each replica's changes on the other at once: created, changed, deleted, each audited in the same write", async () => {
    const a = replica();
    const b = replica();
    await Promise.all([a.catalog.start(), b.catalog.start()]);
    await a.store.update('acme-month', () => budget('acme-month'), { action: 'budget.create', target: 'acme-month' });
    await a.store.publish();
    await until(() => b.catalog.entry('acme-month')?.source === 'api', "the budget on replica b");
    expect(b.catalog.book.applicable({ orgId: 'acme', teamId: '', projectId: '', keyId: 'k' }).map((x) => x.id)).toEqual(['acme-month']);
    await b.store.update('acme-month', (stored) => stored && { ...stored, amount: '25' }, { action: 'budget.update', target: 'acme-month' });
    await b.store.publish();
    await until(() => a.catalog.entry('acme-month')?.budget.amount === '25', 'the new amount on replica a');
    await a.store.update('acme-month', () => undefined, { action: 'budget.delete', target: 'acme-month' });
    await a.store.publish();
    await until(() => b.catalog.entry('acme-month') === undefined, 'the deletion on replica b');
    const audit = (await control.lrange(`${prefix}audit`, 0, -1)).map((e) => JSON.parse(e) as { id: number; action: string });
    expect(audit).toEqual([
      { id: 3, action: 'budget.delete', target: 'acme-month' },
      { id: 2, action: 'budget.update', target: 'acme-month' },
      { id: 1, action: 'budget.create', target: 'acme-month' },
    ]);
  });

  it("appends each entry with the audit log's append_audit in the script that makes the change: one id each, in the log's order, whichever replica wrote", async () => {
    const a = replica();
    const b = replica();
    await Promise.all([a.store.ready(3_000), b.store.ready(3_000)]);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).store.update(`b${i}`, () => budget(`b${i}`), { action: 'budget.create', target: `b${i}`, id: 'not-the-log-id' })),
    );
    const ids = (await control.lrange(`${prefix}audit`, 0, -1)).map((e) => (JSON.parse(e) as { id: number }).id);
    expect(ids).toEqual(Array.from({ length: 40 }, (_, i) => 40 - i));
    expect(await control.get(`${prefix}audit:seq`)).toBe('40');
  });

  it('applies concurrent changes of one budget on two replicas one after the other, none lost', async () => {
    const a = replica();
    const b = replica();
    await Promise.all([a.store.ready(3_000), b.store.ready(3_000)]);
    await a.store.update('shared', () => budget('shared', '1'));
    const add = (stored: StoredBudget | undefined): StoredBudget => {
      if (!stored) throw new Error('gone');
      return { ...stored, amount: String(Number(stored.amount) + 1) };
    };
    await Promise.all([a.store.update('shared', add), b.store.update('shared', add), a.store.update('shared', add), b.store.update('shared', add)]);
    expect((await a.store.list()).map((s) => s.amount)).toEqual(['5']);
  });

  it("keeps the fields a newer release stored when it changes a budget, so a rolling upgrade loses none", async () => {
    const a = replica();
    await a.store.ready(3_000);
    // Written by a newer replica, with a field this one does not know.
    await control.hset(`${prefix}budgets`, 'newer', JSON.stringify({ ...budget('newer', '10'), spendForecastModel: 'seasonal' }));
    await a.store.update('newer', (stored) => stored && { ...stored, amount: '20' });
    expect(JSON.parse((await control.hget(`${prefix}budgets`, 'newer')) ?? '{}')).toMatchObject({ amount: '20', spendForecastModel: 'seasonal' });
  });

  it('leaves a record it cannot read as it is, and writes nothing when the change refuses', async () => {
    const a = replica();
    await a.store.ready(3_000);
    await control.hset(`${prefix}budgets`, 'broken', '{"id":');
    await expect(a.store.update('broken', () => budget('broken'))).rejects.toMatchObject({ kind: 'internal' });
    expect(await control.hget(`${prefix}budgets`, 'broken')).toBe('{"id":');
    await expect(a.store.update('refused', () => {
      throw new GatewayError('bad_request', 'no', { code: 'already_exists' });
    }, { action: 'budget.create' })).rejects.toMatchObject({ code: 'already_exists' });
    expect(await control.exists(`${prefix}audit`)).toBe(0);
  });

  it('refuses to list budgets while a record cannot be read, so a catalog keeps enforcing the ones it last loaded rather than dropping it', async () => {
    const lines: Array<{ msg: string; err?: { message: string } }> = [];
    const logger = createLogger('spec', 'info', { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string; err?: { message: string } }) });
    const a = replica();
    const catalog = new BudgetCatalog([], a.store, logger);
    closing.push(catalog);
    await a.store.ready(3_000);
    await a.store.update('hard', () => budget('hard', '5'));
    await catalog.start();
    expect(catalog.entry('hard')?.budget.amount).toBe('5');
    // A record this replica cannot read (a newer release's period, a hand edit): an amount it cannot parse.
    await control.hset(`${prefix}budgets`, 'hard', JSON.stringify({ ...budget('hard'), amount: 'lots' }));
    await control.hset(`${prefix}budgets`, 'other', '{"id":');
    const refused = await a.store.list().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GatewayError);
    expect(refused).toMatchObject({ kind: 'internal', message: expect.stringMatching(/"hard", "other"|"other", "hard"/) });
    // Its content stays out of the error (and so of the log).
    expect((refused as GatewayError).message).not.toContain('lots');
    expect(await catalog.reload()).toBe(false);
    expect(catalog.entry('hard')?.budget.amount).toBe('5');
    // Logged at each failed load (a reload the store's events started may have come first), naming the records and not their content.
    const logged = lines.filter((l) => l.err?.message.includes('cannot be read'));
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.every((l) => l.err?.message.includes('"hard"'))).toBe(true);
    expect(JSON.stringify(logged)).not.toContain('lots');
  });

  it('picks up a change made while its subscription was cut, once it is subscribed again', async () => {
    const proxy = await cuttableProxy(new URL(redisUrl()));
    try {
      const a = replica();
      const b = replica(proxy.url);
      await Promise.all([a.catalog.start(), b.catalog.start()]);
      const channel = `${prefix}budget-changes`;
      const subscribed = async (count: number): Promise<boolean> => ((await control.pubsub('NUMSUB', channel)) as [string, number])[1] === count;
      await until(() => subscribed(2), 'both subscriptions');
      proxy.cut();
      await until(() => subscribed(1), "replica b's subscription to drop");
      await a.store.update('while-away', () => budget('while-away'));
      await a.store.publish();
      // Published to replica a alone: once a has heard it, b, which cannot, still lacks it.
      await until(() => a.catalog.entry('while-away') !== undefined, "replica a to load the budget");
      expect(b.catalog.entry('while-away')).toBeUndefined();
      proxy.restore();
      await until(() => b.catalog.entry('while-away') !== undefined, 'replica b to load the budget created while its subscription was down');
      // And it hears changes again.
      await a.store.update('after', () => budget('after'));
      await a.store.publish();
      await until(() => b.catalog.entry('after') !== undefined, 'a change after the subscription is back');
    } finally {
      await proxy.close();
    }
  });

  it('advances its version in the write itself, so a replica whose subscription is dead reloads at its next check', async () => {
    const proxy = await cuttableProxy(new URL(redisUrl()));
    try {
      const a = replica();
      // Replica b's subscriber goes through the proxy, cut for good: it never hears, never resubscribes.
      const b = replica(proxy.url, 50);
      await Promise.all([a.catalog.start(), b.catalog.start()]);
      proxy.cut();
      const before = await a.store.version();
      // The audit entry is made from the record as stored when the change applies.
      const seen: Array<string | undefined> = [];
      await a.store.update('unheard', () => budget('unheard', '3'), (stored) => (seen.push(stored?.amount), { action: 'budget.create', target: 'unheard' }));
      await a.store.update('unheard', (stored) => stored && { ...stored, amount: '4' }, (stored) => (seen.push(stored?.amount), { action: 'budget.update', target: 'unheard', from: stored?.amount }));
      await expect(a.store.update('unheard', () => {
        throw new GatewayError('bad_request', 'no');
      })).rejects.toMatchObject({ kind: 'bad_request' });
      expect(seen).toEqual([undefined, '3']);
      expect(Number(await a.store.version())).toBe(Number(before) + 2);
      expect(JSON.parse((await control.lindex(`${prefix}audit`, 0)) ?? '{}')).toMatchObject({ action: 'budget.update', from: '3' });
      await a.store.publish();
      await until(() => b.catalog.entry('unheard')?.budget.amount === '4', 'replica b to find the change by the version');
    } finally {
      await proxy.close();
    }
  });

  it('answers budget_store_unavailable when Redis cannot be reached', async () => {
    const down = new RedisBudgetStore(new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true }), new Redis('redis://127.0.0.1:1', { lazyConnect: true }), prefix);
    closing.push(down);
    for (const call of [down.list(), down.update('x', () => budget('x')), down.publish(), down.version()]) await expect(call).rejects.toMatchObject({ kind: 'unavailable', code: 'budget_store_unavailable' });
  });

  it("reads where an account stands in one script that sweeps nothing, leaving out reservations past their expiry", async () => {
    const ledger = new RedisBudgetLedger(new Redis(redisUrl()), prefix);
    closing.push(ledger);
    const now = Date.now();
    const { line } = accountAt(budgetSchema.parse({ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '1' }), now);
    // Long enough to still count after the three round trips below on a slow machine; its expiry is waited for.
    await ledger.reserve({ id: 'short', lines: [line], worstMicros: 300, floorMicros: 300, ttlMs: 2_000 });
    await ledger.reserve({ id: 'long', lines: [line], worstMicros: 200, floorMicros: 200, ttlMs: 60_000 });
    await ledger.settle('settled', [line], 50);
    expect(await ledger.standing([line.account, 'other:2025-01'])).toEqual([
      { spentMicros: 50, reservedMicros: 500 },
      { spentMicros: 0, reservedMicros: 0 },
    ]);
    await until(async () => (await ledger.standing([line.account]))[0]?.reservedMicros === 200, 'the short reservation to expire');
    // Still held in Redis: the read swept nothing (the next reservation or sweep returns it).
    expect(await control.zcard(`${prefix}{budgets}:expiry`)).toBe(2);
    expect((await ledger.read([line.account]))[0]?.reservedMicros).toBe(500);
    expect(await ledger.sweep()).toBe(1);
  });
});
