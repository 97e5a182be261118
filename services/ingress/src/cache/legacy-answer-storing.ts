import type { chatv1, routerv1 } from '@openrouter/contracts';
import type { UsageTrack } from '../usage/usage-recorder';
import { originOf, storableRoute } from './cache-replies';
import { completionStorable, type StreamedAnswer } from './cached-answer';
import type { StoringRequest } from './chat-answer-storing';
import type { CachePlan, ResponseCache } from './response-cache';

/**
 * Stores a fresh legacy completion (`/v1/completions`) in the response cache when it may be. The
 * request is one entry, whatever its number of prompts: every prompt's answer together, as one chat
 * completion whose choices are numbered across prompts as the legacy answer numbers them (prompt p's
 * choice i is p × n + i), under the first prompt's route (the one its answer's headers name) and the
 * whole request's tokens and cost. Stored only for a `use` or `refresh` plan; never an answer whose
 * output limit the budget set, nor one any of whose prompts an experiment's arm answered; whole,
 * only when every choice of every prompt finished for a storable reason; streamed, gathered as it
 * goes (given up past `cache.maxEntryBytes`) and stored once every prompt's stream completed. An
 * answer not stored is counted as `skipped`, and the requests waiting for it are let go as soon as
 * that is known. Only the first end told (`whole`, `streamEnded`) counts.
 */
export class LegacyAnswerStoring {
  private storing: boolean;
  private readonly gathered: StreamedAnswer | undefined;
  /** The first prompt's route: the entry's origin. */
  private first: routerv1.RouteDecision | undefined;
  private ended = false;

  constructor(
    private readonly cache: ResponseCache | undefined,
    private readonly plan: CachePlan | undefined,
    private readonly req: StoringRequest,
    private readonly usage: UsageTrack,
    stream: boolean,
    /** The request's `n`: each prompt's choices. */
    private readonly choicesPerPrompt: number,
  ) {
    this.storing = !!cache && !!plan && plan.mode !== 'bypass' && !req.budget?.capped;
    this.gathered = this.storing && stream ? cache?.gathering() : undefined;
    if (!this.storing && plan) cache?.abandon(plan);
  }

  /** Each prompt's route, in prompt order, as it is decided. */
  routed(decision: routerv1.RouteDecision): void {
    this.first ??= decision;
    if (this.storing && !storableRoute(decision)) this.giveUp();
  }

  /** Every chunk of prompt `p`'s stream, as it came from the provider. */
  observe(p: number, chunk: chatv1.ChatChunk): void {
    const gathered = this.gathered;
    if (!this.storing || !gathered) return;
    const offset = p * this.choicesPerPrompt;
    gathered.add(offset === 0 ? chunk : { ...chunk, choices: chunk.choices.map((choice) => ({ ...choice, index: offset + choice.index })) });
    if (gathered.givenUp) this.giveUp();
  }

  /** Every prompt's whole answer sent, in prompt order. */
  whole(completions: readonly chatv1.ChatCompletion[]): void {
    if (this.once()) return;
    if (this.storing && completions.length > 0 && completions.every(completionStorable)) {
      const choices = completions.flatMap((completion, p) => completion.choices.map((choice) => ({ ...choice, index: p * this.choicesPerPrompt + choice.index })));
      const head = completions[0] as chatv1.ChatCompletion;
      this.store({ ...head, choices, usage: this.usage.tokens() });
    } else this.skipped();
  }

  /** The stream ended: stored when it `completed` normally (every prompt answered, nothing cut) and every choice finished for a storable reason. */
  streamEnded(completed: boolean): void {
    if (this.once()) return;
    const whole = completed && this.storing ? this.gathered?.whole(this.usage.tokens()) : undefined;
    if (whole) this.store(whole);
    else this.skipped();
  }

  private giveUp(): void {
    this.storing = false;
    if (this.plan) this.cache?.abandon(this.plan);
  }

  private once(): boolean {
    const told = this.ended;
    this.ended = true;
    return told;
  }

  private store(completion: chatv1.ChatCompletion): void {
    if (this.cache && this.plan && this.first) this.cache.storeCompletion(this.plan, originOf(this.first, this.usage), completion, this.req.id);
    else this.skipped();
  }

  private skipped(): void {
    if (this.plan) this.cache?.skipped(this.plan);
  }
}
