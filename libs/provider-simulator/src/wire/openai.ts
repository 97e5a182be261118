import type { OutgoingHttpHeaders } from 'node:http';
import { type Behaviour, type Fault, type FaultPath, MAX_EMBEDDING_DIMENSIONS } from '../core/behaviour-config';
import { type EmbeddingInput, encodeEmbeddingBase64, generateEmbedding } from '../core/embedding-generator';
import { colourHex, imageColour, solidPng } from '../core/png-image';
import { classifyModeration, MODERATION_CATEGORIES, type ModerationInput } from '../core/moderation-classifier';
import { synthesizeSpeech } from '../core/simulated-audio';
import { deliverFrames, framesBefore, type PacedFrame } from '../core/stream-pacer';
import { countTokens } from '../core/token-counter';
import { SIMULATED_IMAGE_PREFIX } from '../http/control-routes';
import type { HttpExchange } from '../http/http-exchange';
import { parseJson } from '../http/http-io';
import { describeForm, type FormFields, parseMultipartForm } from '../http/multipart-form';
import { SPEECH_CONTENT_TYPES, speechAudioFrames, speechSseFrames, transcriptionAnswer } from './openai-audio-formats';
import { type AudioTask, planSpeech, planTranscription } from './openai-audio-planner';
import { planChatCompletion } from './openai-chat-planner';
import { DEFAULT_IMAGE_MODEL, type ImagePlan, planImageEdit, planImageGeneration } from './openai-image-planner';
import {
  chatCompletionBody,
  chatCompletionFrames,
  defaultErrorCode,
  defaultErrorMessage,
  embeddingListBody,
  errorTypeForStatus,
  type GeneratedImageBody,
  imageGenerationBody,
  modelBody,
  modelListBody,
  moderationBody,
  type ModerationResultBody,
  openAiError,
} from './openai-formats';
import {
  chatCompletionRequestSchema,
  describeProblem,
  type EmbeddingRequest,
  embeddingRequestSchema,
  type ImageGenerationRequest,
  imageGenerationRequestSchema,
  type ModerationPart,
  type ModerationRequest,
  moderationRequestSchema,
  type RequestProblem,
  speechRequestSchema,
} from './openai-request-schemas';
import { faultRetryAfterSeconds, faultWithoutAnswer, type SimulatorRuntime, type WireHandler, type WireProtocol } from './wire-protocol';

const JSON_HEADERS: OutgoingHttpHeaders = { 'content-type': 'application/json' };
const SSE_HEADERS: OutgoingHttpHeaders = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
};

const INVALID_JSON_MESSAGE =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)";

interface Prepared {
  behaviour: Behaviour;
  body: unknown;
  /** The fields of a multipart form (a `form` route's body; on Azure with the deployment as `model`). */
  form: FormFields | undefined;
  model: string | undefined;
  /**
   * Set only for a fault that has to act while the response is written: drop_mid_stream, or an
   * http_error with `afterTokens` on a chat stream (an error event inside the stream).
   */
  midResponseFault: Fault | undefined;
}

/** OpenAI's own URL layout and bearer auth, or Azure OpenAI's deployments, `api-version` and `api-key`. */
type Dialect = 'openai' | 'azure';

/** How a route's body is read: JSON, or a multipart form (the audio uploads and image edits). */
type BodyKind = 'json' | 'form';

const AZURE_DEPLOYMENT_ROUTE = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings|images\/generations|images\/edits|audio\/transcriptions|audio\/translations|audio\/speech)$/;

/**
 * The steps every OpenAI route shares, in the order the real service applies them:
 * read body → latency → auth → JSON (or form) → fault. Returns undefined once the exchange is answered.
 */
