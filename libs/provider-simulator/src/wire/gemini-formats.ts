import type { PacedFrame } from '../core/stream-pacer';

export interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details?: Record<string, unknown>[] };
}

/** Google's canonical status name for an HTTP status. */
export function googleStatusFor(httpStatus: number): string {
  switch (httpStatus) {
    case 400:
      return 'INVALID_ARGUMENT';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return 'NOT_FOUND';
    case 409:
      return 'ABORTED';
    case 429:
      return 'RESOURCE_EXHAUSTED';
    case 499:
      return 'CANCELLED';
    case 501:
      return 'UNIMPLEMENTED';
    case 503:
      return 'UNAVAILABLE';
    case 504:
      return 'DEADLINE_EXCEEDED';
  }
  return httpStatus >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION';
}

export function googleError(httpStatus: number, message: string, status = googleStatusFor(httpStatus), details?: Record<string, unknown>[]): GoogleErrorBody {
  return { error: { code: httpStatus, message, status, ...(details ? { details } : {}) } };
}

export function defaultErrorMessage(httpStatus: number, model: string | undefined, method: string): string {
  switch (httpStatus) {
    case 400:
      return 'Request contains an invalid argument.';
    case 401:
      return 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.';
    case 403:
      return 'The caller does not have permission';
    case 404:
      return `models/${model ?? 'unknown'} is not found for API version v1beta, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`;
    case 429:
      return 'You exceeded your current quota, please check your plan and billing details (simulated).';
    case 503:
      return 'The model is overloaded. Please try again later.';
    case 504:
      return 'Deadline expired before operation could complete.';
    default:
      return httpStatus >= 500 ? 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting' : `Request failed with status ${httpStatus} (simulated).`;
  }
}

/** Quota errors tell the client when to come back in a RetryInfo detail, not a header. */
export function retryInfo(seconds: number): Record<string, unknown> {
  return { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${seconds}s` };
}

export function apiKeyInvalidDetails(): Record<string, unknown>[] {
  return [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'API_KEY_INVALID',
      domain: 'googleapis.com',
      metadata: { service: 'generativelanguage.googleapis.com' },
    },
  ];
}

export type GeminiFinishReason = 'STOP' | 'MAX_TOKENS';

export interface CandidatePlan {
  index: number;
  /** Streamed fragments of the text (empty for a function call). */
  pieces: readonly string[];
  text: string;
  functionCall?: { name: string; args: Record<string, unknown> };
  finishReason: GeminiFinishReason;
  tokens: number;
}

export interface GeneratePlan {
  responseId: string;
  modelVersion: string;
  promptTokens: number;
  candidates: CandidatePlan[];
}

function usageMetadata(plan: GeneratePlan, candidatesTokens?: number): Record<string, unknown> {
  const usage: Record<string, unknown> = { promptTokenCount: plan.promptTokens };
  if (candidatesTokens !== undefined) usage['candidatesTokenCount'] = candidatesTokens;
  usage['totalTokenCount'] = plan.promptTokens + (candidatesTokens ?? 0);
  usage['promptTokensDetails'] = [{ modality: 'TEXT', tokenCount: plan.promptTokens }];
  return usage;
}

const totalTokens = (plan: GeneratePlan): number => plan.candidates.reduce((sum, c) => sum + c.tokens, 0);

function candidateParts(candidate: CandidatePlan): Record<string, unknown>[] {
  return candidate.functionCall ? [{ functionCall: candidate.functionCall }] : [{ text: candidate.text }];
}

export function generateContentBody(plan: GeneratePlan): unknown {
  return {
    candidates: plan.candidates.map((c) => ({ content: { parts: candidateParts(c), role: 'model' }, finishReason: c.finishReason, index: c.index })),
    usageMetadata: usageMetadata(plan, totalTokens(plan)),
    modelVersion: plan.modelVersion,
    responseId: plan.responseId,
  };
}

const sse = (payload: unknown): string => `data: ${JSON.stringify(payload)}\r\n\r\n`;

/**
 * Where a stream reports its usage: on `every` event (the Gemini API: the prompt's count on each,
 * the output's on the last), or on the `last` only (Vertex AI: an empty usageMetadata on the
 * first event, none on the others, every count on the last).
 */
export type StreamUsage = 'every' | 'last';

/**
 * The stream as `alt=sse` delivers it: one GenerateContentResponse per event, each with the new
 * text of every candidate that has some (a function call arrives whole in one event), usage as
 * `usage` says, and a closing event with each candidate's finishReason and full usage.
 * There is no terminator: the stream ends when the response does.
 */
export function generateContentFrames(plan: GeneratePlan, usage: StreamUsage = 'every'): PacedFrame[] {
  const frames: PacedFrame[] = [];
  const usageSoFar = (step: number): Record<string, unknown> => (usage === 'every' ? { usageMetadata: usageMetadata(plan) } : step === 0 ? { usageMetadata: {} } : {});
  const envelope = { modelVersion: plan.modelVersion, responseId: plan.responseId };
  const steps = Math.max(0, ...plan.candidates.map((c) => (c.functionCall ? 1 : c.pieces.length)));
  for (let step = 0; step < steps; step++) {
    const candidates: unknown[] = [];
    for (const c of plan.candidates) {
      if (c.functionCall) {
        if (step === 0) candidates.push({ content: { parts: [{ functionCall: c.functionCall }], role: 'model' }, index: c.index });
        continue;
      }
      const piece = c.pieces[step];
      if (piece !== undefined) candidates.push({ content: { parts: [{ text: piece }], role: 'model' }, index: c.index });
    }
    frames.push({ text: sse({ candidates, ...usageSoFar(step), ...envelope }), tokenStep: step });
  }
  frames.push({
    text: sse({
      candidates: plan.candidates.map((c) => ({ content: { parts: [{ text: '' }], role: 'model' }, finishReason: c.finishReason, index: c.index })),
      usageMetadata: usageMetadata(plan, totalTokens(plan)),
      modelVersion: plan.modelVersion,
      responseId: plan.responseId,
    }),
  });
  return frames;
}
