import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { GatewayError } from '@openrouter/errors';
import { auditLogOf, type AuditEntry } from '../access/access.repository';
import type { AccessService } from '../access/access.service';
import { ownerOf } from '../access/owner';
import { requireInScope, scopeTooNarrow } from '../access/admin-scope';
import { orChatStoreUnavailable, type ChatCompletionStore } from '../chat-store/chat-completion-store';
import { orConversationStoreUnavailable, type ConversationStore } from '../conversations/conversation-store';
import { orStoreUnavailable, type ResponseStore } from '../responses/response-store';
import { storeFailureAs } from '../store-failure';
import type { AdminPrincipal } from './admin-auth';

/** The audit action of a purge (`details`: org, team, project, what was deleted). */
export const RESPONSES_PURGE_ACTION = 'project.responses_purge';

/** What a purge deleted. */
export interface PurgeOutcome {
  responses: number;
  conversations: number;
  /** Stored chat completions (docs/chat-completions-store.md). */
  chatCompletions: number;
}

/** Appends an entry to the admin audit log. */
export type AuditAppend = (entry: AuditEntry) => Promise<void>;

/** The audit log in Redis (the access store's, under its prefix), appended to as the access repository appends to it. */
export function redisAuditAppend(redis: Redis, prefix: string): AuditAppend {
  const log = auditLogOf(prefix);
  const script = `${log.appendLua}return append_audit(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))`;
  return async (entry) => {
    await redis.eval(script, 2, log.key, log.sequence, JSON.stringify(entry), String(log.keep));
  };
}

const orAuditUnavailable = storeFailureAs('access_store_unavailable', "The purge is done, but its audit entry could not be written: retry to write it (the retry deletes what was stored since, if anything).");

/**
 * Deletes a project's stored Responses-API data at once (offboarding, a request to delete its
 * data): its stored responses, its conversations with their items and its stored chat completions,
 * whatever their expiry. A
 * response still running in the background is not touched: it is stored when it ends (cancel it
 * first). The purge is audited once done, with what it deleted.
 */
export class ResponsesPurge {
  constructor(
    private readonly access: Pick<AccessService, 'tenants' | 'reloadTenants'>,
    private readonly responses: ResponseStore | undefined,
    private readonly conversations: ConversationStore | undefined,
    private readonly audit: AuditAppend,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
    private readonly chatCompletions?: ChatCompletionStore | undefined,
  ) {}

  /**
   * Purges the project `org`/`team`/`project`: 404 when it does not exist (or lies outside the
   * caller's scope), 403 for a project-scoped key (as for every change of a project), 503 when a
   * store fails (what was deleted by then stays deleted; a retry deletes the rest).
   */
  async purge(actor: AdminPrincipal, org: string, team: string, project: string): Promise<PurgeOutcome> {
    if (actor.project !== undefined) throw scopeTooNarrow(actor, "purge a project's stored responses");
    requireInScope(actor, org);
    if (!this.exists(org, team, project)) {
      // Added a moment ago on another replica: this one may not have heard of it yet.
      await this.access.reloadTenants();
      if (!this.exists(org, team, project)) {
        throw new GatewayError('not_found', `The project "${project}" does not exist in the team "${team}" of "${org}".`, { param: 'project', code: 'not_found' });
      }
    }
    const owner = ownerOf({ orgId: org, projectId: project, keyId: '' });
    const responses = this.responses ? await orStoreUnavailable(this.responses.purgeOwner(owner)) : 0;
    const conversations = this.conversations ? await orConversationStoreUnavailable(this.conversations.purgeOwner(owner)) : 0;
    const chatCompletions = this.chatCompletions ? await orChatStoreUnavailable(this.chatCompletions.purgeOwner(owner)) : 0;
    const scope = { ...(actor.org !== undefined && { actor_org: actor.org }), ...(actor.project !== undefined && { actor_project: actor.project }) };
    const entry: AuditEntry = {
      at: new Date(this.clock()).toISOString(),
      actor: actor.id,
      action: RESPONSES_PURGE_ACTION,
      target: project,
      details: { org, team, project, responses_deleted: responses, conversations_deleted: conversations, chat_completions_deleted: chatCompletions, role: actor.role, ...scope, ...(actor.address !== undefined && { source_ip: actor.address }) },
    };
    await orAuditUnavailable(this.audit(entry));
    this.logger.info({ audit: entry }, 'admin change');
    return { responses, conversations, chatCompletions };
  }

  private exists(org: string, team: string, project: string): boolean {
    return this.access.tenants.org(org)?.teams.some((t) => t.id === team && t.projects.some((p) => p.id === project)) ?? false;
  }
}
