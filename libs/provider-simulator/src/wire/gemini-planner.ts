import type { Behaviour } from '../core/behaviour-config';
import { choiceSeed, finalizeContent, generateReplyPieces, TOOL_RESULT_OPENING } from '../core/reply-generator';
import type { SeededRandom } from '../core/seeded-random';
import { countPromptTokens, countTokens, splitIntoTokenPieces } from '../core/token-counter';
import { synthesizeFromSchema, synthesizeToolArguments } from '../core/tool-argument-synthesizer';
import type { CandidatePlan, GeneratePlan } from './gemini-formats';
import type { FunctionDeclaration, GeminiContent, GeminiPart, GenerateContentRequest } from './gemini-request-schemas';

export type GeneratePlanResult = { ok: true; plan: GeneratePlan } | { ok: false; message: string };

export interface PlannerContext {
  seed: number;
  ids: SeededRandom;
}

/**
 * Turns a validated generateContent request into the complete answer before anything is
 * written: checks the rules Gemini enforces beyond the schema (function call/response turns,
 * the function calling config, the context window), then plans per candidate either a forced
 * function call (mode ANY) or a text reply (JSON when responseMimeType asks for it).
 */
export function planGenerateContent(request: GenerateContentRequest, model: string, behaviour: Behaviour, context: PlannerContext): GeneratePlanResult {
  const turns = checkFunctionTurns(request.contents);
  if (turns) return { ok: false, message: turns };
  if (jsonWithFunctionsRefused(request, model)) return { ok: false, message: "Function calling with a response mime type: 'application/json' is unsupported" };

  const promptTokens = countPromptTokens([...(request.systemInstruction ? [partTexts(request.systemInstruction.parts)] : []), ...request.contents.map((c) => partTexts(c.parts))]);
  if (promptTokens > behaviour.contextWindow) {
    return { ok: false, message: `The input token count (${promptTokens}) exceeds the maximum number of tokens allowed (${behaviour.contextWindow}).` };
  }

  const forced = forcedFunction(request);
  if (typeof forced === 'string') return { ok: false, message: forced };
  const last = request.contents[request.contents.length - 1];
  // A function result is always answered in text, so a client that keeps mode ANY still terminates.
  const answeringResult = last?.role !== 'model' && (last?.parts.some((p) => p.functionResponse !== undefined) ?? false);
  const declaration = answeringResult ? undefined : forced;

  const config = request.generationConfig ?? {};
  const lastUserText = lastUserTextOf(request.contents);
  const seedText = answeringResult ? `${lastUserText}\u0000${JSON.stringify(last?.parts.map((p) => p.functionResponse?.response ?? null))}` : lastUserText;
  const candidates: CandidatePlan[] = [];
  for (let index = 0; index < (config.candidateCount ?? 1); index++) {
    if (declaration) {
      const args = synthesizeToolArguments(declaration.parametersJsonSchema ?? lowerCaseTypes(declaration.parameters));
      candidates.push({ index, pieces: [], text: '', functionCall: { name: declaration.name, args }, finishReason: 'STOP', tokens: countTokens(JSON.stringify(args)) });
      continue;
    }
    const natural = naturalPieces(request, behaviour, choiceSeed(context.seed, index), seedText, answeringResult);
    const content = finalizeContent(natural, { maxTokens: config.maxOutputTokens, stop: config.stopSequences ?? [] });
    candidates.push({ index, pieces: content.pieces, text: content.text, finishReason: content.finishReason === 'length' ? 'MAX_TOKENS' : 'STOP', tokens: content.completionTokens });
  }
  return { ok: true, plan: { responseId: context.ids.alphanumeric(23), modelVersion: model, promptTokens, candidates } };
}

function partTexts(parts: readonly GeminiPart[]): string[] {
  const texts: string[] = [];
  for (const p of parts) {
    if (p.text !== undefined) texts.push(p.text);
    if (p.functionCall) texts.push(p.functionCall.name, JSON.stringify(p.functionCall.args ?? {}));
    if (p.functionResponse) texts.push(p.functionResponse.name, JSON.stringify(p.functionResponse.response));
  }
  return texts;
}

