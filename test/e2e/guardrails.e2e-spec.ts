import { randomBytes } from 'node:crypto';
import Anthropic, { BadRequestError as AnthropicBadRequestError } from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { REPLY_VOCABULARY } from '@openrouter/provider-simulator';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

const AWS_KEY = 'AKIAIOSFODNN7EXAMPLE';

describe('guardrails end to end', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['guardrails'] = {
          rules: [
            { id: 'secrets', detect: 'secret', action: 'block' },
            { id: 'emails', detect: 'email', action: 'redact' },
            { id: 'codename', terms: ['falcon'], action: 'block' },
            { id: 'phrases', terms: ['project zeus'], action: 'block' },
            // Every word the simulated provider answers with: in answers only.
            { id: 'mask-words', terms: [...REPLY_VOCABULARY], action: 'redact', replacement: '*', screen: ['output'] },
            { id: 'stop-words', terms: [...REPLY_VOCABULARY], action: 'block', screen: ['output'] },
          ],
          default: ['secrets', 'emails'],
        };
      },
    });
  }, 120_000);
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  async function admin(method: string, path: string, body?: unknown): Promise<Answer> {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  /** What the simulated provider was sent, last call first. */
  const upstreamBodies = (): Array<Record<string, unknown>> => gw.sim.requests().map((r) => r.body as Record<string, unknown>).reverse();

  /** The router's count of guardrail matches of `rule` and `action`, from its metrics. */
  async function matches(rule: string, action: string): Promise<number> {
    const router = gw.gateway.services.find((s) => s.name === 'router');
    const text = await (await fetch(`http://127.0.0.1:${router?.httpPort ?? 0}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('openrouter_guardrail_matches_total{') && l.includes(`rule="${rule}"`) && l.includes(`action="${action}"`));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  }

  async function refusal(request: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
    const error = await request.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    return error as InstanceType<typeof OpenAI.APIError>;
  }

  it('refuses a chat holding a credential with a 400 content_policy_violation naming the rule and where, and calls no provider', async () => {
    const error = await refusal(
      gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: `deploy with ${AWS_KEY} please` }], max_tokens: 8 }),
    );
    expect(error.status).toBe(400);
    expect(error.code).toBe('content_policy_violation');
    expect(error.param).toBe('messages[1].content');
    expect(error.type).toBe('invalid_request_error');
    expect(error.message).toContain('"secrets"');
    expect(error.message).not.toContain(AWS_KEY);
    expect(gw.sim.requests()).toEqual([]);
    expect(await matches('secrets', 'block')).toBeGreaterThanOrEqual(1);
  });

  it('refuses a streamed chat before any byte of an answer', async () => {
    const error = await refusal(gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `key ${AWS_KEY}` }], stream: true }));
    expect(error.status).toBe(400);
    expect(error.code).toBe('content_policy_violation');
    expect(gw.sim.requests()).toEqual([]);
  });

  it("records a refused request's usage with error kind content_filtered, and refuses it under /v1/messages in Anthropic's shape", async () => {
    const requestId = `guardrail-${randomBytes(4).toString('hex')}`;
    const messages = [{ role: 'user' as const, content: `deploy with ${AWS_KEY} please` }];
    const error = await refusal(gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 8 }, { headers: { 'x-request-id': requestId } }));
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'content_policy_violation', param: 'messages[0].content' });
    const row = await waitFor(
      async () => (await queryRows<{ status: string; error_kind: string; http_status: number }>(gw.gateway.billing.usage.store, 'SELECT status, error_kind, http_status FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}', { id: requestId }))[0],
      { timeoutMs: 30_000, intervalMs: 200, what: `the usage row of ${requestId}` },
    );
    expect(row).toMatchObject({ status: 'error', error_kind: 'content_filtered', http_status: 400 });

    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: gw.apiKey, maxRetries: 0, timeout: 20_000 });
    const refused = await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AnthropicBadRequestError);
    expect((refused as InstanceType<typeof AnthropicBadRequestError>).status).toBe(400);
    const body = (refused as InstanceType<typeof AnthropicBadRequestError>).error as { type: string; error: { type: string; message: string } };
    expect(body).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('refused by the guardrail rule "secrets"') } });
    expect(body.error.message).not.toContain(AWS_KEY);
    expect(gw.sim.requests()).toEqual([]);
  });

  it('reads tool-call arguments with their JSON escapes decoded, and a multi-word term across any white space', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'send the note' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'send', arguments: '{"to":"alice\\u0040example.com","n":1}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sent' },
    ];
    await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 8 });
    const sent = upstreamBodies()[0]?.['messages'] as Array<{ tool_calls?: Array<{ function: { arguments: string } }> }>;
    expect(JSON.parse(sent[1]?.tool_calls?.[0]?.function.arguments ?? '')).toEqual({ to: '[REDACTED:emails]', n: 1 });
    expect(JSON.stringify(gw.sim.requests())).not.toContain('example.com');

    const client = await clientWith('phrases');
    gw.sim.reset();
    const error = await refusal(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'notes on Project\n\tZeus' }], max_tokens: 8 }));
    expect(error).toMatchObject({ code: 'content_policy_violation', param: 'messages[0].content' });
    expect(error.message).toContain('"phrases"');
    expect(gw.sim.requests()).toEqual([]);
  });

  it('redacts an email address before the provider sees it, and answers the client', async () => {
    const answer = await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'write to jane.doe@example.com about the invoice' }], max_tokens: 8 });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    const sent = upstreamBodies()[0]?.['messages'] as Array<{ content: string }>;
    expect(sent[0]?.content).toBe('write to [REDACTED:emails] about the invoice');
    expect(JSON.stringify(gw.sim.requests())).not.toContain('jane.doe@example.com');
    expect(await matches('emails', 'redact')).toBeGreaterThanOrEqual(1);
  });

  it("adds a key's own rule on top of the default, and refuses an unknown rule id in the admin API", async () => {
    const issued = await admin('POST', '/keys', { org: 'default', policy: { guardrails: ['codename'] } });
    expect(issued.status).toBe(201);
    expect(issued.json['policy']).toMatchObject({ guardrails: ['codename'] });
    const guarded = gw.client({ apiKey: issued.json['key'] as string });
    const text = 'the Falcon launch is on Monday';
    const error = await refusal(guarded.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], max_tokens: 8 }));
    expect(error.code).toBe('content_policy_violation');
    expect(error.message).toContain('"codename"');
    expect(gw.sim.requests()).toEqual([]);
    // Another key, without the rule, is served.
    await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], max_tokens: 8 });
    expect((upstreamBodies()[0]?.['messages'] as Array<{ content: string }>)[0]?.content).toBe(text);
    const unknown = await admin('POST', '/keys', { org: 'default', policy: { guardrails: ['codenames'] } });
    expect(unknown.status).toBe(400);
    expect(unknown.json['error']).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value', param: 'policy.guardrails[0]' });
  });

  /** A client whose key's policy adds `rules`. */
  async function clientWith(...rules: string[]): Promise<OpenAI> {
    const issued = await admin('POST', '/keys', { org: 'default', policy: { guardrails: rules } });
    expect(issued.status).toBe(201);
    return gw.client({ apiKey: issued.json['key'] as string });
  }

  const prompt = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'tell me a story about the river' }], max_tokens: 24 };
  const masked = /^[\s*.,]+$/;

  it("redacts a key's output rule in the answer, whole and streamed alike, leaving the request as it was", async () => {
    const client = await clientWith('mask-words');
    const whole = await client.chat.completions.create(prompt);
    const content = whole.choices[0]?.message.content ?? '';
    expect(content).toMatch(masked);
    expect(content).toContain('*');
    // A redaction leaves the answer's ending as the provider gave it.
    expect(whole.choices[0]?.finish_reason).toBe('stop');
    // The rule screens answers only: the provider got the prompt as written.
    expect((upstreamBodies()[0]?.['messages'] as Array<{ content: string }>)[0]?.content).toBe(prompt.messages[0]?.content);

    const stream = await client.chat.completions.create({ ...prompt, stream: true, stream_options: { include_usage: true } });
    let streamed = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    // The simulated provider answers a prompt the same way each time: the same words, masked the same.
    expect(streamed).toBe(content);
    // Metered as the provider counted its tokens, not the masked text.
    expect(usage?.completion_tokens).toBe(whole.usage?.completion_tokens);
    expect(await matches('mask-words', 'redact')).toBeGreaterThanOrEqual(2);
  });

  it('ends an answer an output block rule matches with finish_reason content_filter, and stops the provider', async () => {
    const client = await clientWith('stop-words');
    const whole = await client.chat.completions.create(prompt);
    expect(whole.choices[0]).toMatchObject({ finish_reason: 'content_filter', message: { content: '' } });

    // A long, paced answer: the gateway stops it at the first word, not at its end.
    gw.sim.reset();
    gw.sim.configure({ tokensPerSecond: 40, completionTokens: 400 });
    const stream = await client.chat.completions.create({ ...prompt, max_tokens: 400, stream: true, stream_options: { include_usage: true } });
    let streamed = '';
    const finishes: string[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta.content ?? '';
      if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason);
      usage = chunk.usage ?? usage;
    }
    expect(streamed).toBe('');
    expect(finishes).toEqual(['content_filter']);
    // Metered as what the provider had produced when it was stopped (an estimate, as for a budget stop).
    expect(usage?.prompt_tokens).toBeGreaterThan(0);
    await expect(gw.sim.waitForRequest((r) => r.outcome === 'aborted', 10_000)).resolves.toMatchObject({ outcome: 'aborted' });
    expect(await matches('stop-words', 'block')).toBeGreaterThanOrEqual(2);
  });

  it('shows an answer an output rule cut in the Responses and Messages APIs as their own kind of filtered answer', async () => {
    const issued = await admin('POST', '/keys', { org: 'default', policy: { guardrails: ['stop-words'] } });
    const key = issued.json['key'] as string;
    const response = await gw.client({ apiKey: key }).responses.create({ model: 'gpt-4o-mini', input: 'tell me a story about the river', max_output_tokens: 24 });
    expect(response.status).toBe('incomplete');
    expect(response.incomplete_details).toEqual({ reason: 'content_filter' });
    expect(response.output_text).toBe('');

    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: key, maxRetries: 0, timeout: 20_000 });
    const message = await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 24, messages: [{ role: 'user', content: 'tell me a story about the river' }] });
    expect(message.stop_reason).toBe('refusal');
    expect(message.content.filter((block) => block.type === 'text').map((block) => block.text).join('')).toBe('');
    const masked = new Anthropic({ baseURL: gw.url, apiKey: (await admin('POST', '/keys', { org: 'default', policy: { guardrails: ['mask-words'] } })).json['key'] as string, maxRetries: 0, timeout: 20_000 });
    const stream = masked.messages.stream({ model: 'gpt-4o-mini', max_tokens: 24, messages: [{ role: 'user', content: 'tell me a story about the river' }] });
    const final = await stream.finalMessage();
    const text = final.content.filter((block) => block.type === 'text').map((block) => block.text).join('');
    expect(text).toMatch(/^[\s*.,]+$/);
    expect(text).toContain('*');
  });

  it('redacts embeddings text inputs', async () => {
    const answer = await gw.client().embeddings.create({ model: 'text-embedding-3-small', input: ['plain text', 'contact bob@example.org'] });
    expect(answer.data).toHaveLength(2);
    expect(upstreamBodies()[0]?.['input']).toEqual(['plain text', 'contact [REDACTED:emails]']);
  });
});
