import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1 } from '@openrouter/contracts';
import { arrivedAtMs, onResponseClose } from '../routes/client-connection';
import { outputTokens } from '../usage/output-tokens';
import type { BudgetReservation, BudgetService } from './budget.service';

declare module 'fastify' {
  interface FastifyRequest {
    budget?: BudgetReservation;
    /** Set once the request's usage is tracked: its usage record then settles the reservation. */
    metered?: boolean;
  }
}

/**
 * Reserves the request's worst case against its budgets (throws `budget_exceeded`). The usage
 * recorder settles it with the real cost when the response ends; if nothing does (the request
 * failed or its client left before it was metered), it is released once the response has closed,
 * including a close that happened while the reservation was being made. Until one of them, the
 * budget service renews it, however long the response lasts.
 */
export async function reserveBudget(budgets: BudgetService, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const context = request.requestContext;
  if (!context || request.method !== 'POST') return;
  const reservation = await budgets.reserve({ requestId: String(request.id), tenant: context, body: request.body, headers: request.headers, receivedAtMs: arrivedAtMs(reply), endpoint: request.routeOptions.url });
  if (!reservation) return;
  request.budget = reservation;
  // A metered request is settled by its usage record, which may wait for a provider call to end.
  onResponseClose(reply, () => {
    if (!request.metered) void reservation.release();
  });
}

/**
 * Whether a streamed chunk may still be sent under the request's budget reservation. When it may
 * not, the stream ends with `budgetStopChunk` instead (see docs/billing.md).
 */
export function reservationAdmitsChunk(reservation: BudgetReservation | undefined, chunk: chatv1.ChatChunk): boolean {
  if (!reservation?.capped) return true;
  return reservation.admitDelta(outputTokens(chunk));
}

/**
 * The clean end of a stream cut at its budget: every choice that has not finished yet (`open`,
 * by index; choice 0 when none was seen) finishes with reason "length".
 */
export function budgetStopChunk(chunk: chatv1.ChatChunk, open: Iterable<number>): chatv1.ChatChunk {
  const indexes = [...new Set(open)].sort((a, b) => a - b);
  const choices = (indexes.length > 0 ? indexes : [0]).map((index) => ({ index, delta: { toolCalls: [], extraJson: '' }, finishReason: 'length', logprobsJson: '' }));
  return { id: chunk.id, created: chunk.created, model: chunk.model, choices };
}