async function prepare(
  exchange: HttpExchange,
  runtime: SimulatorRuntime,
  faultPath: FaultPath | undefined,
  dialect: Dialect = 'openai',
  bodyKind: BodyKind = 'json',
): Promise<Prepared | undefined> {
  const behaviour = runtime.behaviour();
  let body: unknown;
  let form: FormFields | undefined;
  let unreadable: string | undefined;
  if (exchange.method === 'POST') {
    const read = await exchange.readBody();
    if (!read.ok) {
      if (read.reason === 'too_large') sendError(exchange, 413, 'Request body too large.', null, null);
      return undefined;
    }
    if (bodyKind === 'form') {
      const parsed = await parseMultipartForm(read.body, exchange.req.headers['content-type']);
      if (parsed.ok) {
        form = parsed.fields;
        body = form;
        // The log keeps the form's text fields and what the file was, never its bytes.
        const stream = parsed.fields['stream'];
        exchange.observe({ body: describeForm(parsed.fields), model: stringField(parsed.fields, 'model'), stream: stream === 'true' });
      } else {
        unreadable = parsed.message;
      }
    } else {
      const parsed = parseJson(read.body);
      if (!parsed.ok) unreadable = INVALID_JSON_MESSAGE;
      body = parsed.ok ? parsed.value : parsed.raw;
      const record = parsed.ok && isRecord(parsed.value) ? parsed.value : undefined;
      exchange.observe({
        body,
        model: typeof record?.['model'] === 'string' ? record['model'] : undefined,
        stream: record?.['stream'] === true || record?.['stream_format'] === 'sse',
      });
    }
  } else {
    exchange.req.resume();
  }
  if (behaviour.latencyMs > 0 && !(await exchange.cancel.delay(behaviour.latencyMs))) return undefined;
  if (dialect === 'azure' ? !authorizeAzure(exchange, runtime) : !authorize(exchange, runtime.apiKey)) return undefined;
  if (unreadable !== undefined) {
    sendError(exchange, 400, unreadable, null, null);
    return undefined;
  }
  const model = dialect === 'azure' ? azureDeployment(exchange) : isRecord(body) && typeof body['model'] === 'string' ? body['model'] : undefined;
  if (dialect === 'azure' && model !== undefined) {
    if (form !== undefined) form = { ...form, model };
    if (isRecord(body)) body = form ?? { ...body, model };
  }
  const fault = faultPath === undefined ? undefined : runtime.faults.select({ model, path: faultPath });
  // An http_error with `afterTokens` on a chat stream fails the stream after its 200, as LiteLLM,
  // vLLM and OpenAI itself report a failure once streaming has begun.
  const inStream = fault?.kind === 'http_error' && fault.afterTokens !== undefined && faultPath === 'chat' && isRecord(body) && body['stream'] === true;
  if (fault !== undefined && fault.kind !== 'drop_mid_stream' && !inStream) {
    await applyFault(exchange, fault, model, dialect);
    return undefined;
  }
  return { behaviour, body, form, model, midResponseFault: fault };
}

function stringField(fields: FormFields, name: string): string | undefined {
  const value = fields[name];
  return typeof value === 'string' ? value : undefined;
}

function authorize(exchange: HttpExchange, apiKey: string | undefined): boolean {
  if (apiKey === undefined) return true;
  const header = exchange.req.headers.authorization;
  if (header === undefined || header.length === 0) {
    sendError(
      exchange,
      401,
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      null,
      null,
    );
    return false;
  }
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (match?.[1] !== apiKey) {
    sendError(exchange, 401, 'Incorrect API key provided.', null, 'invalid_api_key');
    return false;
  }
  return true;
}

/** The audience of the Entra ID tokens Azure OpenAI takes. */
const AZURE_TOKEN_AUDIENCE = 'https://cognitiveservices.azure.com';

/**
 * Azure insists on an `api-version` query parameter, then takes an Entra ID token
 * (`Authorization: Bearer`) the simulated Entra ID issued for its audience and that has not
 * expired, or the `api-key` header. Without a simulator key or any Entra app or identity, any
 * request is taken (an unknown bearer token too).
 */
