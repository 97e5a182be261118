import type { Behaviour, Fault } from '../core/behaviour-config';
import type { PromptCache } from '../core/prompt-cache';
import type { FaultInjector } from '../core/fault-injector';
import type { SeededRandom } from '../core/seeded-random';
import type { HttpExchange } from '../http/http-exchange';
import type { EntraTokenAuthority } from './entra-id';
import type { GoogleTokenAuthority } from './google-oauth';

/** What every wire module gets from the running simulator. */
export interface SimulatorRuntime {
  readonly apiKey: string | undefined;
  readonly seed: number;
  /** The behaviour current at the time of the call; read once per request. */
  behaviour(): Behaviour;
  readonly faults: FaultInjector;
  /** For response/tool-call ids: deterministic per seed, separate from fault rolls. */
  readonly ids: SeededRandom;
  /** Service accounts and issued access tokens of the simulated Google authorization server (Vertex AI). */
  readonly googleTokens: GoogleTokenAuthority;
  /** App registrations, managed identities and issued tokens of the simulated Entra ID (Azure OpenAI). */
  readonly entraTokens: EntraTokenAuthority;
  /** The prompt prefixes cached by requests that asked for it (Anthropic's `cache_control`). */
  readonly promptCache: PromptCache;
}

export type WireHandler = (exchange: HttpExchange, runtime: SimulatorRuntime) => Promise<void>;

/**
 * A provider's wire format (OpenAI today; Anthropic, Gemini, Bedrock later as siblings).
 * `route` claims only the exact routes the provider serves so modules can coexist.
 */
export interface WireProtocol {
  readonly name: string;
  route(method: string, pathname: string): WireHandler | undefined;
}

/**
 * The faults every wire answers alike, with no answer at all: a hang (`timeout`) or the connection
 * dropped before the status line (`drop_before_response`). True when `fault` was one of them.
 */
export async function faultWithoutAnswer(exchange: HttpExchange, fault: Fault): Promise<boolean> {
  if (fault.kind === 'timeout') {
    await exchange.hang();
    return true;
  }
  if (fault.kind === 'drop_before_response') {
    exchange.dropNow();
    return true;
  }
  return false;
}

/** How long a faulted answer tells the client to wait: the fault's own delay, else a second for a 429 (as providers do). */
export function faultRetryAfterSeconds(fault: Fault, status: number): number | undefined {
  const seconds = fault.retryAfterSeconds ?? (status === 429 ? 1 : undefined);
  return seconds === undefined ? undefined : Math.ceil(seconds);
}
