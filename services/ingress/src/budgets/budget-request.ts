import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1 } from '@openrouter/contracts';
import { onResponseClose } from '../routes/client-connection';
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
 * including a close that happened while the reservation was being made.
 */
export async function reserveBudget(budgets: BudgetService, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const context = request.requestContext;
  if (!context || request.method !== 'POST') return;
  const reservation = await budgets.reserve({ requestId: String(request.id), tenant: context, body: request.body, headers: request.headers });
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
  let chars = 0;
  for (const choice of chunk.choices) {
    chars += (choice.delta?.content?.length ?? 0) + (choice.delta?.refusal?.length ?? 0);
    for (const call of choice.delta?.toolCalls ?? []) chars += (call.arguments?.length ?? 0) + (call.name?.length ?? 0);
  }
  return reservation.admitDelta(chars);
}

/** The clean end of a stream cut at its budget: every choice finishes with reason "length". */
export function budgetStopChunk(chunk: chatv1.ChatChunk): chatv1.ChatChunk {
  const choices = [...new Set(chunk.choices.map((c) => c.index))].map((index) => ({ index, delta: { toolCalls: [], extraJson: '' }, finishReason: 'length', logprobsJson: '' }));
  return { id: chunk.id, created: chunk.created, model: chunk.model, choices: choices.length > 0 ? choices : [{ index: 0, delta: { toolCalls: [], extraJson: '' }, finishReason: 'length', logprobsJson: '' }] };
}
