import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { ResponsesConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { inputItemView, pendingResponse, responseId, responseView, storedInputItems } from '@openrouter/openai-wire';
import type { BackgroundJob, BackgroundStore, PendingState } from './background-store';
import { EventLogConflict, numbered, streamProgress, type ResponseEventLog, type StreamEvent } from './response-event-log';
import { orStoreUnavailable, type ResponseJson, type ResponseStore, type StoredResponse } from './response-store';

/** What a request continuing a stored response (`previous_response_id`) is translated with, and stored under. */
export interface Conversation {
  /** The earlier turns, oldest first: each one's input items, then its output items. */
  history: ResponseJson[];
  /** Their ids, oldest first: the ancestors of the response this request makes. */
  ancestors: string[];
  /** The size of `history` (UTF-8 bytes of JSON), as the previous response recorded it. */
  bytes: number;
}

/** What a background response is queued with, besides its request. */
export interface BackgroundRequest {
  owner: string;
  keyId: string;
  /** The model the request names (its response echoes it until it has an answer). */
  model: string;
  /** The Responses request as the client sent it, without `background`. */
  request: ResponseJson;
  headers: Record<string, string>;
  conversation: Omit<Conversation, 'history'>;
}

/** How a pending response's state shows in a retrieval: a cancelled one as it will end. */
const SHOWN_STATUS: Record<PendingState, 'queued' | 'in_progress' | 'cancelled'> = { queued: 'queued', in_progress: 'in_progress', cancelling: 'cancelled' };

/** A conversation with nothing before it. */
export const NEW_CONVERSATION: Omit<Conversation, 'history'> = { ancestors: [], bytes: 0 };

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

/** `GET /v1/responses/{id}/input_items`'s query, validated. */
export interface InputItemsQuery {
  limit: number;
  order: 'asc' | 'desc';
  after?: string | undefined;
}

/** Earlier turns of a conversation read at once while listing its input items. */
const TURNS_READ_AT_ONCE = 8;

const notFound = (id: string): GatewayError => new GatewayError('not_found', `Response with id '${id}' not found.`, { code: 'response_not_found' });

/** The items a stored response answered with (as the next turn's input takes them). */
function outputOf(record: StoredResponse): ResponseJson[] {
  const output = record.response['output'];
  return Array.isArray(output) ? output.filter((item): item is ResponseJson => typeof item === 'object' && item !== null) : [];
}

/**
 * The Responses API's stored responses (`responses.store`, docs/responses-api.md#stored-responses):
 * kept for their project, read back by id, listed as input items, and continued by
 * `previous_response_id`. A conversation is a chain of responses, each keeping its own input and
 * output and the ids of the responses before it; a turn keeps its whole conversation alive for
 * `responses.retentionDays` more.
 */
export class StoredResponses {
  private readonly kept: Counter<'outcome'>;

  /** Told of a cancel made here, so that this replica's run of the response stops at once (the runner's). */
  onCancel: (id: string) => void = () => undefined;

  constructor(
    private readonly store: ResponseStore,
    private readonly config: ResponsesConfig,
    private readonly logger: Logger,
    registry?: Registry,
    private readonly now: () => number = Date.now,
    /** Background responses until they end (`responses.background.enabled`); absent, `background: true` is refused. */
    readonly pending?: BackgroundStore,
    /** The stream events of the background responses created with `stream: true`; absent, those are refused. */
    readonly events?: ResponseEventLog,
  ) {
    this.kept = new Counter({
      name: 'openrouter_responses_stored_total',
      help: 'Responses of the Responses API asked to be stored, by outcome: stored, or failed (the store was unavailable; answered with store false).',
      labelNames: ['outcome'],
      registers: registry ? [registry] : [],
    });
  }

  /**
   * The conversation `previousId` ends, for the owner's next turn: 404 `previous_response_not_found`
   * when that response, or one before it, is not the owner's to read (never stored, another
   * project's, deleted, expired); 400 `conversation_too_long` when the conversation holds
   * `maxConversationResponses` already, or more than `maxConversationBytes` (seen on the previous
   * response, before the others are loaded); 503 when the store is unavailable.
   */
  async conversation(owner: string, previousId: string): Promise<Conversation> {
    let previous = await orStoreUnavailable(this.store.get(owner, previousId));
    if (!previous) {
      if (await this.pendingOf(owner, previousId)) {
        throw new GatewayError('bad_request', `Previous response with id '${previousId}' is a background response that has not ended yet; continue it once it has completed.`, {
          param: 'previous_response_id',
          code: 'previous_response_in_progress',
        });
      }
      previous = await this.endedMeanwhile(owner, previousId);
    }
    if (!previous) {
      throw new GatewayError('not_found', `Previous response with id '${previousId}' not found.`, { param: 'previous_response_id', code: 'previous_response_not_found' });
    }
    const ancestors = [...previous.ancestors, previous.id];
    if (ancestors.length >= this.config.maxConversationResponses) {
      throw new GatewayError(
        'bad_request',
        `The conversation of '${previousId}' holds ${ancestors.length} responses; one conversation may hold at most ${this.config.maxConversationResponses} (responses.maxConversationResponses). Start a new one.`,
        { param: 'previous_response_id', code: 'conversation_too_long' },
      );
    }
    if (previous.conversationBytes > this.config.maxConversationBytes) {
      throw new GatewayError(
        'bad_request',
        `The conversation of '${previousId}' holds ${previous.conversationBytes} bytes of input and output; one conversation may hold at most ${this.config.maxConversationBytes} (responses.maxConversationBytes). Start a new one.`,
        { param: 'previous_response_id', code: 'conversation_too_long' },
      );
    }
    const earlier = await orStoreUnavailable(this.store.getMany(owner, previous.ancestors));
    const turns: StoredResponse[] = [];
    for (const [i, turn] of earlier.entries()) {
      if (!turn) {
        throw new GatewayError('not_found', `Response with id '${previous.ancestors[i]}', an earlier turn of the conversation of '${previousId}', was deleted or has expired.`, {
          param: 'previous_response_id',
          code: 'previous_response_not_found',
        });
      }
      turns.push(turn);
    }
    turns.push(previous);
    return { history: turns.flatMap((turn) => [...turn.input, ...outputOf(turn)]), ancestors, bytes: previous.conversationBytes };
  }

  /**
   * Keeps a response the owner was answered (`request`: the Responses request as the client sent
   * it, for its input items), for `retentionDays`, with the conversation it continues. False when
   * the store failed: the answer goes out all the same, saying `store: false` (logged and counted),
   * since it has been served and billed.
   */
  async keep(owner: string, response: ResponseJson, request: unknown, conversation: Omit<Conversation, 'history'>): Promise<boolean> {
    const id = String(response['id']);
    const createdAt = typeof response['created_at'] === 'number' ? response['created_at'] : Math.floor(this.now() / 1000);
    const input = storedInputItems(request);
    const conversationBytes = conversation.bytes + jsonBytes(input) + jsonBytes(response['output'] ?? []);
    const record: StoredResponse = { id, owner, createdAt, response, input, ancestors: [...conversation.ancestors], conversationBytes };
    try {
      await this.store.put(record, this.expiry());
      this.kept.inc({ outcome: 'stored' });
      return true;
    } catch (error) {
      this.kept.inc({ outcome: 'failed' });
      this.logger.warn({ err: error, responseId: id }, 'a response asked to be stored could not be; it was answered with store false');
      return false;
    }
  }

  /** The owner's stored response (a background one that has not ended as it stands), or 404. */
  async get(owner: string, id: string): Promise<StoredResponse> {
    const record = (await orStoreUnavailable(this.store.get(owner, id))) ?? (await this.pendingOf(owner, id)) ?? (await this.endedMeanwhile(owner, id));
    if (!record) throw notFound(id);
    return record;
  }

  /**
   * A response not found stored, then not found pending, may have ended in between (its run
   * stores it before it leaves the pending ones): read it once more.
   */
  private async endedMeanwhile(owner: string, id: string): Promise<StoredResponse | undefined> {
    return this.pending ? orStoreUnavailable(this.store.get(owner, id)) : undefined;
  }

  /** Whether the owner's response `id` has ended and is stored (a background run's check). */
  async ended(owner: string, id: string): Promise<boolean> {
    return (await this.store.get(owner, id)) !== undefined;
  }

  /**
   * Deletes the owner's stored response (later turns that continue it can no longer be continued),
   * or 404; a background response that has not ended is 409 `response_in_progress` (cancel it first).
   */
  async delete(owner: string, id: string): Promise<void> {
    if (await orStoreUnavailable(this.store.delete(owner, id))) return this.dropEvents(id);
    if (await this.pendingOf(owner, id)) {
      throw new GatewayError('conflict', `Response '${id}' is a background response that has not ended; cancel it (POST /v1/responses/${id}/cancel), then delete it.`, { code: 'response_in_progress' });
    }
    // Ended between the two reads.
    if (this.pending && (await orStoreUnavailable(this.store.delete(owner, id)))) return this.dropEvents(id);
    throw notFound(id);
  }

  /** A deleted response's stream events go with it (they expire anyway: a failure only logs). */
  private async dropEvents(id: string): Promise<void> {
    await this.events?.delete(id).catch((error: unknown) => this.logger.warn({ err: error, responseId: id }, 'the stream events of a deleted response could not be dropped; they expire'));
  }

  /**
   * Queues a background response (docs/responses-api.md#background-responses): kept with the stored
   * responses, `queued` until a replica runs it. 503 `background_queue_full` when
   * `responses.background.maxPending` are pending already; 503 when the store is unavailable.
   */
  async queue(request: BackgroundRequest): Promise<StoredResponse> {
    const pending = this.backgroundStore();
    const id = responseId('resp');
    const createdAt = Math.floor(this.now() / 1000);
    const input = storedInputItems(request.request);
    const record: StoredResponse = {
      id,
      owner: request.owner,
      createdAt,
      response: pendingResponse(request.request, request.model, id, createdAt, 'queued'),
      input,
      ancestors: [...request.conversation.ancestors],
      conversationBytes: request.conversation.bytes + jsonBytes(input),
    };
    const job: BackgroundJob = { record, keyId: request.keyId, request: request.request, headers: request.headers };
    const { maxPending } = this.config.background;
    // A streamed one's first events are there before any replica can run it and add its own.
    if (request.request['stream'] === true) await orStoreUnavailable(this.eventLog().append(id, 0, queuedEvents(record, request.request), this.streamExpiry(createdAt)));
    let queued = false;
    try {
      queued = await orStoreUnavailable(pending.create(job, this.expiry(), maxPending));
    } finally {
      if (!queued) await this.dropEvents(id);
    }
    if (!queued) {
      throw new GatewayError('overloaded', `${maxPending} background responses are queued or running already (responses.background.maxPending); retry once some have ended.`, {
        code: 'background_queue_full',
        retryAfterMs: 5_000,
      });
    }
    return record;
  }

  /**
   * Cancels the owner's background response: one that has not ended stops (on whichever replica
   * runs it) and ends `cancelled`; one that has ended is answered as it is. A response that was not
   * created in the background is 400 `response_not_cancellable`; an unknown one 404.
   */
  async cancel(owner: string, id: string): Promise<StoredResponse> {
    const ended = await orStoreUnavailable(this.store.get(owner, id));
    if (ended) {
      if (ended.response['background'] !== true) {
        throw new GatewayError('bad_request', 'Only responses created with background set to true can be cancelled.', { code: 'response_not_cancellable' });
      }
      return ended;
    }
    const store = this.pending;
    const pending = store && (await orStoreUnavailable(store.get(owner, id)));
    if (!store || !pending) {
      // Ended between the two reads: answered as it ended.
      if (await this.endedMeanwhile(owner, id)) return this.cancel(owner, id);
      throw notFound(id);
    }
    const state = await orStoreUnavailable(store.cancel(id));
    this.onCancel(id);
    // Ended meanwhile (its answer came first): as it ended.
    if (state === undefined) return this.get(owner, id);
    return withStatus(pending.job.record, 'cancelled');
  }

  /**
   * Stores a background response that ended without an answer, `cancelled` or `failed` with its
   * error, for retrieval as any other; one that was answered and stored meanwhile stays as it is.
   */
  async endPending(job: BackgroundJob, status: 'cancelled' | 'failed', error: { code: string; message: string } | null): Promise<void> {
    const { record } = job;
    const model = typeof record.response['model'] === 'string' ? record.response['model'] : '';
    const response = pendingResponse(job.request, model, record.id, record.createdAt, status, error);
    await this.putEnded({ ...record, response });
  }

  /**
   * Stores the answer a background response's run got when the run itself did not store it (its
   * key's policy no longer keeps responses, or the store failed a moment), so that it is not run,
   * and billed, again; an answer stored meanwhile stays as it is. Throws while the store is away.
   */
  async endAnswered(job: BackgroundJob, answer: ResponseJson): Promise<void> {
    const { record } = job;
    const output = Array.isArray(answer['output']) ? answer['output'] : [];
    const response: ResponseJson = { ...answer, id: record.id, created_at: record.createdAt, background: true, store: true };
    await this.putEnded({ ...record, response, conversationBytes: record.conversationBytes + jsonBytes(output) });
  }

  /** Stores how a background response ended, unless it was stored meanwhile (its run's answer, or another replica's end of it). */
  private async putEnded(record: StoredResponse): Promise<void> {
    try {
      await this.store.put(record, this.expiry());
    } catch (failure) {
      if (!(await this.ended(record.owner, record.id))) throw failure;
    }
  }

  /** When a response kept now expires: `retentionDays` from now. */
  private expiry(): number {
    return this.now() + this.config.retentionDays * 86_400_000;
  }

  /** When the stream events of a response created at `createdAt` (Unix s) expire: `streamRetentionHours` after, and never after the response. */
  streamExpiry(createdAt: number): number {
    return Math.min(createdAt * 1000 + this.config.background.streamRetentionHours * 3_600_000, this.expiry());
  }

  /**
   * Ends the stream of a streamed background response that has ended: appends the end event its
   * stored record makes (`response.completed`, `response.incomplete`, or `response.failed` for one
   * that failed or was cancelled), unless the stream has one. The run that answers it adds its own;
   * this covers a response that ended without it (cancelled, failed before its run streamed,
   * answered by a run that could not stream, or a run stopped between storing and logging its end).
   * `running` while it has not ended; `gone` when there is no stream (never streamed, or expired).
   * A `reader` (a client reading the stream) adds the end only once the response's run is over: while
   * it is pending, its runner (or the replica that takes it over) adds it, and its view is the
   * runner's (`request`, the job's); a reader's is the default one.
   */
  async endStream(owner: string, id: string, by: { runner: unknown } | 'reader' = 'reader'): Promise<'ended' | 'running' | 'gone'> {
    const log = this.events;
    if (!log) return 'gone';
    let record = await orStoreUnavailable(this.store.get(owner, id));
    if (!record || by === 'reader') {
      if (await this.pendingOf(owner, id)) return 'running';
      // Stored, and its run over, between the two reads.
      record ??= await orStoreUnavailable(this.store.get(owner, id));
      if (!record) return 'gone';
    }
    const progress = await orStoreUnavailable(streamProgress(log, id));
    if (!progress) return 'gone';
    if (progress.ended) return 'ended';
    const status = record.response['status'];
    const type = status === 'completed' ? 'response.completed' : status === 'incomplete' ? 'response.incomplete' : 'response.failed';
    const view = responseView(record.response, by === 'reader' ? {} : by.runner);
    const appended = await orStoreUnavailable(
      log.append(id, progress.length, [{ type, response: view }], this.streamExpiry(record.createdAt)).then(
        () => true,
        (error: unknown) => {
          if (error instanceof EventLogConflict) return false;
          throw error;
        },
      ),
    );
    // Another replica ended it (or its run added an event) first: read again.
    return appended ? 'ended' : this.endStream(owner, id, by);
  }

  /** The stream events, or 400 when the gateway keeps none. */
  eventLog(): ResponseEventLog {
    if (!this.events) throw new GatewayError('bad_request', "'stream' is not supported with 'background' by this gateway: poll GET /v1/responses/{id} until the response has ended.", { param: 'stream', code: 'unsupported_parameter' });
    return this.events;
  }

  /** The owner's background response that has not ended, as a retrieval shows it, or undefined. */
  private async pendingOf(owner: string, id: string): Promise<StoredResponse | undefined> {
    const pending = this.pending && (await orStoreUnavailable(this.pending.get(owner, id)));
    return pending && withStatus(pending.job.record, SHOWN_STATUS[pending.state]);
  }

  private backgroundStore(): BackgroundStore {
    if (!this.pending) throw new GatewayError('bad_request', "'background' is not supported by this gateway (responses.background.enabled is false).", { param: 'background', code: 'unsupported_parameter' });
    return this.pending;
  }

  /**
   * The input items of the owner's response `id`, as OpenAI lists them: the whole conversation
   * it answered (the earlier turns' input and output items, then its own input), newest first by
   * default, a page of `limit` after the item `after`. An earlier turn that is gone leaves its items
   * out. The earlier turns are read a few at a time, in the page's order, until the page is full:
   * the first page of a long conversation reads its last turns only.
   */
  async inputItems(owner: string, id: string, query: InputItemsQuery): Promise<{ data: ResponseJson[]; hasMore: boolean }> {
    const record = await this.get(owner, id);
    const data: ResponseJson[] = [];
    let found = query.after === undefined;
    let hasMore = false;
    for await (const item of this.listed(owner, record, query.order)) {
      if (!found) {
        found = item['id'] === query.after;
        continue;
      }
      if (data.length === query.limit) {
        hasMore = true;
        break;
      }
      data.push(item);
    }
    if (!found) throw new GatewayError('bad_request', `Invalid value for 'after': no input item with id '${query.after}' in response '${id}'.`, { param: 'after', code: 'invalid_value' });
    return { data, hasMore };
  }

  /** The input items of `record`'s conversation in the listing's `order`, its earlier turns read `TURNS_READ_AT_ONCE` at a time as the listing gets to them. */
  private async *listed(owner: string, record: StoredResponse, order: 'asc' | 'desc'): AsyncGenerator<ResponseJson> {
    const own = record.input.map(inputItemView);
    if (order === 'desc') yield* own.reverse();
    const ancestors = order === 'asc' ? record.ancestors : [...record.ancestors].reverse();
    for (let at = 0; at < ancestors.length; at += TURNS_READ_AT_ONCE) {
      const turns = await orStoreUnavailable(this.store.getMany(owner, ancestors.slice(at, at + TURNS_READ_AT_ONCE)));
      for (const turn of turns) {
        if (!turn) continue;
        const items = [...turn.input, ...outputOf(turn)].map(inputItemView);
        yield* order === 'asc' ? items : items.reverse();
      }
    }
    if (order === 'asc') yield* own;
  }
}

/** A pending response's record showing `status`. */
function withStatus(record: StoredResponse, status: string): StoredResponse {
  return { ...record, response: { ...record.response, status } };
}

/** The first events of a streamed background response, as it is queued: `response.created` and `response.queued`, numbered 0 and 1. */
export function queuedEvents(record: StoredResponse, request: unknown): StreamEvent[] {
  const view = responseView(record.response, request);
  return [numbered({ type: 'response.created', response: view }, 0), numbered({ type: 'response.queued', response: view }, 1)];
}
