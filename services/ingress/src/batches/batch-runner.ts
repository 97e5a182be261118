import { setTimeout as sleep } from 'node:timers/promises';
import type { BatchesConfig } from '@openrouter/config';
import type { Logger, Registry } from '@openrouter/observability';
import { Counter, Gauge } from 'prom-client';
import { INTERNAL_CALL_HEADER, type InternalCallCredential } from '../access/internal-call';
import { ClaimRunner, renewWhileRunning } from '../claims';
import { AdaptiveLimit } from './adaptive-limit';
import { parseBatchInput, type BatchLine } from './batch-lines';
import { addTokens, NO_TOKENS, tokensOf, type BatchTokens } from './batch-usage';
import { FINAL_STATUSES, nowSeconds, randomId, type BatchEndpoint, type BatchRecord } from './batch-record';
import type { BatchStore } from './batch-store';
import { newFileId, type FileStore } from './file-store';
import type { OwnApi, OwnApiResponse } from './own-api';

/** A line's result as kept while its batch runs: its line of the output file or of the error file. */
interface LineResult {
  ok: boolean;
  line: string;
  /** An answered line's tokens (its answer's `usage`). */
  tokens?: BatchTokens | undefined;
}

/**
 * Batches one replica runs at the same time (their lines share `batches.concurrency`); as many
 * again may be ended meanwhile (cancelled, or past their window: they run no line).
 */
const MAX_BATCHES = 4;

const MiB = 1024 * 1024;

/** What a batch may write: its results are kept in Redis, and each of its files is one Redis value (512 MB at most). */
export interface OutputLimits {
  /**
   * Once a batch's kept results (its output and error lines, in bytes) reach this, no more of its
   * lines start: those left end in its error file as `batch_output_too_large`, unrun and unbilled.
   */
  resultBytes: number;
  /**
   * The most one output or error file holds. Lines running as the results reached `resultBytes`
   * are kept; an answer that would take the output file past this (only very large answers can)
   * is in the error file instead, as `batch_output_too_large` without its body.
   */
  fileBytes: number;
  /**
   * How long past its window a batch whose run keeps failing (its files cannot be written, say)
   * is still taken up again; after, it ends `failed` (`batch_not_finalized`) rather than being
   * tried every lease until its results expire. Within the day the store keeps a batch past its window.
   */
  graceSeconds: number;
}

export const OUTPUT_LIMITS: OutputLimits = { resultBytes: 256 * MiB, fileBytes: 448 * MiB, graceSeconds: 12 * 3600 };

/** The request-side limits of `x-openrouter-tags` (`trafficAttributes`, `parseTags` in auth/api-key.guard.ts): its first 256 characters, its first 16 tags. */
const TAGS_HEADER_CHARS = 256;
const TAGS_HEADER_COUNT = 16;

interface Running {
  /** Aborted when the batch must stop taking lines: cancelled, expired, its claim lost, or the replica closing. */
  readonly stop: AbortController;
  lost: boolean;
  /** Taken to be ended only (cancelled or past its window), beyond `MAX_BATCHES`: it runs no line. */
  readonly ending: boolean;
}

/**
 * Runs batches on this replica: every `pollMs` it claims an active batch no replica holds, runs
 * its lines through the gateway's own API as the key that created the batch (`api`, with an
 * internal credential naming the key: the same authentication, rate limits, budgets, guardrails,
 * routing and usage records as any request), keeps each line's result as it comes, and, when every
 * line has one (or the batch was cancelled or its window ended), writes the output and error files.
 *
 * A line refused for a reason that passes (429, 5xx) is tried again, after its `Retry-After` or a
 * growing delay, up to `maxAttempts`. A replica that stops lets its claims go; one that dies holds
 * them `leaseMs` at most. Whichever replica takes a batch over skips the lines with a result: only
 * lines in flight when a replica died are run again.
 */
export class BatchRunner extends ClaimRunner {
  private readonly running = new Map<string, Running>();
  /** Batches whose run stopped on an error, and when this replica may take each up again (its claim's lapse, as another replica would). */
  private readonly failedUntil = new Map<string, number>();
  private inFlight = 0;
  /** Lines that may run at once: `batches.concurrency`, less while lines are refused for a passing reason. */
  private readonly limit: AdaptiveLimit;
  private readonly slotWaiters = new Set<() => void>();
  private readonly lines: Counter<'outcome'>;
  private readonly ended: Counter<'status'>;
  private readonly limits: OutputLimits;

