import type { PacedFrame } from '../core/stream-pacer';
import type { ImageUsage } from './openai-image-planner';

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export function openAiError(message: string, type: string, param: string | null = null, code: string | null = null): OpenAiErrorBody {
  return { error: { message, type, param, code } };
}

/** The `type` OpenAI uses for each status family. */
export function errorTypeForStatus(status: number): string {
  if (status === 429) return 'requests';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function defaultErrorCode(status: number): string | null {
  if (status === 429) return 'rate_limit_exceeded';
  if (status === 401) return 'invalid_api_key';
  return null;
}

export function defaultErrorMessage(status: number, model: string | undefined): string {
  switch (status) {
    case 400:
      return 'Bad request (simulated).';
    case 401:
      return 'Incorrect API key provided.';
    case 403:
      return 'You are not allowed to sample from this model.';
    case 404:
      return `The model \`${model ?? 'unknown'}\` does not exist or you do not have access to it.`;
    case 429:
      return `Rate limit reached for ${model ?? 'this model'} (simulated). Please try again later.`;
    case 503:
      return 'The engine is currently overloaded, please try again later.';
    default:
      return status >= 500
        ? 'The server had an error while processing your request. Sorry about that!'
        : `Request failed with status ${status} (simulated).`;
  }
}

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

export function chatUsage(promptTokens: number, completionTokens: number): OpenAiUsage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
}

export type ChatFinishReason = 'stop' | 'length' | 'tool_calls';

export interface ToolCallPlan {
  id: string;
  name: string;
  arguments: string;
}

export interface ChoicePlan {
  index: number;
  /** Text content; null for a tool call. */
  content: string | null;
  toolCall?: ToolCallPlan;
  /**
   * Set when the model declines: the text is OpenAI's `refusal` (`content` null, finish_reason
   * `stop`), streamed as `refusal` deltas.
   */
  refusal?: boolean;
  /** Streamed fragments: content tokens, or argument fragments of the tool call. */
  pieces: readonly string[];
  finishReason: ChatFinishReason;
  completionTokens: number;
}

export interface ChatCompletionPlan {
  id: string;
  created: number;
  model: string;
  systemFingerprint: string;
  promptTokens: number;
  completionTokens: number;
  choices: ChoicePlan[];
}

/** A whole answer; without `usage` when `withUsage` is false (a server that reports none). */
export function chatCompletionBody(plan: ChatCompletionPlan, withUsage = true): unknown {
  return {
    id: plan.id,
    object: 'chat.completion',
    created: plan.created,
    model: plan.model,
    choices: plan.choices.map((choice) => ({
      index: choice.index,
      message: choice.toolCall
        ? {
            role: 'assistant',
            content: null,
            refusal: null,
            tool_calls: [{ id: choice.toolCall.id, type: 'function', function: { name: choice.toolCall.name, arguments: choice.toolCall.arguments } }],
          }
        : choice.refusal
          ? { role: 'assistant', content: null, refusal: choice.content }
          : { role: 'assistant', content: choice.content, refusal: null },
      logprobs: null,
      finish_reason: choice.finishReason,
    })),
    ...(withUsage ? { usage: chatUsage(plan.promptTokens, plan.completionTokens) } : {}),
    system_fingerprint: plan.systemFingerprint,
  };
}

