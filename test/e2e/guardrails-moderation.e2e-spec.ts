import { apiError } from '../support/api-error';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Guardrail rules that ask a moderation model (docs/guardrails.md, "Moderation models"), through
 * the whole gateway with the official SDK: an unsafe prompt is refused before any chat provider
 * sees it, a benign one is served, and a moderation model that fails refuses the request (fail
 * mode closed) or lets it through (open).
 */

/** A gateway whose default rules ask the simulated moderation model, failing as `failMode` says. */
function moderatedGateway(failMode: 'closed' | 'open'): Promise<TestGateway> {
  return startTestGateway({
    configure: (doc) => {
      const models = doc['models'] as Array<Record<string, unknown>>;
      models.push({ id: 'omni-moderation-latest', capabilities: ['moderation'], pricing: { input: '0' }, deployments: [{ id: 'sim-omni', provider: 'simulated', model: 'omni-moderation-latest' }] });
      doc['guardrails'] = {
        rules: [
          { id: 'emails', detect: 'email', action: 'redact' },
          { id: 'unsafe', moderation: { model: 'omni-moderation-latest', categories: ['violence', 'self-harm', 'self-harm/intent'] }, action: 'block', roles: ['user'] },
          { id: 'hate-watch', moderation: { model: 'omni-moderation-latest', categories: ['hate'] }, action: 'flag' },
        ],
        default: ['emails', 'unsafe', 'hate-watch'],
        moderationFailMode: failMode,
      };
      // The response cache: an answer a rule could not screen must never be stored.
      doc['cache'] = { enabled: true, defaultTtlSeconds: 60, maxTtlSeconds: 600 };
    },
  });
}

/** The router's count of guardrail matches of `rule` and `action`, from its metrics. */
async function matches(gw: TestGateway, rule: string, action: string): Promise<number> {
  const router = gw.gateway.services.find((s) => s.name === 'router');
  const text = await (await fetch(`http://127.0.0.1:${router?.httpPort ?? 0}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('openrouter_guardrail_matches_total{') && l.includes(`rule="${rule}"`) && l.includes(`action="${action}"`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

const paths = (gw: TestGateway): string[] => gw.sim.requests().map((r) => r.path);

describe('moderation guardrails through the gateway (fail mode closed)', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await moderatedGateway('closed');
  }, 120_000);
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  it('refuses a violent prompt with 400 content_policy_violation naming the field, and no chat provider is called', async () => {
    const refused = await apiError(() =>
      gw.client().chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'You are a helpful assistant.' },
          { role: 'user', content: 'Hello there' },
          { role: 'user', content: 'Tell me how to kill my neighbour' },
        ],
      }),
    );
    expect(refused).toMatchObject({ status: 400, code: 'content_policy_violation', param: 'messages[2].content' });
    expect(refused.message).toContain('"unsafe"');
    expect(refused.message).toContain('"violence"');
    expect(refused.message).not.toContain('neighbour');
    // One moderation call for both rules on the model, with the texts either screens (`hate-watch`
    // screens every role, `unsafe` only user messages), and nothing else.
    expect(paths(gw)).toEqual(['/v1/moderations']);
    expect(gw.sim.requests()[0]?.body).toMatchObject({ model: 'omni-moderation-latest', input: ['You are a helpful assistant.', 'Hello there', 'Tell me how to kill my neighbour'] });
    expect(await matches(gw, 'unsafe', 'block')).toBeGreaterThanOrEqual(1);
  });

  it('serves a benign prompt after one moderation call of the redacted text, on every chat entry path', async () => {
    const answer = await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Write to jane@example.com about the picnic' }] });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    expect(paths(gw)).toEqual(['/v1/moderations', '/v1/chat/completions']);
    // Redactions apply first: the moderation model sees what the chat provider sees.
    expect(gw.sim.requests()[0]?.body).toMatchObject({ input: ['Write to [REDACTED:emails] about the picnic'] });
    // The Responses API and streamed chat go through the same check.
    const streamed = await apiError(async () => {
      const stream = await gw.client().chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'I want to die' }] });
      for await (const _ of stream) {
        // read
      }
    });
    expect(streamed).toMatchObject({ status: 400, code: 'content_policy_violation', param: 'messages[0].content' });
    const viaResponses = await apiError(() => gw.client().responses.create({ model: 'gpt-4o-mini', input: 'kill them all' }));
    expect(viaResponses.status).toBe(400);
    expect(paths(gw).filter((p) => p !== '/v1/moderations')).toEqual(['/v1/chat/completions']);
  });

  it('counts a flag rule’s hits and serves the request', async () => {
    const before = await matches(gw, 'hate-watch', 'flag');
    await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'I hate Mondays' }] });
    expect(await matches(gw, 'hate-watch', 'flag')).toBe(before + 1);
    expect(paths(gw)).toEqual(['/v1/moderations', '/v1/chat/completions']);
  });

  it('screens embeddings inputs', async () => {
    const refused = await apiError(() => gw.client().embeddings.create({ model: 'text-embedding-3-small', input: ['a calm lake', 'kill the lights and kill him'] }));
    expect(refused).toMatchObject({ status: 400, code: 'content_policy_violation', param: 'input[1]' });
    expect(paths(gw)).toEqual(['/v1/moderations']);
    await gw.client().embeddings.create({ model: 'text-embedding-3-small', input: 'a calm lake' });
    expect(paths(gw)).toEqual(['/v1/moderations', '/v1/moderations', '/v1/embeddings']);
  });

  it('refuses with a retryable 503 guardrails_unavailable while the moderation model fails, naming the rule, never the text', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'moderations' }] });
    const refused = await apiError(() => gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a private benign sentence' }] }));
    expect(refused).toMatchObject({ status: 503, code: 'guardrails_unavailable' });
    expect(refused.message).toContain('"unsafe"');
    expect(refused.message).not.toContain('private benign');
    expect(paths(gw).every((p) => p === '/v1/moderations')).toBe(true);
  });
});

describe('moderation guardrails through the gateway (fail mode open)', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await moderatedGateway('open');
  }, 120_000);
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  it('serves the request unscreened while the moderation model fails, counting it as skipped', async () => {
    const before = await matches(gw, 'unsafe', 'skipped');
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'moderations' }] });
    const answer = await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    expect(paths(gw)).toContain('/v1/chat/completions');
    expect(await matches(gw, 'unsafe', 'skipped')).toBe(before + 1);
    // Once the model answers again, an unsafe prompt is refused as before.
    gw.sim.configure({ faults: [] });
    expect(await apiError(() => gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'kill' }] }))).toMatchObject({ status: 400, code: 'content_policy_violation' });
  });

  it('never stores an answer it let through unscreened: once the model answers again, the same request is judged, not served from the cache', async () => {
    const use = { headers: { 'x-openrouter-cache': 'use' } };
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'kill the lights before you leave' }] };
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'moderations' }] });
    const served = await gw.client().chat.completions.create(body, use).withResponse();
    expect(served.response.headers.get('x-openrouter-cache')).toBe('miss');
    gw.sim.configure({ faults: [] });
    expect(await apiError(() => gw.client().chat.completions.create(body, use))).toMatchObject({ status: 400, code: 'content_policy_violation' });
    // A screened answer is stored as before.
    const benign = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'a calm question about tea' }] };
    await gw.client().chat.completions.create(benign, use);
    const again = await gw.client().chat.completions.create(benign, use).withResponse();
    expect(again.response.headers.get('x-openrouter-cache')).toBe('hit');
  });
});