  constructor(
    private readonly config: BatchesConfig,
    private readonly store: BatchStore,
    private readonly files: FileStore,
    private readonly api: OwnApi,
    private readonly credential: InternalCallCredential,
    logger: Logger,
    registry?: Registry,
    limits: Partial<OutputLimits> = {},
  ) {
    super(logger, config.pollMs, 'batches: the store could not be read; trying again');
    this.limits = { ...OUTPUT_LIMITS, ...limits };
    this.limit = new AdaptiveLimit(config.concurrency);
    const registers = registry ? [registry] : [];
    this.lines = new Counter({
      name: 'openrouter_batch_lines_total',
      help: "Batch lines this replica ran, by outcome: completed (answered), failed (refused for good: in the error file), retried (refused for a reason that passes: tried again).",
      labelNames: ['outcome'],
      registers,
    });
    this.ended = new Counter({ name: 'openrouter_batches_ended_total', help: 'Batches this replica ended, by final status: completed, cancelled, expired, failed.', labelNames: ['status'], registers });
    const inFlight: Gauge = new Gauge({
      name: 'openrouter_batch_lines_in_flight',
      help: 'Batch lines this replica is running now (at most batches.concurrency).',
      registers,
      collect: () => inFlight.set(this.inFlight),
    });
    const limit: Gauge = new Gauge({
      name: 'openrouter_batch_concurrency',
      help: 'Batch lines this replica may run at once now: batches.concurrency, halved while lines are refused for a reason that passes (429, 5xx), grown back as they are answered.',
      registers,
      collect: () => limit.set(this.limit.current),
    });
  }

  /** Stops taking lines, waits up to `graceMs` for those in flight, and lets every claim go (another replica continues). */
  async close(graceMs = 0): Promise<void> {
    this.stopLooking();
    for (const running of this.running.values()) running.stop.abort();
    const all = Promise.allSettled([...this.tasks]);
    await Promise.race([all, sleep(graceMs, undefined, { ref: false })]);
  }

  protected async look(): Promise<void> {
    const active = await this.store.active();
    const now = Date.now();
    const live = new Set(active);
    for (const [id, until] of this.failedUntil) if (until <= now || !live.has(id)) this.failedUntil.delete(id);
    for (const id of shuffled(active)) {
      if (this.closed) break;
      // A batch whose run failed here is not run again at once (a failure that lasts would have it re-read every poll).
      if (this.running.has(id) || this.failedUntil.has(id)) continue;
      const endings = [...this.running.values()].filter((r) => r.ending).length;
      let ending = false;
      if (this.running.size - endings >= MAX_BATCHES) {
        // Every run slot is taken, maybe for hours: a batch that runs no line more (cancelled, or
        // past its window) is still taken, and ended now; the cancel is seen within pollMs.
        if (endings >= MAX_BATCHES) break;
        const batch = await this.store.byId(id);
        if (!batch || (batch.status !== 'cancelling' && nowSeconds() < batch.expiresAt)) continue;
        ending = true;
      }
      if (!(await this.store.claim(id, this.holder, this.config.leaseMs))) continue;
      this.track(this.run(id, ending));
    }
  }

