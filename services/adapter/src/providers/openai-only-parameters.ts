import { GatewayError } from '@openrouter/errors';

/**
 * OpenAI Chat Completions parameters that reach the adapter as extra body keys (the canonical
 * request has no field for them) and ask for what only OpenAI's own API does. A family that
 * cannot honour one refuses it with a 400 naming it: ignored, it would change what the client
 * gets back (no audio, no search, functions never called). `prediction` (predicted outputs) is not
 * among them: it only speeds an answer up and never changes it, so every family drops it.
 */
const REFUSALS = {
  audio: 'This model does not produce audio.',
  web_search_options: 'This model does not support "web_search_options".',
  functions: 'The deprecated "functions" parameter is not supported by this model; use "tools".',
  function_call: 'The deprecated "function_call" parameter is not supported by this model; use "tool_choice".',
} as const satisfies Record<string, string>;

export type OpenAIOnlyParameter = keyof typeof REFUSALS;

/** Refuses the first of `params` the request's extra body keys carry (null counts as not given). */
export function refuseOpenAIOnly(extra: Readonly<Record<string, unknown>>, params: readonly OpenAIOnlyParameter[]): void {
  for (const param of params) {
    if (Object.hasOwn(extra, param) && extra[param] != null) throw new GatewayError('bad_request', REFUSALS[param], { param, code: 'unsupported_parameter' });
  }
}
