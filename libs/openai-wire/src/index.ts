export { MESSAGE_ROLES, parseChatRequest, partContent, REQUEST_BOUNDS, toOpenAIChatBody, type OpenAIBodyOptions } from './chat-request';
export { addUsage, emptyUsage, parseOpenAIChunk, parseOpenAICompletion, parseOpenAIUsage, toOpenAIChunk, toOpenAICompletion, toOpenAIUsage } from './chat-response';
export { parseEmbeddingRequest, parseOpenAIEmbeddingResponse, toOpenAIEmbeddingBody, toOpenAIEmbeddingResponse } from './embeddings';
export type { EmbeddingEncoding } from './embeddings';
export {
  imageEditInputCount,
  MAX_IMAGE_EDIT_INPUTS,
  MAX_IMAGE_PROMPT_CHARS,
  MAX_IMAGES_PER_REQUEST,
  parseImageEditRequest,
  parseImageGenerationRequest,
  parseOpenAIImageGenerationResponse,
  toOpenAIImageGenerationBody,
  toOpenAIImageGenerationResponse,
} from './images';
export { MAX_MODERATION_INPUTS, parseModerationRequest, parseOpenAIModerationResponse, toOpenAIModerationBody, toOpenAIModerationResponse } from './moderations';
export { inPromptTerms, LEGACY_DEFAULT_MAX_TOKENS, parseLegacyCompletionRequest, toLegacyChunk, toLegacyCompletion } from './legacy-completions';
export type { LegacyCompletionRequest } from './legacy-completions';
export { parseOpenAIErrorResponse, parseOpenAIStreamError, parseRetryAfter, toOpenAIError, withParamRenamed } from './openai-errors';
export { carriesAnswer, chunkCarriesAnswer } from './answer-progress';
export type { OpenAIErrorResponse, RateLimitKind } from './openai-errors';
export { isAnthropicPath, toClientError, type ClientErrorResponse } from './client-errors';
export { paramOf, validate } from './validation';
export { conversationIdOf, inputItemView, itemView, pendingResponse, responseId, responseView, ResponsesStream, responsesToChatBody, storedInputItems, toResponse, toResponsesParam, toResponsesUsage } from './responses';
export type { ResponsesStreamError, ResponsesStreamEvent, ResponsesTranslation } from './responses';
export {
  AnthropicStream,
  countTokensToChatBody,
  inMessagesTerms,
  messageId,
  messagesToChatBody,
  toAnthropicError,
  toAnthropicMessage,
  toAnthropicUsage,
  toMessagesParam,
  toStopReason,
  TOOL_ERROR,
} from './anthropic-messages';
export type { AnthropicErrorBody, AnthropicErrorResponse, AnthropicErrorType, AnthropicStreamEvent } from './anthropic-messages';
export { AUDIO_ENDPOINTS, isAudioUpload, isAudioUploadEndpoint, isSpeechEndpoint, wavDurationMs } from './audio-upload';
export type { AudioUpload } from './audio-upload';
export {
  codePoints,
  isJsonTranscription,
  MAX_SPEECH_INPUT_CHARS,
  parseSpeechRequest,
  parseTranscriptionRequest,
  SPEECH_FORMATS,
  speechContentType,
  TRANSCRIPTION_FORMATS,
} from './audio';
export type { SpeechFormat, TranscriptionFormat } from './audio';
export { isFormBody, markFormBody } from './audio-upload';
