import { randomBytes } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ChatCompletionsConfig } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { toOpenAIUsage } from '@openrouter/openai-wire';
import type { AccessService } from '../access/access.service';
import { parseInput } from '../admin/admin-input';
import type { ApiKeyRecord } from '../access/key-record';
import { ownerOf } from '../access/owner';
import { isChatJson, orChatStoreUnavailable, type ChatCompletionStore, type ChatJson, type IndexEntry, type StoredChatCompletion } from './chat-completion-store';
import { StreamedCompletion } from './streamed-completion';

/** The ids the gateway gives the completions it keeps (and only those are looked up). */
export const CHAT_COMPLETION_ID = /^chatcmpl-[A-Za-z0-9_-]{32}$/;

const newChatCompletionId = (): string => `chatcmpl-${randomBytes(24).toString('base64url')}`;

/** `GET /v1/chat/completions`'s query, validated. */
export interface ChatCompletionListQuery {
  limit: number;
  order: 'asc' | 'desc';
  after?: string | undefined;
  /** Matches the model the request named or the one that answered. */
  model?: string | undefined;
  /** Every pair must be in the completion's metadata. */
  metadata: Record<string, string>;
}

/** `GET /v1/chat/completions/{id}/messages`'s query, validated. */
export interface ChatMessagesQuery {
  limit: number;
  order: 'asc' | 'desc';
  after?: string | undefined;
}

