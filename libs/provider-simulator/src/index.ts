export { startSimulator } from './simulator-server';
export type { RunningSimulator, SimulatorOptions } from './simulator-server';
export { DEFAULT_BEHAVIOUR } from './core/behaviour-config';
export type { Behaviour, Fault, FaultKind, FaultPath } from './core/behaviour-config';
export type { ObservedRequest, RequestOutcome } from './core/request-log';
export { PROMPT_REPLY_PRIMING_TOKENS, PROMPT_TOKENS_PER_MESSAGE } from './core/token-counter';
export { SIMULATED_MODELS } from './wire/openai-formats';
export { ANTHROPIC_REDACTED_THINKING_TRIGGER, anthropicThinkingSignature } from './wire/anthropic-thinking';
