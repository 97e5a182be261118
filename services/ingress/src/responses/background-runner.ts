import { setTimeout as sleep } from 'node:timers/promises';
import type { BackgroundResponsesConfig } from '@openrouter/config';
import { readWithin, SCRAPE_READ_TIMEOUT_MS, type Logger, type Registry } from '@openrouter/observability';
import { Counter, Gauge } from 'prom-client';
import { INTERNAL_CALL_HEADER, type InternalCallCredential } from '../access/internal-call';
import { ClaimRunner, renewWhileRunning } from '../claims';
import { retryDelayMs } from '../batches/batch-runner';
import { randomId } from '../batches/batch-record';
import type { OwnApi } from '../batches/own-api';
import type { BackgroundJob, BackgroundStore } from './background-store';
import { END_EVENTS, EventLogConflict, type ResponseEventLog } from './response-event-log';
import type { ResponseJson } from './response-store';
import type { StoredResponses } from './stored-responses';

/** The header that tells `POST /v1/responses` which background response an internal call runs (honoured only with the internal credential). */
export const BACKGROUND_RUN_HEADER = 'x-openrouter-background-response';

/** Why a run stopped before its answer. */
type StopReason = 'cancelled' | 'lost' | 'closing';

interface Running {
  readonly stop: AbortController;
  reason?: StopReason;
  /** Waiting between two attempts: a replica that stops lets it go at once. */
  waiting: boolean;
}

/** The response a run was answered with (a JSON object, as the API answers). */
function answerOf(body: string, id: string): Record<string, unknown> {
  const parsed = JSON.parse(body) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`background response ${id} was answered with something other than a response`);
  return parsed as Record<string, unknown>;
}

/** The events a streamed background response holds before its run adds its own: `response.created` and `response.queued`, made when it was queued. */
const QUEUED_EVENTS = 2;

/** The events of a streamed run, as its answer's data carries them. */
function streamEventsOf(data: string[], id: string): ResponseJson[] {
  return data.map((text) => {
    const event = JSON.parse(text) as unknown;
    if (typeof event !== 'object' || event === null || Array.isArray(event) || typeof (event as ResponseJson)['type'] !== 'string') {
      throw new Error(`background response ${id}: its run streamed something other than an event`);
    }
    return event as ResponseJson;
  });
}

/** How long a run's answer that its store cannot take is held and tried again, before the response is left to run again. */
const ANSWER_KEPT_MS = 15 * 60_000;

/** Where a streamed run's events go: the number of the next one, and the last one added. */
interface Streaming {
  log: ResponseEventLog;
  next: number;
  /** The run's last event (but a failure's), added or not. */
  last?: ResponseJson;
  /**
   * Set when the stream stopped taking this run's events (it expired during the run, or a reader or
   * another writer ended it first): the run goes on to its end, and its answer ends the stream as
   * far as it still can (`endStream`).
   */
  detached?: boolean;
  /**
   * A failure the run's stream ended with (its `error` and `response.failed` events), held back
   * until the run is over: one that comes of this replica stopping is not the response's end (it
   * is run again elsewhere); any other is added then, and ends it.
   */
  failure: ResponseJson[];
}

/** The events a streamed run's failure is told with. */
const FAILURE_EVENTS: ReadonlySet<string> = new Set(['error', 'response.failed']);

/** The error a failed background response shows, from the answer its run got. */
function errorOf(statusCode: number, body: string): { code: string; message: string } {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    const code = typeof parsed.error?.code === 'string' ? parsed.error.code : undefined;
    const message = typeof parsed.error?.message === 'string' ? parsed.error.message : undefined;
    if (message) return { code: code ?? (statusCode === 429 ? 'rate_limit_exceeded' : statusCode >= 500 ? 'server_error' : 'invalid_request'), message };
  } catch {
    // Not JSON: said below.
  }
  return { code: 'server_error', message: `The response could not be generated (HTTP ${statusCode}).` };
}

