import type { Behaviour } from '../core/behaviour-config';
import type { FaultInjector } from '../core/fault-injector';
import type { SeededRandom } from '../core/seeded-random';
import type { HttpExchange } from '../http/http-exchange';

/** What every wire module gets from the running simulator. */
export interface SimulatorRuntime {
  readonly apiKey: string | undefined;
  readonly seed: number;
  /** The behaviour current at the time of the call; read once per request. */
  behaviour(): Behaviour;
  readonly faults: FaultInjector;
  /** For response/tool-call ids: deterministic per seed, separate from fault rolls. */
  readonly ids: SeededRandom;
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
