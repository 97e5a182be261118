import { effectiveGuardrails, guardrailsSchema, type GuardrailAction, type GuardrailsConfig, type GuardrailsInput, type GuardrailStage } from '@openrouter/config';
import type { chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { AnswerScreen } from './answer-screen';
import { compileRule, replaceMatches, type CompiledRule, type Match } from './guardrail-rules';

export const CONTENT_POLICY_VIOLATION = 'content_policy_violation';
/** The code of a request refused because a rule of its policy is not configured here yet (a rollout). */
export const GUARDRAILS_UNAVAILABLE = 'guardrails_unavailable';

/** Told of each rule that matched a request or its answer (`stage`): its id, its action and how many matches (never the text). */
export type GuardrailMatchListener = (rule: string, action: GuardrailAction, count: number, stage: GuardrailStage) => void;

/** A text of a request the provider would see, where it is (`messages[2].content`), and how to put a new one back. */
interface Field {
  param: string;
  text: string;
  /** The role of the message the text is in (`user` for an embeddings input): a rule with `roles` screens only those. */
  role: string;
  /** The text is JSON (tool-call arguments): a replacement is written as JSON string content. */
  json: boolean;
}

/** A configured rule: compiled, with what it screens and, in requests, the roles it is limited to. */
type ConfiguredRule = CompiledRule & { screen: readonly GuardrailStage[]; roles: ReadonlySet<string> | undefined };

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
 * decoded), and each text input of an embeddings request (token-id inputs cannot be read and pass
 * as they are). Answers are screened by an `AnswerScreen`.
 */
export class Guardrails {
  private readonly config: GuardrailsConfig;
  private readonly rules: ReadonlyMap<string, ConfiguredRule>;

  constructor(
    config: GuardrailsInput = {},
    private readonly onMatch: GuardrailMatchListener = () => undefined,
    /** Told of a rule id a request's policy names that this router does not have (its configuration is behind the ingress's). */
    private readonly onUnknownRule: (id: string) => void = () => undefined,
  ) {
    this.config = guardrailsSchema.parse(config);
    this.rules = new Map(this.config.rules.map((rule) => [rule.id, { ...compileRule(rule), screen: rule.screen, roles: rule.roles && new Set(rule.roles) }]));
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
    const rules = this.rulesFor(context, 'input');
    if (rules.length === 0) return request;
    const fields: Field[] = [];
    request.messages.forEach((message, i) => {
      const role = message.role;
      if (message.text !== undefined) fields.push({ param: `messages[${i}].content`, text: message.text, json: false, role });
      message.parts?.parts.forEach((part, j) => {
        if (part.text !== undefined) fields.push({ param: `messages[${i}].content[${j}].text`, text: part.text, json: false, role });
      });
      message.toolCalls.forEach((call, k) => {
        if (call.function) fields.push({ param: `messages[${i}].tool_calls[${k}].function.arguments`, text: call.function.arguments, json: true, role });
      });
    });
    const redacted = this.screen(rules, fields);
    if (redacted.size === 0) return request;
    const messages = request.messages.map((message, i) => {
      const text = redacted.get(`messages[${i}].content`);
      const parts = message.parts && { parts: message.parts.parts.map((part, j) => {
        const next = redacted.get(`messages[${i}].content[${j}].text`);
        return next === undefined ? part : { ...part, text: next };
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
    const rules = this.rulesFor(context, 'input');
    if (rules.length === 0) return request;
    const redacted = this.screen(rules, request.texts.map((text, i) => ({ param: `input[${i}]`, text, json: false, role: 'user' })));
    if (redacted.size === 0) return request;
    return { ...request, texts: request.texts.map((text, i) => redacted.get(`input[${i}]`) ?? text) };
  }

  /** A moderation request's texts and text parts, screened as embeddings inputs are (`input[i]`, or `input[i].text` for parts). */
  screenModeration(context: routerv1.RequestContext, request: chatv1.ModerationRequest): chatv1.ModerationRequest {
    const rules = this.rulesFor(context, 'input');
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
