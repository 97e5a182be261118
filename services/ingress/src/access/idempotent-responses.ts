import { createHmac, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { GatewayError } from '@openrouter/errors';
import type { IdempotencyStore } from './idempotency.store';
import { openText, sealText } from './sealed-text';

/** How long the first answer to an idempotency key is replayed. */
export const IDEMPOTENCY_KEEP_MS = 24 * 60 * 60 * 1000;
/**
 * How long a request in progress holds its key: past it (the replica that took it died), the key
 * is free again. Admin writes finish within seconds (the longest wait, for an org's lock, is 6 s).
 */
export const IDEMPOTENCY_LEASE_MS = 60_000;

/** The first request with a key: complete it with its answer, or release the key when it failed. */
export interface FirstAttempt<A> {
  kind: 'first';
  complete(answer: A): Promise<void>;
  release(): Promise<void>;
}
/** A request the caller sent before with the same key: its first answer. */
export interface Replay<A> {
  kind: 'replay';
  answer: A;
}
export type Attempt<A> = FirstAttempt<A> | Replay<A>;

const recordSchema = z.discriminatedUnion('state', [
  z.object({ state: z.literal('claimed'), token: z.string(), fingerprint: z.string() }),
  z.object({ state: z.literal('answered'), fingerprint: z.string(), sealed: z.string() }),
]);
type StoredRecord = z.infer<typeof recordSchema>;

export interface IdempotentResponsesOptions {
  keepMs?: number;
  leaseMs?: number;
  /** Told when an answer could not be stored (the request succeeded; a retry is then not replayed). */
  onStoreFailure?: (error: unknown) => void;
  /**
   * Earlier values of the secret (`access.previousKeyHashSecrets`): an answer recorded before the
   * secret was rotated (or by a replica still on an earlier one) is found under the id one of these
   * derives, and opened with its key. A new record is written under the current secret's id, and
   * under each of these too (sealed under each one's key), for replicas still hashing with them.
   */
  previousSecrets?: readonly string[];
}

/**
 * Replays the first answer to a request sent again with the same `Idempotency-Key` by the same
 * caller, on any replica sharing the store. A key is the caller's own: the record is found under a
 * keyed hash of caller and key, and the answer — which holds an issued key's secret — is sealed
 * (AES-256-GCM) under a key derived from `access.keyHashSecret`, the caller and the idempotency key:
 * the store alone, without the configuration's secret and the key the caller sent, reveals nothing.
 * While that secret is rotated, an answer recorded under an earlier one is still found and replayed.
 */
export class IdempotentResponses<A> {
  private readonly keepMs: number;
  private readonly leaseMs: number;

  constructor(
    private readonly store: IdempotencyStore,
    private readonly secret: string,
    private readonly options: IdempotentResponsesOptions = {},
  ) {
    this.keepMs = options.keepMs ?? IDEMPOTENCY_KEEP_MS;
    this.leaseMs = options.leaseMs ?? IDEMPOTENCY_LEASE_MS;
  }

  /**
   * The first attempt with `key` (this call now holds it), or a replay of its answer. A key in use
   * by a request still in progress is `409 idempotency_key_in_use`; one used with another request
   * (`fingerprint`: method, path and body) is `422 idempotency_key_reused`.
   */
  async begin(caller: string, key: string, fingerprint: string): Promise<Attempt<A>> {
    const claim = JSON.stringify({ state: 'claimed', token: randomBytes(16).toString('hex'), fingerprint } satisfies StoredRecord);
    // Claimed under the id of each accepted secret, the current one first: a record an earlier
    // secret's id names is the first attempt's, made by a replica still hashing with it (or before
    // the rotation), and a replica still on that secret finds this call's claim and answer there.
    const claimed: Array<{ id: string; secret: string }> = [];
    let held: { record: string; secret: string } | undefined;
    try {
      for (const secret of [this.secret, ...this.previousSecrets]) {
        const id = this.derive(secret, 'id', caller, key).toString('hex');
        const found = await this.reach(() => this.store.claim(id, claim, this.leaseMs));
        if (found !== undefined) {
          held = { record: found, secret };
          break;
        }
        claimed.push({ id, secret });
      }
    } catch (error) {
      await this.releaseAll(claimed, claim);
      throw error;
    }
    if (held === undefined) {
      return {
        kind: 'first',
        complete: async (answer) => {
          for (const { id, secret } of claimed) {
            const record: StoredRecord = { state: 'answered', fingerprint, sealed: this.seal(secret, caller, key, answer) };
            try {
              await this.store.complete(id, claim, JSON.stringify(record), this.keepMs);
            } catch (error) {
              this.options.onStoreFailure?.(error);
              // The key stays claimed until its lease ends; the caller has its answer.
            }
          }
        },
        release: () => this.releaseAll(claimed, claim),
      };
    }
    // Another attempt's record: what this call claimed before finding it is not its to keep.
    await this.releaseAll(claimed, claim);
    const { secret } = held;
    const record = recordSchema.safeParse(safeJson(held.record));
    if (!record.success) throw unreadable();
    if (record.data.fingerprint !== fingerprint) {
      throw new GatewayError('bad_request', 'This Idempotency-Key was already used with a different request (another method, path or body). Use a new key for a new request.', {
        code: 'idempotency_key_reused',
      });
    }
    if (record.data.state === 'claimed') {
      throw new GatewayError('conflict', 'A request with this Idempotency-Key is still in progress. Retry once it has finished to get its answer.', { code: 'idempotency_key_in_use', retryable: true });
    }
    return { kind: 'replay', answer: this.open(secret, caller, key, record.data.sealed) };
  }

  private get previousSecrets(): readonly string[] {
    return this.options.previousSecrets ?? [];
  }

  private async releaseAll(claimed: ReadonlyArray<{ id: string }>, claim: string): Promise<void> {
    for (const { id } of claimed) {
      try {
        await this.store.release(id, claim);
      } catch (error) {
        // Unreleased, the claim ends with its lease.
        this.options.onStoreFailure?.(error);
      }
    }
  }

  private derive(secret: string, purpose: 'id' | 'seal', caller: string, key: string): Buffer {
    return createHmac('sha256', secret).update(`idempotency:${purpose}\0${caller}\0${key}`).digest();
  }

  private seal(secret: string, caller: string, key: string, answer: A): string {
    return sealText(this.derive(secret, 'seal', caller, key), JSON.stringify(answer));
  }

  /** Opens an answer with the key of the secret whose id it was found under. */
  private open(secret: string, caller: string, key: string, sealed: string): A {
    try {
      return JSON.parse(openText(this.derive(secret, 'seal', caller, key), sealed)) as A;
    } catch {
      // Sealed under a secret no longer accepted (neither access.keyHashSecret nor one of its previousKeyHashSecrets), or damaged.
      throw unreadable();
    }
  }

  private async reach<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw new GatewayError('unavailable', 'The idempotency store cannot be reached right now, so this Idempotency-Key cannot be checked. Please retry.', {
        code: 'idempotency_store_unavailable',
        cause: error,
      });
    }
  }
}

function unreadable(): GatewayError {
  return new GatewayError('conflict', 'The first answer to this Idempotency-Key can no longer be read (the gateway key hash secret changed since, and the earlier one is no longer accepted). Use a new key.', {
    code: 'idempotency_key_unreadable',
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
