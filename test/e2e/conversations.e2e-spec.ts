import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { hashApiKey } from '@openrouter/ingress';
import { apiError } from '../support/api-error';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * OpenAI's Conversations API through the whole gateway with the official SDK
 * (docs/responses-api.md#conversations): a conversation created with items and metadata, its items
 * listed, added, read and deleted; responses made with `conversation` sent its items before their
 * input and adding their input and output to it (whole, streamed, a tool loop); every way a
 * conversation is refused. Kept in this process and in the access store's Redis.
 */

const SECRET = 'conversations-e2e-secret';
const SEARCH_KEY = 'sk-or-v1-conv-e2e-search-000000000000000';
const SEARCH_OTHER_KEY = 'sk-or-v1-conv-e2e-search-111111111111111';
const ADS_KEY = 'sk-or-v1-conv-e2e-ads-0000000000000000000';
const VAULT_KEY = 'sk-or-v1-conv-e2e-vault-00000000000000000';

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

type Message = { role: string; content?: unknown; tool_calls?: unknown[]; tool_call_id?: string };

function configure(redis: { url: string; keyPrefix: string } | undefined) {
  return (doc: Record<string, unknown>): void => {
    doc['access'] = {
      ...(doc['access'] as object),
      keyHashSecret: SECRET,
      ...(redis ? { redis } : {}),
      orgs: [
        { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
        { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }, { id: 'vault', policy: { storeResponses: false } }] }] },
      ],
      keys: [
        { id: 'search-1', hash: hashApiKey(SECRET, SEARCH_KEY), prefix: 'sk-or-v1-con', org: 'acme', project: 'search' },
        { id: 'search-2', hash: hashApiKey(SECRET, SEARCH_OTHER_KEY), prefix: 'sk-or-v1-con', org: 'acme', project: 'search' },
        { id: 'ads-1', hash: hashApiKey(SECRET, ADS_KEY), prefix: 'sk-or-v1-con', org: 'acme', project: 'ads' },
        { id: 'vault-1', hash: hashApiKey(SECRET, VAULT_KEY), prefix: 'sk-or-v1-con', org: 'acme', project: 'vault' },
      ],
    };
    doc['responses'] = { maxConversationItems: 8 };
  };
}

