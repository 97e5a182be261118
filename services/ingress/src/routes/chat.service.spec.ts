import { ingressTestConfig } from '../test-config.testing';
import type { chatv1, routerv1, usagev1 } from '@openrouter/contracts';
import { MemoryBudgetLedger } from '@openrouter/budgets';
import { createLogger } from '@openrouter/observability';
import { PriceBook, type UsagePublisher } from '@openrouter/usage';
import { BudgetService, type BudgetReservation } from '../budgets/budget.service';
import { UsageRecorder, type MeteredExchange } from '../usage/usage-recorder';
import type { RouterPort } from '../router.port';
import { clientChunks, openChat, type AnswerEvent, type OpenedChat } from './chat.service';
import { estimatedTokenWeight } from '@openrouter/usage';

const tenant = { orgId: 'acme', teamId: 't', projectId: 'p', keyId: 'k1', requestId: 'r', appId: '', costCenter: '', endUser: '', tags: {}, allowedModels: [] };
// 100 micro-units: a stream of two choices starts with what that pays for and is cut there.
const config = ingressTestConfig({ budgets: { list: [{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.0001' }], minStreamOutputTokens: 1 } });
const prices = PriceBook.fromModels(config.models);
const decision: routerv1.RouteDecision = { model: 'm', provider: 'sim', deployment: 'd', upstreamModel: 'u', attempts: 1, taskType: '', reason: '', experiment: '', experimentArm: '', attemptDetails: [], strategy: '' };

function chunk(choices: Array<{ index: number; content?: string; tool?: { name?: string; arguments: string }; finish?: string }>): chatv1.ChatChunk {
  return {
    id: 'chatcmpl-1',
    created: 1,
    model: 'u',
    choices: choices.map((c) => ({
      index: c.index,
      delta: { content: c.content, toolCalls: c.tool ? [{ index: 0, name: c.tool.name, arguments: c.tool.arguments }] : [], extraJson: '' },
      finishReason: c.finish,
      logprobsJson: '',
    })),
  };
}

function opened(chunks: chatv1.ChatChunk[]): OpenedChat {
  const [first, ...rest] = chunks.map((c): AnswerEvent => ({ chunk: c }));
  if (!first) throw new Error('no chunk');
  async function* more(): AsyncGenerator<AnswerEvent> {
    for (const event of rest) yield event;
  }
  return { decision, first, rest: more() };
}

async function setup(body: Record<string, unknown>) {
  const events: usagev1.UsageEvent[] = [];
  const publisher: UsagePublisher = { publish: async (e) => void events.push(e), status: () => ({ mode: 'direct', pending: 0, outboxBytes: 0 }), close: async () => undefined };
  const logger = createLogger('test', 'silent');
  const budgets = new BudgetService(config, prices, new MemoryBudgetLedger(), { publish: async () => undefined, close: async () => undefined }, logger);
  const budget: BudgetReservation | undefined = await budgets.reserve({ requestId: 'r', tenant, body });
  const ended: Array<() => void> = [];
  const exchange: MeteredExchange = { id: 'r', body, receivedAtMs: Date.now(), context: () => tenant, budget: () => budget, admission: () => undefined, traceHeaders: () => ({}), onEnd: (l) => void ended.push(l), outcome: () => ({ cancelled: false, status: 200 }) };
  const usage = new UsageRecorder(publisher, prices, logger).trackExchange(exchange, 'chat');
  usage.routed(decision);
  return { budget, usage, events, end: () => ended.forEach((l) => l()) };
}

async function collect(stream: AsyncGenerator<unknown>): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for await (const c of stream) out.push(c as Record<string, unknown>);
  return out;
}

describe('clientChunks at a hard budget', () => {
  it('finishes every open choice with "length" and sends the usage chunk a client asked for', async () => {
    const { budget, usage } = await setup({ model: 'm', stream: true, n: 2, messages: [{ role: 'user', content: 'hi' }] });
    expect(budget?.capped).toBe(true);
    const long = 'x'.repeat(400);
    const sent = await collect(clientChunks(opened([chunk([{ index: 0, content: 'ab' }, { index: 1, content: 'cd' }]), chunk([{ index: 1, content: long }]), chunk([{ index: 0, finish: 'stop' }])]), { usage, budget, clientWantsUsage: true }));
    const last = sent.at(-1) as { choices: unknown[]; usage?: { completion_tokens: number; cost?: number } };
    const stop = sent.at(-2) as { choices: Array<{ index: number; finish_reason: string }> };
    expect(stop.choices.map((c) => [c.index, c.finish_reason])).toEqual([
      [0, 'length'],
      [1, 'length'],
    ]);
    expect(last.choices).toEqual([]);
    expect(last.usage?.completion_tokens).toBe(1);
    expect(last.usage?.cost).toBeGreaterThan(0);
  });

  it('counts tool-call names and arguments in the estimate of a cut stream, as the budget does', async () => {
    const { budget, usage, events, end } = await setup({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const args = '{"city":"Paris"}'.repeat(2);
    await collect(clientChunks(opened([chunk([{ index: 0, tool: { name: 'get_weather', arguments: args } }]), chunk([{ index: 0, tool: { arguments: 'y'.repeat(1000) } }])]), { usage, budget, clientWantsUsage: false }));
    end();
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toHaveLength(1);
    expect(events[0]?.tokens).toMatchObject({ estimated: true, completion: Math.ceil(estimatedTokenWeight('get_weather') + estimatedTokenWeight(args)) });
  });
});

describe('clientChunks usage chunk', () => {
  const body = { model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] };
  type Sent = { id: string; choices: unknown[]; usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number; cost?: number } };
  const answer = () => [chunk([{ index: 0, content: 'Hello world!' }]), chunk([{ index: 0, finish: 'stop' }])];

  it('ends with the estimate as the usage chunk a client asked for when the provider sent none (a server that ignores stream_options)', async () => {
    const { usage } = await setup(body);
    const sent = (await collect(clientChunks(opened(answer()), { usage, budget: undefined, clientWantsUsage: true }))) as Sent[];
    expect(sent).toHaveLength(3);
    const last = sent.at(-1);
    expect(last?.id).toBe('chatcmpl-1');
    expect(last?.choices).toEqual([]);
    // 'Hello world!': 11 letters and a space at 4 a token, the '!' at 2: 3.25, rounded up.
    expect(last?.usage).toMatchObject({ completion_tokens: 4, total_tokens: (last?.usage?.prompt_tokens ?? 0) + 4 });
    expect(last?.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(last?.usage?.cost).toBeGreaterThan(0);
    expect(sent.slice(0, -1).every((c) => c.usage === undefined)).toBe(true);
  });

  it("sends the provider's usage chunk as it is and no estimate after it; a client that did not ask gets no usage chunk", async () => {
    const reported: chatv1.Usage = { promptTokens: 7, completionTokens: 2, totalTokens: 9, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };
    const withUsage = { ...chunk([]), usage: reported };
    const asked = (await collect(clientChunks(opened([...answer(), withUsage]), { usage: (await setup(body)).usage, budget: undefined, clientWantsUsage: true }))) as Sent[];
    expect(asked.map((c) => c.usage?.total_tokens)).toEqual([undefined, undefined, 9]);
    const unasked = (await collect(clientChunks(opened(answer()), { usage: (await setup(body)).usage, budget: undefined, clientWantsUsage: false }))) as Sent[];
    expect(unasked.map((c) => c.usage)).toEqual([undefined, undefined]);
  });
});

describe('openChat', () => {
  const calling = (deployment: string): routerv1.RouteDecision => ({ ...decision, deployment });
  const routerAnswering = (events: routerv1.ChatResponse[]): RouterPort =>
    ({
      chat: async function* () {
        yield* events;
      },
    }) as unknown as RouterPort;
  const completion: chatv1.ChatCompletion = { id: 'c', created: 1, model: 'u', choices: [] };

  it('tells each deployment called before the decision, then opens on the decision and the first answer event', async () => {
    const heard: string[] = [];
    const router = routerAnswering([{ calling: calling('d0') }, {}, { calling: calling('d') }, { decision }, { completion }]);
    const chat = await openChat(router, tenant, {} as chatv1.ChatRequest, new AbortController().signal, (c) => heard.push(c.deployment));
    expect(heard).toEqual(['d0', 'd']);
    expect(chat.decision).toBe(decision);
    expect(chat.first).toEqual({ completion });
  });

  it('reads the decision that travels with the first answer event (routed) as the two in a row', async () => {
    const heard: string[] = [];
    const chunk = { id: 'x', created: 1, model: 'u', choices: [] } as chatv1.ChatChunk;
    const router = routerAnswering([{ calling: calling('d') }, { routed: { decision, chunk } }, { chunk: { ...chunk, id: 'y' } }]);
    const chat = await openChat(router, tenant, {} as chatv1.ChatRequest, new AbortController().signal, (c) => heard.push(c.deployment));
    expect(heard).toEqual(['d']);
    expect(chat.decision).toBe(decision);
    expect(chat.first).toEqual({ chunk });
    expect((await chat.rest.next()).value).toEqual({ chunk: { ...chunk, id: 'y' } });
    expect((await chat.rest.next()).done).toBe(true);
  });

  it('refuses a router answer with no decision, or with a second announcement in place of the answer', async () => {
    const signal = new AbortController().signal;
    await expect(openChat(routerAnswering([{ calling: calling('d') }, { completion }]), tenant, {} as chatv1.ChatRequest, signal)).rejects.toMatchObject({ kind: 'upstream_error' });
    await expect(openChat(routerAnswering([{ calling: calling('d') }]), tenant, {} as chatv1.ChatRequest, signal)).rejects.toMatchObject({ kind: 'upstream_error' });
    await expect(openChat(routerAnswering([{ decision }, { calling: calling('d') }]), tenant, {} as chatv1.ChatRequest, signal)).rejects.toMatchObject({ kind: 'upstream_error', message: 'The provider returned an empty answer.' });
    await expect(openChat(routerAnswering([{ routed: { decision } }]), tenant, {} as chatv1.ChatRequest, signal)).rejects.toMatchObject({ kind: 'upstream_error', message: 'The provider returned an empty answer.' });
  });
});
