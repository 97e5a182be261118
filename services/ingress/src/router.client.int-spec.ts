import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import { chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { GrpcSecurity, GrpcServerHandle, MAX_MESSAGE_BYTES, serveStream, type RouterTarget } from '@openrouter/grpc';
import { toOpenAIError } from '@openrouter/openai-wire';
import { healthAcrossReplicas } from './admin/router-replicas';
import { RouterClient } from './router.client';

const TOKEN = 'a-service-token-of-32-characters-or-more';
const security = GrpcSecurity.fromConfig({ auth: { token: TOKEN }, tls: { cert: '', key: '', ca: '', serverNameOverride: '' } });
// Deadlines of calls that must succeed (a channel's connect and the name's lookup included): far
// above a slow answer on a loaded machine. A replica that is not there fails at once, not at the deadline.
const TIMEOUTS = { callMs: 10_000, firstStreamedMs: 10_000, wholeAnswerMs: 10_000 };

/** A router replica on the real gRPC contract, with breakers of its own. */
async function replica(breakers: Record<string, string>): Promise<{ server: GrpcServerHandle; address: string; calls: () => number }> {
  let calls = 0;
  const implementation: Pick<routerv1.RouterServiceServer, 'providersHealth' | 'grayReleases'> = {
    providersHealth: (_call: ServerUnaryCall<routerv1.ProvidersHealthRequest, routerv1.ProvidersHealthResponse>, callback: sendUnaryData<routerv1.ProvidersHealthResponse>) => {
      calls += 1;
      const deployments = Object.entries(breakers).map(([deployment, breakerState]) => ({ provider: 'simulated', model: 'mini', deployment, breakerState, healthy: breakerState !== 'open', requestsLastMinute: 1 }));
      callback(null, routerv1.ProvidersHealthResponse.fromPartial({ deployments }));
    },
    grayReleases: (_call: ServerUnaryCall<routerv1.GrayReleasesRequest, routerv1.GrayReleasesResponse>, callback: sendUnaryData<routerv1.GrayReleasesResponse>) => callback(null, { releases: [] }),
  };
  const server = await GrpcServerHandle.start('127.0.0.1', 0, [{ definition: routerv1.RouterServiceService, implementation }], security);
  return { server, address: `127.0.0.1:${server.port}`, calls: () => calls };
}

describe('RouterClient.eachReplica: status calls reach every router replica (real gRPC servers)', () => {
  const servers: GrpcServerHandle[] = [];
  const clients: RouterClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const server of servers.splice(0)) await server.close(0);
  });

  it('calls each replica on a channel of its own, names those that do not answer, and follows the replicas as they change', async () => {
    const a = await replica({ 'sim-mini': 'open' });
    const b = await replica({ 'sim-mini': 'closed' });
    servers.push(a.server, b.server);
    const silent = await replica({});
    const gone = silent.address;
    await silent.server.close(0); // nothing listens there any more
    let targets: RouterTarget[] = [{ address: a.address }, { address: b.address }, { address: gone }, { address: 'router:50051', unresolved: 'router does not resolve (ENOTFOUND)' }];
    // The main channel's address is only used for the request path; status calls go where `replicas` says.
    const client = new RouterClient(a.address, TIMEOUTS, security, {}, undefined, async () => targets);
    clients.push(client);

    const answers = await client.eachReplica((r) => r.providersHealth());
    expect(answers.map((x) => [x.address, x.result?.deployments[0]?.breakerState ?? null, x.error?.kind ?? null])).toEqual(
      [
        [a.address, 'open', null],
        [b.address, 'closed', null],
        [gone, null, 'unavailable'],
        ['router:50051', null, 'unavailable'],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    expect([a.calls(), b.calls()]).toEqual([1, 1]);
    const merged = healthAcrossReplicas(answers);
    expect(merged.deployments[0]).toMatchObject({ deployment: 'sim-mini', breakerState: 'open', healthy: false, requestsLastMinute: 2, replicas: { closed: 1, halfOpen: 0, open: 1 } });
    expect(merged.replicas.filter((r) => !r.answering).map((r) => r.address).sort()).toEqual([gone, 'router:50051'].sort());

    // A replica scaled away is no longer asked.
    targets = [{ address: b.address }];
    const after = await client.eachReplica((r) => r.providersHealth());
    expect(after.map((x) => x.address)).toEqual([b.address]);
    expect([a.calls(), b.calls()]).toEqual([1, 2]);
  });

  it('by default asks every address the router name resolves to (here `localhost`, its IPv4 address)', async () => {
    const a = await replica({ 'sim-mini': 'closed' });
    servers.push(a.server);
    const client = new RouterClient(`localhost:${a.server.port}`, TIMEOUTS, security);
    clients.push(client);
    const answers = await client.eachReplica((r) => r.providersHealth());
    expect(answers.map((x) => [x.address, x.error?.kind ?? null])).toEqual([[`127.0.0.1:${a.server.port}`, null]]);
    expect(a.calls()).toBe(1);
  });
});