/**
 * Runs background responses on this replica (docs/responses-api.md#background-responses): every
 * `pollMs` it claims the oldest pending responses no replica holds, up to `concurrency`, and runs
 * each through the gateway's own API as the key that created it (`api`, with an internal
 * credential naming the key: the same authentication, rate limits, budgets, guardrails, routing,
 * caching and usage record as the request sent without `background`). That request stores the
 * response under its id. A run refused for a reason that passes (429, 5xx) is tried again, after
 * its `Retry-After` or a growing delay, up to `maxAttempts`; a final refusal stores the response
 * `failed` with its error. A cancel (on any replica) stops the run as a client that goes away
 * would, and stores it `cancelled`. A replica that stops lets its claims go and one that dies
 * holds them `leaseMs` at most: another replica runs the response again.
 */
export class BackgroundRunner extends ClaimRunner {
  private readonly running = new Map<string, Running>();
  private readonly ended: Counter<'status'>;

  constructor(
    private readonly config: BackgroundResponsesConfig,
    private readonly store: BackgroundStore,
    private readonly responses: StoredResponses,
    private readonly api: OwnApi,
    private readonly credential: InternalCallCredential,
    logger: Logger,
    registry?: Registry,
  ) {
    super(logger, config.pollMs, 'background responses: the store could not be read; trying again');
    const registers = registry ? [registry] : [];
    this.ended = new Counter({
      name: 'openrouter_background_responses_ended_total',
      help: 'Background responses this replica ran to their end, by status: completed (or incomplete: answered), failed, cancelled.',
      labelNames: ['status'],
      registers,
    });
    const running: Gauge = new Gauge({
      name: 'openrouter_background_responses_running',
      help: 'Background responses this replica is running now (at most responses.background.concurrency).',
      registers,
      collect: () => running.set(this.running.size),
    });
    // Over every replica (the shared store's), read at each scrape; a store away, or slow past the bound, leaves the last value.
    const pending: Gauge = new Gauge({
      name: 'openrouter_background_responses_pending',
      help: 'Background responses queued or running over every replica, as the shared store holds them (every replica reports the same: take the max, not the sum).',
      registers,
      collect: async () => {
        const count = await readWithin(this.store.count(), SCRAPE_READ_TIMEOUT_MS);
        if (count !== undefined) pending.set(count);
      },
    });
    const oldest: Gauge = new Gauge({
      name: 'openrouter_background_responses_oldest_pending_seconds',
      help: 'How long the oldest background response queued or running over every replica has waited to end, in seconds (0 when none); a queue that grows shows here first.',
      registers,
      collect: async () => {
        // null: none pending; undefined: not read in time.
        const queuedAt = await readWithin(this.store.oldest().then((at) => at ?? null), SCRAPE_READ_TIMEOUT_MS);
        if (queuedAt !== undefined) oldest.set(queuedAt === null ? 0 : Math.max(0, (Date.now() - queuedAt) / 1000));
      },
    });
  }

  /** A cancel made on this replica: its run, when it is here, stops at once (others see it at their next look). */
  cancelled(id: string): void {
    this.stopRun(id, 'cancelled');
  }

  /** Stops taking responses, waits up to `graceMs` for those running, then stops them and lets every claim go (another replica runs them again). */
  async close(graceMs = 0): Promise<void> {
    this.stopLooking();
    // A run waiting to be tried again would only find the listener closed: it goes to another replica now.
    for (const [id, running] of this.running) if (running.waiting) this.stopRun(id, 'closing');
    const all = Promise.allSettled([...this.tasks]);
    await Promise.race([all, sleep(graceMs, undefined, { ref: false })]);
    for (const id of [...this.running.keys()]) this.stopRun(id, 'closing');
    await all;
  }

  private stopRun(id: string, reason: StopReason): void {
    const running = this.running.get(id);
    if (!running || running.stop.signal.aborted) return;
    running.reason = reason;
    running.stop.abort();
  }

  protected async look(): Promise<void> {
    const free = this.config.concurrency - this.running.size;
    if (free > 0) {
      // Oldest first; a few more than the free slots, as some are held by other replicas.
      for (const id of await this.store.active(free + this.config.concurrency)) {
        if (this.closed || this.running.size >= this.config.concurrency) break;
        if (this.running.has(id) || !(await this.store.claim(id, this.holder, this.config.leaseMs))) continue;
        // Closed while claiming: the claim goes back at once.
        if (this.closed) {
          await this.store.release(id, this.holder);
          break;
        }
        this.track(this.run(id));
      }
    }
    // A cancel made on another replica reaches the runs here at the next look.
    for (const id of [...this.running.keys()]) {
      if ((await this.store.state(id)) === 'cancelling') this.stopRun(id, 'cancelled');
    }
  }

