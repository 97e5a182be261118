import type { FastifyRequest } from 'fastify';
import { responsesSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import type { ApiKeyRecord } from '../access/key-record';
import { failureOf } from '../gateway-error.testing';
import { ConversationsHttpController } from './conversations.http.controller';
import { Conversations } from './conversations';
import { MemoryConversationStore } from './memory-conversation-store';

const DAY_MS = 86_400_000;

/** A request of a key of project acme/search; the key `vault` is one whose own policy keeps nothing of its responses. */
const as = (keyId: 'search' | 'vault'): FastifyRequest =>
  ({ apiKeyRecord: { id: keyId } as ApiKeyRecord, requestContext: { orgId: 'acme', projectId: 'search', keyId } }) as unknown as FastifyRequest;

describe('ConversationsHttpController', () => {
  let now: number;
  let controller: ConversationsHttpController;

  beforeEach(() => {
    now = 1_750_000_000_000;
    const store = new MemoryConversationStore({ maxConversations: 100, maxBytes: 1_000_000 }, () => now);
    const conversations = new Conversations(store, responsesSchema.parse({ retentionDays: 30 }), createLogger('ingress', 'silent'), undefined, () => now);
    const access = { responsesUnstoredBy: async (key: ApiKeyRecord) => (key.id === 'vault' ? ('key' as const) : undefined) };
    controller = new ConversationsHttpController(access as never, conversations);
  });

  it('keeps a conversation no longer for what a key whose policy keeps nothing changes in it, as long again for any other key', async () => {
    const kept = await controller.create(as('search'), { items: [{ role: 'user', content: 'Tea.' }, { role: 'user', content: 'Coffee.' }] });
    const lengthened = await controller.create(as('search'), {});
    expect(await failureOf(() => controller.create(as('vault'), {}))).toMatchObject({ kind: 'permission_denied', code: 'conversations_not_allowed' });
    // 20 of its 30 days on, the keys change them: the vault key's changes are made, its expiry left as it was.
    now += 20 * DAY_MS;
    expect(await controller.update(as('vault'), kept.id, { metadata: { topic: 'drinks' } })).toMatchObject({ metadata: { topic: 'drinks' } });
    const [first] = (await controller.listItems(as('vault'), kept.id, { order: 'asc' })).data;
    expect(await controller.removeItem(as('vault'), kept.id, String(first?.['id']))).toMatchObject({ id: kept.id });
    expect((await controller.listItems(as('vault'), kept.id, {})).data).toHaveLength(1);
    expect(await controller.update(as('search'), lengthened.id, { metadata: { topic: 'drinks' } })).toMatchObject({ metadata: { topic: 'drinks' } });
    // Past the 30 days: the one the vault key changed has expired, the other is kept 30 days from its change.
    now += 11 * DAY_MS;
    expect(await failureOf(() => controller.retrieve(as('search'), kept.id))).toMatchObject({ kind: 'not_found', code: 'conversation_not_found' });
    expect(await controller.retrieve(as('search'), lengthened.id)).toMatchObject({ id: lengthened.id, metadata: { topic: 'drinks' } });
  });
});