  private async run(id: string, ending: boolean): Promise<void> {
    const running: Running = { stop: new AbortController(), lost: false, ending };
    this.running.set(id, running);
    const stopRenewing = renewWhileRunning(
      () => this.store.renew(id, this.holder, this.config.leaseMs),
      this.config.leaseMs,
      () => {
        running.lost = true;
        running.stop.abort();
      },
      (error) => this.warn(error, 'batches: a claim could not be renewed'),
    );
    let expiresAt: number | undefined;
    try {
      const batch = await this.store.update(id, (b) => (b.status === 'validating' ? { ...b, status: 'in_progress', inProgressAt: nowSeconds() } : undefined));
      if (!batch || FINAL_STATUSES.has(batch.status)) {
        await this.store.finish(id);
        return;
      }
      expiresAt = batch.expiresAt;
      const { lines, hadInput } = await this.readLines(id, batch.endpoint);
      if (batch.status === 'in_progress' && hadInput && !ending) await this.runLines(batch, lines, running);
      if (!running.lost && !this.closed) await this.finalize(id, lines, hadInput);
    } catch (error) {
      if (expiresAt !== undefined && nowSeconds() >= expiresAt + this.limits.graceSeconds && !this.closed && (await this.giveUp(id, error))) return;
      // Its claim lapses and a replica takes it again.
      this.warn(error, `batches: batch ${id} stopped on an error; it is taken up again once its claim lapses`);
      running.lost = true;
      this.failedUntil.set(id, Date.now() + this.config.leaseMs);
    } finally {
      stopRenewing();
      this.running.delete(id);
      if (!running.lost) await this.store.release(id, this.holder).catch(() => undefined);
    }
  }

  /**
   * A batch's lines, and whether its input was still there (one no longer stored, or that no longer
   * opens, reads as none). The input itself is not returned: held by the run for as long as its
   * lines run (hours), up to 100 MiB would be kept for nothing.
   */
  private async readLines(id: string, endpoint: BatchEndpoint): Promise<{ lines: BatchLine[]; hadInput: boolean }> {
    const input = await this.store.input(id);
    if (!input) return { lines: [], hadInput: false };
    return { lines: (await parseBatchInput(input, endpoint, Number.MAX_SAFE_INTEGER)).lines, hadInput: true };
  }

  /**
   * Ends a batch that could not be ended its window and `graceSeconds` after: `failed`, its
   * results dropped. True when it is ended (false: the store is away, and it is tried again later).
   */
  private async giveUp(id: string, error: unknown): Promise<boolean> {
    try {
      const now = nowSeconds();
      const message = 'The batch could not be finalized (its output and error files could not be written) within its completion window and the grace after it.';
      let ended = false;
      await this.store.update(id, (b) => {
        // Ended meanwhile (by another replica): left as it is.
        ended = !FINAL_STATUSES.has(b.status);
        return ended ? { ...b, status: 'failed', failedAt: now, errors: [{ code: 'batch_not_finalized', message, param: null, line: null }] } : undefined;
      });
      await this.store.finish(id);
      if (ended) {
        this.ended.inc({ status: 'failed' });
        this.logger.error({ err: error, batch: id }, 'batch failed: it could not be finalized within its window and the grace after it');
      }
      return true;
    } catch {
      return false;
    }
  }

  private async runLines(batch: BatchRecord, lines: BatchLine[], running: Running): Promise<void> {
    // The lines with a result already: their indices only (the results, up to 256 MiB, are read
    // again when the batch is finalized, rather than held while its lines run).
    const done = new Set<number>();
    const counts = { completed: 0, failed: 0 };
    let tokens = NO_TOKENS;
    // The bytes of the results kept: the size the batch's output and error files will have.
    let keptBytes = 0;
    for (const [index, kept] of await this.store.results(batch.id)) {
      done.add(index);
      const result = JSON.parse(kept) as LineResult;
      counts[result.ok ? 'completed' : 'failed']++;
      if (result.tokens) tokens = addTokens(tokens, result.tokens);
      keptBytes += lineBytes(result.line);
    }
    let written = '';
    // Writes the progress when it has changed, and reads the batch whether or not: a cancel, or the
    // end of its window, stops it even while its lines in flight take long. A batch that has ended
    // (by another replica, this one's claim having lapsed) keeps its final counts, and runs no more.
    const refreshProgress = async (): Promise<void> => {
      const now = JSON.stringify(counts);
      const usage = tokens;
      const stored = await this.store.update(batch.id, (b) => (now === written || FINAL_STATUSES.has(b.status) ? undefined : { ...b, requestCounts: { total: lines.length, ...counts }, usage }));
      written = now;
      if (stored && (stored.status === 'cancelling' || FINAL_STATUSES.has(stored.status) || nowSeconds() >= stored.expiresAt)) running.stop.abort();
    };
    const refresh = setInterval(() => void refreshProgress().catch((error: unknown) => this.warn(error, 'batches: progress could not be written')), this.config.pollMs);
    refresh.unref();
    const inFlight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    try {
      for (const line of lines) {
        if (done.has(line.index)) continue;
        if (!(await this.slot(running.stop.signal))) break;
        // Past its window, or its results as large as a batch's may be: the lines left are not run (finalize ends them).
        if (nowSeconds() >= batch.expiresAt || keptBytes >= this.limits.resultBytes) {
          this.release();
          break;
        }
        const task = this.runLine(batch, line, running.stop.signal)
          .then(async (result) => {
            if (!result) return;
            await this.store.saveResult(batch.id, line.index, JSON.stringify(result));
            keptBytes += lineBytes(result.line);
            counts[result.ok ? 'completed' : 'failed']++;
            if (result.tokens) tokens = addTokens(tokens, result.tokens);
          })
          .catch((error: unknown) => {
            // A result that cannot be kept (the store is away) stops the batch here: no line starts
            // whose result would be lost too. Its claim lapses, and it is taken up again.
            failure ??= { error };
            running.stop.abort();
          })
          .finally(() => {
            this.release();
            inFlight.delete(task);
          });
        inFlight.add(task);
      }
      await Promise.all(inFlight);
      if (failure) throw failure.error;
    } finally {
      clearInterval(refresh);
      await refreshProgress().catch((error: unknown) => this.warn(error, 'batches: progress could not be written'));
    }
  }

