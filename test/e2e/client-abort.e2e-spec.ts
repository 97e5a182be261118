import { connect, type Socket } from 'node:net';
import type OpenAI from 'openai';
import { Money, moneyText } from '@openrouter/usage';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/** What `access.requests.onClientAbort` does to a request whose client leaves while the provider works on it. */

interface Row {
  status: string;
  cancelled: boolean;
  operation: string;
  prompt_tokens: number;
  completion_tokens: number;
  tokens_estimated: boolean;
  cost: string;
  http_status: number;
  attempt_status: string;
}

/** Log lines at error level or above (pino's 50), as the services wrote them. */
const errorLines: string[] = [];
let linesLogged = 0;
const logs = {
  write(line: string): void {
    linesLogged++;
    if (((JSON.parse(line) as { level?: number }).level ?? 0) >= 50) errorLines.push(line);
  },
};

function startGateway(onClientAbort: 'cancel' | 'complete' | undefined, streamStallMs?: number): Promise<TestGateway> {
  return startTestGateway({
    logs,
    configure: (document) => {
      // The provider's own timeout far above its latency here: only the client leaves.
      const providers = document['providers'] as Record<string, Record<string, unknown>>;
      providers['simulated'] = { ...providers['simulated'], timeoutMs: 120_000 };
      const access = document['access'] as Record<string, unknown>;
      const requests = access['requests'] as Record<string, unknown> | undefined;
      access['requests'] = { ...requests, ...(onClientAbort && { onClientAbort }), ...(streamStallMs && { streamStallMs }) };
    },
  });
}

function rowOf(gw: TestGateway, requestId: string): Promise<Row> {
  return waitFor(
    async () => {
      const [row] = await queryRows<Row>(
        gw.gateway.billing.usage.store,
        'SELECT status, cancelled, operation, prompt_tokens, completion_tokens, tokens_estimated, toString(cost) AS cost, http_status, attempts.status[-1] AS attempt_status FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}',
        { id: requestId },
      );
      return row;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `the usage row of ${requestId}` },
  );
}

/** gpt-4o-mini's prices: 0.15 per million input tokens, 0.60 per million output tokens. */
function priced(prompt: number, completion: number): string {
  return moneyText(new Money(prompt).times('0.15').plus(new Money(completion).times('0.60')).div(1_000_000));
}

type Call = (client: OpenAI, options: OpenAI.RequestOptions) => Promise<unknown>;

const question = 'A long question whose answer nobody waits for in the end';
const wholeRequests: Array<[string, Call]> = [
  ['a chat completion', (client, options) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: question }] }, options)],
  ['a legacy completion', (client, options) => client.completions.create({ model: 'gpt-4o-mini', prompt: question, max_tokens: 16 }, options)],
  ['a Responses API request', (client, options) => client.responses.create({ model: 'gpt-4o-mini', input: question }, options)],
  [
    'an Anthropic Messages request',
    async (client, options) => {
      const response = await fetch(`${client.baseURL}/messages`, {
        method: 'POST',
        signal: options.signal ?? null,
        headers: { 'content-type': 'application/json', 'x-api-key': client.apiKey ?? '', ...(options.headers as Record<string, string>) },
        body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: question }] }),
      });
      return response.json();
    },
  ],
];
const streamed: Call = async (client, options) => {
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: question }] }, options);
  for await (const chunk of stream) void chunk;
};

/**
 * The simulated provider's latency: the client must leave before the answer comes, even after a
 * stall of seconds on a loaded machine. Only `complete` waits it out (a few seconds a request).
 */
const PROVIDER_LATENCY_MS = 5_000;

/**
 * Sends `call` with the simulated provider slow to answer, and has its client leave once the
 * provider has the call; returns how the provider call ended and the request's usage row.
 */
async function abandoned(gw: TestGateway, requestId: string, call: Call): Promise<{ outcome: string; row: Row }> {
  gw.sim.configure({ latencyMs: PROVIDER_LATENCY_MS });
  try {
    const before = gw.sim.requests().length;
    const client = new AbortController();
    const sent = call(gw.client(), { signal: client.signal, headers: { 'x-request-id': requestId } });
    await waitFor(() => (gw.sim.requests().length > before ? true : undefined), { timeoutMs: 10_000, what: 'the provider call' });
    client.abort();
    await expect(sent).rejects.toThrow();
    const ended = await waitFor(() => {
      const request = gw.sim.requests()[before];
      return request && request.outcome !== 'pending' ? request : undefined;
    }, { timeoutMs: 30_000, what: 'the provider call to end' });
    return { outcome: ended.outcome, row: await rowOf(gw, requestId) };
  } finally {
    gw.sim.configure({ latencyMs: 0 });
  }
}

