import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { connect, createServer, type Server, type Socket } from 'node:net';
import OpenAI from 'openai';
import { budgetv1 } from '@openrouter/contracts';
import { InProcessBudgetBus, toMicros } from '@openrouter/budgets';
import { hashApiKey } from '@openrouter/ingress';
import { Money, moneyText } from '@openrouter/usage';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY, TEST_DEV_KEY } from '../support/test-config';
import { CLEAR_OF_UTC_MIDNIGHT_MS, clearOfUtcMidnight } from '../support/utc-day';

function withBudgets(list: unknown[], redis = false, settings: Record<string, unknown> = {}): (doc: Record<string, unknown>) => void {
  return (doc) => {
    doc['budgets'] = { ...settings, list };
    if (redis) doc['access'] = { ...(doc['access'] as object), redis: { url: sharedRedisUrl(), keyPrefix: `budgets-e2e-${randomBytes(4).toString('hex')}:` } };
  };
}

const hi = [{ role: 'user' as const, content: 'hi' }];

/**
 * A TCP proxy in front of Redis that can hold what the gateway sends, so a test decides when a
 * request's Redis calls (its reservation) complete.
 */
async function gatedProxy(target: URL): Promise<{ url: string; hold(): void; release(): void; close(): Promise<void> }> {
  let held = false;
  const waiting: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (data) => (held ? waiting.push(() => upstream.write(data)) : upstream.write(data)));
    upstream.on('data', (data) => client.write(data));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    hold: () => void (held = true),
    release: () => {
      held = false;
      for (const write of waiting.splice(0)) write();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends a chat request on a raw socket and returns the socket, so the test can drop it. */
async function rawChat(url: string, body: unknown): Promise<Socket> {
  const target = new URL(url);
  const json = JSON.stringify(body);
  const socket = connect(Number(target.port), target.hostname);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer ${TEST_DEV_KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
  return socket;
}

/** Chat requests the ingress has finished with (answered or abandoned), from its own metrics. */
async function chatExchangesEnded(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith('openrouter_http_requests_total{') && line.includes('route="/v1/chat/completions"')) total += Number(line.split(' ').pop());
  return total;
}

// Spend and reads on the day's (and month's) periods, in real time: not across midnight.
beforeAll(() => clearOfUtcMidnight(), CLEAR_OF_UTC_MIDNIGHT_MS);

describe('budgets through the gateway', () => {
  describe('a hard budget on a real Redis', () => {
    let gw: TestGateway;
    // gpt-4o-mini: 0.15 in / 0.60 out per 1M tokens. "hi" pads to 22 prompt tokens, max_tokens 50:
    // worst case 22 × 0.15 + 50 × 0.60 = 33.3 micro-units, reserved as 34; 0.0017 holds 50 of them.
    const budget = '0.0017';

    beforeAll(async () => {
      gw = await startTestGateway({ configure: withBudgets([{ id: 'org-daily', scope: { org: 'default' }, period: 'daily', amount: budget, enforcement: 'hard' }], true) });
    }, 120_000);
    afterAll(async () => gw?.close());

    it('accepts 200 concurrent requests only up to the budget, and refuses the rest with 402 budget_exceeded', async () => {
      const client = gw.client();
      const outcomes = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          try {
            const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: `hi ${i % 7}` }] }).withResponse();
            return { status: 200, cost: response.headers.get('x-openrouter-cost') ?? 'missing' };
          } catch (error) {
            if (!(error instanceof OpenAI.APIError)) throw error;
            return { status: error.status ?? 0, cost: '0', code: error.code, type: error.type, message: error.message };
          }
        }),
      );
      const accepted = outcomes.filter((o) => o.status === 200);
      const refused = outcomes.filter((o) => o.status !== 200);
      const total = accepted.reduce((sum, o) => sum.plus(o.cost), new Money(0));
      expect(total.lessThanOrEqualTo(budget)).toBe(true);
      expect(accepted.length).toBeGreaterThanOrEqual(50);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) expect(r).toMatchObject({ status: 402, code: 'budget_exceeded', type: 'insufficient_quota' });
      // Every reservation is settled with the real cost: the ledger holds the accepted spend.
      const status = await waitFor(async () => {
        const [s] = await gw.gateway.ingress.budgets.status();
        return s && s.reserved === '0' ? s : undefined;
      });
      // Each request is counted in whole micro-units, rounded up: exactly the sum of what was settled.
      expect(toMicros(status.spent)).toBe(accepted.reduce((sum, o) => sum + toMicros(o.cost), 0));
      expect(toMicros(status.spent)).toBeLessThanOrEqual(toMicros(budget));
    }, 120_000);
  });

  it('keeps a stream that outlives budgets.reservationTtlMs holding its reservation, so the budget is never overspent', async () => {
    // The review's case: 100 micro-units, a 1.5 s ttl, a stream that reserves them all (its prompt,
    // then some 160 output tokens at 0.6 each: at 20 tokens a second it runs for several seconds,
    // until the gateway cuts it at its reservation), and requests made while it runs.
    const ttlMs = 1_500;
    const keyPrefix = `budgets-e2e-${randomBytes(4).toString('hex')}:`;
    const gw = await startTestGateway({
      configure: (doc) => {
        withBudgets([{ id: 'org-daily', scope: { org: 'default' }, period: 'daily', amount: '0.0001', enforcement: 'hard' }], true, { reservationTtlMs: ttlMs })(doc);
        doc['access'] = { ...(doc['access'] as object), redis: { url: sharedRedisUrl(), keyPrefix } };
      },
    });
    // The ledger's reservations in Redis: each id scored with the time (Redis's, ms) it expires at, moved on by every renewal.
    const inspect = new Redis(sharedRedisUrl());
    const expiries = async (): Promise<Map<string, number>> => {
      const flat = await inspect.zrange(`${keyPrefix}{budgets}:expiry`, '0', '-1', 'WITHSCORES');
      const map = new Map<string, number>();
      for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i] as string, Number(flat[i + 1]));
      return map;
    };
    try {
      gw.sim.configure({ completionTokens: 400, tokensPerSecond: 20 });
      const client = gw.client();
      const ask = () => client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 20, messages: hi }).then(
        () => 200,
        (error: unknown) => (error instanceof OpenAI.APIError ? (error.status ?? 0) : Promise.reject(error)),
      );
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Tell me a long story' }] });
      let ended = false;
      const reading = (async () => {
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
        ended = true;
        return text;
      })();
      expect(await ask()).toBe(402);
      // The stream's reservation, as Redis holds it, and when it first expires.
      const [reservation, firstExpiry] = await waitFor(async () => {
        const held = [...(await expiries())];
        return held.length === 1 ? held[0] : undefined;
      }, { what: "the stream's reservation in Redis" });
      // Renewed until Redis has it expire more than two ttls after it first would have, by Redis's
      // own clock: a renewal more than two ttls after it was made. The stream still runs, and still
      // holds what it reserved.
      await waitFor(async () => ((await expiries()).get(reservation) ?? 0) > firstExpiry + 2 * ttlMs || undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'the reservation renewed past two ttls' });
      expect(ended).toBe(false);
      expect(await ask()).toBe(402);
      expect((await reading).length).toBeGreaterThan(0);
      const [status] = await waitFor(async () => {
        const s = await gw.gateway.ingress.budgets.status();
        return s[0]?.reserved === '0' && s[0].spent !== '0' ? s : undefined;
      }, { what: 'the stream settled' });
      expect(new Money(status?.spent ?? '1').lessThanOrEqualTo('0.0001')).toBe(true);
    } finally {
      inspect.disconnect();
      await gw.close();
    }
  }, 60_000);

  it('gives a client that leaves while its reservation is being made no provider call, and holds nothing for it', async () => {
    const gate = await gatedProxy(new URL(sharedRedisUrl()));
    const gw = await startTestGateway({
      configure: (doc) => {
        withBudgets([{ id: 'org-daily', scope: { org: 'default' }, period: 'daily', amount: '10', enforcement: 'hard' }])(doc);
        doc['access'] = { ...(doc['access'] as object), redis: { url: gate.url, keyPrefix: `budgets-e2e-${randomBytes(4).toString('hex')}:` } };
      },
    });
    try {
      const budgets = gw.gateway.ingress.budgets;
      const reserve = jest.spyOn(budgets, 'reserve');
      gate.hold();
      const sockets = await Promise.all(Array.from({ length: 10 }, (_, i) => rawChat(gw.url, { model: 'gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: `hello ${i}` }] })));
      // Every request waits on Redis for its reservation when its client leaves.
      await waitFor(() => reserve.mock.calls.length === 10 || undefined, { what: 'ten reservations under way' });
      for (const socket of sockets) socket.destroy();
      await waitFor(async () => (await chatExchangesEnded(gw.url)) === 10 || undefined, { what: 'the ingress to see every client leave' });
      gate.release();
      await Promise.allSettled(reserve.mock.results.map((r) => r.value as Promise<unknown>));
      const [status] = await waitFor(async () => {
        const s = await budgets.status();
        return budgets.inFlight === 0 && s[0]?.reserved === '0' ? s : undefined;
      }, { what: 'every reservation released' });
      expect(status?.spent).toBe('0');
      expect(gw.sim.requests()).toHaveLength(0);

      // The next request is served and recorded as usual: one usage record, the ledger holds its cost.
      const { response } = await gw.client().chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 20, messages: hi }).withResponse();
      const cost = response.headers.get('x-openrouter-cost') ?? 'missing';
      await waitFor(() => gw.gateway.billing.usage.stats().stored === 1 || undefined, { what: 'the served request recorded' });
      const [after] = await waitFor(async () => {
        const s = await budgets.status();
        return s[0]?.reserved === '0' && s[0].spent !== '0' ? s : undefined;
      });
      expect(toMicros(after?.spent ?? '0')).toBe(toMicros(cost));
      expect(gw.sim.requests()).toHaveLength(1);
      expect(gw.gateway.billing.usage.stats()).toMatchObject({ stored: 1, duplicates: 0 });
    } finally {
      await gw.close();
      await gate.close();
    }
  }, 60_000);

  it('answers what a request deserves under a hard budget: 404 for a model named like an object property, 400 for an absurd max_tokens, 16 tokens for a legacy completion that asks for none', async () => {
    const budgets = withBudgets([{ id: 'org-daily', scope: { org: 'default' }, period: 'daily', amount: '10', enforcement: 'hard' }], true);
    const gw = await startTestGateway({
      configure: (doc) => {
        budgets(doc);
        // A server configured as OpenAI itself is: its reasoning models refuse max_tokens.
        const providers = doc['providers'] as Record<string, Record<string, unknown>>;
        providers['simulated'] = { ...providers['simulated'], outputLimit: 'max_completion_tokens' };
      },
    });
    try {
      const client = gw.client();
      // The limit the budget sets goes in the parameter the provider takes.
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi });
      const limited = gw.sim.requests().at(-1)?.body as { max_tokens?: number; max_completion_tokens?: number };
      expect(limited.max_tokens).toBeUndefined();
      expect(limited.max_completion_tokens).toBeGreaterThan(0);
      for (const model of ['constructor', 'toString', '__proto__']) {
        const error = await client.chat.completions.create({ model, messages: hi }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(OpenAI.NotFoundError);
        expect(error).toMatchObject({ status: 404, type: 'invalid_request_error' });
      }
      const fallback = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }, { headers: { 'x-openrouter-models': 'gpt-4o-mini,valueOf' } }).catch((e: unknown) => e);
      expect(fallback).not.toBeInstanceOf(OpenAI.InternalServerError);
      const tooMany = await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 1e15, messages: hi }).catch((e: unknown) => e);
      expect(tooMany).toBeInstanceOf(OpenAI.BadRequestError);
      expect(tooMany).toMatchObject({ status: 400, param: 'max_tokens' });

      await client.completions.create({ model: 'gpt-4o-mini', prompt: 'Write a story' });
      const sent = gw.sim.requests().at(-1)?.body as { max_tokens?: number; max_completion_tokens?: number };
      expect(sent.max_tokens ?? sent.max_completion_tokens).toBe(16);
      // Nothing held: every reservation was released or settled.
      await waitFor(async () => ((await gw.gateway.ingress.budgets.status())[0]?.reserved === '0' ? true : undefined), { what: 'no reservation left' });
    } finally {
      await gw.close();
    }
  }, 60_000);

  it('reserves for a prompt that quotes special tokens, counting them as plain text', async () => {
    const gw = await startTestGateway({ configure: withBudgets([{ id: 'org-monthly', scope: { org: 'default' }, period: 'monthly', amount: '10', enforcement: 'hard' }]) });
    try {
      const answer = await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'What do <|endoftext|> and <|im_start|> mean in a tokenizer?' }] });
      expect(answer.choices[0]?.message.content).toBeTruthy();
      const [status] = await waitFor(async () => {
        const s = await gw.gateway.ingress.budgets.status();
        return s[0]?.reserved === '0' && s[0].spent !== '0' ? s : undefined;
      });
      expect(status?.budget.id).toBe('org-monthly');
    } finally {
      await gw.close();
    }
  }, 60_000);

  describe('with rate limits, both on a real Redis', () => {
    let gw: TestGateway;
    const SECRET = 'budgets-e2e-hash-secret';
    const KEY = 'sk-or-v1-budget-and-rate-limited-key-000000000';
    // Each request holds 34 micro-units (see above) while it runs and spends 11: after four, the
    // 76 left of 0.00012 cover two more at once and no third.
    const budget = '0.00012';

    beforeAll(async () => {
      gw = await startTestGateway({
        configure: (doc) => {
          withBudgets([{ id: 'org-daily', scope: { org: 'default' }, period: 'daily', amount: budget, enforcement: 'hard' }], true)(doc);
          doc['access'] = {
            ...(doc['access'] as object),
            keyHashSecret: SECRET,
            admin: { devKey: TEST_ADMIN_KEY },
            keys: [{ id: 'both', hash: hashApiKey(SECRET, KEY), org: 'default', limits: { rpm: 4 } }],
          };
        },
      });
    }, 120_000);
    afterAll(async () => gw?.close());

    async function ask(key: string): Promise<{ status: number; cost: string; code?: string | null; remaining: string | null }> {
      const response = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 50, messages: hi }),
      });
      const json = (await response.json()) as { error?: { code: string | null } };
      return { status: response.status, cost: response.headers.get('x-openrouter-cost') ?? '0', code: json.error?.code, remaining: response.headers.get('x-ratelimit-remaining-requests') };
    }

    it('never lets a client over its rate limit take budget from the other requests of its org', async () => {
      const first = [];
      for (let i = 0; i < 4; i++) first.push(await ask(KEY));
      expect(first.map((o) => o.status)).toEqual([200, 200, 200, 200]);
      // The limited key floods on while another key of the org sends two requests the budget still
      // covers: the flood is refused by its rate limit before any reservation, so both are served.
      const [flood, others] = await Promise.all([Promise.all(Array.from({ length: 30 }, () => ask(KEY))), Promise.all([ask(TEST_DEV_KEY), ask(TEST_DEV_KEY)])]);
      for (const o of flood) expect(o).toMatchObject({ status: 429, code: 'rate_limit_exceeded', remaining: '0' });
      expect(others.map((o) => o.status)).toEqual([200, 200]);
      const status = await waitFor(async () => {
        const [s] = await gw.gateway.ingress.budgets.status();
        return s && s.reserved === '0' ? s : undefined;
      });
      expect(toMicros(status.spent)).toBe([...first, ...others].reduce((sum, o) => sum + toMicros(o.cost), 0));
    }, 60_000);
  });

  describe('in memory (embedded mode)', () => {
    let gw: TestGateway;
    const events: budgetv1.BudgetEvent[] = [];

    beforeAll(async () => {
      gw = await startTestGateway({
        configure: withBudgets([
          // The stream test's own key budget is small; the org's soft budget only alerts.
          { id: 'tiny', scope: { org: 'default' }, period: 'monthly', timezone: 'Europe/Berlin', amount: '0.00002', enforcement: 'hard', alertThresholds: [50, 100] },
          { id: 'org-soft', scope: { org: 'default' }, period: 'weekly', amount: '0.000001', enforcement: 'soft', alertThresholds: [50, 80, 100] },
        ]),
      });
      const bus = gw.gateway.ingress.budgetEvents;
      if (!(bus instanceof InProcessBudgetBus)) throw new Error('expected the in-process budget bus');
      bus.subscribe((e) => events.push(e));
    }, 120_000);
    afterAll(async () => gw?.close());

    it('ends a stream cleanly with finish_reason "length" where the hard budget runs out, then refuses with 402', async () => {
      gw.sim.configure({ completionTokens: 400 });
      const client = gw.client();
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Tell me a long story' }] });
      let text = '';
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        for (const choice of chunk.choices) {
          text += choice.delta.content ?? '';
          finish = choice.finish_reason ?? finish;
        }
      }
      expect(finish).toBe('length');
      expect(text.length).toBeGreaterThan(0);
      // 0.00002 = 20 micro-units: at 0.6 per output token, far fewer than the 400 the provider would write.
      expect(text.split(' ').length).toBeLessThan(60);
      const [tiny] = await waitFor(async () => {
        const s = await gw.gateway.ingress.budgets.status();
        return s[0]?.reserved === '0' ? s : undefined;
      });
      expect(new Money(tiny?.spent ?? '1').lessThanOrEqualTo('0.00002')).toBe(true);

      const refused = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(OpenAI.APIError);
      const e = refused as InstanceType<typeof OpenAI.APIError>;
      expect(e.status).toBe(402);
      expect(e.error).toEqual({ message: expect.stringContaining('budget "tiny"'), type: 'insufficient_quota', param: null, code: 'budget_exceeded' });

      // Threshold crossings: once per budget, period and threshold, whatever the traffic. The hard
      // budget's spend stops short of its limit, so its 100 % is announced by the refusal (the 402 above).
      await waitFor(() => events.some((x) => x.budgetId === 'tiny' && x.thresholdPercent === 100) || undefined, { what: 'the hard budget\'s 100 % event' });
      await waitFor(() => events.length >= 5 || undefined, { what: 'budget events' });
      const ids = events.map((x) => x.eventId).sort();
      expect(new Set(ids).size).toBe(ids.length);
      expect(events.filter((x) => x.budgetId === 'org-soft').map((x) => x.thresholdPercent)).toEqual([50, 80, 100]);
      expect(events.filter((x) => x.budgetId === 'tiny').map((x) => x.thresholdPercent).sort((a, b) => a - b)).toEqual([50, 100]);
      const exhausted = events.find((x) => x.budgetId === 'tiny' && x.thresholdPercent === 100);
      expect(exhausted).toMatchObject({ limit: '0.00002', enforcement: budgetv1.Enforcement.ENFORCEMENT_HARD, eventId: expect.stringMatching(/^tiny\/\d{4}-\d{2}\/100$/) });
      expect(new Money(exhausted?.spent ?? '1').lessThanOrEqualTo('0.00002')).toBe(true);
      const soft = events.find((x) => x.budgetId === 'org-soft');
      expect(soft).toMatchObject({ limit: '0.000001', currency: 'USD', scope: { orgId: 'default' } });
      expect(moneyText(new Money(soft?.spent ?? '0'))).not.toBe('0');
    }, 60_000);
  });

  describe('in memory, a legacy completion stream', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      // 50 micro-units: the first prompt's least stream (two prompts' worth) fits, 400 tokens at 0.6 each do not.
      gw = await startTestGateway({ configure: withBudgets([{ id: 'tiny', scope: { org: 'default' }, period: 'monthly', amount: '0.00005', enforcement: 'hard' }]) });
    }, 120_000);
    afterAll(async () => gw?.close());

    it('is cut at the hard budget as a chat stream is: "length", no further prompt, the usage so far', async () => {
      // A provider that does not honour the lowered max_tokens: only the gateway's cut holds the budget.
      gw.sim.configure({ completionTokens: 400, ignoreMaxTokens: true });
      const stream = await gw.client().completions.create({ model: 'gpt-4o-mini', prompt: ['Tell me a long story', 'And another'], max_tokens: 1000, stream: true, stream_options: { include_usage: true } });
      let text = '';
      const finishes = new Map<number, string>();
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        for (const choice of chunk.choices) {
          text += choice.text;
          if (choice.finish_reason) finishes.set(choice.index, choice.finish_reason);
        }
        usage = chunk.usage ?? usage;
      }
      // The first prompt's answer is cut; the second is never asked for.
      expect([...finishes]).toEqual([[0, 'length']]);
      expect(text.split(' ').length).toBeLessThan(100);
      expect(usage?.completion_tokens).toBeGreaterThan(0);
      expect(usage?.completion_tokens).toBeLessThan(100);
      const [tiny] = await waitFor(async () => {
        const s = await gw.gateway.ingress.budgets.status();
        return s[0]?.reserved === '0' ? s : undefined;
      });
      expect(new Money(tiny?.spent ?? '1').lessThanOrEqualTo('0.00005')).toBe(true);
    }, 60_000);
  });

  describe('a hard budget reserves for the dearest model the router may use', () => {
    let gw: TestGateway;
    // 1000 micro-units: enough for one gpt-4o-mini call of 200 tokens, far from one of `dear`.
    const budget = '0.001';

    beforeAll(async () => {
      gw = await startTestGateway({
        configure: (doc) => {
          withBudgets([{ id: 'org-daily', scope: { org: 'default' }, period: 'daily', amount: budget, enforcement: 'hard' }])(doc);
          const models = doc['models'] as Array<Record<string, unknown>>;
          models.push(
            { id: 'dear', capabilities: ['chat', 'completions'], pricing: { input: '5', output: '20' }, deployments: [{ id: 'sim-dear', provider: 'simulated', model: 'dear-upstream' }] },
            { id: 'cheap', capabilities: ['chat', 'completions'], pricing: { input: '0.15', output: '0.60' }, fallbacks: ['dear'], deployments: [{ id: 'sim-cheap', provider: 'simulated', model: 'cheap-upstream' }] },
          );
          doc['routing'] = { ...(doc['routing'] as object), retry: { maxAttempts: 2 } };
        },
      });
    }, 120_000);
    afterAll(async () => gw?.close());
    beforeEach(async () => {
      gw.sim.configure({ completionTokens: 200, faults: [] });
    });

    /** What a request answered, and whether the ledger still holds no more than the budget. */
    async function outcome(call: () => Promise<Response>): Promise<{ status: number; code?: string | undefined }> {
      const response = await call();
      const json = (await response.json()) as { error?: { code?: string } };
      const [s] = await waitFor(async () => {
        const st = await gw.gateway.ingress.budgets.status();
        return st[0]?.reserved === '0' ? st : undefined;
      });
      expect(new Money(s?.spent ?? '1').lessThanOrEqualTo(budget)).toBe(true);
      return { status: response.status, code: json.error?.code };
    }

    const post = (path: string, body: unknown, headers: Record<string, string> = {}) => () =>
      fetch(`${gw.baseURL}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TEST_DEV_KEY}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

    it('counts a configured fallback the router fails over to', async () => {
      gw.sim.configure({ completionTokens: 200, faults: [{ model: 'cheap-upstream', kind: 'http_error', status: 500 }] });
      expect(await outcome(post('/chat/completions', { model: 'cheap', max_tokens: 200, messages: hi }))).toEqual({ status: 402, code: 'budget_exceeded' });
    });

    it('counts a fallback list sent in the x-openrouter-models header', async () => {
      gw.sim.configure({ completionTokens: 200, faults: [{ model: 'sim-mini-upstream', kind: 'http_error', status: 500 }] });
      expect(await outcome(post('/chat/completions', { model: 'gpt-4o-mini', max_tokens: 200, messages: hi }, { 'x-openrouter-models': 'dear' }))).toEqual({ status: 402, code: 'budget_exceeded' });
      // Without fallbacks the same request fits: gpt-4o-mini alone is reserved for (and fails here).
      expect((await outcome(post('/chat/completions', { model: 'gpt-4o-mini', max_tokens: 200, messages: hi }, { 'x-openrouter-models': 'dear', 'x-openrouter-route': '{"allow_fallbacks":false}' }))).status).toBe(502);
    });

    it('counts every prompt of a legacy completion', async () => {
      const prompts = Array.from({ length: 40 }, (_, i) => `say something ${i}`);
      expect(await outcome(post('/completions', { model: 'gpt-4o-mini', max_tokens: 200, prompt: prompts }))).toEqual({ status: 402, code: 'budget_exceeded' });
      // One prompt fits, and is answered.
      expect((await outcome(post('/completions', { model: 'gpt-4o-mini', max_tokens: 200, prompt: prompts.slice(0, 1) }))).status).toBe(200);
    });
  });
});
