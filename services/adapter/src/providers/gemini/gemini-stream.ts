import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { chunkCarriesAnswer } from '@openrouter/openai-wire';
import { readGoogleError, toGatewayError } from './gemini-errors';
import { blockedPromptError, failedCandidateError, finishReason, logprobsJson, parseGenerateContentResponse, splitParts, toCanonicalUsage, toolCallId, type UsageMetadata } from './gemini-response';

export interface StreamContext {
  requestId: string;
  created: number;
  upstreamModel: string;
  includeUsage: boolean;
  provider: string;
  /** Stands in for usage when the stream reported none. */
  estimateUsage: (completionText: string) => chatv1.Usage;
  /** The function a JSON answer was forced through, if any: its call streams as content. */
  answerTool?: string | undefined;
}

interface CandidateState {
  toolCalls: number;
  /** Whether the candidate has streamed text or a function call: without either, some finish reasons are failures. */
  produced: boolean;
  finished: boolean;
}

/**
 * streamGenerateContent events (each a partial GenerateContentResponse) as OpenAI-shaped chunks:
 * a role chunk per choice, content deltas, each function call as its id and name then its
 * arguments (Gemini sends a call whole), a finish chunk per choice, and — once the body has
 * ended — a usage chunk with no choices when the request asked for usage.
 */
export class GeminiStreamTranslator {
  private readonly candidates = new Map<number, CandidateState>();
  private responseId: string | undefined;
  private model: string | undefined;
  /** Every count the stream reported, each the latest (Gemini's counts are running totals). */
  private usage: UsageMetadata = {};
  /** The answer's visible text and function calls' arguments, for estimates. */
  private text = '';
  /** Thought summaries: billed as output, but within thoughtsTokenCount once Gemini reports it. */
  private reasoning = '';
  /** How much of `text` the last reported candidatesTokenCount counts. */
  private counted = 0;
  /** Whether a chunk that commits the request to this provider (content, a call, reasoning) went out. */
  private answered = false;

  constructor(private readonly ctx: StreamContext) {}

  /** True once every choice that started has finished. */
  get finished(): boolean {
    return this.candidates.size > 0 && [...this.candidates.values()].every((c) => c.finished);
  }

  accept(json: unknown): chatv1.ChatChunk[] {
    const error = readGoogleError(json);
    if (error) throw toGatewayError(error, error.code ?? 500, this.ctx.provider);
    const event = parseGenerateContentResponse(json, this.ctx.provider, 'stream event');
    const blocked = blockedPromptError(event, this.ctx.provider);
    if (blocked) throw blocked;
    this.responseId ??= event.responseId;
    this.model ??= event.modelVersion;
    // The Gemini API repeats the prompt's count on every event and adds the output's as it goes;
    // Vertex AI sends an empty usageMetadata on its first event and counts only on its last. An
    // event that leaves a count out has not reset it, so each count keeps its latest value.
    if (event.usageMetadata) this.usage = { ...this.usage, ...event.usageMetadata };
    const out: chatv1.ChatChunk[] = [];
    (event.candidates ?? []).forEach((c, position) => {
      const index = c.index ?? position;
      let state = this.candidates.get(index);
      if (!state) {
        state = { toolCalls: 0, produced: false, finished: false };
        this.candidates.set(index, state);
        out.push(this.chunk(index, { role: 'assistant', content: '' }));
      }
      if (state.finished) return;
      const key = this.responseId ?? this.ctx.requestId;
      const parts = splitParts(c.content?.parts ?? [], (at, name) => toolCallId(key, index, at, name), state.toolCalls, this.ctx.answerTool);
      if (parts.reasoning) {
        this.reasoning += parts.reasoning;
        out.push(this.chunk(index, { extraJson: JSON.stringify({ reasoning_content: parts.reasoning }) }));
      }
      if (parts.text) {
        state.produced = true;
        this.text += parts.text;
        out.push(this.chunk(index, { content: parts.text }, undefined, logprobsJson(c.logprobsResult)));
      }
      for (const call of parts.toolCalls) {
        const at = state.toolCalls++;
        state.produced = true;
        const args = call.function?.arguments ?? '{}';
        this.text += args;
        out.push(this.chunk(index, { toolCalls: [{ index: at, id: call.id, type: 'function', name: call.function?.name ?? '', arguments: '' }] }));
        out.push(this.chunk(index, { toolCalls: [{ index: at, id: undefined, type: undefined, name: undefined, arguments: args }] }));
      }
      if (c.finishReason) {
        // Thrown before anything of this event goes out; the router fails over when nothing that
        // commits it (content, a call, reasoning) was sent yet, and ends the stream with an error otherwise.
        // With several candidates, one that failed empty while another answered ends as an empty
        // choice: the others' answers are not thrown away.
        const anyProduced = [...this.candidates.values()].some((other) => other.produced);
        const failed = failedCandidateError(c.finishReason, c.finishMessage, anyProduced, this.ctx.provider);
        if (failed) throw failed;
        state.finished = true;
        out.push(this.chunk(index, {}, finishReason(c.finishReason, state.toolCalls > 0)));
      }
    });
    // A count of the output covers the text of the event that carries it.
    if (event.usageMetadata?.candidatesTokenCount !== undefined) this.counted = this.text.length;
    this.answered ||= out.some(chunkCarriesAnswer);
    return out;
  }

