import { responsesSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { failureOf } from '../gateway-error.testing';
import { MemoryBackgroundStore, type BackgroundStore } from './background-store';
import { MemoryResponseStore } from './memory-response-store';
import { MemoryResponseEventLog } from './response-event-log';
import { storedResponse } from './response-store.cases.testing';
import { NEW_CONVERSATION, StoredResponses, type BackgroundRequest } from './stored-responses';

const OWNER = 'acme/search';
const logger = createLogger('ingress', 'silent');

const request = (prompt: string, owner = OWNER): BackgroundRequest => ({
  owner,
  keyId: 'search-1',
  model: 'gpt-4o-mini',
  request: { model: 'gpt-4o-mini', input: prompt, instructions: 'Be brief.' },
  headers: { 'x-openrouter-tags': 'job=nightly' },
  conversation: NEW_CONVERSATION,
});

describe('StoredResponses: background responses', () => {
  let responses: MemoryResponseStore;
  let pending: MemoryBackgroundStore;
  let stored: StoredResponses;
  const cancels: string[] = [];

  const make = (changes: { maxPending?: number; pending?: BackgroundStore | undefined } = {}): StoredResponses => {
    const config = responsesSchema.parse({ background: { maxPending: changes.maxPending ?? 10 } });
    const made = new StoredResponses(responses, config, logger, undefined, Date.now, 'pending' in changes ? changes.pending : pending);
    made.onCancel = (id) => void cancels.push(id);
    return made;
  };

  beforeEach(() => {
    responses = new MemoryResponseStore({ maxResponses: 100, maxBytes: 1_000_000 });
    pending = new MemoryBackgroundStore();
    cancels.length = 0;
    stored = make();
  });

  it('queues a response: shown queued with the request echoed, its input items, and its job kept to run as the key with its headers', async () => {
    const record = await stored.queue(request('Write a report.'));
    expect(record.response).toMatchObject({ id: record.id, status: 'queued', background: true, store: true, output: [], usage: null, instructions: 'Be brief.', model: 'gpt-4o-mini' });
    expect(record.input).toEqual([expect.objectContaining({ type: 'message', role: 'user', content: 'Write a report.' })]);
    expect(await stored.get(OWNER, record.id)).toEqual(record);
    const job = await pending.byId(record.id);
    expect(job).toMatchObject({ state: 'queued', job: { keyId: 'search-1', request: { input: 'Write a report.' }, headers: { 'x-openrouter-tags': 'job=nightly' } } });
    // Another project does not find it.
    expect((await failureOf(() => stored.get('acme/ads', record.id))).code).toBe('response_not_found');
  });

  it('refuses a response past maxPending with 503 background_queue_full, and takes one again once one has ended', async () => {
    stored = make({ maxPending: 2 });
    const first = await stored.queue(request('one'));
    await stored.queue(request('two'));
    const full = await failureOf(() => stored.queue(request('three')));
    expect(full).toMatchObject({ kind: 'overloaded', code: 'background_queue_full', retryable: true });
    expect(full.retryAfterMs).toBeGreaterThan(0);
    await pending.finish(first.id);
    expect((await stored.queue(request('three'))).response['status']).toBe('queued');
  });

  it('shows a running response in_progress, and one cancelled cancelled, until it ends', async () => {
    const record = await stored.queue(request('Run me.'));
    await pending.start(record.id);
    expect((await stored.get(OWNER, record.id)).response['status']).toBe('in_progress');
    const cancelled = await stored.cancel(OWNER, record.id);
    expect(cancelled.response).toMatchObject({ id: record.id, status: 'cancelled' });
    expect(cancels).toEqual([record.id]);
    expect(await pending.state(record.id)).toBe('cancelling');
    expect((await stored.get(OWNER, record.id)).response['status']).toBe('cancelled');
  });

  it('stores a response that ended without an answer, and answers a cancel of it as it ended', async () => {
    const record = await stored.queue(request('Fail me.'));
    const job = await pending.byId(record.id);
    await stored.endPending(job!.job, 'failed', { code: 'server_error', message: 'The provider failed.' });
    await pending.finish(record.id);
    const ended = await stored.get(OWNER, record.id);
    expect(ended.response).toMatchObject({ id: record.id, status: 'failed', background: true, error: { code: 'server_error', message: 'The provider failed.' }, output: [] });
    expect(ended.input).toEqual(record.input);
    expect((await stored.cancel(OWNER, record.id)).response['status']).toBe('failed');
    expect(cancels).toEqual([]);
  });

  it('keeps an answer stored first when its run is then cancelled or failed', async () => {
    const record = await stored.queue(request('Answer me.'));
    const job = (await pending.byId(record.id))!.job;
    await responses.put({ ...record, response: { ...record.response, status: 'completed', output: [{ type: 'message' }] } }, Date.now() + 60_000);
    expect(await stored.ended(OWNER, record.id)).toBe(true);
    await stored.endPending(job, 'cancelled', null);
    expect((await stored.get(OWNER, record.id)).response['status']).toBe('completed');
  });

  it('stores the answer a run got when the run itself could not, under the queued id and time, unless one was stored meanwhile', async () => {
    const record = await stored.queue(request('Answer me.'));
    const job = (await pending.byId(record.id))?.job;
    if (!job) throw new Error('not queued');
    const answer = { id: 'resp_other', object: 'response', created_at: 1, status: 'completed', store: false, output: [{ type: 'message', id: 'msg_a', role: 'assistant', content: [] }] };
    await stored.endAnswered(job, answer);
    expect((await stored.get(OWNER, record.id)).response).toMatchObject({ id: record.id, created_at: record.createdAt, status: 'completed', background: true, store: true, output: answer.output });
    // Again (a run that lost its claim meanwhile): what was stored stays.
    await stored.endAnswered(job, { ...answer, status: 'incomplete' });
    expect((await stored.get(OWNER, record.id)).response['status']).toBe('completed');
  });

  it('refuses to continue or delete a response that has not ended, and to cancel one that was not created in the background', async () => {
    const record = await stored.queue(request('Not yet.'));
    expect(await failureOf(() => stored.conversation(OWNER, record.id))).toMatchObject({ kind: 'bad_request', param: 'previous_response_id', code: 'previous_response_in_progress' });
    expect(await failureOf(() => stored.delete(OWNER, record.id))).toMatchObject({ kind: 'conflict', code: 'response_in_progress' });
    const plain = storedResponse(OWNER, 'plain');
    await responses.put(plain, Date.now() + 60_000);
    expect(await failureOf(() => stored.cancel(OWNER, plain.id))).toMatchObject({ kind: 'bad_request', code: 'response_not_cancellable' });
    expect(await failureOf(() => stored.cancel(OWNER, 'resp_unknown'))).toMatchObject({ kind: 'not_found', code: 'response_not_found' });
    expect(await failureOf(() => stored.cancel('acme/ads', record.id))).toMatchObject({ kind: 'not_found' });
    expect(cancels).toEqual([]);
  });

  it('refuses background without a pending store, and answers 503 when the pending store is away', async () => {
    expect(await failureOf(() => make({ pending: undefined }).queue(request('x')))).toMatchObject({ kind: 'bad_request', param: 'background', code: 'unsupported_parameter' });
    const away = new MemoryBackgroundStore();
    const broken = new Proxy(away, {
      get: (target, name) => (name === 'create' || name === 'get' || name === 'cancel' ? () => Promise.reject(new Error('connection lost')) : Reflect.get(target, name)),
    });
    const withBroken = make({ pending: broken });
    expect(await failureOf(() => withBroken.queue(request('x')))).toMatchObject({ kind: 'unavailable', code: 'response_store_unavailable' });
    expect(await failureOf(() => withBroken.get(OWNER, 'resp_unknown'))).toMatchObject({ kind: 'unavailable', code: 'response_store_unavailable' });
    expect(await failureOf(() => withBroken.cancel(OWNER, 'resp_unknown'))).toMatchObject({ kind: 'unavailable', code: 'response_store_unavailable' });
  });
});

describe('StoredResponses: ending the stream of a streamed background response', () => {
  let responses: MemoryResponseStore;
  let pending: MemoryBackgroundStore;
  let events: MemoryResponseEventLog;
  let stored: StoredResponses;

  beforeEach(() => {
    responses = new MemoryResponseStore({ maxResponses: 100, maxBytes: 1_000_000 });
    pending = new MemoryBackgroundStore();
    events = new MemoryResponseEventLog();
    stored = new StoredResponses(responses, responsesSchema.parse({}), logger, undefined, Date.now, pending, events);
  });

  /** A streamed response queued, its job, and its answer stored (with an encrypted reasoning item, shown only when included). */
  async function answered(): Promise<{ id: string; job: Parameters<StoredResponses['endAnswered']>[0] }> {
    const record = await stored.queue({ ...request('Stream me.'), request: { model: 'gpt-4o-mini', input: 'Stream me.', stream: true } });
    const job = (await pending.byId(record.id))?.job;
    if (!job) throw new Error('not queued');
    const output = [{ type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'sealed' }];
    await stored.endAnswered(job, { id: record.id, object: 'response', status: 'completed', output });
    return { id: record.id, job };
  }

  it('leaves a reader without the end while the run is not over, and lets it add the end, in the default view, once it is', async () => {
    const { id } = await answered();
    // Stored, but its run has not finished: its runner adds the end.
    expect(await stored.endStream(OWNER, id)).toBe('running');
    expect((await events.read(id, -1, 10)).map((event) => event.type)).toEqual(['response.created', 'response.queued']);
    await pending.finish(id);
    expect(await stored.endStream(OWNER, id)).toBe('ended');
    const [end] = await events.read(id, 1, 10);
    expect(end).toMatchObject({ type: 'response.completed', sequence_number: 2, response: { id, status: 'completed', output: [{ type: 'reasoning', id: 'rs_1' }] } });
    expect(JSON.stringify(end)).not.toContain('sealed');
    // Ended: nothing more is added.
    expect(await stored.endStream(OWNER, id)).toBe('ended');
    expect(await events.length(id)).toBe(3);
  });

  it('lets the runner add the end while its job is pending, in its request’s view; of two adding it at once, one adds it and both answer ended', async () => {
    const { id } = await answered();
    const [first, second] = await Promise.all([
      stored.endStream(OWNER, id, { runner: { include: ['reasoning.encrypted_content'] } }),
      stored.endStream(OWNER, id, { runner: { include: ['reasoning.encrypted_content'] } }),
    ]);
    expect([first, second]).toEqual(['ended', 'ended']);
    const all = await events.read(id, -1, 10);
    expect(all.map((event) => event.type)).toEqual(['response.created', 'response.queued', 'response.completed']);
    expect(JSON.stringify(all[2])).toContain('sealed');
  });

  it('answers gone for a response that has no stream, or none left', async () => {
    expect(await stored.endStream(OWNER, 'resp_unknown')).toBe('gone');
    const { id } = await answered();
    await pending.finish(id);
    await events.delete(id);
    expect(await stored.endStream(OWNER, id)).toBe('gone');
  });
});

describe('StoredResponses: input items of a long conversation', () => {
  /** A memory store that notes the ids of every earlier turn it is asked for. */
  class CountingStore extends MemoryResponseStore {
    readonly asked: string[] = [];
    override getMany(owner: string, ids: string[]): ReturnType<MemoryResponseStore['getMany']> {
      this.asked.push(...ids);
      return super.getMany(owner, ids);
    }
  }
  let store: CountingStore;
  let stored: StoredResponses;
  /** The ids of a conversation of 30 turns, oldest first. */
  let turns: string[];

  beforeEach(async () => {
    store = new CountingStore({ maxResponses: 100, maxBytes: 10_000_000 });
    stored = new StoredResponses(store, responsesSchema.parse({}), logger);
    turns = [];
    for (let i = 0; i < 30; i++) {
      const record = storedResponse(OWNER, `turn ${i}`, { ancestors: [...turns] });
      await store.put(record, Date.now() + 60_000);
      turns.push(record.id);
    }
  });

  const last = (): string => turns.at(-1) ?? '';
  /** Every input item of the last turn's conversation, oldest first: each turn's input, then its two output items. */
  const everyItem = (): string[] => turns.flatMap((id, i) => (i === turns.length - 1 ? [`msg_in_${id}`] : [`msg_in_${id}`, `rs_${id}`, `msg_${id}`]));

  it('reads only the last turns for the first page, newest first', async () => {
    const page = await stored.inputItems(OWNER, last(), { limit: 5, order: 'desc' });
    expect(page.data.map((item) => item['id'])).toEqual(everyItem().reverse().slice(0, 5));
    expect(page.hasMore).toBe(true);
    // One batch of earlier turns, the newest, not all 29.
    expect(store.asked).toEqual(turns.slice(21, 29).reverse());
  });

  it('lists the same items page by page, in either order, as the whole conversation holds them', async () => {
    for (const order of ['asc', 'desc'] as const) {
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await stored.inputItems(OWNER, last(), { limit: 7, order, after });
        seen.push(...page.data.map((item) => String(item['id'])));
        if (!page.hasMore) break;
        after = seen.at(-1);
      }
      expect(seen).toEqual(order === 'asc' ? everyItem() : everyItem().reverse());
    }
  });

  it('leaves out the items of an earlier turn that is gone, and refuses an `after` it does not hold', async () => {
    await store.delete(OWNER, turns[28] ?? '');
    const page = await stored.inputItems(OWNER, last(), { limit: 4, order: 'desc' });
    expect(page.data.map((item) => item['id'])).toEqual([`msg_in_${last()}`, `msg_${turns[27]}`, `rs_${turns[27]}`, `msg_in_${turns[27]}`]);
    expect(await failureOf(() => stored.inputItems(OWNER, last(), { limit: 4, order: 'desc', after: 'msg_unknown' }))).toMatchObject({ param: 'after', code: 'invalid_value' });
  });
});