describe.each([
  ['in this process', false],
  ['in Redis', true],
])('conversations through the gateway, kept %s', (_, withRedis) => {
  let gw: TestGateway;
  let search: OpenAI;
  const keyPrefix = `conversations-e2e-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    gw = await startTestGateway({ configure: configure(withRedis ? { url: sharedRedisUrl(), keyPrefix } : undefined) });
    search = gw.client({ apiKey: SEARCH_KEY });
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  /** The chat body the provider was sent for the last request. */
  const upstreamMessages = (): Message[] => (gw.sim.requests().at(-1)?.body as { messages: Message[] }).messages;

  it('creates a conversation with items and metadata, and every key of the project reads, changes and deletes it', async () => {
    const created = await search.conversations.create({ metadata: { topic: 'colours' }, items: [{ type: 'message', role: 'user', content: 'I like blue.' }] });
    expect(created).toMatchObject({ object: 'conversation', metadata: { topic: 'colours' } });
    expect(created.id).toMatch(/^conv_[0-9a-f]{48}$/);
    expect(created.created_at).toEqual(expect.any(Number));

    const other = gw.client({ apiKey: SEARCH_OTHER_KEY });
    expect(await other.conversations.retrieve(created.id)).toEqual(created);
    const items = await other.conversations.items.list(created.id);
    expect(items.data).toEqual([expect.objectContaining({ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'I like blue.' }] })]);
    const [first] = items.data;
    expect(await other.conversations.items.retrieve(first!.id as string, { conversation_id: created.id })).toEqual(first);

    expect(await other.conversations.update(created.id, { metadata: { topic: 'shades' } })).toMatchObject({ id: created.id, metadata: { topic: 'shades' } });
    expect((await search.conversations.retrieve(created.id)).metadata).toEqual({ topic: 'shades' });

    // Another project's key finds nothing.
    const ads = gw.client({ apiKey: ADS_KEY });
    for (const call of [() => ads.conversations.retrieve(created.id), () => ads.conversations.items.list(created.id), () => ads.conversations.delete(created.id), () => ads.responses.create({ model: 'gpt-4o-mini', conversation: created.id, input: 'Hi' })]) {
      expect((await apiError(call)).status).toBe(404);
    }

    expect(await other.conversations.delete(created.id)).toEqual({ id: created.id, object: 'conversation.deleted', deleted: true });
    expect(await apiError(() => search.conversations.retrieve(created.id))).toMatchObject({ status: 404, code: 'conversation_not_found' });
  });

  it('sends a response the conversation before its input, and adds its input and output to it, turn after turn', async () => {
    const conversation = await search.conversations.create({ items: [{ type: 'message', role: 'developer', content: 'Answer in one word.' }] });
    const first = await search.responses.create({ model: 'gpt-4o-mini', conversation: conversation.id, input: 'Name a colour.' });
    expect(first).toMatchObject({ status: 'completed', conversation: { id: conversation.id } });
    expect(upstreamMessages()).toEqual([
      { role: 'developer', content: 'Answer in one word.' },
      { role: 'user', content: 'Name a colour.' },
    ]);

    const second = await search.responses.create({ model: 'gpt-4o-mini', conversation: { id: conversation.id }, input: 'Another?', store: false });
    expect(second).toMatchObject({ status: 'completed', store: false, conversation: { id: conversation.id } });
    expect(upstreamMessages()).toEqual([
      { role: 'developer', content: 'Answer in one word.' },
      { role: 'user', content: 'Name a colour.' },
      { role: 'assistant', content: first.output_text },
      { role: 'user', content: 'Another?' },
    ]);

    // Streamed, it is added once the stream completes.
    const streamed = await search.responses.stream({ model: 'gpt-4o-mini', conversation: conversation.id, input: 'And a third?' }).finalResponse();
    expect(streamed.conversation).toEqual({ id: conversation.id });

    const items = await search.conversations.items.list(conversation.id, { order: 'asc', limit: 100 });
    expect(items.data.map((i) => [i.type, 'role' in i ? i.role : undefined])).toEqual([
      ['message', 'developer'],
      ['message', 'user'],
      ['message', 'assistant'],
      ['message', 'user'],
      ['message', 'assistant'],
      ['message', 'user'],
      ['message', 'assistant'],
    ]);
    expect(items.data[2]).toMatchObject({ id: first.output[0]!.id, content: [expect.objectContaining({ type: 'output_text', text: first.output_text })] });
    // Pages, newest first by default.
    const page = await search.conversations.items.list(conversation.id, { limit: 2 });
    expect(page.data.map((i) => i.id)).toEqual([items.data[6]!.id, items.data[5]!.id]);
    expect(page.has_more).toBe(true);
    const next = await search.conversations.items.list(conversation.id, { limit: 2, after: page.data[1]!.id as string });
    expect(next.data.map((i) => i.id)).toEqual([items.data[4]!.id, items.data[3]!.id]);
  });

  it('runs a tool loop in a conversation: the call is kept, and the output added later answers it', async () => {
    const conversation = await search.conversations.create();
    const asked = await search.responses.create({ model: 'gpt-4o-mini', conversation: conversation.id, tools: [weather], tool_choice: 'required', input: 'Weather in Oslo?' });
    const call = asked.output.find((item) => item.type === 'function_call');
    if (call?.type !== 'function_call') throw new Error('no function call in the output');
    const answered = await search.responses.create({ model: 'gpt-4o-mini', conversation: conversation.id, tools: [weather], input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"celsius":4}' }] });
    expect(answered.output_text).toMatch(/^Tool result received\./);
    const sent = upstreamMessages();
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(sent[1]?.tool_calls).toEqual([expect.objectContaining({ id: call.call_id, function: { name: 'get_weather', arguments: call.arguments } })]);
    expect(sent[2]).toEqual({ role: 'tool', tool_call_id: call.call_id, content: '{"celsius":4}' });
    const kinds = (await search.conversations.items.list(conversation.id, { order: 'asc' })).data.map((i) => i.type);
    expect(kinds).toEqual(['message', 'function_call', 'function_call_output', 'message']);
  });

  it('adds and deletes items by hand, and the next response sends what is there', async () => {
    const conversation = await search.conversations.create();
    const added = await search.conversations.items.create(conversation.id, { items: [{ type: 'message', role: 'user', content: 'Remember: tea.' }, { type: 'message', role: 'user', content: 'Forget this.' }] });
    expect(added).toMatchObject({ object: 'list', has_more: false });
    expect(added.data).toHaveLength(2);
    const forget = added.data[1]!.id as string;
    expect(await search.conversations.items.delete(forget, { conversation_id: conversation.id })).toMatchObject({ id: conversation.id, object: 'conversation' });
    expect(await apiError(() => search.conversations.items.retrieve(forget, { conversation_id: conversation.id }))).toMatchObject({ status: 404, code: 'item_not_found' });
    await search.responses.create({ model: 'gpt-4o-mini', conversation: conversation.id, input: 'What to drink?' });
    expect(upstreamMessages()).toEqual([
      { role: 'user', content: 'Remember: tea.' },
      { role: 'user', content: 'What to drink?' },
    ]);
  });

  it('refuses what it cannot keep, in OpenAI’s error shape, before any provider is called', async () => {
    const before = gw.sim.requests().length;
    const conversation = await search.conversations.create();
    expect(await apiError(() => search.responses.create({ model: 'gpt-4o-mini', conversation: 'conv_unknown', input: 'x' }))).toMatchObject({ status: 404, param: 'conversation', code: 'conversation_not_found' });
    expect(await apiError(() => search.responses.create({ model: 'gpt-4o-mini', conversation: conversation.id, previous_response_id: 'resp_x', input: 'x' }))).toMatchObject({ status: 400, param: 'conversation', code: 'invalid_value' });
    // Items are validated as a response's input is, and named as items.
    expect(await apiError(() => search.conversations.items.create(conversation.id, { items: [{ type: 'web_search_call' } as never] }))).toMatchObject({ status: 400, param: 'items[0].type' });
    expect(await apiError(() => search.conversations.create({ metadata: { ['k'.repeat(65)]: 'v' } }))).toMatchObject({ status: 400 });
    expect(await apiError(() => search.conversations.create({ items: Array.from({ length: 21 }, () => ({ type: 'message' as const, role: 'user' as const, content: 'x' })) }))).toMatchObject({ status: 400, param: 'items' });
    expect(await apiError(() => search.conversations.items.list(conversation.id, { after: 'msg_unknown' }))).toMatchObject({ status: 400, param: 'after' });
    // maxConversationItems (8): adding past it is refused whole, and a response on a full conversation is refused.
    await search.conversations.items.create(conversation.id, { items: Array.from({ length: 8 }, (_, i) => ({ type: 'message' as const, role: 'user' as const, content: `n${i}` })) });
    expect(await apiError(() => search.conversations.items.create(conversation.id, { items: [{ type: 'message', role: 'user', content: 'one more' }] }))).toMatchObject({ status: 400, code: 'conversation_too_long' });
    expect(await apiError(() => search.responses.create({ model: 'gpt-4o-mini', conversation: conversation.id, input: 'x' }))).toMatchObject({ status: 400, param: 'conversation', code: 'conversation_too_long' });
    // A project whose policy keeps nothing keeps no conversation.
    const vault = gw.client({ apiKey: VAULT_KEY });
    expect(await apiError(() => vault.conversations.create())).toMatchObject({ status: 403, code: 'conversations_not_allowed' });
    expect(await apiError(() => vault.responses.create({ model: 'gpt-4o-mini', conversation: conversation.id, input: 'x' }))).toMatchObject({ status: 400, param: 'conversation', code: 'unsupported_parameter' });
    expect(gw.sim.requests().length).toBe(before);
  });
});

describe('a conversation longer than the messages one request may have', () => {
  let gw: TestGateway;
  let search: OpenAI;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        configure(undefined)(doc);
        (doc['access'] as Record<string, unknown>)['requests'] = { maxMessages: 4 };
      },
    });
    search = gw.client({ apiKey: SEARCH_KEY });
  });
  afterAll(async () => gw?.close());

  it('refuses the turn as the conversation being too long, naming it, not as too much input', async () => {
    const conversation = await search.conversations.create({ items: Array.from({ length: 3 }, (_, i) => ({ type: 'message' as const, role: 'user' as const, content: `n${i}` })) });
    // Three items and this input: four messages, served.
    await expect(search.responses.create({ model: 'gpt-4o-mini', conversation: conversation.id, input: 'first' })).resolves.toMatchObject({ status: 'completed' });
    // The turn's input and output joined it: six items and the next input are past the four.
    const before = gw.sim.requests().length;
    const error = await apiError(() => search.responses.create({ model: 'gpt-4o-mini', conversation: conversation.id, input: 'second' }));
    expect(error).toMatchObject({ status: 400, param: 'conversation', code: 'conversation_too_long' });
    expect(error.message).toContain('at most 4 (access.requests.maxMessages)');
    // The same turn continued with previous_response_id instead: named so.
    const first = await search.responses.create({ model: 'gpt-4o-mini', input: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }, { role: 'user', content: 'c' }] });
    expect(await apiError(() => search.responses.create({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'd' }))).toMatchObject({ status: 400, param: 'previous_response_id', code: 'conversation_too_long' });
    expect(gw.sim.requests().length).toBe(before + 1);
  });
});