describe('RouterClient: a message over the gRPC size limit (real gRPC server)', () => {
  let server: GrpcServerHandle;
  let client: RouterClient;
  let reached = 0;
  /** What the router answers an embedding: set per test. */
  let embedding: routerv1.EmbedResponse = { response: undefined };

  beforeAll(async () => {
    const implementation: Pick<routerv1.RouterServiceServer, 'chat' | 'embed'> = {
      chat: (call: ServerWritableStream<routerv1.ChatRequest, routerv1.ChatResponse>) => {
        reached += 1;
        serveStream(call, async function* () {
          yield { completion: { id: 'c', created: 0, model: 'm', choices: [] } };
        }, () => undefined);
      },
      embed: (_call: ServerUnaryCall<routerv1.EmbedRequest, routerv1.EmbedResponse>, callback: sendUnaryData<routerv1.EmbedResponse>) => {
        reached += 1;
        callback(null, embedding);
      },
    };
    server = await GrpcServerHandle.start('127.0.0.1', 0, [{ definition: routerv1.RouterServiceService, implementation }], security);
    client = new RouterClient(`127.0.0.1:${server.port}`, { callMs: 10_000, firstStreamedMs: 30_000, wholeAnswerMs: 30_000 }, security);
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });
  beforeEach(() => {
    reached = 0;
  });

  const chatOf = (text: string): routerv1.ChatRequest => ({
    context: { requestId: 'r', orgId: 'o', projectId: '', teamId: '', appId: '', costCenter: '', keyId: '', endUser: '', tags: {}, allowedModels: [] },
    request: chatv1.ChatRequest.fromPartial({ model: 'm', messages: [{ role: 'user', text }], stream: false }),
  });

  it('refuses a request larger than one message carries with 413 request_too_large, not a 500, before the router sees it; the channel serves the next call', async () => {
    let failure: unknown;
    try {
      for await (const _ of client.chat(chatOf('a'.repeat(MAX_MESSAGE_BYTES + 1024)), new AbortController().signal)) {
        // nothing arrives
      }
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(GatewayError);
    const error = failure as GatewayError;
    expect({ kind: error.kind, code: error.code, retryable: error.retryable }).toEqual({ kind: 'bad_request', code: 'request_too_large', retryable: false });
    expect(error.message).toContain(`${MAX_MESSAGE_BYTES} bytes`);
    expect(toOpenAIError(error).status).toBe(413);
    expect(reached).toBe(0);
    const served: routerv1.ChatResponse[] = [];
    for await (const message of client.chat(chatOf('hello'), new AbortController().signal)) served.push(message);
    expect(served).toHaveLength(1);
    expect(reached).toBe(1);
  });

  it('reads an answer the router could not send for its size as a server error naming it, not the client’s 413', async () => {
    embedding = { response: chatv1.EmbeddingResponse.fromPartial({ model: 'm', data: [{ index: 0, vectorF32le: Buffer.alloc(MAX_MESSAGE_BYTES + 1024) }] }) };
    const refused = client.embed({ context: chatOf('').context, request: { model: 'm', texts: ['hello'], tokenInputs: [], extraJson: '' } });
    await expect(refused).rejects.toMatchObject({ kind: 'internal', code: 'response_too_large' });
    expect(reached).toBe(1);
  });
});
