import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { mapLimited } from './map-limited';
import { countTextTokens } from './text-tokens';

/** What a family read from its provider's answers to one embeddings request. */
export interface EmbeddedVectors {
  model: string;
  /** Little-endian float32 vectors, one per input, in input order. */
  vectors: readonly Buffer[];
  /** Input tokens the provider reported for every call of the request; undefined when a call reported none. */
  reportedTokens: number | undefined;
}

/**
 * The canonical answer to an embeddings request, whichever family served it. It holds one vector
 * per input, each as long as `dimensions` asked: a model that ignored the parameter would hand the
 * client vectors of another length than its index expects, so that is refused as the parameter
 * being unsupported. Usage is what the provider reported, or, where it reported none (a count of
 * 0 is none too: every input holds at least one token), the gateway's own count, marked
 * estimated, so the request is still billed.
 */
export function embeddingResponse(request: chatv1.EmbeddingRequest, answer: EmbeddedVectors, provider: string): chatv1.EmbeddingResponse {
  const inputs = request.texts.length + request.tokenInputs.length;
  if (answer.vectors.length !== inputs) {
    throw new GatewayError('upstream_error', `The provider "${provider}" returned a malformed embedding response (${answer.vectors.length} vectors for ${inputs} inputs).`, { provider });
  }
  const dimensions = request.dimensions;
  if (dimensions !== undefined) {
    const wrong = answer.vectors.find((v) => v.byteLength !== dimensions * 4);
    if (wrong) {
      throw new GatewayError('bad_request', `The model "${request.model || answer.model}" does not support 'dimensions': it returned vectors of ${wrong.byteLength / 4} dimensions for ${dimensions}.`, {
        param: 'dimensions',
        code: 'unsupported_parameter',
        provider,
      });
    }
  }
  const reported = answer.reportedTokens !== undefined && answer.reportedTokens > 0;
  const promptTokens = reported ? (answer.reportedTokens ?? 0) : countEmbeddingInputTokens(request);
  return {
    model: answer.model,
    data: answer.vectors.map((vectorF32le, index) => ({ index, vectorF32le })),
    usage: { promptTokens, completionTokens: 0, totalTokens: promptTokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: !reported },
  };
}

/** The request's input tokens by the gateway's tokenizer; token-id inputs count exactly. */
export function countEmbeddingInputTokens(request: chatv1.EmbeddingRequest): number {
  return countInputRange(request, 0, Number.POSITIVE_INFINITY);
}

/** Input tokens of inputs `from` to `to` (exclusive), texts first, then token-id inputs (a request holds one kind). */
function countInputRange(request: chatv1.EmbeddingRequest, from: number, to: number): number {
  let tokens = 0;
  for (const text of request.texts.slice(from, to)) tokens += countTextTokens(text);
  const texts = request.texts.length;
  for (const input of request.tokenInputs.slice(Math.max(0, from - texts), Math.max(0, to - texts))) tokens += input.ids.length;
  return tokens;
}

/** One provider call of a split embeddings request: what it sends and how many inputs (the next ones in order) it carries. */
export interface EmbedCall<T> {
  body: T;
  inputs: number;
}

/**
 * Makes the provider calls of a split embeddings request (`mapLimited`). When one fails, those that
 * answered were billed by the provider: the failure is rethrown carrying their input tokens
 * (`billed`: what each reported, else the gateway's count of its inputs), so the request's usage
 * record bills them, and as not retryable, since another attempt would be billed for them again.
 */
export async function embedInCalls<T, R>(
  request: chatv1.EmbeddingRequest,
  calls: readonly EmbedCall<T>[],
  limit: number,
  call: (body: T, index: number) => Promise<R>,
  tokensOf: (answer: R) => number | undefined,
): Promise<R[]> {
  const answered = new Array<R | undefined>(calls.length);
  try {
    return await mapLimited(calls, limit, async (c, i) => (answered[i] = await call(c.body, i)));
  } catch (error) {
    let promptTokens = 0;
    let estimated = false;
    let from = 0;
    for (const [i, c] of calls.entries()) {
      const answer = answered[i];
      if (answer !== undefined) {
        const reported = tokensOf(answer);
        if (reported !== undefined && reported > 0) promptTokens += reported;
        else {
          promptTokens += countInputRange(request, from, from + c.inputs);
          estimated = true;
        }
      }
      from += c.inputs;
    }
    if (promptTokens === 0) throw error;
    throw GatewayError.from(error).with({ billed: { promptTokens, estimated }, retryable: false });
  }
}

/** The input tokens of a request's calls together, or undefined when one call reported none. */
export function reportedTokens(counts: readonly (number | undefined)[]): number | undefined {
  let sum = 0;
  for (const count of counts) {
    if (count === undefined) return undefined;
    sum += count;
  }
  return sum;
}
