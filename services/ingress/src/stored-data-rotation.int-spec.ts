import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { StoreSecrets } from './access/sealed-text';
import { RedisBatchStore } from './batches/redis-batch-store';
import { batchRecord } from './batches/batch-store.cases.testing';
import { RedisFileStore } from './batches/redis-file-store';
import { storedFile } from './batches/file-store.cases.testing';
import { storedCompletion, TOMORROW_MS as CHAT_TOMORROW_MS } from './chat-store/chat-completion-store.cases.testing';
import { RedisChatCompletionStore } from './chat-store/redis-chat-completion-store';
import { conversationRecord, turnItems, TOMORROW_MS as CONVERSATION_TOMORROW_MS } from './conversations/conversation-store.cases.testing';
import { RedisConversationStore } from './conversations/redis-conversation-store';
import { backgroundJob } from './responses/background-store.cases.testing';
import { RedisBackgroundStore } from './responses/redis-background-store';
import { RedisResponseEventLog } from './responses/redis-response-event-log';
import { RedisResponseStore } from './responses/redis-response-store';
import { storedResponse, TOMORROW_MS as RESPONSE_TOMORROW_MS } from './responses/response-store.cases.testing';

/** The redis-server the integration project's global setup started. */
function testRedisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const OLD = 'stored-data-rotation-old-secret';
const NEW = 'stored-data-rotation-new-secret';
/** A replica restarted for the rotation: the new secret, the old one still accepted. */
const ROTATING: StoreSecrets = { current: NEW, previous: [OLD] };
/** One restarted once the old secret is dropped from `previousKeyHashSecrets`. */
const ROTATED: StoreSecrets = { current: NEW };
const OWNER = 'acme/search';

/**
 * What the gateway keeps for clients in Redis, across a rotation of `access.keyHashSecret`
 * (docs/access.md#rotating-the-hash-secret): what a replica stored under the old secret still opens,
 * is listed and is purged on a replica that has the new secret and the old one in
 * `previousKeyHashSecrets`; what is stored then is sealed under the new one.
 */
