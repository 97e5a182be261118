import { z } from 'zod';
import { checkClaudeThinking } from './bedrock-thinking';

/** Converse request bodies as Bedrock validates them (the parts the simulator reads). */
const imageBlock = z.looseObject({
  format: z.enum(['png', 'jpeg', 'gif', 'webp']),
  source: z.looseObject({ bytes: z.string().min(1) }),
});
/** Converse's pattern for tool use ids, on toolUse and toolResult alike. */
const toolUseId = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+ with length 1 to 64");
/** Claude's thinking handed back: a union, so exactly one of signed text and redacted bytes (base64). */
const reasoningContent = z.union([
  z.strictObject({ reasoningText: z.looseObject({ text: z.string(), signature: z.string().optional() }) }),
  z.strictObject({ redactedContent: z.string().min(1) }),
]);
const toolResultContent = z.looseObject({ text: z.string().optional(), json: z.unknown().optional(), image: imageBlock.optional() });
const contentBlock = z.looseObject({
  text: z.string().optional(),
  image: imageBlock.optional(),
  toolUse: z.looseObject({ toolUseId, name: z.string().min(1), input: z.record(z.string(), z.unknown()) }).optional(),
  toolResult: z
    .looseObject({ toolUseId, content: z.array(toolResultContent), status: z.enum(['success', 'error']).optional() })
    .optional(),
  cachePoint: z.looseObject({ type: z.string() }).optional(),
  reasoningContent: reasoningContent.optional(),
});
export type ConverseContentBlock = z.infer<typeof contentBlock>;

const message = z.looseObject({ role: z.enum(['user', 'assistant']), content: z.array(contentBlock).min(1) });
export type ConverseMessage = z.infer<typeof message>;

const toolSpec = z.looseObject({
  toolSpec: z.looseObject({
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/),
    description: z.string().optional(),
    inputSchema: z.looseObject({ json: z.record(z.string(), z.unknown()) }),
  }),
});
export type ConverseTool = z.infer<typeof toolSpec>;

const toolChoice = z.union([
  z.strictObject({ auto: z.looseObject({}) }),
  z.strictObject({ any: z.looseObject({}) }),
  z.strictObject({ tool: z.looseObject({ name: z.string() }) }),
]);

export const converseRequestSchema = z.looseObject({
  messages: z.array(message).min(1),
  system: z.array(z.looseObject({ text: z.string().optional(), cachePoint: z.unknown().optional() })).optional(),
  inferenceConfig: z
    .looseObject({
      maxTokens: z.int().min(1).optional(),
      temperature: z.number().min(0).max(1).optional(),
      topP: z.number().min(0).max(1).optional(),
      // Converse's limit (older releases took 4).
      stopSequences: z.array(z.string().min(1)).max(2_500).optional(),
    })
    .optional(),
  toolConfig: z.looseObject({ tools: z.array(toolSpec).min(1), toolChoice: toolChoice.optional() }).optional(),
  // JSON Pointers into the model's own response; Converse refuses an empty or malformed one.
  additionalModelResponseFieldPaths: z.array(z.string().regex(/^(\/[^/]*)+$/, 'Member must be a JSON Pointer, such as /stop_sequence')).optional(),
});
export type ConverseRequest = z.infer<typeof converseRequestSchema>;

/**
 * The checks Converse makes beyond the body's shape, in its own words: text blocks must hold
 * more than whitespace, tool blocks need a toolConfig, and Claude models (which apply Anthropic's
 * rules) refuse a final assistant message ending in whitespace, whitespace-only stop sequences
 * and requests that break the extended thinking rules (bedrock-thinking.ts). Undefined when the
 * request passes.
 */
export function converseRuleViolation(request: ConverseRequest, modelId: string): string | undefined {
  let usesTools = false;
  for (const [i, message] of request.messages.entries()) {
    for (const [j, block] of message.content.entries()) {
      if (block.text !== undefined && block.text.trim() === '') {
        return `The text field in the ContentBlock object at messages.${i}.content.${j} is blank. Add text to the text field, and try again.`;
      }
      if (block.toolUse !== undefined || block.toolResult !== undefined) usesTools = true;
    }
  }
  if (usesTools && request.toolConfig === undefined) return 'The toolConfig field must be defined when using toolUse and toolResult content blocks.';
  const last = request.messages[request.messages.length - 1];
  const lastBlock = last?.content[last.content.length - 1];
  const claude = /\banthropic\./.test(modelId);
  if (claude && last?.role === 'assistant' && lastBlock?.text !== undefined && /\s$/.test(lastBlock.text)) {
    return 'The model returned the following errors: messages: final assistant content cannot end with trailing whitespace';
  }
  if (claude && (request.inferenceConfig?.stopSequences ?? []).some((stop) => stop.trim() === '')) {
    return 'The model returned the following errors: stop_sequences: each stop sequence must contain non-whitespace';
  }
  return claude ? checkClaudeThinking(request) : undefined;
}

export const titanEmbeddingSchema = z.looseObject({
  inputText: z.string().min(1),
  dimensions: z.union([z.literal(256), z.literal(512), z.literal(1024)]).optional(),
  normalize: z.boolean().optional(),
});

export const cohereEmbeddingSchema = z.looseObject({
  texts: z.array(z.string()).min(1).max(96),
  input_type: z.enum(['search_document', 'search_query', 'classification', 'clustering']),
  truncate: z.enum(['NONE', 'START', 'END']).optional(),
  embedding_types: z.array(z.enum(['float', 'int8', 'uint8', 'binary', 'ubinary'])).optional(),
  output_dimension: z.union([z.literal(256), z.literal(512), z.literal(1024), z.literal(1536)]).optional(),
});

/** Bedrock's ValidationException text for a failed body: the first problem, with its path. */
export function describeValidation(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'Malformed input request, please reformat your input and try again.';
  const path = issue.path.map(String).join('.');
  return `1 validation error detected: Value at '${path}' failed to satisfy constraint: ${issue.message}`;
}
