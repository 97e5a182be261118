import { createHmac } from 'node:crypto';
import type { UsageConfig } from '@openrouter/config';

/** What a usage record keeps of a request's end user, by its organisation and the id the client sent. */
export type EndUserIds = (orgId: string, endUser: string) => string;

/** Pseudonyms start with this, so one is never taken for an id a client sent. */
export const PSEUDONYM_PREFIX = 'eu_';

/** The id as sent (`usage.endUsers: raw`). */
export const RAW_END_USER_IDS: EndUserIds = (_orgId, endUser) => endUser;

/**
 * The end-user ids of `usage.endUsers`: as sent, dropped, or pseudonymized — an HMAC-SHA256 of the
 * organisation and the id under `usage.endUserSecret`, 32 base64url characters (192 bits) after
 * `eu_`. The same user of the same organisation always gets the same pseudonym, so records can still
 * be counted and grouped per user; without the secret a pseudonym cannot be traced back to an id
 * by trying likely ones (e-mail addresses), and one user's pseudonyms in two organisations differ.
 */
export function endUserIds(config: Pick<UsageConfig, 'endUsers' | 'endUserSecret'>): EndUserIds {
  switch (config.endUsers) {
    case 'raw':
      return RAW_END_USER_IDS;
    case 'dropped':
      return () => '';
    case 'pseudonymized': {
      const secret = config.endUserSecret;
      return (orgId, endUser) => (endUser === '' ? '' : pseudonym(secret, orgId, endUser));
    }
  }
}

export function pseudonym(secret: string, orgId: string, endUser: string): string {
  // The organisation's id cannot hold a NUL, so `org\0user` names one pair only.
  return PSEUDONYM_PREFIX + createHmac('sha256', secret).update(orgId).update('\0').update(endUser).digest('base64url').slice(0, 32);
}
