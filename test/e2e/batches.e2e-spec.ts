import OpenAI, { toFile } from 'openai';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * OpenAI's Batch API through the whole gateway with the official SDK, as an application uses it:
 * a JSONL file uploaded, a batch created on it, polled to its end, and its output and error files
 * read back; each line run as the key's own request (routed, metered, tagged with its batch),
 * lines refused for a passing reason tried again, bad files refused whole, and a cancel.
 */
/** An answer of the admin API's batch routes: a list, a batch, or an error. */
interface AdminAnswer {
  data: Array<Record<string, unknown> & { id: string }>;
  status?: string;
  error?: { param: string | null; code: string | null };
}

/** A line of a batch's output or error file. */
interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}

describe('batches through the gateway', () => {
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['batches'] = { pollMs: 50, concurrency: 2, maxAttempts: 4 };
      },
    });
    client = gw.client();
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  const chatLine = (customId: string, content: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra } });

  async function upload(lines: string[]): Promise<string> {
    const file = await client.files.create({ file: await toFile(Buffer.from(`${lines.join('\n')}\n`), 'requests.jsonl'), purpose: 'batch' });
    return file.id;
  }

  const ended = (id: string) =>
    waitFor(
      async () => {
        const batch = await client.batches.retrieve(id);
        return ['completed', 'failed', 'expired', 'cancelled'].includes(batch.status) ? batch : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50, what: `batch ${id} to end` },
    );

  async function jsonl(fileId: string | null | undefined): Promise<OutputLine[]> {
    expect(fileId).toEqual(expect.any(String));
    const text = await (await client.files.content(fileId as string)).text();
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as OutputLine);
  }

  it('runs every line as a request of the key, writes the answers in the input order, and meters each line tagged with its batch', async () => {
    const inputFileId = await upload([chatLine('a', 'first question'), chatLine('b', 'second question', { max_tokens: 7 }), chatLine('c', 'third question')]);
    const created = await client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { job: 'nightly' }, output_expires_after: { anchor: 'created_at', seconds: 3_600 } });
    expect(created).toMatchObject({ object: 'batch', endpoint: '/v1/chat/completions', input_file_id: inputFileId, completion_window: '24h', metadata: { job: 'nightly' }, request_counts: { total: 3, completed: 0, failed: 0 } });
    expect(['validating', 'in_progress']).toContain(created.status);
    expect((created.expires_at ?? 0) - created.created_at).toBe(24 * 3600);

    const batch = await ended(created.id);
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 3, completed: 3, failed: 0 }, error_file_id: null });
    expect(batch.completed_at).toBeGreaterThanOrEqual(batch.created_at);
    expect(batch.in_progress_at).toEqual(expect.any(Number));

    const output = await jsonl(batch.output_file_id);
    expect(output.map((l) => l.custom_id)).toEqual(['a', 'b', 'c']);
    for (const line of output) {
      expect(line).toMatchObject({ id: expect.stringMatching(/^batch_req_/), error: null, response: { status_code: 200, request_id: line.id } });
      expect(line.response?.body).toMatchObject({ object: 'chat.completion', model: 'gpt-4o-mini', choices: [{ message: { role: 'assistant' } }] });
    }
    // The batch's usage is the sum of its answers'.
    const answers = output.map((l) => (l.response?.body as { usage: { prompt_tokens: number; completion_tokens: number } }).usage);
    const input = answers.reduce((sum, u) => sum + u.prompt_tokens, 0);
    const completion = answers.reduce((sum, u) => sum + u.completion_tokens, 0);
    expect(input).toBeGreaterThan(0);
    expect(batch.usage).toEqual({ input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: completion, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + completion });
    expect(gw.sim.requests().filter((r) => r.path === '/v1/chat/completions')).toHaveLength(3);
    expect(gw.sim.requests().find((r) => JSON.stringify(r.body).includes('second question'))?.body).toMatchObject({ max_tokens: 7 });

    // The output file is the project's, listed among its files.
    const outputFile = await client.files.retrieve(batch.output_file_id as string);
    expect(outputFile).toMatchObject({ purpose: 'batch_output', filename: `${batch.id}_output.jsonl` });
    // Kept as long as the batch's output_expires_after asked.
    expect(outputFile.expires_at).toBe(outputFile.created_at + 3_600);

    // Every line's usage record carries its request id and the batch's tag.
    const ids = output.map((l) => l.id);
    const rows = await waitFor(
      async () => {
        const found = await queryRows<{ request_id: string; batch: string; status: string }>(
          gw.gateway.billing.usage.store,
          "SELECT request_id, tags['batch'] AS batch, status FROM {db:Identifier}.usage_events FINAL WHERE tags['batch'] = {batch:String}",
          { batch: batch.id },
        );
        return found.length === 3 ? found : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the usage rows of the batch' },
    );
    expect(rows.map((r) => r.request_id).sort()).toEqual([...ids].sort());
    expect(rows.map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);

    // A completed batch cannot be cancelled.
    await expect(client.batches.cancel(batch.id)).rejects.toMatchObject({ status: 409, code: 'batch_ended' });

    const listed = await client.batches.list({ limit: 100 });
    expect(listed.data.map((b) => b.id)).toContain(batch.id);
  });

  it('tags each line with its batch however many tags the creating request had: batch=<id> first, then those of the request that fit', async () => {
    const inputFileId = await upload([chatLine('t', 'tagged question')]);
    // Sixteen tags of 40 characters: more than the 256 characters a request's tags are read from.
    const tags = Array.from({ length: 16 }, (_, i) => `t${i}=${String(i).padStart(40, 'v')}`).join(',');
    const created = await client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' }, { headers: { 'x-openrouter-tags': tags } });
    const batch = await ended(created.id);
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 1, completed: 1, failed: 0 } });
    const [line] = await jsonl(batch.output_file_id);
    const rows = await waitFor(
      async () => {
        const found = await queryRows<{ request_id: string; t0: string }>(gw.gateway.billing.usage.store, "SELECT request_id, tags['t0'] AS t0 FROM {db:Identifier}.usage_events FINAL WHERE tags['batch'] = {batch:String}", { batch: batch.id });
        return found.length === 1 ? found : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the usage row of the tagged batch' },
    );
    expect(rows).toEqual([{ request_id: line?.id, t0: String(0).padStart(40, 'v') }]);
  });

  it('puts a line the gateway refuses in the error file, and tries a line again while it is refused for a reason that passes', async () => {
    // The first two provider calls fail with 503 (no fallback in this catalog), then it answers.
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 503, path: 'chat', remaining: 2 }] });
    const inputFileId = await upload([chatLine('ok-after-retries', 'retried question'), JSON.stringify({ custom_id: 'bad-model', method: 'POST', url: '/v1/chat/completions', body: { model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] } })]);
    const batch = await ended((await client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' })).id);
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 2, completed: 1, failed: 1 } });
    const [answered] = await jsonl(batch.output_file_id);
    expect(answered).toMatchObject({ custom_id: 'ok-after-retries', response: { status_code: 200 } });
    // Two provider calls refused, each answered 503 to the line, which was tried again after a growing delay.
    expect(gw.sim.requests().filter((r) => r.path === '/v1/chat/completions')).toHaveLength(3);
    const [refused] = await jsonl(batch.error_file_id);
    // The replica counts what its lines did.
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const count = (outcome: string): number => Number(new RegExp(`^openrouter_batch_lines_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    expect(count('retried')).toBeGreaterThanOrEqual(2);
    expect(count('failed')).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/^openrouter_batches_ended_total\{[^}]*status="completed"[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^openrouter_batch_lines_in_flight(\{[^}]*\})? 0$/m);
    expect(refused).toMatchObject({ custom_id: 'bad-model', response: { status_code: 404, body: { error: { code: 'model_not_found' } } }, error: null });
  });

  it('refuses a file with bad lines whole: the batch fails at once and lists each problem with its line', async () => {
    const inputFileId = await upload([
      chatLine('one', 'fine'),
      '{not json',
      JSON.stringify({ custom_id: 'wrong-url', method: 'POST', url: '/v1/embeddings', body: { model: 'x', input: 'y' } }),
      chatLine('one', 'duplicate id'),
      chatLine('streamed', 'no', { stream: true }),
      // Nested deeper than a request body may be (ingress.limits.jsonDepth): refused before it is parsed.
      `{"custom_id":"deep","method":"POST","url":"/v1/chat/completions","body":{"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`,
    ]);
    const batch = await client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect(batch.status).toBe('failed');
    expect(batch.failed_at).toEqual(expect.any(Number));
    expect(batch.errors?.data?.map((e) => [e.code, e.line])).toEqual([
      ['invalid_json_line', 2],
      ['invalid_url', 3],
      ['duplicate_custom_id', 4],
      ['invalid_request', 5],
      ['invalid_request', 6],
    ]);
    expect(batch.errors?.data?.[4]?.message).toContain('nested too deeply');
    expect((await client.batches.retrieve(batch.id)).status).toBe('failed');
    expect(gw.sim.requests()).toHaveLength(0);
  });

  it('stores the responses of a /v1/responses batch as direct requests store them, to be retrieved and continued', async () => {
    const line = (customId: string, body: Record<string, unknown>) => JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/responses', body: { model: 'gpt-4o-mini', ...body } });
    const inputFileId = await upload([line('kept', { input: 'Name a river.' }), line('unkept', { input: 'Name a lake.', store: false })]);
    const batch = await ended((await client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/responses', completion_window: '24h' })).id);
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 2, completed: 2, failed: 0 } });
    const [kept, unkept] = await jsonl(batch.output_file_id);
    const keptBody = kept?.response?.body as { id: string; store: boolean; output_text?: string; output: Array<{ content?: Array<{ text: string }> }> };
    expect([kept?.custom_id, keptBody.store]).toEqual(['kept', true]);
    expect((await client.responses.retrieve(keptBody.id)).output).toEqual(keptBody.output);
    await client.responses.create({ model: 'gpt-4o-mini', previous_response_id: keptBody.id, input: 'And another?' });
    expect((gw.sim.requests().at(-1)?.body as { messages: Array<{ content: unknown }> }).messages.map((m) => m.content)).toEqual([
      'Name a river.',
      keptBody.output[0]?.content?.[0]?.text,
      'And another?',
    ]);
    const unkeptBody = unkept?.response?.body as { id: string; store: boolean };
    expect([unkept?.custom_id, unkeptBody.store]).toEqual(['unkept', false]);
    await expect(client.responses.retrieve(unkeptBody.id)).rejects.toMatchObject({ status: 404 });
  });

  it('answers bad requests in OpenAI’s error format', async () => {
    const inputFileId = await upload([chatLine('x', 'y')]);
    await expect(client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/images/generations' as '/v1/chat/completions', completion_window: '24h' })).rejects.toMatchObject({ status: 400, param: 'endpoint' });
    await expect(client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '1h' as '24h' })).rejects.toMatchObject({ status: 400, param: 'completion_window' });
    await expect(client.batches.create({ input_file_id: 'file-doesnotexist', endpoint: '/v1/chat/completions', completion_window: '24h' })).rejects.toMatchObject({ status: 400, param: 'input_file_id' });
    await expect(client.batches.retrieve('batch_doesnotexist')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.batches.cancel('batch_doesnotexist')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.batches.list({ limit: 1000 })).rejects.toMatchObject({ status: 400, param: 'limit' });
  });

  it('cancels a running batch: no line starts after, and it ends with the answers it has and the rest in its error file', async () => {
    // Two lines a second: the cancel, sent once one is answered, comes some 9 s before the last would start.
    gw.sim.configure({ latencyMs: 1_000 });
    const inputFileId = await upload(Array.from({ length: 20 }, (_, i) => chatLine(`line-${i}`, `question ${i}`)));
    const created = await client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await waitFor(async () => ((await client.batches.retrieve(created.id)).request_counts?.completed ?? 0) >= 1 || undefined, { timeoutMs: 30_000, intervalMs: 20, what: 'a first line answered' });
    const cancelling = await client.batches.cancel(created.id);
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.cancelling_at).toEqual(expect.any(Number));
    const batch = await ended(created.id);
    expect(batch.status).toBe('cancelled');
    const answered = batch.request_counts?.completed ?? 0;
    expect(answered).toBeGreaterThanOrEqual(1);
    expect(answered).toBeLessThan(20);
    expect(batch.request_counts).toEqual({ total: 20, completed: answered, failed: 20 - answered });
    const errors = await jsonl(batch.error_file_id);
    expect(errors).toHaveLength(20 - answered);
    expect(errors.every((l) => l.error?.code === 'batch_cancelled' && l.response === null)).toBe(true);
    expect(gw.sim.requests().filter((r) => r.path === '/v1/chat/completions')).toHaveLength(answered);
    // Cancelling it again changes nothing.
    expect((await client.batches.cancel(created.id)).status).toBe('cancelled');
  });

  it('sees a cancel while its lines in flight take long, and starts no line after it', async () => {
    // Longer than the reads and the cancel below take on a slow machine: the lines are still in flight.
    gw.sim.configure({ latencyMs: 5_000 });
    const inputFileId = await upload(Array.from({ length: 3 }, (_, i) => chatLine(`slow-${i}`, `slow question ${i}`)));
    const created = await client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' });
    // Both of the replica's line slots (batches.concurrency 2) hold a slow line; nothing has been answered yet.
    await waitFor(() => gw.sim.requests().filter((r) => r.path === '/v1/chat/completions').length === 2 || undefined, { timeoutMs: 10_000, intervalMs: 10, what: 'two lines in flight' });
    // Its runner has written its (unchanged) progress once since: the cancel comes while no line's answer changes it.
    await waitFor(async () => (await client.batches.retrieve(created.id)).usage !== undefined || undefined, { timeoutMs: 10_000, intervalMs: 10, what: 'the first progress written' });
    expect((await client.batches.cancel(created.id)).status).toBe('cancelling');
    const batch = await ended(created.id);
    expect(batch).toMatchObject({ status: 'cancelled', request_counts: { total: 3, completed: 2, failed: 1 } });
    expect(gw.sim.requests().filter((r) => r.path === '/v1/chat/completions')).toHaveLength(2);
  });

  it('shows an admin every batch running now and a project\'s batches, and lets it cancel one', async () => {
    const admin = async (path: string, method = 'GET'): Promise<{ status: number; body: AdminAnswer }> => {
      const response = await fetch(`${gw.url}${path}`, { method, headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
      return { status: response.status, body: (await response.json()) as AdminAnswer };
    };
    // Twenty lines two at a time, 3 s each: still running (some 30 s) when the admin calls below cancel it.
    gw.sim.configure({ latencyMs: 3_000 });
    const inputFileId = await upload(Array.from({ length: 20 }, (_, i) => chatLine(`admin-${i}`, `question ${i}`)));
    const created = await client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' });

    const active = await admin('/admin/v1/batches/active');
    expect(active.status).toBe(200);
    // The development key is in no project: it owns its batches alone.
    expect(active.body.data).toContainEqual(expect.objectContaining({ id: created.id, object: 'batch', org: 'default', project: null, key_id: 'dev', request_counts: expect.objectContaining({ total: 20 }) }));
    const listed = await admin('/admin/v1/batches?org=default&key=dev&limit=100');
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((b) => b.id)).toContain(created.id);
    expect((await admin(`/admin/v1/batches/${created.id}`)).body).toMatchObject({ id: created.id, input_file_id: inputFileId });

    const cancelled = await admin(`/admin/v1/batches/${created.id}/cancel`, 'POST');
    expect(cancelled.status).toBe(200);
    expect(['cancelling', 'cancelled']).toContain(cancelled.body.status);
    expect((await ended(created.id)).status).toBe('cancelled');
    await waitFor(async () => !(await admin('/admin/v1/batches/active')).body.data.some((b) => b.id === created.id) || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the batch to leave the active list' });

    // Bad input and unknown batches, in OpenAI's error shape; a traffic key is not an admin key.
    expect(await admin('/admin/v1/batches?org=default')).toMatchObject({ status: 400, body: { error: { param: 'project' } } });
    expect((await admin('/admin/v1/batches?org=default&project=default')).body.data).toEqual([]);
    expect(await admin('/admin/v1/batches/batch_doesnotexist')).toMatchObject({ status: 404, body: { error: { code: 'batch_not_found' } } });
    expect((await fetch(`${gw.url}/admin/v1/batches/active`, { headers: { authorization: `Bearer ${gw.apiKey}` } })).status).toBe(401);
  });

  describe('under a hard budget', () => {
    let budgeted: TestGateway;

    beforeAll(async () => {
      budgeted = await startTestGateway({
        configure: (doc) => {
          doc['batches'] = { pollMs: 50 };
          // Less than one chat line asking for 1,000 tokens may cost (1,000 × $0.60 / 1M = $0.0006).
          doc['budgets'] = { list: [{ id: 'org-daily', scope: { org: 'default' }, period: 'daily', amount: '0.0005', enforcement: 'hard' }] };
        },
      });
    });
    afterAll(async () => budgeted?.close());

    it('refuses a line its budget cannot cover with 402 before any provider call, into the error file, and runs the lines it covers (embeddings)', async () => {
      const sdk = budgeted.client();
      const file = async (lines: string[]) => (await sdk.files.create({ file: await toFile(Buffer.from(lines.join('\n')), 'in.jsonl'), purpose: 'batch' })).id;
      const finished = async (id: string) =>
        waitFor(
          async () => {
            const batch = await sdk.batches.retrieve(id);
            return batch.status === 'completed' ? batch : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 50, what: `batch ${id} to complete` },
        );
      const chat = await finished(
        (await sdk.batches.create({ input_file_id: await file([chatLine('too-dear', 'write at length', { max_tokens: 1000 })]), endpoint: '/v1/chat/completions', completion_window: '24h' })).id,
      );
      expect(chat.request_counts).toEqual({ total: 1, completed: 0, failed: 1 });
      expect(chat.output_file_id).toBeNull();
      const [refused] = (await (await sdk.files.content(chat.error_file_id as string)).text()).trim().split('\n').map((l) => JSON.parse(l) as OutputLine);
      expect(refused).toMatchObject({ custom_id: 'too-dear', response: { status_code: 402, body: { error: { code: 'budget_exceeded' } } } });
      expect(budgeted.sim.requests()).toHaveLength(0);

      const embeddingLine = (id: string, input: string) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input } });
      const embeddings = await finished(
        (await sdk.batches.create({ input_file_id: await file([embeddingLine('e1', 'first text'), embeddingLine('e2', 'second text')]), endpoint: '/v1/embeddings', completion_window: '24h' })).id,
      );
      expect(embeddings.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
      const output = (await (await sdk.files.content(embeddings.output_file_id as string)).text()).trim().split('\n').map((l) => JSON.parse(l) as OutputLine);
      expect(output.map((l) => l.custom_id)).toEqual(['e1', 'e2']);
      for (const line of output) expect(line.response?.body).toMatchObject({ object: 'list', model: 'text-embedding-3-small', data: [{ object: 'embedding', index: 0 }] });
      expect(budgeted.sim.requests().map((r) => r.path)).toEqual(['/v1/embeddings', '/v1/embeddings']);
    });
  });
});
