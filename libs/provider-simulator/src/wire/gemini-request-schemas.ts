import { z } from 'zod';

/**
 * Gemini's request bodies. Google parses them as protobuf JSON, so an unknown field is an error
 * ("Unknown name … Cannot find field"); the schemas are strict to catch the same mistakes.
 */
const jsonObject = z.record(z.string(), z.unknown());

const part = z
  .strictObject({
    text: z.string().optional(),
    inlineData: z.strictObject({ mimeType: z.string().min(1), data: z.base64() }).optional(),
    fileData: z.strictObject({ mimeType: z.string().optional(), fileUri: z.string().min(1) }).optional(),
    functionCall: z.strictObject({ id: z.string().optional(), name: z.string().min(1), args: jsonObject.optional() }).optional(),
    functionResponse: z.strictObject({ id: z.string().optional(), name: z.string().min(1), response: jsonObject }).optional(),
    thought: z.boolean().optional(),
    thoughtSignature: z.string().optional(),
  })
  .refine((p) => [p.text, p.inlineData, p.fileData, p.functionCall, p.functionResponse].filter((v) => v !== undefined).length === 1, {
    message: 'exactly one of text, inlineData, fileData, functionCall or functionResponse must be set (oneof data)',
  });
export type GeminiPart = z.infer<typeof part>;

const content = z.strictObject({ role: z.enum(['user', 'model']).optional(), parts: z.array(part).min(1) });
export type GeminiContent = z.infer<typeof content>;

const functionDeclaration = z.strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/, 'must start with a letter or underscore and hold at most 64 letters, digits, _ . : -'),
  description: z.string().optional(),
  parameters: jsonObject.optional(),
  parametersJsonSchema: z.unknown().optional(),
  response: jsonObject.optional(),
  responseJsonSchema: z.unknown().optional(),
  behavior: z.string().optional(),
});
export type FunctionDeclaration = z.infer<typeof functionDeclaration>;

const tool = z.strictObject({
  functionDeclarations: z.array(functionDeclaration).optional(),
  googleSearch: jsonObject.optional(),
  codeExecution: jsonObject.optional(),
  urlContext: jsonObject.optional(),
});

const toolConfig = z.strictObject({
  functionCallingConfig: z
    .strictObject({
      mode: z.enum(['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED']).optional(),
      allowedFunctionNames: z.array(z.string()).optional(),
    })
    .optional(),
});

const generationConfig = z.strictObject({
  stopSequences: z.array(z.string()).max(5).optional(),
  responseMimeType: z.enum(['text/plain', 'application/json', 'text/x.enum']).optional(),
  responseSchema: jsonObject.optional(),
  responseJsonSchema: z.unknown().optional(),
  responseModalities: z.array(z.string()).optional(),
  candidateCount: z.int().min(1).max(8).optional(),
  maxOutputTokens: z.int().min(1).optional(),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().min(0).max(1).optional(),
  topK: z.int().min(1).optional(),
  seed: z.int().min(-2_147_483_648).max(2_147_483_647).optional(),
  presencePenalty: z.number().optional(),
  frequencyPenalty: z.number().optional(),
  responseLogprobs: z.boolean().optional(),
  logprobs: z.int().min(0).max(20).optional(),
  thinkingConfig: z.strictObject({ thinkingBudget: z.int().optional(), includeThoughts: z.boolean().optional(), thinkingLevel: z.string().optional() }).optional(),
  mediaResolution: z.string().optional(),
});

export const generateContentRequestSchema = z.strictObject({
  contents: z.array(content).min(1, 'contents is not specified'),
  systemInstruction: content.optional(),
  tools: z.array(tool).optional(),
  toolConfig: toolConfig.optional(),
  generationConfig: generationConfig.optional(),
  safetySettings: z.array(z.strictObject({ category: z.string(), threshold: z.string() })).optional(),
  cachedContent: z.string().optional(),
});
export type GenerateContentRequest = z.infer<typeof generateContentRequestSchema>;

const textContent = z.strictObject({ role: z.string().optional(), parts: z.array(z.strictObject({ text: z.string() })).min(1) });
const embedContentRequest = z.strictObject({
  model: z.string().optional(),
  content: textContent,
  taskType: z.string().optional(),
  title: z.string().optional(),
  outputDimensionality: z.int().min(1).optional(),
});
export const embedContentRequestSchema = embedContentRequest;
export type EmbedContentRequest = z.infer<typeof embedContentRequest>;
export const batchEmbedContentsRequestSchema = z.strictObject({ requests: z.array(embedContentRequest).min(1).max(100) });

const camelToSnake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A validation failure in the words Google uses for malformed payloads. */
export function describeProblem(error: z.ZodError, requestName: string): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'Request contains an invalid argument.';
  const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : camelToSnake(String(p)))).join('.').replace(/\.\[/g, '[');
  if (issue.code === 'unrecognized_keys') {
    const where = path === '' ? '' : ` at '${path}'`;
    return `Invalid JSON payload received. Unknown name "${issue.keys[0] ?? ''}"${where}: Cannot find field.`;
  }
  return `* ${requestName}.${path}: ${issue.message}\n`;
}
