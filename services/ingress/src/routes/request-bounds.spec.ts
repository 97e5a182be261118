import { accessSchema } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { messagesToChatBody, parseChatRequest, responsesToChatBody, toMessagesParam, toResponsesParam, toOpenAIError } from '@openrouter/openai-wire';
import { checkChatBounds, type RequestBounds } from './request-bounds';

const bounds = (requests: Record<string, unknown> = {}): RequestBounds => accessSchema.parse({ requests }).requests;
const image = (n: number) => ({ type: 'image_url', image_url: { url: `https://images.example/${n}.png` } });
const images = (count: number, from = 0) => Array.from({ length: count }, (_, k) => image(from + k));
const chat = (messages: unknown[]) => parseChatRequest({ model: 'm', messages });
const refusal = (run: () => void): GatewayError => {
  try {
    run();
  } catch (error) {
    return error as GatewayError;
  }
  throw new Error('expected a refusal');
};

describe('checkChatBounds: image parts', () => {
  it('bounds images at 100 by default', () => {
    expect(bounds().maxImages).toBe(100);
    expect(() => checkChatBounds(chat([{ role: 'user', content: images(100) }]), bounds())).not.toThrow();
    expect(refusal(() => checkChatBounds(chat([{ role: 'user', content: images(101) }]), bounds()))).toMatchObject({ param: 'messages[0].content[100]' });
  });

  it('counts image parts over all messages and names the first one over the bound, as a 400 invalid_value in OpenAI’s shape', () => {
    const request = chat([
      { role: 'system', content: 'Describe.' },
      { role: 'user', content: [{ type: 'text', text: 'these' }, ...images(2)] },
      { role: 'assistant', content: 'Two cats.' },
      { role: 'user', content: [{ type: 'text', text: 'and these' }, image(2), { type: 'text', text: 'then' }, image(3)] },
    ]);
    expect(() => checkChatBounds(request, bounds({ maxImages: 4 }))).not.toThrow();
    const error = refusal(() => checkChatBounds(request, bounds({ maxImages: 3 })));
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'bad_request', param: 'messages[3].content[3]', code: 'invalid_value' });
    expect(error.message).toBe('At most 3 images are accepted in a request; this part is image 4.');
    expect(toOpenAIError(error)).toMatchObject({ status: 400, body: { error: { type: 'invalid_request_error', param: 'messages[3].content[3]', code: 'invalid_value' } } });
  });

  it('counts images in tool results and image parts kept as JSON (extra keys, detail: null)', () => {
    const request = chat([
      { role: 'user', content: [{ ...image(0), cache_control: { type: 'ephemeral' } }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'chart', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 't1', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: null } }] },
    ]);
    expect(request.messages[0]?.parts?.parts[0]?.rawJson).toBeTruthy();
    expect(() => checkChatBounds(request, bounds({ maxImages: 2 }))).not.toThrow();
    expect(refusal(() => checkChatBounds(request, bounds({ maxImages: 1 })))).toMatchObject({ param: 'messages[2].content[0]', code: 'invalid_value' });
  });

  it('counts no text or other parts', () => {
    const others = [{ type: 'text', text: 'a', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'b' }, { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0=' } }];
    expect(() => checkChatBounds(chat([{ role: 'user', content: [...others, image(0)] }]), bounds({ maxImages: 1 }))).not.toThrow();
    expect(refusal(() => checkChatBounds(chat([{ role: 'user', content: [...others, image(0), ...others, image(1)] }]), bounds({ maxImages: 1 })))).toMatchObject({ param: 'messages[0].content[7]' });
  });

  it('bounds the input_image parts of a Responses request, refused naming its input', () => {
    const body = responsesToChatBody({ model: 'm', input: [{ role: 'user', content: [{ type: 'input_text', text: 'x' }, ...Array.from({ length: 3 }, (_, k) => ({ type: 'input_image', image_url: `https://images.example/${k}.png` }))] }] });
    const error = refusal(() => checkChatBounds(parseChatRequest(body), bounds({ maxImages: 2 })));
    expect(error).toMatchObject({ param: 'messages[0].content[3]', code: 'invalid_value' });
    expect(toResponsesParam(error.param ?? '')).toBe('input');
  });

  it('bounds the image blocks of a Messages request, in tool results and with cache_control too', () => {
    const block = (k: number, extra: Record<string, unknown> = {}) => ({ type: 'image', source: { type: 'url', url: `https://images.example/${k}.png` }, ...extra });
    const body = messagesToChatBody({
      model: 'm',
      max_tokens: 16,
      messages: [
        { role: 'user', content: [block(0), block(1, { cache_control: { type: 'ephemeral' } })] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'chart', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [block(2)] }] },
      ],
    });
    expect(() => checkChatBounds(parseChatRequest(body), bounds({ maxImages: 3 }))).not.toThrow();
    const error = refusal(() => checkChatBounds(parseChatRequest(body), bounds({ maxImages: 2 })));
    expect(error).toMatchObject({ param: 'messages[2].content[0]', code: 'invalid_value' });
    expect(toMessagesParam(error.param ?? '')).toBe('messages');
  });

  it('refuses a request of many small image parts (the 2.8 KB body that made the adapter fetch 40 images)', () => {
    const messages = [{ role: 'user', content: images(40) }];
    expect(JSON.stringify({ model: 'm', messages }).length).toBeLessThan(3_000);
    expect(refusal(() => checkChatBounds(chat(messages), bounds({ maxImages: 20 })))).toMatchObject({ param: 'messages[0].content[20]' });
  });
});
