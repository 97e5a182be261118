import { responsesSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { InternalCallCredential } from '../access/internal-call';
import type { OwnApiRequest, OwnApiResponse } from '../batches/own-api';
import { BackgroundRunner } from './background-runner';
import { MemoryBackgroundStore } from './background-store';
import { MemoryResponseStore } from './memory-response-store';
import { MemoryResponseEventLog } from './response-event-log';
import { NEW_CONVERSATION, StoredResponses } from './stored-responses';

const OWNER = 'acme/search';
const logger = createLogger('ingress', 'silent');
const HOUR_MS = 3_600_000;

/**
 * The runner of streamed background responses, its own API answered here as the gateway's would
 * answer a run (streamed events, or a whole response): how a run's events reach the response's
 * stream when that stream can no longer take them.
 */
describe('BackgroundRunner: a streamed response whose stream cannot take its run', () => {
  let clock: number;
  let events: MemoryResponseEventLog;
  let pending: MemoryBackgroundStore;
  let stored: StoredResponses;
  let runner: BackgroundRunner | undefined;
  const calls: OwnApiRequest[] = [];

  beforeEach(() => {
    clock = Date.now();
    calls.length = 0;
    // The log's clock, moved on by a test: the stream's events expire without waiting.
    events = new MemoryResponseEventLog(() => clock);
    pending = new MemoryBackgroundStore();
    stored = new StoredResponses(new MemoryResponseStore({ maxResponses: 100, maxBytes: 1_000_000 }), responsesSchema.parse({}), logger, undefined, Date.now, pending, events);
  });
  afterEach(async () => runner?.close());

  const answer = (id: string) => ({ id, object: 'response', status: 'completed', output: [{ type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hello there.', annotations: [] }] }], output_text: 'Hello there.' });

  /** The run's events as the gateway streams them: created, in progress, deltas, completed; `during` runs after the first delta was taken. */
  const streamedRun = (id: string, during: () => Promise<void> = async () => undefined) => {
    return async (request: OwnApiRequest): Promise<OwnApiResponse> => {
      calls.push(request);
      const body = JSON.parse(request.payload) as { stream?: boolean };
      if (body.stream !== true || !request.events) return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(answer(id)) };
      const shell = { id, object: 'response', status: 'in_progress', output: [] };
      await request.events([JSON.stringify({ type: 'response.created', response: shell }), JSON.stringify({ type: 'response.in_progress', response: shell })]);
      await request.events([JSON.stringify({ type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Hello' })]);
      await during();
      await request.events([JSON.stringify({ type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, content_index: 0, delta: ' there.' })]);
      await request.events([JSON.stringify({ type: 'response.completed', response: answer(id) })]);
      return { statusCode: 200, headers: { 'content-type': 'text/event-stream' }, body: '' };
    };
  };

  async function queued(): Promise<string> {
    const record = await stored.queue({ owner: OWNER, keyId: 'search-1', model: 'gpt-4o-mini', request: { model: 'gpt-4o-mini', input: 'Greet me.', stream: true }, headers: {}, conversation: NEW_CONVERSATION });
    return record.id;
  }

  function run(api: (request: OwnApiRequest) => Promise<OwnApiResponse>): void {
    const config = responsesSchema.parse({ background: { pollMs: 50 } }).background;
    runner = new BackgroundRunner(config, pending, stored, api, new InternalCallCredential(), logger);
    runner.start();
  }

  /** Until the response has ended and left the pending set (the test's timeout fails it otherwise). */
  async function ended(id: string): Promise<void> {
    while ((await pending.byId(id)) !== undefined || !(await stored.ended(OWNER, id))) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  it('runs one whose stream expired while it was queued whole, once: it is stored as answered and its stream stays gone', async () => {
    const id = await queued();
    expect(await events.length(id)).toBe(2);
    clock += 25 * HOUR_MS;
    expect(await events.length(id)).toBe(0);
    run(streamedRun(id));
    await ended(id);
    expect(calls).toHaveLength(1);
    expect(JSON.parse(calls[0]?.payload ?? '{}')).toMatchObject({ stream: false });
    expect((await stored.get(OWNER, id)).response).toMatchObject({ id, status: 'completed', background: true, output_text: 'Hello there.' });
    expect(await events.length(id)).toBe(0);
  });

  it('runs on to its end, once, when its stream stops taking its events mid-run (another writer ended it first): the answer is stored and the stream keeps its one end', async () => {
    const id = await queued();
    run(
      streamedRun(id, async () => {
        // Another writer ends the stream between two of the run's events.
        await events.append(id, await events.length(id), [{ type: 'response.completed', response: answer(id) }], clock + HOUR_MS);
      }),
    );
    await ended(id);
    expect(calls).toHaveLength(1);
    expect((await stored.get(OWNER, id)).response).toMatchObject({ id, status: 'completed', output_text: 'Hello there.' });
    const types = (await events.read(id, -1, 100)).map((event) => event.type);
    expect(types).toEqual(['response.created', 'response.queued', 'response.in_progress', 'response.output_text.delta', 'response.completed']);
  });

  it('ends a run whose stream tells a failure with its error and response.failed, once the failure is stored', async () => {
    const id = await queued();
    let storedFirst: boolean | undefined;
    const log = events;
    // The failure's events are added only once the response is stored failed.
    const append = log.append.bind(log);
    log.append = async (...args) => {
      if (args[2].some((event) => event['type'] === 'response.failed')) storedFirst = (await stored.ended(OWNER, id)) === true;
      return append(...args);
    };
    run(async (request) => {
      calls.push(request);
      const failed = { id, object: 'response', status: 'failed', output: [], error: { code: 'server_error', message: 'The provider failed.' } };
      await request.events?.([JSON.stringify({ type: 'response.in_progress', response: { id, status: 'in_progress', output: [] } })]);
      await request.events?.([JSON.stringify({ type: 'error', code: 'server_error', message: 'The provider failed.', param: null }), JSON.stringify({ type: 'response.failed', response: failed })]);
      return { statusCode: 200, headers: { 'content-type': 'text/event-stream' }, body: '' };
    });
    await ended(id);
    expect(storedFirst).toBe(true);
    expect((await stored.get(OWNER, id)).response).toMatchObject({ status: 'failed', error: { code: 'server_error' } });
    expect((await events.read(id, -1, 100)).map((event) => event.type)).toEqual(['response.created', 'response.queued', 'response.in_progress', 'error', 'response.failed']);
  });

  it('streams a run onto its stream as queued, every event numbered on, when nothing stands in the way', async () => {
    const id = await queued();
    run(streamedRun(id));
    await ended(id);
    const read = await events.read(id, -1, 100);
    expect(read.map((event) => event.type)).toEqual(['response.created', 'response.queued', 'response.in_progress', 'response.output_text.delta', 'response.output_text.delta', 'response.completed']);
    expect(read.map((event) => event.sequence_number)).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