  private async run(id: string): Promise<void> {
    const running: Running = { stop: new AbortController(), waiting: false };
    this.running.set(id, running);
    const stopRenewing = renewWhileRunning(
      () => this.store.renew(id, this.holder, this.config.leaseMs),
      this.config.leaseMs,
      () => this.stopRun(id, 'lost'),
      (error) => this.warn(error, 'background responses: a claim could not be renewed'),
    );
    try {
      const pending = await this.store.byId(id);
      // Expired while queued, or ended by a replica that died before dropping it.
      if (!pending || (await this.responses.ended(pending.job.record.owner, id))) {
        // One that ended before its stream did has its end added now.
        if (pending) await this.endStream(pending.job);
        await this.store.finish(id);
        return;
      }
      const state = await this.store.start(id);
      if (state === undefined) return;
      if (state === 'cancelling') {
        await this.end(pending.job, 'cancelled');
        return;
      }
      await this.attempt(pending.job, running);
    } catch (error) {
      // Its claim lapses and a replica takes it again.
      this.warn(error, `background responses: ${id} stopped on an error; it is run again once its claim lapses`);
      running.reason = 'lost';
    } finally {
      stopRenewing();
      this.running.delete(id);
      if (running.reason !== 'lost') await this.store.release(id, this.holder).catch(() => undefined);
    }
  }