const sse = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`;

export const SSE_DONE = 'data: [DONE]\n\n';

/** Azure OpenAI's content-filter verdict of a text, every category passed. */
const SAFE = { filtered: false, severity: 'safe' };
const AZURE_FILTER_RESULTS = { hate: SAFE, self_harm: SAFE, sexual: SAFE, violence: SAFE };
const AZURE_FILTER_RESULTS_JSON = JSON.stringify(AZURE_FILTER_RESULTS);

/**
 * The chunk Azure OpenAI opens every stream with (since API 2023-06-01-preview): no choices, no
 * usage, an empty envelope, only the verdict of its content filter on the prompt.
 */
const AZURE_PROMPT_FILTER_CHUNK = {
  choices: [],
  created: 0,
  id: '',
  model: '',
  object: '',
  prompt_filter_results: [{ prompt_index: 0, content_filter_results: { ...AZURE_FILTER_RESULTS, jailbreak: { filtered: false, detected: false } } }],
};

/**
 * The stream as OpenAI sends it: an opening delta per choice, one chunk per token (choices
 * interleaved per step), a closing chunk per choice with its finish_reason, the optional
 * usage chunk with `choices: []`, then `[DONE]`. `azure` adds what Azure OpenAI's default content
 * filter adds: the prompt's verdict in a first chunk of its own, and `content_filter_results` on
 * every choice (the verdict on each token's text, empty on the opening and closing chunks).
 */
export function chatCompletionFrames(plan: ChatCompletionPlan, includeUsage: boolean, azure = false): PacedFrame[] {
  // Every chunk shares its envelope; building it once keeps per-token cost to one small
  // JSON.stringify (this is the benchmark hot path). Key order matches JSON.stringify of the object.
  const head =
    `data: {"id":${JSON.stringify(plan.id)},"object":"chat.completion.chunk","created":${plan.created},` +
    `"model":${JSON.stringify(plan.model)},"system_fingerprint":${JSON.stringify(plan.systemFingerprint)},"choices":[`;
  const tail = includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
  const emptyFilter: { content_filter_results?: object } = azure ? { content_filter_results: {} } : {};
  const tokenFilter = azure ? `,"content_filter_results":${AZURE_FILTER_RESULTS_JSON}` : '';
  const choiceChunk = (index: number, delta: unknown, finishReason: ChatFinishReason | null = null): string =>
    `${head}${JSON.stringify({ index, delta, logprobs: null, finish_reason: finishReason, ...emptyFilter })}${tail}`;

  const frames: PacedFrame[] = azure ? [{ text: sse(AZURE_PROMPT_FILTER_CHUNK) }] : [];
  for (const choice of plan.choices) {
    const opening = choice.toolCall
      ? {
          role: 'assistant',
          content: null,
          tool_calls: [{ index: 0, id: choice.toolCall.id, type: 'function', function: { name: choice.toolCall.name, arguments: '' } }],
        }
      : choice.refusal
        ? { role: 'assistant', refusal: '' }
        : { role: 'assistant', content: '' };
    frames.push({ text: choiceChunk(choice.index, opening) });
  }
  const steps = Math.max(0, ...plan.choices.map((choice) => choice.pieces.length));
  for (let step = 0; step < steps; step++) {
    for (const choice of plan.choices) {
      const piece = choice.pieces[step];
      if (piece === undefined) continue;
      const delta = choice.toolCall
        ? `{"tool_calls":[{"index":0,"function":{"arguments":${JSON.stringify(piece)}}}]}`
        : `{"${choice.refusal ? 'refusal' : 'content'}":${JSON.stringify(piece)}}`;
      frames.push({ text: `${head}{"index":${choice.index},"delta":${delta},"logprobs":null,"finish_reason":null${tokenFilter}}${tail}`, tokenStep: step });
    }
  }
  for (const choice of plan.choices) {
    frames.push({ text: choiceChunk(choice.index, {}, choice.finishReason) });
  }
  if (includeUsage) {
    frames.push({
      text: sse({
        id: plan.id,
        object: 'chat.completion.chunk',
        created: plan.created,
        model: plan.model,
        system_fingerprint: plan.systemFingerprint,
        choices: [],
        usage: chatUsage(plan.promptTokens, plan.completionTokens),
      }),
    });
  }
  frames.push({ text: SSE_DONE });
  return frames;
}

export const SIMULATED_MODELS: readonly string[] = [
  'gpt-4o',
  'gpt-4o-mini',
  'gpt-4.1',
  'gpt-4.1-mini',
  'text-embedding-3-small',
  'text-embedding-3-large',
  'omni-moderation-latest',
];

const MODEL_CREATED = 1_700_000_000;

export function modelBody(id: string): unknown {
  return { id, object: 'model', created: MODEL_CREATED, owned_by: 'simulator' };
}

export function modelListBody(): unknown {
  return { object: 'list', data: SIMULATED_MODELS.map(modelBody) };
}

/** A moderation result as OpenAI sends it; `category_applied_input_types` only from the omni models. */
export interface ModerationResultBody {
  flagged: boolean;
  categories: Record<string, boolean | null>;
  category_scores: Record<string, number | null>;
  category_applied_input_types?: Record<string, string[]>;
}

export function moderationBody(id: string, model: string, results: readonly ModerationResultBody[]): unknown {
  return { id, model, results };
}

export function embeddingListBody(model: string, embeddings: readonly (number[] | string)[], promptTokens: number): unknown {
  return {
    object: 'list',
    data: embeddings.map((embedding, index) => ({ object: 'embedding', index, embedding })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

export interface GeneratedImageBody {
  b64_json?: string;
  url?: string;
  revised_prompt?: string;
}

/**
 * An Images API answer (a generation or an edit) as OpenAI sends it: DALL·E's `{created, data}`; GPT Image's also says the
 * background, output format, quality and size it made, and its token usage.
 */
export function imageGenerationBody(
  created: number,
  data: readonly GeneratedImageBody[],
  gptImage: { background: string; outputFormat: string; quality: string; size: string; usage: ImageUsage | undefined } | undefined,
): unknown {
  if (gptImage === undefined) return { created, data };
  const { usage } = gptImage;
  const inputTokens = usage === undefined ? 0 : usage.textTokens + usage.imageTokens;
  return {
    created,
    background: gptImage.background,
    data,
    output_format: gptImage.outputFormat,
    quality: gptImage.quality,
    size: gptImage.size,
    ...(usage && {
      usage: {
        input_tokens: inputTokens,
        input_tokens_details: { image_tokens: usage.imageTokens, text_tokens: usage.textTokens },
        output_tokens: usage.outputTokens,
        total_tokens: inputTokens + usage.outputTokens,
      },
    }),
  };
}
