export type RequestOutcome = 'pending' | 'completed' | 'aborted' | 'error' | 'dropped';

export interface ObservedRequest {
  id: number;
  path: string;
  model?: string;
  stream: boolean;
  /** Lower-case names; credentials are reduced to 'present' / 'absent'. */
  headers: Record<string, string | undefined>;
  body: unknown;
  receivedAt: number;
  endedAt?: number;
  outcome: RequestOutcome;
}

export type RawHeaders = Record<string, string | string[] | undefined>;

const CREDENTIAL_HEADERS = new Set(['authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'proxy-authorization', 'x-amz-security-token', 'x-identity-header']);

/** Copies headers for the log without ever keeping a credential value. */
export function redactHeaders(raw: RawHeaders): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = { authorization: 'absent' };
  for (const [rawName, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    headers[name] = CREDENTIAL_HEADERS.has(name) ? 'present' : Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

interface Waiter {
  readonly predicate: (request: ObservedRequest) => boolean;
  readonly resolve: (request: ObservedRequest) => void;
  readonly reject: (error: unknown) => void;
}

export const DEFAULT_REQUEST_LOG_LIMIT = 10_000;

/**
 * The request log. Entries are mutated in place as a request progresses and handed out as
 * snapshots; waiters are re-checked on every change, so tests never need to poll.
 * Only the newest `limit` entries are kept so long benchmarks stay flat in memory.
 */
export class RequestLog {
  private readonly entries = new Map<number, ObservedRequest>();
  private readonly waiters = new Set<Waiter>();
  private nextId = 1;

  constructor(private readonly limit = DEFAULT_REQUEST_LOG_LIMIT) {}

  open(path: string, rawHeaders: RawHeaders): ObservedRequest {
    const entry: ObservedRequest = {
      id: this.nextId++,
      path,
      stream: false,
      headers: redactHeaders(rawHeaders),
      body: undefined,
      receivedAt: Date.now(),
      outcome: 'pending',
    };
    this.entries.set(entry.id, entry);
    if (this.entries.size > this.limit) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.notify(entry);
    return entry;
  }

  update(entry: ObservedRequest, patch: Partial<Pick<ObservedRequest, 'model' | 'stream' | 'body'>>): void {
    Object.assign(entry, patch);
    this.notify(entry);
  }

  /** Records the final outcome once; later calls are ignored. */
  settle(entry: ObservedRequest, outcome: Exclude<RequestOutcome, 'pending'>): void {
    if (entry.outcome !== 'pending') return;
    entry.outcome = outcome;
    entry.endedAt = Date.now();
    this.notify(entry);
  }

  list(): ObservedRequest[] {
    return Array.from(this.entries.values(), snapshot);
  }

  clear(): void {
    this.entries.clear();
  }

  waitFor(predicate: (request: ObservedRequest) => boolean, timeoutMs: number): Promise<ObservedRequest> {
    return new Promise<ObservedRequest>((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: (request) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(request);
        },
        reject: (error) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(error);
        },
      };
      const timer = setTimeout(
        () => waiter.reject(new Error(`waitForRequest: no matching request within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.add(waiter);
      for (const entry of this.entries.values()) {
        if (!this.check(waiter, entry)) break;
      }
    });
  }

  private notify(entry: ObservedRequest): void {
    if (this.waiters.size === 0) return;
    for (const waiter of [...this.waiters]) this.check(waiter, entry);
  }

  /** Returns false once the waiter is settled. */
  private check(waiter: Waiter, entry: ObservedRequest): boolean {
    if (!this.waiters.has(waiter)) return false;
    const view = snapshot(entry);
    try {
      if (!waiter.predicate(view)) return true;
      waiter.resolve(view);
    } catch (error) {
      waiter.reject(error);
    }
    return false;
  }
}

function snapshot(entry: ObservedRequest): ObservedRequest {
  return { ...entry, headers: { ...entry.headers } };
}