  /**
   * The usage of a stream that fails once its answer has begun, as a chunk: what Google bills for
   * it so far (`usageNow`). None before the answer began (the request fails over, and a usage
   * chunk would commit it to this provider), nor while no prompt count came (Vertex AI counts only
   * on the last event): ingress then estimates the whole request, prompt included, rather than
   * take a prompt of 0.
   */
  usageSoFar(): chatv1.ChatChunk[] {
    if (!this.answered || !this.ctx.includeUsage) return [];
    const usage = this.usageNow();
    return usage ? [{ ...this.envelope(), choices: [], usage }] : [];
  }

  /** Called once the body has ended: the usage chunk, or an error if the answer was cut short. */
  end(): chatv1.ChatChunk[] {
    if (!this.finished) throw new GatewayError('upstream_error', `The provider "${this.ctx.provider}" ended the stream before it finished.`, { provider: this.ctx.provider });
    if (!this.ctx.includeUsage) return [];
    const usage = this.usageNow() ?? { ...this.ctx.estimateUsage(this.text + this.reasoning), reasoningTokens: this.estimate(this.reasoning) };
    return [{ ...this.envelope(), choices: [], usage }];
  }

  /**
   * The counts reported so far, with what they do not cover yet estimated (and the usage then
   * marked `estimated`): Gemini often counts the output only on its last event, and a thinking
   * model reports its thoughts before the text that follows them. The output is the thoughts
   * (reported, else their summaries streamed) plus the visible output reported plus the visible
   * text streamed since that report. Undefined while no prompt count came.
   */
  private usageNow(): chatv1.Usage | undefined {
    const u = this.usage;
    if (u.promptTokenCount === undefined) return undefined;
    const reported = toCanonicalUsage(u);
    const uncounted = this.text.slice(this.counted);
    const thoughtsUncounted = u.thoughtsTokenCount === undefined && this.reasoning !== '';
    if (!uncounted && !thoughtsUncounted) return reported;
    const reasoningTokens = u.thoughtsTokenCount ?? this.estimate(this.reasoning);
    const completionTokens = (u.candidatesTokenCount ?? 0) + reasoningTokens + this.estimate(uncounted);
    return { ...reported, completionTokens, reasoningTokens, totalTokens: reported.promptTokens + completionTokens, estimated: true };
  }

  private estimate(text: string): number {
    return text ? this.ctx.estimateUsage(text).completionTokens : 0;
  }

  private envelope(): Omit<chatv1.ChatChunk, 'choices'> {
    return {
      id: `chatcmpl-${this.responseId ?? this.ctx.requestId}`,
      created: this.ctx.created,
      model: this.model ?? this.ctx.upstreamModel,
      usage: undefined,
      systemFingerprint: undefined,
      serviceTier: undefined,
    };
  }

  private chunk(index: number, delta: Partial<chatv1.Delta>, finish?: string, logprobs = ''): chatv1.ChatChunk {
    return {
      ...this.envelope(),
      choices: [{ index, delta: { role: undefined, content: undefined, toolCalls: [], refusal: undefined, extraJson: '', ...delta }, finishReason: finish, logprobsJson: logprobs }],
    };
  }
}
