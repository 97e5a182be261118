export { parseChatRequest, toOpenAIChatBody } from './chat-request';
export { parseOpenAIChunk, parseOpenAICompletion, parseOpenAIUsage, toOpenAIChunk, toOpenAICompletion, toOpenAIUsage } from './chat-response';
export { parseEmbeddingRequest, parseOpenAIEmbeddingResponse, toOpenAIEmbeddingBody, toOpenAIEmbeddingResponse } from './embeddings';
export { parseLegacyCompletionRequest, toLegacyChunk, toLegacyCompletion } from './legacy-completions';
export type { LegacyCompletionRequest } from './legacy-completions';
export { parseOpenAIErrorResponse, toOpenAIError } from './openai-errors';
export type { OpenAIErrorResponse } from './openai-errors';