/** A page of a list, as OpenAI answers it. */
export interface ChatList {
  object: 'list';
  data: ChatJson[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

/** OpenAI's metadata: at most 16 pairs, keys of at most 64 characters, values of at most 512. */
const MAX_PAIRS = 16;
export const chatMetadata = z
  .record(z.string().min(1).max(64), z.string().max(512))
  .refine((m) => Object.keys(m).length <= MAX_PAIRS, `at most ${MAX_PAIRS} pairs`);

/** The most ids a filtered page reads from its owner's index at a time. */
export const SCAN_BATCH = 100;

const notFound = (id: string): GatewayError => new GatewayError('not_found', `Chat completion with id '${id}' not found.`, { code: 'chat_completion_not_found' });

/** A stored completion as the routes show it: as it was answered, with its metadata as it stands. */
export const completionView = (record: StoredChatCompletion): ChatJson => ({ ...record.completion, metadata: record.metadata });

/** What a usage track gives for a stream's stored usage. */
export interface StreamUsage {
  tokens(): chatv1.Usage;
  decorate<T>(body: T): T;
}

/**
 * OpenAI's stored Chat Completions, kept by the gateway for any provider
 * (docs/chat-completions-store.md): a completion created with `store: true` is kept for its
 * project (`ownerOf`) for `chatCompletions.retentionDays`, listed (filtered by model and metadata),
 * read back with its request's messages, its metadata changed, and deleted. Keeping happens after
 * the answer was sent and never fails the request: a failure is logged and counted.
 */
export class StoredChatCompletions {
  private readonly counted: Counter<'outcome'>;
  /** Writes started and not yet done, for `drain`. */
  private readonly writing = new Set<Promise<void>>();

  constructor(
    private readonly store: ChatCompletionStore,
    private readonly config: ChatCompletionsConfig,
    private readonly access: Pick<AccessService, 'responsesUnstoredBy'>,
    private readonly logger: Logger,
    registry?: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.counted = new Counter({
      name: 'openrouter_chat_completions_stored_total',
      help: 'Chat completions created with store true, by outcome: stored; failed (the store was unavailable or refused it; the answer was sent all the same); incomplete (a stream that failed or was cut, not stored).',
      labelNames: ['outcome'],
      registers: registry ? [registry] : [],
    });
  }

  /**
   * How a request that asked for `store: true` is kept: undefined when its key's or a tenant's
   * policy says `storeResponses: false`. Either way the gateway takes `store` and `metadata` off
   * what the provider is sent (it keeps them itself, or keeps nothing, as the policy says), and
   * holds `metadata` to OpenAI's limits (400 naming the pair), as the provider would have.
   */
  async keeping(key: ApiKeyRecord | undefined, context: { orgId: string; projectId: string; keyId: string }, request: chatv1.ChatRequest, body: unknown): Promise<ChatCompletionKeeping | undefined> {
    const { metadata } = parseInput(z.object({ metadata: chatMetadata }), { metadata: { ...request.metadata } });
    request.store = undefined;
    request.metadata = {};
    if (!key || (await this.access.responsesUnstoredBy(key)) !== undefined) return undefined;
    const sent = isChatJson(body) && Array.isArray(body['messages']) ? body['messages'] : [];
    return new ChatCompletionKeeping(this, ownerOf(context), request.model, metadata, sent.filter(isChatJson));
  }

  /** Keeps a completion answered to the owner, in the background: a failure is logged (its id, never its text) and counted. */
  keep(record: Omit<StoredChatCompletion, 'createdAtMs'>): void {
    const createdAtMs = this.now();
    const write = this.store
      .put({ ...record, createdAtMs }, createdAtMs + this.config.retentionDays * 86_400_000)
      .then(() => void this.counted.inc({ outcome: 'stored' }))
      .catch((error: unknown) => {
        this.counted.inc({ outcome: 'failed' });
        this.logger.warn({ err: error, completionId: record.id }, 'a chat completion asked to be stored could not be; it was answered all the same');
      })
      .finally(() => this.writing.delete(write));
    this.writing.add(write);
  }

  /** A streamed completion that did not end normally: not kept. */
  incomplete(): void {
    this.counted.inc({ outcome: 'incomplete' });
  }

  /** Waits for the writes under way (shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.writing]);
  }

  /** The owner's stored completion, or 404. */
  async get(owner: string, id: string): Promise<StoredChatCompletion> {
    const record = CHAT_COMPLETION_ID.test(id) ? await orChatStoreUnavailable(this.store.get(owner, id)) : undefined;
    if (!record) throw notFound(id);
    return record;
  }

  /** Replaces the metadata of the owner's stored completion (null: none), or 404. */
  async update(owner: string, id: string, metadata: Record<string, string> | null): Promise<StoredChatCompletion> {
    const record = CHAT_COMPLETION_ID.test(id) ? await orChatStoreUnavailable(this.store.setMetadata(owner, id, metadata ?? {})) : undefined;
    if (!record) throw notFound(id);
    return record;
  }

  /** Deletes the owner's stored completion, or 404. */
  async delete(owner: string, id: string): Promise<void> {
    if (!CHAT_COMPLETION_ID.test(id) || !(await orChatStoreUnavailable(this.store.delete(owner, id)))) throw notFound(id);
  }

  /**
   * A page of the owner's stored completions, oldest first by default, those matching every filter.
   * A page reads at most `listScanLimit` of them (or `limit` + 1, when larger): past it, it answers
   * the matches found so far with `has_more` true and `last_id` naming the last completion read, so
   * that paging on from `last_id` goes on from there. `after` must name one of the owner's completions (400).
   */
  async list(owner: string, query: ChatCompletionListQuery): Promise<ChatList> {
    const filters = Object.entries(query.metadata);
    const filtered = query.model !== undefined || filters.length > 0;
    const matches = (record: StoredChatCompletion): boolean =>
      (query.model === undefined || record.requestedModel === query.model || record.completion['model'] === query.model) && filters.every(([key, value]) => record.metadata[key] === value);
    const want = query.limit + 1;
    const budget = Math.max(this.config.listScanLimit, want);
    const found: StoredChatCompletion[] = [];
    // The next batch starts after the last entry read, gone or not: an entry stays a valid start
    // after its id has left the index (a completion deleted by another request meanwhile).
    let cursor: string | IndexEntry | undefined = query.after;
    // The last completion read that is still there: where a client's next page starts when this one is cut.
    let lastRead = query.after;
    let scanned = 0;
    let end = false;
    while (found.length < want && !end && scanned < budget) {
      const count = Math.min(filtered ? Math.max(want - found.length, SCAN_BATCH) : want - found.length, budget - scanned);
      const entries: IndexEntry[] | undefined = await orChatStoreUnavailable(this.store.ids(owner, { after: cursor, order: query.order, count }));
      if (entries === undefined) {
        throw new GatewayError('bad_request', `Invalid value for 'after': no stored chat completion with id '${query.after ?? ''}'.`, { param: 'after', code: 'invalid_value' });
      }
      end = entries.length < count;
      scanned += entries.length;
      const records = await orChatStoreUnavailable(this.store.getMany(owner, entries.map((entry) => entry.id)));
      cursor = entries.at(-1) ?? cursor;
      for (const record of records) {
        // Gone ones (and ones that no longer open) have left the index: a client cannot page on from them.
        if (!record) continue;
        lastRead = record.id;
        if (found.length < want && matches(record)) found.push(record);
      }
    }
    const data = found.slice(0, query.limit);
    const cut = found.length < want && !end;
    const lastId = cut ? (lastRead ?? null) : (data.at(-1)?.id ?? null);
    return { object: 'list', data: data.map(completionView), first_id: data[0]?.id ?? null, last_id: lastId, has_more: found.length > query.limit || cut };
  }

  /** The messages of the owner's stored completion's request, in OpenAI's shape, a page of `limit` after the message `after`. */
  async messages(owner: string, id: string, query: ChatMessagesQuery): Promise<ChatList> {
    const record = await this.get(owner, id);
    const messages = record.messages.map((message, index) => messageView(message, `${id}-${index}`));
    if (query.order === 'desc') messages.reverse();
    let start = 0;
    if (query.after !== undefined) {
      const at = messages.findIndex((message) => message['id'] === query.after);
      if (at < 0) throw new GatewayError('bad_request', `Invalid value for 'after': no message with id '${query.after}' in chat completion '${id}'.`, { param: 'after', code: 'invalid_value' });
      start = at + 1;
    }
    const data = messages.slice(start, start + query.limit);
    const idOf = (message: ChatJson | undefined): string | null => (message ? String(message['id']) : null);
    return { object: 'list', data, first_id: idOf(data[0]), last_id: idOf(data.at(-1)), has_more: messages.length > start + query.limit };
  }
}

/**
 * A request message as OpenAI lists a stored completion's messages: with an id (`{completion id}-{index}`),
 * its text as `content` and, when it was sent as parts, those parts as `content_parts`.
 */
export function messageView(message: ChatJson, id: string): ChatJson {
  const { content, id: _sent, ...rest } = message;
  let text: string | null = null;
  let parts: unknown[] | null = null;
  if (typeof content === 'string') text = content;
  else if (Array.isArray(content)) {
    parts = content;
    const texts = content.flatMap((part) => (isChatJson(part) && part['type'] === 'text' && typeof part['text'] === 'string' ? [part['text']] : []));
    text = texts.length > 0 ? texts.join('\n') : null;
  }
  return { id, ...rest, content: text, name: typeof rest['name'] === 'string' ? rest['name'] : null, content_parts: parts };
}

/**
 * One request's completion being kept (`store: true`, its key's policy allowing it): its answer
 * takes an id of the gateway's own (unique, whatever the provider or the response cache gave), and
 * is kept once it has been sent, whole or as a stream that ended normally.
 */
export class ChatCompletionKeeping {
  readonly id = newChatCompletionId();
  private gathered: StreamedCompletion | undefined;
  private ended = false;

  constructor(
    private readonly service: StoredChatCompletions,
    private readonly owner: string,
    private readonly requestedModel: string,
    private readonly metadata: Record<string, string>,
    private readonly messages: ChatJson[],
  ) {}

  /** A whole answer about to be sent: it takes the kept id. */
  stamp<T>(body: T): T {
    if (isChatJson(body)) (body as ChatJson)['id'] = this.id;
    return body;
  }

  /** A whole answer sent (as `stamp` gave it): kept. */
  whole(body: unknown): void {
    if (this.once() || !isChatJson(body)) return;
    this.keep(body);
  }

  /** A chunk about to be sent: it takes the kept id, and is gathered. */
  chunk<T>(chunk: T): T {
    if (!isChatJson(chunk)) return chunk;
    (chunk as ChatJson)['id'] = this.id;
    (this.gathered ??= new StreamedCompletion()).add(chunk);
    return chunk;
  }

  /** A stream ended: kept when it `completed` normally, every choice finished, with the request's usage and cost. */
  streamEnded(completed: boolean, usage: StreamUsage): void {
    if (this.once()) return;
    const whole = completed ? this.gathered?.whole(usage.decorate({ usage: toOpenAIUsage(usage.tokens()) }).usage) : undefined;
    if (whole) this.keep({ ...whole, id: this.id });
    else this.service.incomplete();
  }

  private keep(completion: ChatJson): void {
    this.service.keep({ id: this.id, owner: this.owner, requestedModel: this.requestedModel, metadata: this.metadata, completion, messages: this.messages });
  }

  private once(): boolean {
    const told = this.ended;
    this.ended = true;
    return told;
  }
}