  /**
   * Runs the response, again while it is refused for a reason that passes, and ends it. A response
   * created with `stream: true` is run streamed, its events added to its stream as they come;
   * unless a run before this one added some already (its replica stopped mid-stream): then it is
   * run whole, and its stream gets only its end, the whole response.
   */
  private async attempt(job: BackgroundJob, running: Running): Promise<void> {
    const id = job.record.id;
    const headers: Record<string, string> = {
      ...job.headers,
      'content-type': 'application/json',
      [INTERNAL_CALL_HEADER]: this.credential.header(job.keyId),
      [BACKGROUND_RUN_HEADER]: id,
      'x-request-id': randomId('bg_req_'),
    };
    const log = job.request['stream'] === true ? this.responses.events : undefined;
    const logged = log ? await log.length(id) : 0;
    const expiresAtMs = this.responses.streamExpiry(job.record.createdAt);
    // Streamed only onto the stream as it was queued: not after a run that added events, nor once its events expired.
    const streaming: Streaming | undefined = log && logged === QUEUED_EVENTS && expiresAtMs > Date.now() ? { log, next: logged, failure: [] } : undefined;
    const payload = JSON.stringify(log && !streaming ? { ...job.request, stream: false } : job.request);
    // The run's own `response.created` is left out: the stream has the one made when it was queued.
    const events = streaming
      ? async (data: string[]): Promise<void> => {
          const arrived = streamEventsOf(data, id);
          streaming.failure.push(...arrived.filter((event) => FAILURE_EVENTS.has(String(event['type']))));
          const added = arrived.filter((event) => event['type'] !== 'response.created' && !FAILURE_EVENTS.has(String(event['type'])));
          if (added.length === 0) return;
          streaming.last = added.at(-1);
          if (!streaming.detached) await this.append(streaming, id, added, expiresAtMs);
        }
      : undefined;
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        response = await this.api({ method: 'POST', url: '/v1/responses', headers, payload, signal: running.stop.signal, events });
      } catch (error) {
        if (!running.stop.signal.aborted) throw error;
        if (running.reason === 'cancelled') await this.end(job, 'cancelled');
        return;
      }
      if (response.statusCode < 400) {
        const failed = streaming?.failure.find((event) => event['type'] === 'response.failed');
        if (streaming && failed) {
          // Ended by this replica's shutdown: another runs it again.
          if (this.closed) {
            running.reason = 'closing';
            return;
          }
          // Its failure's events follow its failure stored: a reader never sees an end the response does not have.
          await this.end(job, 'failed', failureOf(failed), async () => {
            if (!streaming.detached) await this.append(streaming, id, streaming.failure, expiresAtMs);
          });
          return;
        }
        const last = streaming?.last;
        if (streaming && (!last || !END_EVENTS.has(String(last['type'])))) throw new Error(`background response ${id}: its run's stream ended before the response did`);
        await this.keepAnswer(job, last ? answerOfEvent(last, id) : answerOf(response.body, id));
        await this.endStream(job);
        await this.store.finish(id);
        this.ended.inc({ status: 'completed' });
        return;
      }
      const passing = response.statusCode === 429 || response.statusCode >= 500;
      if (!passing || attempt >= this.config.maxAttempts) {
        await this.end(job, 'failed', errorOf(response.statusCode, response.body));
        return;
      }
      if (this.closed) {
        running.reason = 'closing';
        return;
      }
      running.waiting = true;
      try {
        await sleep(retryDelayMs(response, attempt), undefined, { signal: running.stop.signal });
      } catch {
        if (running.reason === 'cancelled') await this.end(job, 'cancelled');
        return;
      } finally {
        running.waiting = false;
      }
    }
  }

  /**
   * Stores the response as it ended without an answer (unless an answer was stored meanwhile), then
   * ends its stream (`events`: the run's own end events, added first), and drops it from the pending ones.
   */
  private async end(job: BackgroundJob, status: 'cancelled' | 'failed', error?: { code: string; message: string }, events?: () => Promise<void>): Promise<void> {
    await this.responses.endPending(job, status, error ?? null);
    await events?.();
    await this.endStream(job);
    await this.store.finish(job.record.id);
    this.ended.inc({ status });
    this.logger.info({ responseId: job.record.id, status, code: error?.code }, 'background response ended');
  }

  /**
   * Makes sure the answer a run got is stored: by the request itself, unless it could not be (the
   * answer says store false), then here. While the store is away, the answer is held and storing
   * it tried again (every `pollMs`, then every 5 s) for `ANSWER_KEPT_MS`, whatever becomes of the
   * claim meanwhile, so that the response is not run, and billed, again once the store is back. A
   * replica that stops, or a store away longer, gives up: the response is run again.
   */
  private async keepAnswer(job: BackgroundJob, answer: Record<string, unknown>): Promise<void> {
    const until = Date.now() + ANSWER_KEPT_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!(await this.responses.ended(job.record.owner, job.record.id))) await this.responses.endAnswered(job, answer);
        return;
      } catch (error) {
        if (this.closed || Date.now() >= until) throw error;
        if (attempt === 1) this.warn(error, `background responses: the answer of ${job.record.id} could not be stored; held and tried again while the store is away`);
        await sleep(Math.min(this.config.pollMs * attempt, 5_000), undefined, { ref: false, signal: this.closing.signal }).catch(() => undefined);
      }
    }
  }

  /** Adds a streamed run's events to its stream; one that stopped taking them (`EventLogConflict`) is let go (`detached`). */
  private async append(streaming: Streaming, id: string, events: ResponseJson[], expiresAtMs: number): Promise<void> {
    try {
      streaming.next = await streaming.log.append(id, streaming.next, events, expiresAtMs);
    } catch (error) {
      if (!(error instanceof EventLogConflict)) throw error;
      streaming.detached = true;
      this.logger.info({ responseId: id }, 'background response: its stream stopped taking its run’s events (expired, or ended first); the run goes on');
    }
  }

  /** A streamed response that has ended has its stream ended too, when its run did not add the end (stopped, cancelled, refused, run whole). */
  private async endStream(job: BackgroundJob): Promise<void> {
    if (job.request['stream'] === true) await this.responses.endStream(job.record.owner, job.record.id, { runner: job.request });
  }
}

/** A streamed run's `response.failed` event's error, as the failed response keeps it. */
function failureOf(event: ResponseJson): { code: string; message: string } {
  const response = event['response'] as { error?: { code?: unknown; message?: unknown } } | undefined;
  const code = typeof response?.error?.code === 'string' ? response.error.code : 'server_error';
  const message = typeof response?.error?.message === 'string' ? response.error.message : 'The response could not be generated.';
  return { code, message };
}

/** The response a streamed run ended with (its `response.completed` or `response.incomplete` event's). */
function answerOfEvent(event: ResponseJson, id: string): Record<string, unknown> {
  const response = event['response'];
  if (typeof response !== 'object' || response === null || Array.isArray(response)) throw new Error(`background response ${id}: its run's stream ended without its response`);
  return response as Record<string, unknown>;
}
