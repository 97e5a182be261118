/** A record a store keeps for its owner (a project, `ownerOf`). */
interface OwnedRecord {
  id: string;
  owner: string;
}

/** How much a memory store keeps: at most `maxRecords` records, holding at most `maxBytes` as JSON. */
export interface MemoryLimits {
  maxRecords: number;
  maxBytes: number;
}

interface Held<R> {
  record: R;
  /** Unix ms. */
  expiresAtMs: number;
  /** Its size as JSON (UTF-8 bytes): what it holds of `maxBytes`. */
  bytes: number;
}

/**
 * The records of a store of a gateway without Redis (stored responses, stored chat completions),
 * in this process (gone when it stops): kept as JSON would keep them (copies in and out, so what a
 * caller changes afterwards changes nothing kept), each until its expiry (dropped when next looked
 * at past it), at most `maxRecords` holding at most `maxBytes` (one larger than that alone is
 * refused; when full, the one first in line is dropped first), with each owner's ids in the
 * order they were kept. `what` names the records in errors.
 */
export class MemoryRecords<R extends OwnedRecord> {
  /** In line: the first is the first to go. */
  private readonly held = new Map<string, Held<R>>();
  /** The sum of the held records' `bytes`. */
  private bytes = 0;
  /** Owner → the ids of the records it holds here, in the order they were kept. */
  private readonly owners = new Map<string, Set<string>>();

  constructor(
    private readonly what: string,
    private readonly limits: MemoryLimits,
    /** `now` in milliseconds. */
    private readonly now: () => number = Date.now,
  ) {}

  /** Keeps `record` until `expiresAtMs`, at the back of the line; throws when one of its id is kept already, or when it alone is larger than `maxBytes`. */
  put(record: R, expiresAtMs: number): void {
    if (this.live(record.id)) throw new Error(`${this.what} ${record.id} exists already`);
    const json = JSON.stringify(record);
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > this.limits.maxBytes) throw new Error(`${this.what} ${record.id} is larger (${bytes} bytes) than the store holds in all (${this.limits.maxBytes})`);
    while (this.held.size >= this.limits.maxRecords || this.bytes + bytes > this.limits.maxBytes) {
      const first = this.held.keys().next();
      if (first.done) break;
      this.drop(first.value);
    }
    this.held.set(record.id, { record: JSON.parse(json) as R, expiresAtMs, bytes });
    this.bytes += bytes;
    const owned = this.owners.get(record.owner) ?? new Set<string>();
    owned.add(record.id);
    this.owners.set(record.owner, owned);
  }

  /** A copy of the owner's record, when it is kept and not expired. */
  get(owner: string, id: string): R | undefined {
    const held = this.live(id);
    return held && held.record.owner === owner ? structuredClone(held.record) : undefined;
  }

  /**
   * Changes the owner's record in place (`change`), recounting its size; a copy of it after, or
   * undefined when it is not kept. A record that grew past `maxBytes` in all drops others, first in
   * line first, as a new one would.
   */
  update(owner: string, id: string, change: (record: R) => void): R | undefined {
    const held = this.live(id);
    if (!held || held.record.owner !== owner) return undefined;
    change(held.record);
    const bytes = Buffer.byteLength(JSON.stringify(held.record), 'utf8');
    this.bytes += bytes - held.bytes;
    held.bytes = bytes;
    if (this.bytes > this.limits.maxBytes) {
      for (const first of [...this.held.keys()]) {
        if (this.bytes <= this.limits.maxBytes) break;
        if (first !== id) this.drop(first);
      }
    }
    return structuredClone(held.record);
  }

  /** Moves the record to the back of the line (the last to go), and its expiry to `expiresAtMs` when that is later. */
  touch(id: string, expiresAtMs: number): void {
    const held = this.live(id);
    if (!held) return;
    this.held.delete(id);
    this.held.set(id, { ...held, expiresAtMs: Math.max(held.expiresAtMs, expiresAtMs) });
  }

  /** Drops the owner's record; whether it was kept. */
  delete(owner: string, id: string): boolean {
    const held = this.live(id);
    if (!held || held.record.owner !== owner) return false;
    this.drop(id);
    return true;
  }

  /** Drops every record of the owner; how many were kept. */
  purge(owner: string): number {
    let deleted = 0;
    for (const id of [...(this.owners.get(owner) ?? [])]) if (this.delete(owner, id)) deleted += 1;
    this.owners.delete(owner);
    return deleted;
  }

  /** The owner's records not expired (the kept objects themselves, not copies: to read, never to change), in the order they were kept. */
  owned(owner: string): R[] {
    const records: R[] = [];
    for (const id of [...(this.owners.get(owner) ?? [])]) {
      const held = this.live(id);
      if (held) records.push(held.record);
    }
    return records;
  }

  clear(): void {
    this.held.clear();
    this.owners.clear();
    this.bytes = 0;
  }

  private drop(id: string): void {
    const held = this.held.get(id);
    if (!held) return;
    this.held.delete(id);
    this.bytes -= held.bytes;
    const owned = this.owners.get(held.record.owner);
    owned?.delete(id);
    if (owned?.size === 0) this.owners.delete(held.record.owner);
  }

  /** The record when it is not expired, whoever owns it (an expired one is dropped). */
  private live(id: string): Held<R> | undefined {
    const held = this.held.get(id);
    if (!held) return undefined;
    if (held.expiresAtMs <= this.now()) {
      this.drop(id);
      return undefined;
    }
    return held;
  }
}
