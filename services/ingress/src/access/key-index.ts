import type { ApiKeyRecord } from './key-record';

/** Which issued keys a list asks for: of an org, of a project (in any org), both, or every key. */
export interface KeyListFilter {
  org?: string | undefined;
  project?: string | undefined;
}

/** Where a page starts: right after the key with this creation time and id. */
export interface KeyPosition {
  createdAt: string;
  id: string;
}

/** One page of a key list: at most `limit` keys after `after`, oldest first. */
export interface KeyPageQuery extends KeyListFilter {
  limit: number;
  after?: KeyPosition | undefined;
}

export interface KeyPage {
  records: ApiKeyRecord[];
  /** Whether keys follow the last one of this page. */
  hasMore: boolean;
}

/** The position of a record whose creation time cannot be read: first. */
const UNDATED = new Date(0).toISOString();

/**
 * A key's place in every list: its creation time as fixed-width ISO text (so that text order is
 * time order, which Redis sorts by without a score), then its id for keys of the same millisecond.
 */
export function listPosition(key: KeyPosition): string {
  const at = Date.parse(key.createdAt);
  return `${Number.isNaN(at) ? UNDATED : new Date(at).toISOString()} ${key.id}`;
}

/** The key id a list position names. */
export function idAt(position: string): string {
  return position.slice(position.indexOf(' ') + 1);
}

/**
 * The Redis sorted sets that list a key: every key, its org's, its project's (by project id, as a
 * `?project=` filter without an org asks), its org's project's. Ids cannot hold `:` (identifiers).
 */
export function indexesOf(prefix: string, record: Pick<ApiKeyRecord, 'orgId' | 'projectId'>): string[] {
  const indexes = [allKeysIndex(prefix), `${prefix}key-index:org:${record.orgId}`];
  if (record.projectId) indexes.push(`${prefix}key-index:project:${record.projectId}`, `${prefix}key-index:org-project:${record.orgId}:${record.projectId}`);
  return indexes;
}

/** The one sorted set that holds exactly the keys a filter asks for, so a page is one range read. */
export function indexFor(prefix: string, filter: KeyListFilter): string {
  if (filter.org && filter.project) return `${prefix}key-index:org-project:${filter.org}:${filter.project}`;
  if (filter.org) return `${prefix}key-index:org:${filter.org}`;
  if (filter.project) return `${prefix}key-index:project:${filter.project}`;
  return allKeysIndex(prefix);
}

/** Every issued key; its size against the id map's tells whether keys wait to be indexed. */
export function allKeysIndex(prefix: string): string {
  return `${prefix}key-index`;
}

export function matchesFilter(record: ApiKeyRecord, filter: KeyListFilter): boolean {
  return (!filter.org || record.orgId === filter.org) && (!filter.project || record.projectId === filter.project);
}

/** A page cut from every record in memory (the embedded store, and the tests' reference). */
export function pageOf(records: Iterable<ApiKeyRecord>, query: KeyPageQuery): KeyPage {
  const after = query.after ? listPosition(query.after) : undefined;
  const listed = [...records]
    .filter((r) => matchesFilter(r, query))
    .map((record) => ({ record, position: listPosition(record) }))
    .filter((r) => after === undefined || r.position > after)
    .sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
  return { records: listed.slice(0, query.limit).map((r) => r.record), hasMore: listed.length > query.limit };
}