  /** Waits for a free line slot; false when stopped meanwhile. */
  private async slot(signal: AbortSignal): Promise<boolean> {
    while (this.inFlight >= this.limit.current && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.slotWaiters.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.slotWaiters.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
    if (signal.aborted) return false;
    this.inFlight++;
    return true;
  }

  private release(): void {
    this.inFlight--;
    const [next] = this.slotWaiters;
    next?.();
  }

  /** One line, tried again while it is refused for a reason that passes; undefined when stopped before it had a final answer. */
  private async runLine(batch: BatchRecord, line: BatchLine, signal: AbortSignal): Promise<LineResult | undefined> {
    const requestId = randomId('batch_req_');
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      [INTERNAL_CALL_HEADER]: this.credential.header(batch.keyId),
      'x-request-id': requestId,
      'x-openrouter-tags': batchTagsHeader(batch.id, batch.tags),
    };
    // A value no header can carry (outside Latin-1) came from the key's own `app`, never from a
    // header: the line's key gives it its app anyway, which wins over the header.
    if (batch.app && HEADER_VALUE.test(batch.app)) headers['x-openrouter-app'] = batch.app;
    let payload: string;
    try {
      payload = JSON.stringify(line.body);
    } catch {
      // Nested too deeply to be written again (a file accepted under a larger `ingress.limits.jsonDepth`): this line fails, the batch runs on.
      this.lines.inc({ outcome: 'failed' });
      return { ok: false, line: JSON.stringify({ id: requestId, custom_id: line.customId, response: null, error: { code: 'json_too_deep', message: 'This request is nested too deeply to be sent.' } }) };
    }
    for (let attempt = 1; ; attempt++) {
      const response = await this.api({ method: 'POST', url: batch.endpoint, headers, payload });
      const passing = response.statusCode === 429 || response.statusCode >= 500;
      if (response.statusCode < 400 || !passing || attempt >= this.config.maxAttempts) {
        const ok = response.statusCode < 400;
        this.lines.inc({ outcome: ok ? 'completed' : 'failed' });
        if (passing) this.limit.refused();
        else this.limit.succeeded();
        const body = jsonOf(response.body);
        return { ok, line: JSON.stringify({ id: requestId, custom_id: line.customId, response: { status_code: response.statusCode, request_id: requestId, body }, error: null }), ...(ok ? { tokens: tokensOf(body) } : {}) };
      }
      this.lines.inc({ outcome: 'retried' });
      this.limit.refused();
      try {
        await sleep(retryDelayMs(response, attempt), undefined, { signal });
      } catch {
        return undefined;
      }
    }
  }

