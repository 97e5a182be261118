export { startSimulator } from './simulator-server';
export type { RunningSimulator, SimulatorOptions } from './simulator-server';
export { DEFAULT_BEHAVIOUR } from './core/behaviour-config';
export type { Behaviour, Fault, FaultKind, FaultPath } from './core/behaviour-config';
export type { ObservedRequest, RequestOutcome } from './core/request-log';
export { PROMPT_REPLY_PRIMING_TOKENS, PROMPT_TOKENS_PER_MESSAGE } from './core/token-counter';
export { SIMULATED_MODELS } from './wire/openai-formats';
export { OPENAI_REFUSAL_TRIGGER } from './wire/openai-chat-planner';
export { REPLY_VOCABULARY } from './core/reply-generator';
export { ANTHROPIC_REDACTED_THINKING_TRIGGER, anthropicThinkingSignature } from './wire/anthropic-thinking';
export type { SimulatedAuthorizedUser, SimulatedServiceAccount } from './wire/google-oauth';
export { METADATA_TOKEN_PATH, TOKEN_PATH } from './wire/google-oauth';
export type { SimulatedEntraApp, SimulatedManagedIdentity } from './wire/entra-id';
export { APP_SERVICE_TOKEN_PATH, IMDS_TOKEN_PATH } from './wire/entra-id';
export { startForwardProxy } from './forward-proxy';
export type { ForwardProxyOptions, ProxiedCall, RunningForwardProxy } from './forward-proxy';
export { SecretVolume } from './secret-volume';
export { MODERATION_CATEGORIES, MODERATION_TRIGGERS } from './core/moderation-classifier';
export { SIMULATED_IMAGE_SIDE } from './core/png-image';
export {
  DALL_E_2_MAX_IMAGE_BYTES,
  GPT_IMAGE_INPUT_BASE_TOKENS,
  GPT_IMAGE_INPUT_TILE_TOKENS,
  GPT_IMAGE_MAX_IMAGE_BYTES,
  GPT_IMAGE_MAX_INPUT_IMAGES,
  GPT_IMAGE_OUTPUT_TOKENS,
  gptImageInputTokens,
  MAX_MASK_BYTES,
} from './wire/openai-image-planner';
export { COMPRESSED_AUDIO_BYTES_PER_SECOND, SPEECH_AUDIO_FORMATS, SPEECH_SAMPLE_RATE } from './core/simulated-audio';
export type { SpeechAudioFormat } from './core/simulated-audio';
export { readWavInfo, wavClip } from './core/wav-audio';
export type { WavInfo } from './core/wav-audio';
export {
  AUDIO_FILE_EXTENSIONS,
  AUDIO_TOKENS_PER_SECOND,
  MIN_AUDIO_MS,
  SPEECH_MAX_INPUT_CHARACTERS,
  SPEECH_MAX_MS,
  SPEECH_MS_PER_CHARACTER,
  SPEECH_VOICES,
  TRANSCRIPT_SEGMENT_MS,
} from './wire/openai-audio-planner';
export { SPEECH_CONTENT_TYPES } from './wire/openai-audio-formats';
