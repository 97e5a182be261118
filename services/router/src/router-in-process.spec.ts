import type { adapterv1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import { unusedAdapters } from './adapter-port.testing';
import type { AdapterPort } from './router.service';
import { configWith, contextFor, TWO_MODELS } from './routing/test-engine.testing';
import { readSpeech } from './speech.testing';
import { startRouter, type RouterHandle } from './index';

const MODELS = [...TWO_MODELS, { id: 'tts-1', capabilities: ['speech'], pricing: { perMillionCharacters: '15' }, deployments: [{ id: 'tts-a', provider: 'a', model: 'tts-a' }] }];

describe('speech through the router called in process (the embedded gateway)', () => {
  let router: RouterHandle | undefined;
  /** Each adapter call: its signal, and whether its stream ended. */
  const calls: Array<{ signal: AbortSignal; ended: boolean }> = [];
  /** Set: the adapter's answers wait after their first piece until their call is aborted. */
  let hold = false;
  const adapter: AdapterPort = {
    ...unusedAdapters(),
    speak: (_request, signal) => {
      const call = { signal, ended: false };
      calls.push(call);
      const held = hold;
      return (async function* (): AsyncGenerator<adapterv1.SpeakResponse> {
        try {
          yield { response: { audio: Buffer.from('ab'), contentType: 'audio/mpeg', characters: 0 } };
          if (held) await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
          yield { response: { audio: Buffer.from('cd'), contentType: '', characters: 0 } };
          yield { response: { audio: Buffer.alloc(0), contentType: '', characters: 5 } };
        } finally {
          call.ended = true;
        }
      })();
    },
  };

  beforeAll(async () => {
    const config = configWith(MODELS);
    router = await startRouter({ ...config, router: { ...config.router, grpc: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 } } }, createLogger('router', 'silent'), {}, { adapter });
  });
  afterAll(async () => {
    await router?.close();
  });

  it('streams the pieces, the decision first', async () => {
    hold = false;
    const { decision, response, messages } = await readSpeech(router!.inProcess.speak({ context: contextFor(), request: { model: 'tts-1', input: 'Hello', voice: 'alloy', extraJson: '' } }, new AbortController().signal));
    expect(decision).toMatchObject({ model: 'tts-1', deployment: 'tts-a', attempts: 1 });
    expect(messages.map((m) => Buffer.from(m.response?.audio ?? []).toString())).toEqual(['ab', 'cd', '']);
    expect(response).toMatchObject({ contentType: 'audio/mpeg', characters: 5 });
  });

  it("aborts the adapter's call when the caller cancels", async () => {
    hold = true;
    calls.length = 0;
    const caller = new AbortController();
    const stream = router!.inProcess.speak({ context: contextFor(), request: { model: 'tts-1', input: 'Hello', voice: 'alloy', extraJson: '' } }, caller.signal);
    expect((await stream.next()).value).toMatchObject({ decision: { model: 'tts-1' } });
    const waiting = stream.next();
    caller.abort();
    await expect(waiting).rejects.toMatchObject({ kind: 'cancelled' });
    expect(calls[0]?.signal.aborted).toBe(true);
    expect(calls[0]?.ended).toBe(true);
  });
});
