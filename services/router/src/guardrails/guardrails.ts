import { effectiveGuardrails, guardrailsSchema, type GuardrailAction, type GuardrailModerationConfig, type GuardrailsConfig, type GuardrailsInput, type GuardrailStage } from '@openrouter/config';
import type { chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { partContent } from '@openrouter/openai-wire';
import { AnswerScreen } from './answer-screen';
import { compileRule, replaceMatches, type CompiledRule, type Match } from './guardrail-rules';

export const CONTENT_POLICY_VIOLATION = 'content_policy_violation';
/** The code of a request refused because a rule of its policy is not configured here yet (a rollout). */
export const GUARDRAILS_UNAVAILABLE = 'guardrails_unavailable';

/** Told of each rule that matched a request or its answer (`stage`): its id, its action and how many matches (never the text). */
export type GuardrailMatchListener = (rule: string, action: GuardrailAction, count: number, stage: GuardrailStage) => void;

/**
 * Asks the moderation model `model` (a model id) about `texts`, one result per text, routed as
 * the router routes any moderation request (the request's own tenant policy applying), within
 * `timeoutMs` for the whole call, failover included: past it, the call fails with `timeout`.
 */
export type ModerationCall = (model: string, texts: string[], timeoutMs: number) => Promise<chatv1.ModerationResponse>;

/**
 * Told of a moderation rule whose model did not answer (`failure`, whose message never holds the
 * request's text): `refused`, the request was refused (fail mode `closed`); `skipped`, it went on
 * unscreened by the rule (fail mode `open`, or a `flag` rule, which never refuses).
 */
export type ModerationFailureListener = (rule: string, model: string, failure: GatewayError, outcome: 'refused' | 'skipped') => void;

/** A text of a request the provider would see, where it is (`messages[2].content`), and how to put a new one back. */
interface Field {
  param: string;
  text: string;
  /** The role of the message the text is in (`user` for an embeddings input): a rule with `roles` screens only those. */
  role: string;
  /** The text is JSON (tool-call arguments): a replacement is written as JSON string content. */
  json: boolean;
}

/**
 * A configured rule: compiled, with what it screens and, in requests, the roles it is limited to;
 * a moderation rule (`moderation`) matches no text itself, its model judges the texts.
 */
type ConfiguredRule = CompiledRule & { screen: readonly GuardrailStage[]; roles: ReadonlySet<string> | undefined; moderation: GuardrailModerationConfig | undefined };
type ModerationRule = ConfiguredRule & { moderation: GuardrailModerationConfig };

/** A moderation model's answer about the fields its rules screen (`results[k]` is `fields[k]`'s), or why it gave none. */
interface ModerationVerdict {
  model: string;
  rules: readonly ModerationRule[];
  fields: readonly Field[];
  results?: readonly chatv1.ModerationResult[];
  failure?: GatewayError;
}

const isTextRule = (rule: ConfiguredRule): boolean => rule.moderation === undefined;
const isModerationRule = (rule: ConfiguredRule): rule is ModerationRule => rule.moderation !== undefined;

/** Whether `rule` screens `field`: a rule limited to roles screens only the messages of those. */
function applies(rule: ConfiguredRule, field: Field): boolean {
  return rule.roles === undefined || rule.roles.has(field.role);
}

/**
 * Guardrails (docs/guardrails.md): the rules that apply to a request are the configured default and
 * its tenant policy's (`context.policy.guardrails`), each screening what the client sends
 * (`input`), the answer (`output`), or both. In a request, a `block` match anywhere refuses it (400
 * content_policy_violation, kind content_filtered, naming the rule and where, never the text);
 * `redact` matches are replaced before any provider sees it. Screened: each message's string
 * content and text parts, of every role, tool-call arguments (read with their JSON escapes
 * decoded), each text input of an embeddings request (token-id inputs cannot be read and pass
 * as they are), an image generation's `prompt`, a speech request's `input` and a transcription's
 * `prompt`. Answers are screened by an `AnswerScreen`. Moderation rules (`moderation`) match
 * nothing themselves: `moderateChat` and `moderateEmbeddings` ask their models about the texts.
 */
/** Whether a request went on without a block rule's screening (its moderation model did not answer, fail mode open). */
export interface Screening {
  unscreened: boolean;
}

const SCREENED: Screening = { unscreened: false };

export class Guardrails {
  private readonly config: GuardrailsConfig;
  private readonly rules: ReadonlyMap<string, ConfiguredRule>;

  constructor(
    config: GuardrailsInput = {},
    private readonly onMatch: GuardrailMatchListener = () => undefined,
    /** Told of a rule id a request's policy names that this router does not have (its configuration is behind the ingress's). */
    private readonly onUnknownRule: (id: string) => void = () => undefined,
    /** Told of each moderation rule whose model did not answer, and what became of the request. */
    private readonly onModerationFailure: ModerationFailureListener = () => undefined,
  ) {
    this.config = guardrailsSchema.parse(config);
    this.rules = new Map(this.config.rules.map((rule) => [rule.id, { ...compileRule(rule), screen: rule.screen, roles: rule.roles && new Set(rule.roles), moderation: rule.moderation }]));
  }

  /**
   * The screen of the answer to `request`, when `output` rules apply to it; undefined when none
   * does (the answer passes as it is).
   */
  answerScreen(context: routerv1.RequestContext, request: Pick<chatv1.ChatRequest, 'n'>): AnswerScreen | undefined {
    const rules = this.rulesFor(context, 'output');
    if (rules.length === 0) return undefined;
    return new AnswerScreen(rules, this.config.outputHoldbackChars, Math.max(1, request.n ?? 1), (rule, action, count) => this.onMatch(rule, action, count, 'output'));
  }

  /** The chat request as the provider may get it; throws when a `block` rule matches. */
  screenChat(context: routerv1.RequestContext, request: chatv1.ChatRequest): chatv1.ChatRequest {
    const rules = this.rulesFor(context, 'input').filter(isTextRule);
    if (rules.length === 0) return request;
    const redacted = this.screen(rules, chatFields(request));
    if (redacted.size === 0) return request;
    const messages = request.messages.map((message, i) => {
      const text = redacted.get(`messages[${i}].content`);
      const parts = message.parts && { parts: message.parts.parts.map((part, j) => {
        const next = redacted.get(`messages[${i}].content[${j}].text`);
        return next === undefined ? part : withText(part, next);
      }) };
      const toolCalls = message.toolCalls.map((call, k) => {
        const next = redacted.get(`messages[${i}].tool_calls[${k}].function.arguments`);
        return next === undefined || !call.function ? call : { ...call, function: { ...call.function, arguments: next } };
      });
      return { ...message, ...(text !== undefined && { text }), ...(parts && { parts }), toolCalls };
    });
    return { ...request, messages };
  }

  /** The embeddings request as the provider may get it; throws when a `block` rule matches. */
  screenEmbeddings(context: routerv1.RequestContext, request: chatv1.EmbeddingRequest): chatv1.EmbeddingRequest {
    const rules = this.rulesFor(context, 'input').filter(isTextRule);
    if (rules.length === 0) return request;
    const redacted = this.screen(rules, embeddingFields(request));
    if (redacted.size === 0) return request;
    return { ...request, texts: request.texts.map((text, i) => redacted.get(`input[${i}]`) ?? text) };
  }

  /** An image generation request's prompt, screened as a user's text (`prompt`). */
  screenImages(context: routerv1.RequestContext, request: chatv1.ImageGenerationRequest): chatv1.ImageGenerationRequest {
    const rules = this.rulesFor(context, 'input');
    if (rules.length === 0) return request;
    const redacted = this.screen(rules, imageFields(request)).get('prompt');
    return redacted === undefined ? request : { ...request, prompt: redacted };
  }

  /** A speech request's `input`, screened as a user's text (`input`): what the voice would say. */
  screenSpeech(context: routerv1.RequestContext, request: chatv1.SpeechRequest): chatv1.SpeechRequest {
    const rules = this.rulesFor(context, 'input').filter(isTextRule);
    if (rules.length === 0) return request;
    const redacted = this.screen(rules, speechFields(request)).get('input');
    return redacted === undefined ? request : { ...request, input: redacted };
  }

  /**
   * A transcription or translation request's `prompt`, when it has one, screened as a user's text
   * (`prompt`). The audio cannot be read, nor is the transcript screened: it is the audio's own text.
   */
  screenTranscription(context: routerv1.RequestContext, request: chatv1.AudioTranscriptionRequest): chatv1.AudioTranscriptionRequest {
    const rules = this.rulesFor(context, 'input').filter(isTextRule);
    if (rules.length === 0) return request;
    const redacted = this.screen(rules, transcriptionFields(request)).get('prompt');
    return redacted === undefined ? request : { ...request, prompt: redacted };
  }

  /** A moderation request's texts and text parts, screened as embeddings inputs are (`input[i]`, or `input[i].text` for parts). */
  screenModeration(context: routerv1.RequestContext, request: chatv1.ModerationRequest): chatv1.ModerationRequest {
    // A moderation request is not itself sent to a moderation rule's model: it is one already.
    const rules = this.rulesFor(context, 'input').filter(isTextRule);
    if (rules.length === 0) return request;
    const fields: Field[] = request.texts.map((text, i) => ({ param: `input[${i}]`, text, json: false, role: 'user' }));
    request.parts.forEach((part, i) => {
      if (part.text !== undefined) fields.push({ param: `input[${i}].text`, text: part.text, json: false, role: 'user' });
    });
    const redacted = this.screen(rules, fields);
    if (redacted.size === 0) return request;
    return {
      ...request,
      texts: request.texts.map((text, i) => redacted.get(`input[${i}]`) ?? text),
      parts: request.parts.map((part, i) => {
        const text = redacted.get(`input[${i}].text`);
        return text === undefined ? part : { text };
      }),
    };
  }

  /**
   * Asks the models of the moderation rules that apply about the chat request (as screened, so
   * redactions apply first); throws when a `block` rule's categories are hit, or when a `block`
   * rule's model did not answer and `moderationFailMode` is `closed`.
   */
  async moderateChat(context: routerv1.RequestContext, request: chatv1.ChatRequest, call: ModerationCall): Promise<Screening> {
    const rules = this.rulesFor(context, 'input').filter(isModerationRule);
    return rules.length > 0 ? this.moderate(rules, chatFields(request), call) : SCREENED;
  }

  /** As `moderateChat`, for an embeddings request's text inputs (`input[i]`, role `user`). */
  async moderateEmbeddings(context: routerv1.RequestContext, request: chatv1.EmbeddingRequest, call: ModerationCall): Promise<Screening> {
    const rules = this.rulesFor(context, 'input').filter(isModerationRule);
    return rules.length > 0 ? this.moderate(rules, embeddingFields(request), call) : SCREENED;
  }

  /** As `moderateChat`, for an image generation request's prompt. */
  async moderateImages(context: routerv1.RequestContext, request: chatv1.ImageGenerationRequest, call: ModerationCall): Promise<Screening> {
    const rules = this.rulesFor(context, 'input').filter(isModerationRule);
    return rules.length > 0 ? this.moderate(rules, imageFields(request), call) : SCREENED;
  }

  /** As `moderateChat`, for a speech request's `input`. */
  async moderateSpeech(context: routerv1.RequestContext, request: chatv1.SpeechRequest, call: ModerationCall): Promise<Screening> {
    const rules = this.rulesFor(context, 'input').filter(isModerationRule);
    return rules.length > 0 ? this.moderate(rules, speechFields(request), call) : SCREENED;
  }

  /** As `moderateChat`, for a transcription or translation request's `prompt` (none: no model is asked). */
  async moderateTranscription(context: routerv1.RequestContext, request: chatv1.AudioTranscriptionRequest, call: ModerationCall): Promise<Screening> {
    const rules = this.rulesFor(context, 'input').filter(isModerationRule);
    return rules.length > 0 ? this.moderate(rules, transcriptionFields(request), call) : SCREENED;
  }

  /**
   * The configured default and the policy's rules that screen `stage`. A rule this router does not
   * know (its configuration behind the ingress's, while a new one rolls out) refuses the request
   * rather than pass its text unscreened: `unavailable` (503, retryable), since the request itself
   * is fine and a retry, once the configuration has caught up, is served.
   */
  private rulesFor(context: routerv1.RequestContext, stage: GuardrailStage): ConfiguredRule[] {
    // No rule configured and none asked for: the common case costs nothing.
    if (this.rules.size === 0 && !context.policy?.guardrails.length) return [];
    const ids = effectiveGuardrails(this.config, [context.policy?.guardrails]);
    const rules: ConfiguredRule[] = [];
    for (const id of ids) {
      const rule = this.rules.get(id);
      if (!rule) {
        this.onUnknownRule(id);
        throw new GatewayError(
          'unavailable',
          `The gateway's guardrail configuration is being updated: the guardrail rule "${id}" of this request's policy is not configured yet on the router that took the request, so the request was refused rather than sent on unscreened. Try again shortly.`,
          { code: GUARDRAILS_UNAVAILABLE },
        );
      }
      if (rule.screen.includes(stage)) rules.push(rule);
    }
    return rules;
  }

  /**
   * One call per moderation model, however many rules ask it (in parallel when several models
   * are asked), with the non-blank texts any of its rules screens. A hit of a `block` rule refuses
   * the request, naming the first field hit (in request order), the rule and the category, never
   * the text; `flag` hits are counted, one per text. A call that failed (no deployment, a provider
   * error, no answer within `moderationTimeoutMs`) skips its `flag` rules, and its `block` rules per `moderationFailMode`:
   * `closed` refuses the request (503 guardrails_unavailable, retryable), `open` lets it go on.
   * A client that went away is not a failure of the model: its cancellation is thrown as it is.
   */
  private async moderate(rules: readonly ModerationRule[], fields: readonly Field[], call: ModerationCall): Promise<Screening> {
    const byModel = new Map<string, ModerationRule[]>();
    for (const rule of rules) byModel.set(rule.moderation.model, [...(byModel.get(rule.moderation.model) ?? []), rule]);
    const asks = [...byModel].map(([model, modelRules]) => ({ model, rules: modelRules, fields: fields.filter((f) => f.text.trim() !== '' && modelRules.some((r) => applies(r, f))) }));
    const verdicts = await Promise.all(
      asks
        .filter((ask) => ask.fields.length > 0)
        .map(async (ask): Promise<ModerationVerdict> => {
          try {
            // Bounded by its own short timeout: the request waits on it before it is routed, and a
            // model that hangs must meet the fail mode, not the request's own timeouts.
            const response = await call(ask.model, ask.fields.map((f) => f.text), this.config.moderationTimeoutMs);
            if (response.results.length !== ask.fields.length) throw new GatewayError('upstream_error', `The moderation model answered ${response.results.length} results for ${ask.fields.length} texts.`);
            return { ...ask, results: response.results };
          } catch (error) {
            return { ...ask, failure: GatewayError.from(error) };
          }
        }),
    );
    const cancelled = verdicts.find((v) => v.failure?.kind === 'cancelled');
    if (cancelled?.failure) throw cancelled.failure;
    // The first field a block rule hit, in request order, then in rule order.
    const order = new Map(fields.map((field, i) => [field, i]));
    let refusal: { at: number; rule: ModerationRule; category: string; param: string } | undefined;
    for (const { fields: asked, results, rules: modelRules } of verdicts) {
      if (!results) continue;
      asked.forEach((field, k) => {
        const result = results[k];
        const at = order.get(field) ?? 0;
        if (!result || (refusal && refusal.at <= at)) return;
        for (const rule of modelRules) {
          if (rule.action !== 'block' || !applies(rule, field)) continue;
          const category = categoryHit(rule.moderation, result);
          if (category !== undefined) {
            refusal = { at, rule, category, param: field.param };
            return;
          }
        }
      });
    }
    if (refusal) {
      this.onMatch(refusal.rule.id, 'block', 1, 'input');
      throw new GatewayError(
        'content_filtered',
        `The request was refused by the guardrail rule "${refusal.rule.id}": its moderation model judged ${refusal.param} to be in the category "${refusal.category}", which the rule does not allow. Remove it and try again.`,
        { param: refusal.param, code: CONTENT_POLICY_VIOLATION },
      );
    }
    for (const { fields: asked, results, rules: modelRules } of verdicts) {
      if (!results) continue;
      for (const rule of modelRules) {
        if (rule.action !== 'flag') continue;
        const count = asked.filter((field, k) => applies(rule, field) && categoryHit(rule.moderation, results[k]) !== undefined).length;
        if (count > 0) this.onMatch(rule.id, 'flag', count, 'input');
      }
    }
    const failed = verdicts.flatMap(({ model, rules: modelRules, fields: asked, failure }) =>
      failure ? modelRules.filter((rule) => asked.some((f) => applies(rule, f))).map((rule) => ({ rule, model, failure })) : [],
    );
    const refusing = failed.filter(({ rule }) => rule.action === 'block' && this.config.moderationFailMode === 'closed');
    // A refused request was not let through by any rule: only the rules that refuse it are told of.
    for (const { rule, model, failure } of refusing.length > 0 ? refusing : failed) this.onModerationFailure(rule.id, model, failure, refusing.length > 0 ? 'refused' : 'skipped');
    const [unavailable] = refusing;
    if (unavailable) {
      throw new GatewayError(
        'unavailable',
        `The guardrail rule "${unavailable.rule.id}" could not screen the request: its moderation model "${unavailable.model}" did not answer (${unavailable.failure.kind}), so the request was refused rather than sent on unscreened. Try again shortly.`,
        // Not the failure itself as the cause: a provider's error text is not carried further than its kind.
        { code: GUARDRAILS_UNAVAILABLE },
      );
    }
    // A block rule let the request through unscreened (fail mode open): its answer must not be stored.
    return { unscreened: failed.some(({ rule }) => rule.action === 'block') };
  }

  /** Throws at the first `block` match; else counts the `flag` matches, and gives the new text of each field a `redact` rule matched, by param. */
  private screen(rules: readonly ConfiguredRule[], fields: readonly Field[]): Map<string, string> {
    for (const field of fields) {
      for (const rule of rules) {
        if (rule.action !== 'block' || !applies(rule, field) || rule.matches(field.text, field.json).length === 0) continue;
        this.onMatch(rule.id, 'block', 1, 'input');
        // content_filtered, not bad_request: the same 400 to the client, but a usage record (its
        // error kind) tells a guardrail's refusal from a malformed request.
        throw new GatewayError('content_filtered', `The request was refused by the guardrail rule "${rule.id}": ${field.param} holds content it does not allow. Remove it and try again.`, {
          param: field.param,
          code: CONTENT_POLICY_VIOLATION,
        });
      }
    }
    // Flagged: counted, the text left as it is.
    for (const rule of rules) {
      if (rule.action !== 'flag') continue;
      const count = fields.reduce((sum, field) => sum + (applies(rule, field) ? rule.matches(field.text, field.json).length : 0), 0);
      if (count > 0) this.onMatch(rule.id, 'flag', count, 'input');
    }
    const counts = new Map<string, number>();
    const redacted = new Map<string, string>();
    for (const field of fields) {
      const spans: Array<Match & { rule: CompiledRule }> = [];
      for (const rule of rules) if (rule.action === 'redact' && applies(rule, field)) for (const m of rule.matches(field.text, field.json)) spans.push({ ...m, rule });
      if (spans.length === 0) continue;
      // Of overlapping matches the earliest (then the longest) wins; the text between is kept.
      spans.sort((a, b) => a.start - b.start || b.end - a.end);
      const replaced = replaceMatches(field.text, spans, field.json);
      for (const [rule, count] of replaced.counts) counts.set(rule, (counts.get(rule) ?? 0) + count);
      redacted.set(field.param, replaced.text);
    }
    for (const [rule, count] of counts) this.onMatch(rule, 'redact', count, 'input');
    return redacted;
  }
}

/** The texts of a chat request the rules read: each message's string content, text parts and tool-call arguments. */
function chatFields(request: chatv1.ChatRequest): Field[] {
  const fields: Field[] = [];
  request.messages.forEach((message, i) => {
    const role = message.role;
    if (message.text !== undefined) fields.push({ param: `messages[${i}].content`, text: message.text, json: false, role });
    message.parts?.parts.forEach((part, j) => {
      const text = textOf(part);
      if (text !== undefined) fields.push({ param: `messages[${i}].content[${j}].text`, text, json: false, role });
    });
    message.toolCalls.forEach((call, k) => {
      if (call.function) fields.push({ param: `messages[${i}].tool_calls[${k}].function.arguments`, text: call.function.arguments, json: true, role });
    });
  });
  return fields;
}

/**
 * A content part's text: a text part's, also one kept as JSON because it carries more than its
 * type and text (Anthropic's `cache_control`, say), which the provider reads all the same.
 */
function textOf(part: chatv1.ContentPart): string | undefined {
  return part.text ?? (part.rawJson ? partContent(part).text : undefined);
}

/** The part with its text replaced, a part kept as JSON keeping its other keys. */
function withText(part: chatv1.ContentPart, text: string): chatv1.ContentPart {
  if (part.text !== undefined || !part.rawJson) return { ...part, text };
  return { ...part, rawJson: JSON.stringify({ ...(JSON.parse(part.rawJson) as Record<string, unknown>), text }) };
}

/** The text inputs of an embeddings request (token-id inputs cannot be read), as `user` texts. */
function embeddingFields(request: chatv1.EmbeddingRequest): Field[] {
  return request.texts.map((text, i) => ({ param: `input[${i}]`, text, json: false, role: 'user' }));
}

function imageFields(request: chatv1.ImageGenerationRequest): Field[] {
  return [{ param: 'prompt', text: request.prompt, json: false, role: 'user' }];
}

function speechFields(request: chatv1.SpeechRequest): Field[] {
  return [{ param: 'input', text: request.input, json: false, role: 'user' }];
}

function transcriptionFields(request: chatv1.AudioTranscriptionRequest): Field[] {
  return request.prompt === undefined ? [] : [{ param: 'prompt', text: request.prompt, json: false, role: 'user' }];
}

/**
 * The category of `result` a moderation rule counts as a hit, the highest-scoring if several:
 * among its `categories` (unset: every category the result has), one the model judged true, or,
 * with a `threshold`, one scoring at least that. Undefined when none is hit.
 */
export function categoryHit(moderation: GuardrailModerationConfig, result: chatv1.ModerationResult | undefined): string | undefined {
  if (!result) return undefined;
  const { threshold } = moderation;
  const candidates = moderation.categories ?? [...new Set([...Object.keys(result.categories), ...Object.keys(result.categoryScores)])];
  let hit: { category: string; score: number } | undefined;
  for (const category of candidates) {
    const score = result.categoryScores[category] ?? 0;
    const hits = threshold === undefined ? result.categories[category] === true : result.categoryScores[category] !== undefined && score >= threshold;
    if (hits && (!hit || score > hit.score)) hit = { category, score };
  }
  return hit?.category;
}