  /**
   * Ends a batch whose lines have all run, or that was cancelled, outlived its window or filled
   * its results (`resultBytes`): its output file (the answered lines, in the input's order) and
   * error file (the refused ones, and those that never ran), its final counts and status. A batch
   * stopped for another reason (this replica closing) is left to run on.
   */
  private async finalize(id: string, lines: BatchLine[], hadInput: boolean): Promise<void> {
    const results = new Map<number, LineResult>();
    let keptBytes = 0;
    for (const [index, kept] of await this.store.results(id)) {
      const result = JSON.parse(kept) as LineResult;
      results.set(index, result);
      keptBytes += lineBytes(result.line);
    }
    const unfinished = results.size < lines.length;
    // How it ends is decided on the batch as the change to `finalizing` reads it: a cancel that lands
    // before is seen (it ends cancelled), one after is refused (409 `batch_finalizing`). Decided on an
    // earlier read, a cancel between the two was acknowledged and then ignored.
    let ending = undefined as { cancelled: boolean; full: boolean; expired: boolean } | undefined;
    const batch = await this.store.update(id, (b) => {
      ending = undefined;
      if (FINAL_STATUSES.has(b.status)) return undefined;
      const cancelled = b.status === 'cancelling';
      const full = !cancelled && unfinished && keptBytes >= this.limits.resultBytes;
      const expired = !cancelled && !full && unfinished && nowSeconds() >= b.expiresAt;
      if (!cancelled && !full && !expired && unfinished) return undefined;
      ending = { cancelled, full, expired };
      // A cancelled batch stays `cancelling` until it is `cancelled`; one finalizing already (its files could not be written) is finalized again.
      return b.status === 'in_progress' ? { ...b, status: 'finalizing', finalizingAt: nowSeconds() } : undefined;
    });
    if (!batch || !ending) return;
    const { cancelled, full, expired } = ending;
    const output = new FileLines(this.limits.fileBytes);
    const errors = new FileLines(this.limits.fileBytes);
    const unrun = !hadInput ? 'input_missing' : cancelled ? 'batch_cancelled' : full ? 'batch_output_too_large' : 'batch_expired';
    const unrunMessage = unrun === 'batch_output_too_large' ? `This request was not run: the batch's results had reached ${this.limits.resultBytes} bytes, the most a batch keeps.` : UNRUN_MESSAGES[unrun];
    let tokens = NO_TOKENS;
    for (const line of lines) {
      const result = results.get(line.index);
      if (result?.tokens) tokens = addTokens(tokens, result.tokens);
      if (!result) errors.add(JSON.stringify({ id: randomId('batch_req_'), custom_id: line.customId, response: null, error: { code: unrun, message: unrunMessage } }));
      else if (!result.ok) errors.add(result.line);
      else if (!output.add(result.line)) {
        // Answered (and billed), but too large for the output file to take: its answer is left out, said in the error file.
        const message = `This request was answered, but its answer would have made the output file larger than ${this.limits.fileBytes} bytes; it is left out.`;
        errors.add(JSON.stringify({ id: requestIdOf(result.line), custom_id: line.customId, response: null, error: { code: 'batch_output_too_large', message } }));
      }
    }
    const owner = batch.owner;
    const createdAt = nowSeconds();
    const expiresAt = createdAt + Math.min(batch.outputExpiresAfterSeconds ?? Infinity, this.config.fileRetentionDays * 86_400);
    const write = async (name: string, content: FileLines): Promise<string | undefined> => {
      if (content.count === 0) return undefined;
      const fileId = newFileId();
      const body = content.toBuffer();
      await this.files.put({ id: fileId, owner, bytes: body.length, createdAt, filename: `${id}_${name}.jsonl`, purpose: 'batch_output', expiresAt }, body);
      return fileId;
    };
    const outputFileId = await write('output', output);
    const errorFileId = await write('error', errors);
    const now = nowSeconds();
    const status = !hadInput ? 'failed' : cancelled ? 'cancelled' : expired ? 'expired' : 'completed';
    const failed = errors.count + errors.left;
    const batchErrors = [
      ...(status === 'failed' ? [{ code: 'input_missing', message: UNRUN_MESSAGES.input_missing, param: null, line: null }] : []),
      ...(errors.left > 0 ? [{ code: 'batch_output_too_large', message: `${errors.left} failed requests are not in the error file: it would have been larger than ${this.limits.fileBytes} bytes.`, param: null, line: null }] : []),
    ];
    await this.store.update(id, (b) => ({
      ...b,
      status,
      outputFileId,
      errorFileId,
      requestCounts: { total: lines.length, completed: output.count, failed },
      usage: tokens,
      ...(status === 'completed' ? { completedAt: now } : status === 'cancelled' ? { cancelledAt: now } : status === 'expired' ? { expiredAt: now } : { failedAt: now }),
      ...(batchErrors.length > 0 ? { errors: batchErrors } : {}),
    }));
    await this.store.finish(id);
    this.ended.inc({ status });
    this.logger.info({ batch: id, status, completed: output.count, failed, ...(full ? { full: keptBytes } : {}) }, 'batch ended');
  }
}

