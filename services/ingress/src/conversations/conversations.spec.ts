import { Registry } from 'prom-client';
import { responsesSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { failureOf } from '../gateway-error.testing';
import type { ResponseJson } from '../responses/response-store';
import type { ConversationStore } from './conversation-store';
import { Conversations } from './conversations';
import { MemoryConversationStore } from './memory-conversation-store';

const OWNER = 'acme/search';


describe('Conversations', () => {
  let store: MemoryConversationStore;
  let registry: Registry;
  let conversations: Conversations;
  const make = (s: ConversationStore, maxConversationItems = 6): Conversations =>
    new Conversations(s, responsesSchema.parse({ maxConversationItems, maxConversationBytes: 4_000 }), createLogger('ingress', 'silent'), registry);

  beforeEach(() => {
    store = new MemoryConversationStore({ maxConversations: 100, maxBytes: 1_000_000 });
    registry = new Registry();
    conversations = make(store);
  });

  const turns = async (outcome: string): Promise<number> => (await registry.getSingleMetric('openrouter_conversation_turns_total')?.get())?.values.find((v) => v.labels['outcome'] === outcome)?.value ?? 0;

  it('creates a conversation with its items given ids and types, validated as a response input is', async () => {
    const created = await conversations.create(OWNER, { items: [{ role: 'user', content: 'Hi' }, { type: 'message', role: 'assistant', content: 'Hello.' }], metadata: { topic: 'greeting' } });
    expect(created).toMatchObject({ object: 'conversation', metadata: { topic: 'greeting' } });
    const items = await store.items(OWNER, created.id);
    expect(items?.map((i) => [i['type'], typeof i['id']])).toEqual([
      ['message', 'string'],
      ['message', 'string'],
    ]);
    expect(await failureOf(() => conversations.create(OWNER, { items: [{ type: 'item_reference', id: 'msg_1' }] }))).toMatchObject({ kind: 'bad_request', param: 'items[0]' });
    // Items that make no message on their own (reasoning alone) are taken, as OpenAI takes them.
    const reasoning = await conversations.create(OWNER, { items: [{ type: 'reasoning', summary: [{ type: 'summary_text', text: 'Thinking about tea.' }] }] });
    expect((await conversations.listItems(OWNER, reasoning.id, {}, false)).data).toEqual([expect.objectContaining({ type: 'reasoning' })]);
    expect(await failureOf(() => conversations.create(OWNER, { items: [], extra: 1 }))).toMatchObject({ kind: 'bad_request', param: 'extra' });
    // An item's own id is a non-empty string that a path can carry (at most 100 characters).
    const message = { type: 'message', role: 'user', content: 'x' };
    for (const id of ['', 'm'.repeat(101), 7]) expect(await failureOf(() => conversations.create(OWNER, { items: [message, { ...message, id }] }))).toMatchObject({ kind: 'bad_request', param: 'items[1].id' });
    const longest = await conversations.create(OWNER, { items: [{ ...message, id: 'm'.repeat(100) }, { ...message, id: null }] });
    expect((await store.items(OWNER, longest.id))?.map((i) => String(i['id']).length)).toEqual([100, expect.any(Number)]);
    expect(await failureOf(() => conversations.create(OWNER, { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }))).toMatchObject({ kind: 'bad_request', param: 'metadata' });
  });

  it('hands a response the conversation, refusing one that is full, and adds its turn, counting it', async () => {
    const { id } = await conversations.create(OWNER, { items: [{ role: 'user', content: 'Remember tea.' }] });
    expect(await conversations.history(OWNER, id, { input: 'Now coffee.' })).toHaveLength(1);
    let answers = 0;
    // Each answer's items have ids of their own, as a response's output does.
    const output = (): ResponseJson[] => [{ id: `msg_out_${(answers += 1)}`, type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Noted.', annotations: [] }] }];
    expect(await conversations.record(OWNER, id, { input: 'Now coffee.' }, output())).toBe(true);
    expect((await conversations.history(OWNER, id, { input: 'Tea again?' })).map((i) => i['role'])).toEqual(['user', 'user', 'assistant']);
    expect(await turns('added')).toBe(1);
    // An item sent again with the id it has in the conversation is not added twice.
    const held = await conversations.history(OWNER, id, { input: 'Tea again?' });
    expect(await conversations.record(OWNER, id, { input: [held[0], { role: 'user', content: 'Tea again?' }] }, [], new Set(held.map((i) => String(i['id']))))).toBe(true);
    expect((await store.items(OWNER, id))?.map((i) => i['content'])).toEqual(['Remember tea.', 'Now coffee.', expect.any(Array), 'Tea again?']);
    // Full at 6 items: the next turn is refused before any provider is called, and a turn that no longer fits (filled meanwhile) is counted as failed.
    expect(await conversations.record(OWNER, id, { input: 'a' }, output())).toBe(true);
    expect(await failureOf(() => conversations.history(OWNER, id, { input: 'b' }))).toMatchObject({ kind: 'bad_request', param: 'conversation', code: 'conversation_too_long' });
    expect(await conversations.record(OWNER, id, { input: 'c' }, output())).toBe(false);
    expect(await turns('failed')).toBe(1);
    expect(await failureOf(() => conversations.history('acme/ads', id, { input: 'x' }))).toMatchObject({ kind: 'not_found', param: 'conversation', code: 'conversation_not_found' });
  });

  it('refuses a turn that its conversation has no room for: its input and at least one output item, before any provider is called', async () => {
    const message = (content: string): ResponseJson => ({ type: 'message', role: 'user', content });
    const { id } = await conversations.create(OWNER, { items: [message('a'), message('b'), message('c'), message('d')] });
    // Four items, one input and its answer make the six the conversation may hold.
    const held = await conversations.history(OWNER, id, { input: 'e' });
    expect(held).toHaveLength(4);
    // Two inputs and an answer would make seven: refused, rather than answered and then lost.
    expect(await failureOf(() => conversations.history(OWNER, id, { input: [message('e'), message('f')] }))).toMatchObject({ kind: 'bad_request', param: 'conversation', code: 'conversation_too_long' });
    // An input item sent again with its id in the conversation is not added again, so takes no room.
    expect(await conversations.history(OWNER, id, { input: [held[0], message('e')] })).toHaveLength(4);
    await conversations.addItems(OWNER, id, { items: [message('e')] }, false);
    // Five items: no turn fits (its input and answer would make seven), not even one that would be lost.
    expect(await failureOf(() => conversations.history(OWNER, id, { input: 'f' }))).toMatchObject({ kind: 'bad_request', param: 'conversation', code: 'conversation_too_long' });
    // Bytes (4,000 at most): an input that with what the conversation holds fills them leaves no room for an answer.
    const roomy = await conversations.create(OWNER, { items: [message('x'.repeat(2_000))] });
    expect(await failureOf(() => conversations.history(OWNER, roomy.id, { input: 'y'.repeat(2_000) }))).toMatchObject({ kind: 'bad_request', param: 'conversation', code: 'conversation_too_long' });
    expect(await conversations.history(OWNER, roomy.id, { input: 'y'.repeat(1_000) })).toHaveLength(1);
  });

  it("replaces a conversation's metadata, null leaving it none (as the SDK types it)", async () => {
    const { id } = await conversations.create(OWNER, { metadata: { topic: 'tea' } });
    expect(await conversations.update(OWNER, id, { metadata: { topic: 'coffee' } })).toMatchObject({ id, metadata: { topic: 'coffee' } });
    expect(await conversations.update(OWNER, id, { metadata: null })).toMatchObject({ id, metadata: {} });
    expect((await conversations.get(OWNER, id)).metadata).toEqual({});
    expect(await failureOf(() => conversations.update(OWNER, id, {}))).toMatchObject({ kind: 'bad_request', param: 'metadata' });
  });

  it("refuses items whose id the conversation holds, or that come twice, with 400 naming items[i].id, adding nothing of the request", async () => {
    const { id } = await conversations.create(OWNER, { items: [{ type: 'message', id: 'msg_tea', role: 'user', content: 'Remember tea.' }] });
    const added = await conversations.addItems(OWNER, id, { items: [{ type: 'message', id: 'msg_coffee', role: 'user', content: 'And coffee.' }] }, false);
    expect(added.data.map((i) => i['id'])).toEqual(['msg_coffee']);
    const again = { items: [{ role: 'user', content: 'New.' }, { type: 'message', id: 'msg_tea', role: 'user', content: 'Tea again.' }] };
    expect(await failureOf(() => conversations.addItems(OWNER, id, again, false))).toMatchObject({ kind: 'bad_request', param: 'items[1].id', code: 'invalid_value', message: expect.stringContaining("'msg_tea' is already in conversation") });
    const twice = { items: [{ type: 'message', id: 'msg_x', role: 'user', content: 'One.' }, { role: 'user', content: 'Two.' }, { type: 'message', id: 'msg_x', role: 'user', content: 'Three.' }] };
    expect(await failureOf(() => conversations.addItems(OWNER, id, twice, false))).toMatchObject({ kind: 'bad_request', param: 'items[2].id', code: 'invalid_value' });
    expect(await failureOf(() => conversations.create(OWNER, twice))).toMatchObject({ kind: 'bad_request', param: 'items[2].id', code: 'invalid_value' });
    expect((await store.items(OWNER, id))?.map((i) => i['id'])).toEqual(['msg_tea', 'msg_coffee']);
  });

  it("adds a response's turn once per item id: an input item sent twice, or added meanwhile by another request, is left out, the rest added", async () => {
    const { id } = await conversations.create(OWNER, {});
    const tea = { type: 'message', id: 'msg_tea', role: 'user', content: 'Tea?' };
    // Added by another request after this one read the conversation (held was read empty).
    await conversations.addItems(OWNER, id, { items: [tea] }, false);
    const answer = [{ id: 'msg_out', type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Tea.', annotations: [] }] }];
    expect(await conversations.record(OWNER, id, { input: [tea, tea, { role: 'user', content: 'Milk?' }] }, answer, new Set())).toBe(true);
    expect((await store.items(OWNER, id))?.map((i) => i['id'])).toEqual(['msg_tea', expect.any(String), 'msg_out']);
    expect(await turns('added')).toBe(1);
  });

  it('answers 503 while its store is away, and counts a turn it could not add without failing the answer', async () => {
    const away = new Proxy(store, { get: (target, name) => (typeof Reflect.get(target, name) === 'function' && name !== 'constructor' ? () => Promise.reject(new Error('connection lost')) : Reflect.get(target, name)) });
    registry = new Registry();
    const broken = make(away);
    expect(await failureOf(() => broken.create(OWNER, {}))).toMatchObject({ kind: 'unavailable', code: 'conversation_store_unavailable' });
    expect(await failureOf(() => broken.history(OWNER, 'conv_x', { input: 'x' }))).toMatchObject({ kind: 'unavailable', code: 'conversation_store_unavailable' });
    expect(await failureOf(() => broken.listItems(OWNER, 'conv_x', {}, false))).toMatchObject({ kind: 'unavailable' });
    expect(await broken.record(OWNER, 'conv_x', { input: 'x' }, [])).toBe(false);
    expect(await turns('failed')).toBe(1);
  });
});