describe('the Redis stores of stored data across a rotation of the hash secret', () => {
  let redis: Redis;
  let prefix: string;

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  beforeEach(() => {
    prefix = `rotation-spec:${randomBytes(6).toString('hex')}:`;
  });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  });
  afterAll(async () => redis?.quit());

  it('stored chat completions: opened, listed with those stored since (the old index moved into the new), purged', async () => {
    const before = storedCompletion(OWNER, 'before');
    await new RedisChatCompletionStore(redis, prefix, OLD).put(before, CHAT_TOMORROW_MS);
    expect(await new RedisChatCompletionStore(redis, prefix, ROTATED).get(OWNER, before.id)).toBeUndefined();

    const store = new RedisChatCompletionStore(redis, prefix, ROTATING);
    expect(await store.get(OWNER, before.id)).toEqual(before);
    const since = storedCompletion(OWNER, 'since', { createdAtMs: before.createdAtMs + 1 });
    await store.put(since, CHAT_TOMORROW_MS);
    expect((await store.ids(OWNER, { order: 'asc', count: 10 }))?.map((entry) => entry.id)).toEqual([before.id, since.id]);
    // One index now, expiring with its latest completion.
    const indexes = await redis.keys(`${prefix}chatcmpl:owner:*`);
    expect(indexes).toHaveLength(1);
    expect(await redis.pexpiretime(indexes[0] ?? '')).toBe(CHAT_TOMORROW_MS);
    // Changed since: sealed under the new secret, so a replica without the old one opens it.
    await store.setMetadata(OWNER, before.id, { moved: 'yes' });
    expect((await new RedisChatCompletionStore(redis, prefix, ROTATED).get(OWNER, before.id))?.metadata).toEqual({ moved: 'yes' });

    // Stored by a replica not yet restarted (old secret only): purged with the rest.
    await new RedisChatCompletionStore(redis, prefix, OLD).put(storedCompletion(OWNER, 'late'), CHAT_TOMORROW_MS);
    expect(await store.purgeOwner(OWNER)).toBe(3);
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
  });

  it('stored responses: opened, and purged from the index of either secret', async () => {
    const before = storedResponse(OWNER, 'before');
    await new RedisResponseStore(redis, prefix, OLD).put(before, RESPONSE_TOMORROW_MS);
    expect(await new RedisResponseStore(redis, prefix, ROTATED).get(OWNER, before.id)).toBeUndefined();
    const store = new RedisResponseStore(redis, prefix, ROTATING);
    expect(await store.get(OWNER, before.id)).toEqual(before);
    await store.put(storedResponse(OWNER, 'since'), RESPONSE_TOMORROW_MS);
    expect(await store.purgeOwner(OWNER)).toBe(2);
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
  });

  it('conversations: the record and its items opened, and purged from the index of either secret', async () => {
    const record = conversationRecord(OWNER);
    const items = turnItems('before');
    await new RedisConversationStore(redis, prefix, OLD).create(record, items, CONVERSATION_TOMORROW_MS);
    const store = new RedisConversationStore(redis, prefix, ROTATING);
    expect((await store.get(OWNER, record.id))?.record).toEqual(record);
    expect(await store.items(OWNER, record.id)).toEqual(items);
    expect(await new RedisConversationStore(redis, prefix, ROTATED).items(OWNER, record.id)).toBeUndefined();
    expect(await store.purgeOwner(OWNER)).toBe(1);
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
  });

  it("files' content and batches' input and results, opened", async () => {
    const file = storedFile(OWNER, 0);
    await new RedisFileStore(redis, prefix, OLD).put(file, Buffer.from('{"a":1}\n'));
    expect((await new RedisFileStore(redis, prefix, ROTATING).content(OWNER, file.id))?.toString('utf8')).toBe('{"a":1}\n');
    // Without the old secret, the content is gone (404), not a store failure.
    expect(await new RedisFileStore(redis, prefix, ROTATED).content(OWNER, file.id)).toBeUndefined();

    const batch = batchRecord(OWNER, 0);
    const old = new RedisBatchStore(redis, prefix, OLD, 86_400_000);
    await old.create(batch, Buffer.from('line\n'));
    await old.saveResult(batch.id, 0, '{"ok":true}');
    const rotating = new RedisBatchStore(redis, prefix, ROTATING, 86_400_000);
    expect((await rotating.input(batch.id))?.toString('utf8')).toBe('line\n');
    await rotating.saveResult(batch.id, 1, '{"ok":false}');
    expect(await rotating.results(batch.id)).toEqual(
      new Map([
        [0, '{"ok":true}'],
        [1, '{"ok":false}'],
      ]),
    );
  });

  it("queued background responses' jobs and their stream events, opened", async () => {
    const job = backgroundJob(OWNER, 'queued before');
    expect(await new RedisBackgroundStore(redis, prefix, OLD).create(job, CHAT_TOMORROW_MS, 10)).toBe(true);
    expect((await new RedisBackgroundStore(redis, prefix, ROTATING).byId(job.record.id))?.job).toEqual(job);
    expect(await new RedisBackgroundStore(redis, prefix, ROTATED).byId(job.record.id)).toBeUndefined();

    const id = job.record.id;
    const oldLog = new RedisResponseEventLog(redis, prefix, OLD, 50);
    await oldLog.append(id, 0, [{ type: 'response.created' }, { type: 'response.queued' }], CHAT_TOMORROW_MS);
    const log = new RedisResponseEventLog(redis, prefix, ROTATING, 50);
    await log.append(id, 2, [{ type: 'response.in_progress' }], CHAT_TOMORROW_MS);
    expect((await log.read(id, -1, 10)).map((event) => [event.type, event.sequence_number])).toEqual([
      ['response.created', 0],
      ['response.queued', 1],
      ['response.in_progress', 2],
    ]);
    await Promise.all([oldLog.close(), log.close()]);
  });
});
