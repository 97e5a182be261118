import { countTokens } from '../core/token-counter';
import { gptImageOutputTokens, imageModelFamily, planImageGeneration } from './openai-image-planner';

describe('imageModelFamily', () => {
  it.each([
    ['gpt-image-1', 'gpt-image'],
    ['gpt-image-1-mini', 'gpt-image'],
    ['gpt-image-2-2026-04-21', 'gpt-image'],
    ['chatgpt-image-latest', 'gpt-image'],
    ['dall-e-3', 'dall-e-3'],
    ['dall-e-2', 'dall-e-2'],
    ['my-azure-deployment', 'dall-e-2'],
  ])('reads %s as %s', (model, family) => {
    expect(imageModelFamily(model)).toBe(family);
  });
});

describe('gptImageOutputTokens', () => {
  it("follows OpenAI's published table and scales other sizes by their pixels", () => {
    expect(gptImageOutputTokens('low', '1024x1024')).toBe(272);
    expect(gptImageOutputTokens('medium', '1536x1024')).toBe(1568);
    expect(gptImageOutputTokens('high', '1024x1536')).toBe(6240);
    expect(gptImageOutputTokens('low', '512x512')).toBe(68);
  });
});

describe('planImageGeneration', () => {
  it('plans n GPT Image answers with usage for every image', () => {
    const result = planImageGeneration({ prompt: 'a cat', n: 3, quality: 'high' }, 'gpt-image-1');
    expect(result).toEqual({ ok: true, plan: { family: 'gpt-image', n: 3, format: 'b64_json', size: '1024x1024', quality: 'high', revisedPrompt: undefined, usage: { inputTokens: countTokens('a cat'), outputTokens: 3 * 4160 } } });
  });

  it('answers DALL·E in the format asked, URLs by default, at standard quality', () => {
    expect(planImageGeneration({ prompt: 'x' }, 'dall-e-2')).toMatchObject({ ok: true, plan: { format: 'url', quality: 'standard', size: '1024x1024', usage: undefined } });
    expect(planImageGeneration({ prompt: 'x', response_format: 'b64_json', size: '256x256' }, 'dall-e-2')).toMatchObject({ ok: true, plan: { format: 'b64_json', size: '256x256' } });
  });

  it.each([
    ['auto size on DALL·E', { prompt: 'x', size: 'auto' }, 'dall-e-2', 'size'],
    ['a DALL·E 3 prompt over 4000 characters', { prompt: 'a'.repeat(4001) }, 'dall-e-3', 'prompt'],
    ['a GPT Image prompt over 32000 characters', { prompt: 'a'.repeat(32_001) }, 'gpt-image-1', 'prompt'],
    ['a gpt-image-2 size not divisible by 16', { prompt: 'x', size: '1030x1024' }, 'gpt-image-2', 'size'],
    ['a gpt-image-2 size wider than 3:1', { prompt: 'x', size: '3840x1024' }, 'gpt-image-2', 'size'],
    ['a gpt-image-2 size over 3840x2160 pixels', { prompt: 'x', size: '3840x3840' }, 'gpt-image-2', 'size'],
  ])('refuses %s naming the param', (_name, request, model, param) => {
    const result = planImageGeneration(request, model);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem.param).toBe(param);
  });
});