function lastUserTextOf(contents: readonly GeminiContent[]): string {
  for (let i = contents.length - 1; i >= 0; i--) {
    const c = contents[i];
    if (c?.role === 'model') continue;
    const texts = (c?.parts ?? []).flatMap((p) => (p.text !== undefined ? [p.text] : []));
    if (texts.length > 0) return texts.join('\n');
  }
  return '';
}

/**
 * Every model turn that calls functions must be followed by one user turn answering each call
 * (as many functionResponse parts as functionCall parts, by the same names), and function
 * responses may only follow such a turn.
 */
function checkFunctionTurns(contents: readonly GeminiContent[]): string | undefined {
  for (let i = 0; i < contents.length; i++) {
    const turn = contents[i] as GeminiContent;
    const responses = turn.parts.filter((p) => p.functionResponse !== undefined);
    if (responses.length === 0) continue;
    const previous = contents[i - 1];
    const calls = previous?.role === 'model' ? previous.parts.filter((p) => p.functionCall !== undefined) : [];
    if (turn.role === 'model' || calls.length === 0) {
      return 'Please ensure that function response turn comes immediately after a function call turn.';
    }
    if (responses.length !== calls.length) {
      return 'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.';
    }
    const names = new Set(calls.map((p) => p.functionCall?.name));
    const stray = responses.find((p) => !names.has(p.functionResponse?.name));
    if (stray) return `Function response "${stray.functionResponse?.name ?? ''}" does not answer any function call of the function call turn.`;
  }
  for (let i = 0; i < contents.length - 1; i++) {
    const turn = contents[i] as GeminiContent;
    const next = contents[i + 1] as GeminiContent;
    if (turn.parts.some((p) => p.functionCall !== undefined) && !next.parts.some((p) => p.functionResponse !== undefined)) {
      return 'Please ensure that function call turn comes immediately before a function response turn.';
    }
  }
  return undefined;
}

/**
 * Models before Gemini 3 refuse function declarations next to the JSON response mime type, unless
 * function calling is switched off (mode NONE). The version is read from the model name.
 */
function jsonWithFunctionsRefused(request: GenerateContentRequest, model: string): boolean {
  const major = Number(/(?:^|\/)gemini-(\d+)/.exec(model)?.[1] ?? 0);
  const declarations = (request.tools ?? []).flatMap((t) => t.functionDeclarations ?? []);
  return major < 3 && declarations.length > 0 && request.generationConfig?.responseMimeType === 'application/json' && request.toolConfig?.functionCallingConfig?.mode !== 'NONE';
}

function forcedFunction(request: GenerateContentRequest): FunctionDeclaration | undefined | string {
  const declarations = (request.tools ?? []).flatMap((t) => t.functionDeclarations ?? []);
  const config = request.toolConfig?.functionCallingConfig;
  const allowed = config?.allowedFunctionNames ?? [];
  if (allowed.length > 0 && config?.mode !== 'ANY' && config?.mode !== 'VALIDATED') {
    return 'allowed_function_names should only be set when the Function calling mode is ANY.';
  }
  for (const name of allowed) {
    if (!declarations.some((d) => d.name === name)) return `allowed_function_names contains "${name}", which is not among the function declarations.`;
  }
  if (config?.mode !== 'ANY') return undefined;
  if (declarations.length === 0) return 'Function calling config is set without function_declarations.';
  return allowed.length > 0 ? declarations.find((d) => d.name === allowed[0]) : declarations[0];
}

function naturalPieces(request: GenerateContentRequest, behaviour: Behaviour, seed: number, seedText: string, answeringResult: boolean): string[] {
  const config = request.generationConfig ?? {};
  const words = generateReplyPieces(seed, seedText, behaviour.completionTokens, answeringResult ? TOOL_RESULT_OPENING : []);
  if (config.responseMimeType !== 'application/json') return words;
  const schema = config.responseJsonSchema ?? (config.responseSchema ? lowerCaseTypes(config.responseSchema) : undefined);
  const value = schema === undefined ? { reply: words.join('') } : synthesizeFromSchema(schema);
  return splitIntoTokenPieces(JSON.stringify(value)).pieces;
}

/** Gemini's Schema spells types in upper case (`OBJECT`); the synthesizer reads JSON Schema's lower case. */
export function lowerCaseTypes(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(lowerCaseTypes);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) out[key] = key === 'type' && typeof value === 'string' ? value.toLowerCase() : lowerCaseTypes(value);
  return out;
}