describe('a client that leaves while the provider works on its request, with onClientAbort: complete', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway('complete');
  }, 120_000);
  afterAll(async () => gw?.close());

  it.each(wholeRequests)('lets %s run on to its answer and records what the provider reported, as cancelled', async (name, call) => {
    const { outcome, row } = await abandoned(gw, `complete-${name.replaceAll(' ', '-')}`, call);
    // The provider call was not stopped: it answered, to nobody.
    expect(outcome).toBe('completed');
    expect(row).toMatchObject({ status: 'cancelled', cancelled: true, tokens_estimated: false, http_status: 499, attempt_status: 'ok' });
    expect(row.prompt_tokens).toBeGreaterThan(0);
    // The provider's output tokens, which a request charged only its prompt never carries.
    expect(row.completion_tokens).toBeGreaterThan(0);
    expect(moneyText(new Money(row.cost))).toBe(priced(row.prompt_tokens, row.completion_tokens));
    expect(new Money(row.cost).gt(priced(row.prompt_tokens, 0))).toBe(true);
    // A client leaving is no error of the gateway's (the services' logs are read: they log at info).
    expect(linesLogged).toBeGreaterThan(0);
    expect(errorLines).toEqual([]);
  });

  it('still cancels a stream at the provider, charging its prompt estimated', async () => {
    const { outcome, row } = await abandoned(gw, 'complete-stream', streamed);
    expect(outcome).toBe('aborted');
    expect(row).toMatchObject({ status: 'cancelled', cancelled: true, completion_tokens: 0, tokens_estimated: true, attempt_status: 'cancelled' });
    expect(moneyText(new Money(row.cost))).toBe(priced(row.prompt_tokens, 0));
  });
});

describe('a client that leaves while the provider works on its whole answer, by default (onClientAbort: cancel)', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway(undefined);
  }, 120_000);
  afterAll(async () => gw?.close());

  it('cancels the call at the provider, charging its prompt estimated', async () => {
    const [, call] = wholeRequests[0] ?? [];
    if (!call) throw new Error('no chat completion call');
    const { outcome, row } = await abandoned(gw, 'cancel-chat', call);
    expect(outcome).toBe('aborted');
    expect(row).toMatchObject({ status: 'cancelled', cancelled: true, completion_tokens: 0, tokens_estimated: true, attempt_status: 'cancelled' });
    expect(row.prompt_tokens).toBeGreaterThan(0);
    expect(moneyText(new Money(row.cost))).toBe(priced(row.prompt_tokens, 0));
  });
});

describe('a client that stops reading its whole answer without closing', () => {
  /** Answers of a million tokens (over 5 MB): more than the loopback's socket buffers hold. */
  const COMPLETION_TOKENS = 1_000_000;
  let gw: TestGateway;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    gw = await startGateway(undefined, 1_000);
    gw.sim.configure({ completionTokens: COMPLETION_TOKENS, ignoreMaxTokens: true });
  }, 120_000);
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await gw?.close();
  });

  it.each([
    ['a chat completion', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: question }] }],
    ['a legacy completion', '/v1/completions', { model: 'gpt-4o-mini', prompt: question }],
    ['a Responses API request', '/v1/responses', { model: 'gpt-4o-mini', input: question }],
    ['an Anthropic Messages request', '/v1/messages', { model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: question }] }],
  ])('is cut once it takes none of %s for streamStallMs, and the request recorded as cancelled with what the provider reported', async (name, path, request) => {
    const requestId = `unread-${name.replaceAll(' ', '-')}`;
    const body = JSON.stringify(request);
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
    sockets.push(socket);
    // The client sends its request, then reads nothing and never closes.
    socket.pause();
    socket.write(
      `POST ${path} HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer ${gw.apiKey}\r\ncontent-type: application/json\r\n` +
        `x-request-id: ${requestId}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    const row = await rowOf(gw, requestId);
    expect(row).toMatchObject({ status: 'cancelled', cancelled: true, tokens_estimated: false, attempt_status: 'ok', completion_tokens: COMPLETION_TOKENS });
    expect(moneyText(new Money(row.cost))).toBe(priced(row.prompt_tokens, row.completion_tokens));
  });

  it('cuts an embeddings answer the same way, the request recorded as cancelled with its input tokens', async () => {
    const requestId = 'unread-embeddings';
    // 600 vectors of 1 536 numbers: an answer of over 10 MB.
    const body = JSON.stringify({ model: 'text-embedding-3-small', input: Array.from({ length: 600 }, (_, i) => `text ${i}`) });
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
    sockets.push(socket);
    socket.pause();
    socket.write(
      `POST /v1/embeddings HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer ${gw.apiKey}\r\ncontent-type: application/json\r\n` +
        `x-request-id: ${requestId}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    const row = await rowOf(gw, requestId);
    expect(row).toMatchObject({ status: 'cancelled', cancelled: true, operation: 'embedding', tokens_estimated: false, attempt_status: 'ok', completion_tokens: 0 });
    expect(row.prompt_tokens).toBeGreaterThan(600);
    // text-embedding-3-small's price: 0.02 per million input tokens.
    expect(moneyText(new Money(row.cost))).toBe(moneyText(new Money(row.prompt_tokens).times('0.02').div(1_000_000)));
  });
});
