import { errorOf } from './gateway-error.testing';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { inPromptTerms, LEGACY_DEFAULT_MAX_TOKENS, parseLegacyCompletionRequest, toLegacyChunk, toLegacyCompletion } from './legacy-completions';

const usage = (p: number, c: number): chatv1.Usage => ({ promptTokens: p, completionTokens: c, totalTokens: p + c, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false });

describe('parseLegacyCompletionRequest', () => {
  it('reads one prompt and applies the legacy max_tokens default', () => {
    const r = parseLegacyCompletionRequest({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi' });
    expect(r).toMatchObject({ model: 'gpt-3.5-turbo-instruct', prompts: ['Say hi'], stream: false, includeUsage: false });
    expect(r.chat).toMatchObject({ model: 'gpt-3.5-turbo-instruct', messages: [], maxTokens: LEGACY_DEFAULT_MAX_TOKENS, stop: [], extraJson: '' });
    expect(LEGACY_DEFAULT_MAX_TOKENS).toBe(16);
  });

  it('copies the sampling parameters into the chat template', () => {
    const r = parseLegacyCompletionRequest({
      model: 'm',
      prompt: ['a', 'b'],
      max_tokens: 50,
      temperature: 0.5,
      top_p: 0.9,
      n: 2,
      stop: '\n',
      seed: 3,
      user: 'u',
      presence_penalty: 0.1,
      frequency_penalty: -0.1,
      logit_bias: { '50256': -100 },
      stream: true,
      stream_options: { include_usage: true },
      echo: false,
      best_of: 1,
      suffix: null,
      logprobs: null,
      top_k: 20,
    });
    expect(r).toMatchObject({ prompts: ['a', 'b'], stream: true, includeUsage: true });
    expect(r.chat).toMatchObject({
      maxTokens: 50,
      temperature: 0.5,
      topP: 0.9,
      n: 2,
      stop: ['\n'],
      seed: 3,
      user: 'u',
      presencePenalty: 0.1,
      frequencyPenalty: -0.1,
      logitBias: { '50256': -100 },
      stream: true,
      extraJson: '{"top_k":20}',
    });
  });

  it.each([
    ['echo', { echo: true }],
    ['suffix', { suffix: 'end' }],
    ['best_of', { best_of: 3 }],
    ['logprobs', { logprobs: 2 }],
    ['logprobs', { logprobs: 0 }],
  ])('refuses %s by name', (param, extra) => {
    const error = errorOf(() => parseLegacyCompletionRequest({ model: 'm', prompt: 'p', ...extra }));
    expect(error).toMatchObject({ kind: 'bad_request', param, code: 'unsupported_parameter' });
    expect(error.message).toContain('not supported');
  });

  it('refuses max_completion_tokens, a chat parameter the legacy API does not have: the provider would get it in place of max_tokens', () => {
    for (const value of [1, 100_000, 'x']) {
      const error = errorOf(() => parseLegacyCompletionRequest({ model: 'm', prompt: 'p', max_tokens: 100_000, max_completion_tokens: value }));
      expect(error).toMatchObject({ kind: 'bad_request', param: 'max_completion_tokens', code: 'unsupported_parameter' });
      expect(error.message).toContain('max_tokens');
    }
    // Unset (null) is no limit: accepted, and not passed on.
    const r = parseLegacyCompletionRequest({ model: 'm', prompt: 'p', max_tokens: 100, max_completion_tokens: null });
    expect(r.chat).toMatchObject({ maxTokens: 100, extraJson: '' });
  });

  it.each([
    ['a token-array prompt', { model: 'm', prompt: [1, 2, 3] }, 'prompt', 'invalid_type'],
    ['a list of token arrays', { model: 'm', prompt: [[1], [2]] }, 'prompt', 'invalid_type'],
    ['no prompt', { model: 'm' }, 'prompt', 'missing_required_parameter'],
    ['an empty prompt list', { model: 'm', prompt: [] }, 'prompt', 'invalid_value'],
    ['max_tokens zero', { model: 'm', prompt: 'p', max_tokens: 0 }, 'max_tokens', 'invalid_value'],
    ['temperature out of range', { model: 'm', prompt: 'p', temperature: 5 }, 'temperature', 'invalid_value'],
    ['no model', { prompt: 'p' }, 'model', 'missing_required_parameter'],
  ])('rejects %s with 400', (_name, body, param, code) => {
    expect(errorOf(() => parseLegacyCompletionRequest(body))).toMatchObject({ kind: 'bad_request', param, code });
  });
});

describe('inPromptTerms', () => {
  it('names each prompt as the client wrote it: the string, or its place in the list', () => {
    expect(parseLegacyCompletionRequest({ model: 'm', prompt: 'p' }).promptParams).toEqual(['prompt']);
    expect(parseLegacyCompletionRequest({ model: 'm', prompt: ['a', ''] }).promptParams).toEqual(['prompt[0]', 'prompt[1]']);
  });

  it('renames what names the message a prompt was sent as, and nothing else', () => {
    const refused = new GatewayError('bad_request', 'At least one user or assistant message with content is required for this model.', { param: 'messages', code: 'invalid_value' });
    expect(inPromptTerms(refused, 'prompt[1]')).toMatchObject({ kind: 'bad_request', param: 'prompt[1]', code: 'invalid_value', message: refused.message });
    const content = new GatewayError('bad_request', "Invalid value for 'messages[0].content'.", { param: 'messages[0].content' });
    expect(inPromptTerms(content, 'prompt')).toMatchObject({ param: 'prompt', message: "Invalid value for 'prompt'." });
    const other = new GatewayError('bad_request', 'n must be 1.', { param: 'n' });
    expect(inPromptTerms(other, 'prompt')).toBe(other);
    const upstream = new GatewayError('upstream_error', 'The provider failed.');
    expect(inPromptTerms(upstream, 'prompt')).toBe(upstream);
  });
});

describe('toLegacyCompletion', () => {
  const completion = (id: string, texts: string[], u: chatv1.Usage): chatv1.ChatCompletion => ({
    id,
    created: 1_700_000_000,
    model: 'up',
    choices: texts.map((content, index) => ({ index, message: { role: 'assistant', content, toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' })),
    usage: u,
  });

  it('offsets choice indexes by prompt and sums usage', () => {
    const out = toLegacyCompletion([completion('chatcmpl-1', ['a0', 'a1'], usage(3, 4)), completion('chatcmpl-2', ['b0', 'b1'], usage(5, 6))], 'public', 2);
    expect(out).toEqual({
      id: 'cmpl-1',
      object: 'text_completion',
      created: 1_700_000_000,
      model: 'public',
      choices: [
        { text: 'a0', index: 0, logprobs: null, finish_reason: 'stop' },
        { text: 'a1', index: 1, logprobs: null, finish_reason: 'stop' },
        { text: 'b0', index: 2, logprobs: null, finish_reason: 'stop' },
        { text: 'b1', index: 3, logprobs: null, finish_reason: 'stop' },
      ],
      usage: { prompt_tokens: 8, completion_tokens: 10, total_tokens: 18, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
    });
  });
});

describe('toLegacyChunk', () => {
  const chunk: chatv1.ChatChunk = { id: 'chatcmpl-9', created: 5, model: 'up', choices: [{ index: 1, delta: { content: 'tok', toolCalls: [], extraJson: '' }, logprobsJson: '' }] };

  it('writes the delta text at the prompt offset', () => {
    expect(toLegacyChunk(chunk, 'public', 4)).toEqual({ id: 'cmpl-9', object: 'text_completion', created: 5, model: 'public', choices: [{ text: 'tok', index: 5, logprobs: null, finish_reason: null }] });
  });

  it('writes an empty text for a role-only delta and keeps the finish reason', () => {
    const out = toLegacyChunk({ ...chunk, choices: [{ index: 0, delta: { role: 'assistant', toolCalls: [], extraJson: '' }, finishReason: 'length', logprobsJson: '' }] }, 'p');
    expect(out['choices']).toEqual([{ text: '', index: 0, logprobs: null, finish_reason: 'length' }]);
  });

  it('keeps the usage of a usage-only chunk', () => {
    expect(toLegacyChunk({ ...chunk, choices: [], usage: usage(1, 2) }, 'p', 0)).toMatchObject({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } });
  });
});
