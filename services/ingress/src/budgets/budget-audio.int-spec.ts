import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisBudgetLedger, type BudgetEventPublisher } from '@openrouter/budgets';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { toOpenAIError } from '@openrouter/openai-wire';
import { PriceBook } from '@openrouter/usage';
import { ingressTestConfig } from '../test-config.testing';
import { mp3File, upload, wavFile } from './audio-file.testing';
import { BudgetService } from './budget.service';

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const tenant = { orgId: 'acme', teamId: 't', projectId: 'p', keyId: 'k1' };
const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
const TRANSCRIPTIONS = '/v1/audio/transcriptions';
const SPEECH = '/v1/audio/speech';

describe('audio reservations against a hard budget on Redis', () => {
  let budgets: BudgetService;

  beforeEach(() => {
    // 1 000 micro-units: 10 s of Whisper (100 a second) or 66 characters of tts-1 (15 a character).
    const config = ingressTestConfig({
      models: [
        { id: 'whisper', capabilities: ['transcription'], pricing: { input: '0', output: '0', perAudioMinute: '0.006' }, deployments: [{ id: 'w', provider: 'sim', model: 'whisper-1' }] },
        { id: 'tts', capabilities: ['speech'], pricing: { input: '0', output: '0', perMillionCharacters: '15' }, deployments: [{ id: 't', provider: 'sim', model: 'tts-1' }] },
      ],
      budgets: { audio: { maxSeconds: 600 }, list: [{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.001' }] },
    });
    budgets = new BudgetService(config, PriceBook.fromModels(config.models), new RedisBudgetLedger(new Redis(redisUrl()), `budget-audio-${randomBytes(4).toString('hex')}:`), events, createLogger('test', 'silent'));
  });
  afterEach(() => budgets.close());

  it('refuses (402) a transcription whose worst case is more than is left, while a shorter WAV file passes, and counts what it cost', async () => {
    const form = (file: Uint8Array) => ({ model: 'whisper', file: upload(file) });
    const held = await budgets.reserve({ requestId: 'a', tenant, body: form(wavFile(6_000)), endpoint: TRANSCRIPTIONS });
    expect(held).toMatchObject({ amountMicros: 600, capped: false });
    // 400 left: 5 s do not fit, a file whose length is unread (600 s) neither; 4 s do.
    for (const file of [wavFile(5_000), mp3File()]) {
      const refused = await budgets.reserve({ requestId: 'b', tenant, body: form(file), endpoint: TRANSCRIPTIONS }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(GatewayError);
      expect(toOpenAIError(refused as GatewayError)).toMatchObject({ status: 402, body: { error: { code: 'budget_exceeded' } } });
    }
    const short = await budgets.reserve({ requestId: 'c', tenant, body: form(wavFile(4_000)), endpoint: TRANSCRIPTIONS });
    expect(short).toMatchObject({ amountMicros: 400, capped: false });
    // The provider reported 6 s (600) and 4 s (400).
    await held?.settle('0.0006');
    await short?.settle('0.0004');
    expect((await budgets.status())[0]).toMatchObject({ spent: '0.001', reserved: '0' });
    await expect(budgets.reserve({ requestId: 'd', tenant, body: form(wavFile(1_000)), endpoint: TRANSCRIPTIONS })).rejects.toMatchObject({ code: 'budget_exceeded' });
  });

  it('reserves a speech at its characters exactly, whole', async () => {
    const held = await budgets.reserve({ requestId: 'a', tenant, body: { model: 'tts', input: '🦊'.repeat(60), voice: 'alloy' }, endpoint: SPEECH });
    expect(held).toMatchObject({ amountMicros: 900, capped: false });
    await expect(budgets.reserve({ requestId: 'b', tenant, body: { model: 'tts', input: 'x'.repeat(7) }, endpoint: SPEECH })).rejects.toMatchObject({ code: 'budget_exceeded' });
    await expect(budgets.reserve({ requestId: 'c', tenant, body: { model: 'tts', input: 'x'.repeat(6) }, endpoint: SPEECH })).resolves.toMatchObject({ amountMicros: 90 });
    expect((await budgets.status())[0]).toMatchObject({ spent: '0', reserved: '0.00099' });
  });
});