/**
 * The lines of an output or error file, up to `maxBytes`: written into one buffer at the end
 * (joined into one string, a file of more than about 512 MiB of text would pass V8's longest string).
 */
class FileLines {
  private readonly lines: string[] = [];
  private bytes = 0;
  /** Lines that did not fit. */
  left = 0;

  constructor(private readonly maxBytes: number) {}

  get count(): number {
    return this.lines.length;
  }

  /** Adds a line when the file has room for it; false (and counted in `left`) when not. */
  add(line: string): boolean {
    const size = lineBytes(line);
    if (this.bytes + size > this.maxBytes) {
      this.left++;
      return false;
    }
    this.lines.push(line);
    this.bytes += size;
    return true;
  }

  toBuffer(): Buffer {
    const body = Buffer.allocUnsafe(this.bytes);
    let offset = 0;
    for (const line of this.lines) {
      offset += body.write(line, offset, 'utf8');
      body[offset++] = 0x0a;
    }
    return body;
  }
}

/** A line's size in its file: its UTF-8 bytes and its newline. */
function lineBytes(line: string): number {
  return Buffer.byteLength(line, 'utf8') + 1;
}

/** The `id` of a result's line (its request's), or a new one. */
function requestIdOf(line: string): string {
  try {
    const id = (JSON.parse(line) as { id?: unknown }).id;
    if (typeof id === 'string') return id;
  } catch {
    // Not JSON: a new id.
  }
  return randomId('batch_req_');
}

/** What an HTTP header value may hold (undici, like fetch, refuses anything else). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * A line's `x-openrouter-tags`: `batch=<id>` first, then the creating request's own tags while
 * they fit in what the receiving side reads (its first 256 characters, 16 tags), whole pairs only.
 * First, the batch's tag is always read, however many tags the request had.
 */
export function batchTagsHeader(batchId: string, tags: Record<string, string>): string {
  const pairs = [`batch=${batchId}`];
  let length = pairs[0]?.length ?? 0;
  for (const [name, value] of Object.entries(tags)) {
    if (pairs.length >= TAGS_HEADER_COUNT) break;
    const pair = `${name}=${value}`;
    // A comma would split it into other tags; `batch` is the batch's own.
    if (name === 'batch' || pair.includes(',') || length + 1 + pair.length > TAGS_HEADER_CHARS) continue;
    pairs.push(pair);
    length += 1 + pair.length;
  }
  return pairs.join(',');
}

const UNRUN_MESSAGES = {
  batch_cancelled: 'The batch was cancelled before this request ran.',
  batch_expired: 'This request could not be run before the batch’s completion window ended.',
  input_missing: 'The batch’s input can no longer be read: it outlived its retention, or it was sealed under a secret the gateway no longer accepts.',
} as const;

/** A line's answer as JSON when it is JSON (every answer of the API is), else as text. */
function jsonOf(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return body;
  }
}

/** The wait before a line's next attempt: its `Retry-After` (seconds, at most a minute), else 1, 2, 4 … s up to a minute, with jitter. */
export function retryDelayMs(response: Pick<OwnApiResponse, 'headers'>, attempt: number): number {
  const header = response.headers['retry-after'];
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(60_000, seconds * 1000);
  const base = Math.min(60_000, 1000 * 2 ** (attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}

function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
