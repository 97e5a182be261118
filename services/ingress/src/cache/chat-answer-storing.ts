import type { chatv1, routerv1 } from '@openrouter/contracts';
import type { BudgetReservation } from '../budgets/budget.service';
import type { UsageTrack } from '../usage/usage-recorder';
import { originOf, storableRoute } from './cache-replies';
import { completionStorable, type StreamedAnswer } from './cached-answer';
import type { CachePlan, ResponseCache } from './response-cache';

/** What storing an answer needs of its request, over HTTP (a `FastifyRequest`) or a WebSocket: its id, and its budget's reservation. */
export interface StoringRequest {
  readonly id: string;
  readonly budget?: Pick<BudgetReservation, 'capped'>;
}

/**
 * Stores a fresh chat answer in the response cache when it may be, whatever API it is answered in
 * (chat completions, the Responses API, Anthropic's Messages): only for a `use` or `refresh` plan;
 * never an answer whose output limit the budget set (it is the budget's, not the request's) nor
 * one an experiment's arm answered (not every caller's); a whole answer only when every choice
 * finished for a storable reason; a stream gathered as it goes (given up once it outgrows
 * `cache.maxEntryBytes`) and stored only once it completed normally. An answer not stored is
 * counted as `skipped`. Requests waiting for this one's answer (coalesced misses) are let go as
 * soon as it is known that it will not be stored: at once for a route or a budget that forbids
 * it, on the chunk that makes a stream unstorable. Only the first end told (`whole`, `streamEnded`) counts.
 */
export class ChatAnswerStoring {
  private readonly storing: boolean;
  private readonly gathered: StreamedAnswer | undefined;
  private ended = false;

  constructor(
    private readonly cache: ResponseCache | undefined,
    private readonly plan: CachePlan | undefined,
    private readonly req: StoringRequest,
    private readonly decision: routerv1.RouteDecision,
    private readonly usage: UsageTrack,
    stream: boolean,
  ) {
    this.storing = !!cache && !!plan && plan.mode !== 'bypass' && !req.budget?.capped && storableRoute(decision);
    this.gathered = this.storing && stream ? cache?.gathering() : undefined;
    if (!this.storing && plan) cache?.abandon(plan);
  }

  /** What sees every chunk of a stream being stored (undefined when it is not). */
  get observe(): ((chunk: chatv1.ChatChunk) => void) | undefined {
    const { gathered, cache, plan } = this;
    return (
      gathered &&
      ((chunk) => {
        if (gathered.givenUp) return;
        gathered.add(chunk);
        if (gathered.givenUp && plan) cache?.abandon(plan);
      })
    );
  }

  /** A whole answer sent (`answered`: with the request's usage, as `UsageTrack.completion` gives it). */
  whole(answered: chatv1.ChatCompletion): void {
    if (this.once()) return;
    if (this.storing && completionStorable(answered)) this.store({ ...answered, usage: this.usage.tokens() });
    else this.skipped();
  }

  /** A stream ended: stored when it `completed` normally and every choice finished for a storable reason. */
  streamEnded(completed: boolean): void {
    if (this.once()) return;
    const whole = completed ? this.gathered?.whole(this.usage.tokens()) : undefined;
    if (whole) this.store(whole);
    else this.skipped();
  }

  /** Whether the answer's end was told already. */
  private once(): boolean {
    const told = this.ended;
    this.ended = true;
    return told;
  }

  private store(completion: chatv1.ChatCompletion): void {
    if (this.cache && this.plan) this.cache.storeCompletion(this.plan, originOf(this.decision, this.usage), completion, this.req.id);
  }

  private skipped(): void {
    if (this.plan) this.cache?.skipped(this.plan);
  }
}