function authorizeAzure(exchange: HttpExchange, runtime: SimulatorRuntime): boolean {
  const version = new URL(exchange.req.url ?? '/', 'http://simulator').searchParams.get('api-version');
  if (!version) {
    exchange.sendJson(404, { error: { code: '404', message: 'Resource not found' } });
    return false;
  }
  const { apiKey } = runtime;
  const required = apiKey !== undefined || runtime.entraTokens.configured();
  const bearer = /^Bearer\s+(\S+)$/i.exec(exchange.req.headers.authorization ?? '')?.[1];
  if (bearer !== undefined) {
    const check = runtime.entraTokens.check(bearer, AZURE_TOKEN_AUDIENCE);
    if (check === 'valid' || (check === 'unknown' && !required)) return true;
    exchange.sendJson(401, { error: { code: '401', message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.' } });
    return false;
  }
  if (!required) return true;
  if (apiKey === undefined || exchange.req.headers['api-key'] !== apiKey) {
    exchange.sendJson(401, {
      error: {
        code: '401',
        message: 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
      },
    });
    return false;
  }
  return true;
}

function azureDeployment(exchange: HttpExchange): string | undefined {
  const match = AZURE_DEPLOYMENT_ROUTE.exec(exchange.pathname);
  return match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
}

async function applyFault(exchange: HttpExchange, fault: Fault, model: string | undefined, dialect: Dialect): Promise<void> {
  if (await faultWithoutAnswer(exchange, fault)) return;
  const status = fault.status ?? 500;
  const headers: OutgoingHttpHeaders = {};
  const retryAfter = faultRetryAfterSeconds(fault, status);
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  if (dialect === 'azure' && status === 429) {
    // Azure's own throttling answer: its code is the status's digits, with no type or param, and
    // the wait is also sent in milliseconds.
    if (retryAfter !== undefined) headers['retry-after-ms'] = String(retryAfter * 1000);
    const message = fault.message ?? azureThrottleMessage(exchange, retryAfter ?? 1);
    exchange.sendJson(status, { error: { code: fault.code ?? '429', message } }, headers);
    return;
  }
  const message = fault.message ?? defaultErrorMessage(status, model);
  sendError(exchange, status, message, null, fault.code ?? defaultErrorCode(status), headers);
}

/** The operation Azure names in its throttling message, by the deployment route's last segments. */
const AZURE_OPERATIONS: Readonly<Record<string, string>> = {
  'chat/completions': 'ChatCompletions_Create',
  embeddings: 'Embeddings_Create',
  'images/generations': 'ImageGenerations_Create',
  'images/edits': 'ImageEdits_Create',
  'audio/transcriptions': 'Transcriptions_Create',
  'audio/translations': 'Translations_Create',
  'audio/speech': 'Speech_Create',
};

function azureThrottleMessage(exchange: HttpExchange, seconds: number): string {
  const route = AZURE_DEPLOYMENT_ROUTE.exec(exchange.pathname)?.[2] ?? 'chat/completions';
  const version = new URL(exchange.req.url ?? '/', 'http://simulator').searchParams.get('api-version') ?? '';
  return (
    `Requests to the ${AZURE_OPERATIONS[route] ?? 'ChatCompletions_Create'} Operation under Azure OpenAI API version ${version} have exceeded token rate limit of your current OpenAI S0 pricing tier. ` +
    `Please retry after ${seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`
  );
}

/** The frames up to `afterTokens` token frames, then the fault's error event; the stream then ends, without [DONE]. */
function withErrorEvent(frames: readonly PacedFrame[], fault: Fault, model: string | undefined): PacedFrame[] {
  const out = framesBefore(frames, fault.afterTokens ?? 0);
  const status = fault.status ?? 500;
  const error = openAiError(fault.message ?? defaultErrorMessage(status, model), errorTypeForStatus(status), null, fault.code ?? defaultErrorCode(status));
  out.push({ text: `data: ${JSON.stringify(error)}\n\n` });
  return out;
}

function sendError(
  exchange: HttpExchange,
  status: number,
  message: string,
  param: string | null,
  code: string | null,
  headers: OutgoingHttpHeaders = {},
): void {
  exchange.sendJson(status, openAiError(message, errorTypeForStatus(status), param, code), headers);
}

function sendProblem(exchange: HttpExchange, problem: RequestProblem): void {
  sendError(exchange, 400, problem.message, problem.param, problem.code);
}

const chatCompletions = (dialect: Dialect): WireHandler => async (exchange, runtime) => {
  const prepared = await prepare(exchange, runtime, 'chat', dialect);
  if (prepared === undefined) return;
  const parsed = chatCompletionRequestSchema.safeParse(prepared.body);
  if (!parsed.success) return sendProblem(exchange, describeProblem(parsed.error, prepared.body));
  const result = planChatCompletion(parsed.data, prepared.behaviour, runtime);
  if (!result.ok) return sendProblem(exchange, result.problem);

  const fault = prepared.midResponseFault;
  const dropAfterTokens = fault?.kind === 'drop_mid_stream' ? (fault.afterTokens ?? 0) : undefined;
  if (!result.stream) {
    const body = chatCompletionBody(result.plan, !prepared.behaviour.omitUsage);
    if (dropAfterTokens !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(body));
    return exchange.sendJson(200, body);
  }
  if (!exchange.open) return;
  const sink = exchange.startStream(SSE_HEADERS);
  const frames = chatCompletionFrames(result.plan, result.includeUsage, dialect === 'azure');
  await deliverFrames(
    fault?.kind === 'http_error' ? withErrorEvent(frames, fault, prepared.model) : frames,
    { ttftMs: prepared.behaviour.ttftMs, tokensPerSecond: prepared.behaviour.tokensPerSecond, dropAfterTokens },
    exchange.cancel,
    sink,
  );
};

const embeddings = (dialect: Dialect): WireHandler => async (exchange, runtime) => {
  const prepared = await prepare(exchange, runtime, 'embeddings', dialect);
  if (prepared === undefined) return;
  const parsed = embeddingRequestSchema.safeParse(prepared.body);
  if (!parsed.success) return sendProblem(exchange, describeProblem(parsed.error, prepared.body));
  const request = parsed.data;
  const dimensions = request.dimensions ?? prepared.behaviour.embeddingDimensions;
  if (dimensions > MAX_EMBEDDING_DIMENSIONS) {
    return sendProblem(exchange, {
      message: `Invalid value for 'dimensions': at most ${MAX_EMBEDDING_DIMENSIONS} dimensions are supported.`,
      param: 'dimensions',
      code: 'invalid_value',
    });
  }
  const inputs = embeddingInputs(request.input);
  let promptTokens = 0;
  const embeddings = inputs.map((input) => {
    promptTokens += typeof input === 'string' ? countTokens(input) : input.length;
    const vector = generateEmbedding(runtime.seed, input, dimensions);
    return request.encoding_format === 'base64' ? encodeEmbeddingBase64(vector) : Array.from(vector);
  });
  const body = embeddingListBody(request.model, embeddings, promptTokens);
  if (prepared.midResponseFault !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(body));
  exchange.sendJson(200, body);
};

function embeddingInputs(input: EmbeddingRequest['input']): EmbeddingInput[] {
  if (typeof input === 'string') return [input];
  const items: readonly (string | number | number[])[] = input;
  if (items.every((item): item is number => typeof item === 'number')) return [items];
  return items.filter((item): item is string | number[] => typeof item !== 'number');
}

/** OpenAI's default moderation model, answered when the request names none. */
const DEFAULT_MODERATION_MODEL = 'omni-moderation-latest';

/**
 * `POST /v1/moderations`: one result per text, or one for a list of parts. Scores come from
 * `classifyModeration` (trigger words); the omni models also say which input kinds each category
 * was judged on, and only they take images. The text-moderation models judge no `illicit`
 * categories: those are null, as OpenAI sends them.
 */
const moderations: WireHandler = async (exchange, runtime) => {
  const prepared = await prepare(exchange, runtime, 'moderations');
  if (prepared === undefined) return;
  const parsed = moderationRequestSchema.safeParse(prepared.body);
  if (!parsed.success) return sendProblem(exchange, describeProblem(parsed.error, prepared.body));
  const model = parsed.data.model ?? DEFAULT_MODERATION_MODEL;
  const omni = model.startsWith('omni-moderation');
  const inputs = moderationInputs(parsed.data.input);
  if (!omni && inputs.some((input) => input.imageUrls.length > 0)) {
    return sendProblem(exchange, { message: `The model \`${model}\` does not support image inputs.`, param: 'input', code: 'invalid_value' });
  }
  const results = inputs.map((input): ModerationResultBody => {
    const verdict = classifyModeration(runtime.seed, input);
    if (omni) return { flagged: verdict.flagged, categories: verdict.categories, category_scores: verdict.category_scores, category_applied_input_types: verdict.appliedInputTypes };
    const categories: Record<string, boolean | null> = { ...verdict.categories };
    const scores: Record<string, number | null> = { ...verdict.category_scores };
    for (const category of MODERATION_CATEGORIES) {
      if (!category.startsWith('illicit')) continue;
      categories[category] = null;
      scores[category] = null;
    }
    const flagged = Object.values(categories).some((value) => value === true);
    return { flagged, categories, category_scores: scores };
  });
  const body = moderationBody(`modr-${runtime.ids.alphanumeric(24)}`, model, results);
  if (prepared.midResponseFault !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(body));
  exchange.sendJson(200, body);
};

function moderationInputs(input: ModerationRequest['input']): ModerationInput[] {
  if (typeof input === 'string') return [{ text: input, hasText: true, imageUrls: [] }];
  const items: readonly (string | ModerationPart)[] = input;
  if (items.every((item): item is string => typeof item === 'string')) return items.map((text) => ({ text, hasText: true, imageUrls: [] }));
  // A list of parts is one input: its texts judged together, with its images.
  const parts = items.filter((item): item is ModerationPart => typeof item !== 'string');
  const texts = parts.flatMap((part) => (part.type === 'text' ? [part.text] : []));
  const imageUrls = parts.flatMap((part) => (part.type === 'image_url' ? [part.image_url.url] : []));
  return [{ text: texts.join('\n'), hasText: texts.length > 0, imageUrls }];
}

/**
 * `POST /v1/images/generations` (and an Azure deployment's `images/generations`): `n` images, each
 * a small PNG of one colour seeded by the prompt, under OpenAI's per-model rules
 * (`openai-image-planner.ts`). GPT Image answers `b64_json` with its usage; DALL·E answers URLs to
 * this simulator unless asked for `b64_json`, DALL·E 3 with a revised prompt.
 */
const imageGenerations = (dialect: Dialect): WireHandler => async (exchange, runtime) => {
  const prepared = await prepare(exchange, runtime, 'images', dialect);
  if (prepared === undefined) return;
  const parsed = imageGenerationRequestSchema.safeParse(prepared.body);
  if (!parsed.success) return sendProblem(exchange, describeProblem(parsed.error, prepared.body));
  const request = parsed.data;
  const result = planImageGeneration(request, request.model ?? DEFAULT_IMAGE_MODEL);
  if (!result.ok) return sendProblem(exchange, result.problem);
  sendImages(exchange, runtime, prepared, result.plan, request, undefined);
};

/**
 * `POST /v1/images/edits` (and an Azure deployment's `images/edits`): a multipart upload of the
 * images (and a mask), checked under OpenAI's rules and answered as a generation is, the colours
 * chosen by the prompt and the first image's bytes, GPT Image's usage counting the input images.
 */
const imageEdits = (dialect: Dialect): WireHandler => async (exchange, runtime) => {
  const prepared = await prepare(exchange, runtime, 'images', dialect, 'form');
  if (prepared === undefined) return;
  const result = planImageEdit(prepared.form ?? {});
  if (!result.ok) return sendProblem(exchange, result.problem);
  sendImages(exchange, runtime, prepared, result.plan, result.request, result.plan.source);
};

/** The Images API's answer to a planned generation or edit (`source`: an edit's first input image). */
function sendImages(exchange: HttpExchange, runtime: SimulatorRuntime, prepared: Prepared, plan: ImagePlan, request: ImageGenerationRequest, source: Uint8Array | undefined): void {
  const origin = `http://${exchange.req.headers.host ?? '127.0.0.1'}`;
  const data = Array.from({ length: plan.n }, (_, index): GeneratedImageBody => {
    const colour = imageColour(runtime.seed, request.prompt, index, source);
    const image: GeneratedImageBody =
      plan.format === 'b64_json' ? { b64_json: solidPng(colour).toString('base64') } : { url: `${origin}${SIMULATED_IMAGE_PREFIX}${runtime.ids.alphanumeric(24)}-${colourHex(colour)}.png` };
    if (plan.revisedPrompt !== undefined) image.revised_prompt = plan.revisedPrompt;
    return image;
  });
  const created = Math.floor(Date.now() / 1000);
  const gptImage =
    plan.family === 'gpt-image'
      ? {
          background: request.background === 'transparent' ? 'transparent' : 'opaque',
          outputFormat: 'png',
          quality: plan.quality,
          size: plan.size,
          usage: prepared.behaviour.omitUsage ? undefined : plan.usage,
        }
      : undefined;
  const body = imageGenerationBody(created, data, gptImage);
  if (prepared.midResponseFault !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(body));
  exchange.sendJson(200, body);
}

/**
 * `POST /v1/audio/transcriptions` and `/v1/audio/translations` (and an Azure deployment's
 * `audio/…`): a multipart upload, checked and answered under OpenAI's rules
 * (`openai-audio-planner.ts`) with a deterministic transcript in the asked `response_format`.
 */
const audioUploads = (dialect: Dialect, task: AudioTask): WireHandler => async (exchange, runtime) => {
  const prepared = await prepare(exchange, runtime, 'audio', dialect, 'form');
  if (prepared === undefined) return;
  const result = planTranscription(prepared.form ?? {}, task);
  if (!result.ok) return sendProblem(exchange, result.problem);
  const answer = transcriptionAnswer(result.plan, !prepared.behaviour.omitUsage);
  const headers: OutgoingHttpHeaders = { 'content-type': answer.contentType };
  if (prepared.midResponseFault !== undefined) return exchange.sendTruncated(200, headers, answer.body);
  exchange.send(200, headers, answer.body);
};

/**
 * `POST /v1/audio/speech` (and an Azure deployment's `audio/speech`): audio of a length that
 * follows the input, in the asked format with OpenAI's Content-Type, streamed in 8 KiB pieces
 * (chunked, as OpenAI sends it), or as `speech.audio.delta` events with `stream_format: "sse"`.
 * Both are paced like tokens (`ttftMs` to the first piece, `tokensPerSecond` pieces a second);
 * `drop_mid_stream` cuts the audio after `afterTokens` pieces, or halfway without it (the SSE
 * stream: after `afterTokens` deltas, default 0).
 */
const speech = (dialect: Dialect): WireHandler => async (exchange, runtime) => {
  const prepared = await prepare(exchange, runtime, 'audio', dialect);
  if (prepared === undefined) return;
  const parsed = speechRequestSchema.safeParse(prepared.body);
  if (!parsed.success) return sendProblem(exchange, describeProblem(parsed.error, prepared.body));
  const result = planSpeech(parsed.data, parsed.data.model);
  if (!result.ok) return sendProblem(exchange, result.problem);
  const { plan } = result;
  const audio = synthesizeSpeech(plan.format, plan.durationMs);
  if (plan.streamFormat === 'sse') {
    if (!exchange.open) return;
    const dropAfterTokens = prepared.midResponseFault?.afterTokens ?? (prepared.midResponseFault ? 0 : undefined);
    const { ttftMs, tokensPerSecond, omitUsage } = prepared.behaviour;
    await deliverFrames(speechSseFrames(audio, omitUsage ? undefined : plan.usage), { ttftMs, tokensPerSecond, dropAfterTokens }, exchange.cancel, exchange.startStream(SSE_HEADERS));
    return;
  }
  if (!exchange.open) return;
  const fault = prepared.midResponseFault;
  // Without a count, a cut answer is half the audio's bytes, then the cut.
  const sent = fault !== undefined && fault.afterTokens === undefined ? audio.subarray(0, Math.floor(audio.length / 2)) : audio;
  const frames = speechAudioFrames(sent);
  const dropAfterTokens = fault === undefined ? undefined : (fault.afterTokens ?? frames.length);
  const { ttftMs, tokensPerSecond } = prepared.behaviour;
  await deliverFrames(frames, { ttftMs, tokensPerSecond, dropAfterTokens }, exchange.cancel, exchange.startBinaryStream({ 'content-type': SPEECH_CONTENT_TYPES[plan.format] }));
};

const handleListModels: WireHandler = async (exchange, runtime) => {
  if ((await prepare(exchange, runtime, undefined)) === undefined) return;
  exchange.sendJson(200, modelListBody());
};

const handleRetrieveModel: WireHandler = async (exchange, runtime) => {
  if ((await prepare(exchange, runtime, undefined)) === undefined) return;
  const raw = exchange.pathname.slice('/v1/models/'.length);
  let id = raw;
  try {
    id = decodeURIComponent(raw);
  } catch {
    // Keep the raw segment: a malformed escape is still a usable model id for a simulator.
  }
  exchange.sendJson(200, modelBody(id));
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const handleChatCompletions = chatCompletions('openai');
const handleEmbeddings = embeddings('openai');
const handleAzureChatCompletions = chatCompletions('azure');
const handleAzureEmbeddings = embeddings('azure');
const handleImageGenerations = imageGenerations('openai');
const handleAzureImageGenerations = imageGenerations('azure');
const handleImageEdits = imageEdits('openai');
const handleAzureImageEdits = imageEdits('azure');
const handleTranscriptions = audioUploads('openai', 'transcribe');
const handleTranslations = audioUploads('openai', 'translate');
const handleSpeech = speech('openai');
const handleAzureTranscriptions = audioUploads('azure', 'transcribe');
const handleAzureTranslations = audioUploads('azure', 'translate');
const handleAzureSpeech = speech('azure');

/** OpenAI's REST surface: models, chat completions (incl. SSE streaming), embeddings, moderations, image generations and edits, and audio. */
export const openAiWire: WireProtocol = {
  name: 'openai',
  route(method, pathname) {
    if (method === 'POST' && pathname === '/v1/chat/completions') return handleChatCompletions;
    if (method === 'POST' && pathname === '/v1/embeddings') return handleEmbeddings;
    if (method === 'POST' && pathname === '/v1/moderations') return moderations;
    if (method === 'POST' && pathname === '/v1/images/generations') return handleImageGenerations;
    if (method === 'POST' && pathname === '/v1/images/edits') return handleImageEdits;
    if (method === 'POST' && pathname === '/v1/audio/transcriptions') return handleTranscriptions;
    if (method === 'POST' && pathname === '/v1/audio/translations') return handleTranslations;
    if (method === 'POST' && pathname === '/v1/audio/speech') return handleSpeech;
    if (method === 'GET' && pathname === '/v1/models') return handleListModels;
    if (method === 'GET' && pathname.startsWith('/v1/models/') && pathname.length > '/v1/models/'.length) return handleRetrieveModel;
    return undefined;
  },
};

/**
 * Azure OpenAI's URL scheme over the same behaviour: `/openai/deployments/{deployment}/…?api-version=…`
 * with an `api-key` header; the deployment name stands in for the model.
 */
export const azureOpenAiWire: WireProtocol = {
  name: 'azure',
  route(method, pathname) {
    const match = method === 'POST' ? AZURE_DEPLOYMENT_ROUTE.exec(pathname) : null;
    if (match === null) return undefined;
    if (match[2] === 'embeddings') return handleAzureEmbeddings;
    if (match[2] === 'images/generations') return handleAzureImageGenerations;
    if (match[2] === 'images/edits') return handleAzureImageEdits;
    if (match[2] === 'audio/transcriptions') return handleAzureTranscriptions;
    if (match[2] === 'audio/translations') return handleAzureTranslations;
    if (match[2] === 'audio/speech') return handleAzureSpeech;
    return handleAzureChatCompletions;
  },
};
