import { PromptCache } from './core/prompt-cache';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Behaviour, DEFAULT_BEHAVIOUR, mergeBehaviour, parseBehaviourPatch } from './core/behaviour-config';
import { FaultInjector } from './core/fault-injector';
import { DEFAULT_REQUEST_LOG_LIMIT, type ObservedRequest, RequestLog } from './core/request-log';
import { mixSeeds, SeededRandom } from './core/seeded-random';
import { CONTROL_PREFIX, handleControlRequest, type SimulatorControl } from './http/control-routes';
import { HttpExchange } from './http/http-exchange';
import { bedrockWire } from './wire/bedrock';
import { anthropicWire } from './wire/anthropic';
import { EntraTokenAuthority, entraIdWire, type SimulatedEntraApp, type SimulatedManagedIdentity } from './wire/entra-id';
import { geminiWire } from './wire/gemini';
import { GoogleTokenAuthority, googleOAuthWire, type SimulatedAuthorizedUser, type SimulatedServiceAccount } from './wire/google-oauth';
import { azureOpenAiWire, openAiWire } from './wire/openai';
import { openAiError } from './wire/openai-formats';
import { vertexWire } from './wire/vertex';
import type { SimulatorRuntime, WireHandler, WireProtocol } from './wire/wire-protocol';

export interface SimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (an ephemeral port). */
  port?: number;
  /** If set, requests must carry `Authorization: Bearer <apiKey>` or get a 401 (`setApiKey` changes it at run time). */
  apiKey?: string;
  behaviour?: Partial<Behaviour>;
  /** Seeds replies, embeddings, ids and fault rolls (default 1). */
  seed?: number;
  /** How many requests the log keeps, newest first out last (default 10 000). */
  requestLogLimit?: number;
  /** Service accounts whose signed assertions the simulated Google token endpoint (`POST /token`) accepts. */
  googleServiceAccounts?: SimulatedServiceAccount[];
  /** Users whose refresh tokens (with their OAuth client) the token endpoint's `refresh_token` grant accepts. */
  googleAuthorizedUsers?: SimulatedAuthorizedUser[];
  /** Service accounts whose tokens `generateAccessToken` gives to any valid token (impersonation). */
  googleImpersonableAccounts?: string[];
  /** App registrations the simulated Entra ID token endpoint (`POST /{tenant}/oauth2/v2.0/token`) knows; Azure OpenAI then requires a credential. */
  entraApps?: SimulatedEntraApp[];
  /** The managed identities IMDS (`/metadata/identity/oauth2/token`) and App Service's endpoint (`/msi/token`) answer for. */
  entraManagedIdentity?: SimulatedManagedIdentity;
}

export interface RunningSimulator {
  /** http://127.0.0.1:PORT */
  url: string;
  /** url + '/v1' */
  baseUrl: string;
  port: number;
  configure(behaviour: Partial<Behaviour>): void;
  /** Back to the behaviour and service accounts the simulator was started with, fault PRNG re-seeded, log cleared (issued access tokens stay). */
  reset(): void;
  requests(): ObservedRequest[];
  /** Resolves when a logged request satisfies `predicate`; re-checked on every log change. */
  waitForRequest(predicate: (request: ObservedRequest) => boolean, timeoutMs?: number): Promise<ObservedRequest>;
  /** The token endpoint accepts this service account's assertions too, until `reset()`. */
  trustServiceAccount(account: SimulatedServiceAccount): void;
  /** Every access token issued so far expires now: Vertex AI and Azure OpenAI answer it with 401. */
  expireAccessTokens(): void;
  /** The Entra ID token endpoint knows this app too (or its new secret), until `reset()`. */
  registerEntraApp(app: SimulatedEntraApp): void;
  /** Every family takes this key from now on, and refuses the one before (a rotated provider key); undefined: any. `reset()` restores the start-up key. */
  setApiKey(apiKey: string | undefined): void;
  close(): Promise<void>;
}

const DEFAULT_SEED = 1;
const DEFAULT_WAIT_MS = 5_000;
const WIRE_PROTOCOLS: readonly WireProtocol[] = [openAiWire, azureOpenAiWire, bedrockWire, anthropicWire, geminiWire, vertexWire, googleOAuthWire, entraIdWire];

function validated(patch: Partial<Behaviour>): Partial<Behaviour> {
  const result = parseBehaviourPatch(patch);
  if (!result.ok) throw new Error(`Invalid simulator behaviour: ${result.message}`);
  return result.value;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  const seed = options.seed ?? DEFAULT_SEED;
  const startupBehaviour = mergeBehaviour(DEFAULT_BEHAVIOUR, validated(options.behaviour ?? {}));
  let behaviour = mergeBehaviour(startupBehaviour, {});
  const faults = new FaultInjector(mixSeeds(seed, 0xfa17));
  faults.setFaults(behaviour.faults);
  const log = new RequestLog(options.requestLogLimit ?? DEFAULT_REQUEST_LOG_LIMIT);
  let apiKey = options.apiKey;
  const runtime: SimulatorRuntime = {
    // Read by the wires on every request, so a key set at run time applies to the next one.
    get apiKey() {
      return apiKey;
    },
    seed,
    behaviour: () => behaviour,
    faults,
    ids: new SeededRandom(mixSeeds(seed, 0x1d5)),
    googleTokens: new GoogleTokenAuthority(options.googleServiceAccounts ?? [], options.googleAuthorizedUsers ?? [], options.googleImpersonableAccounts ?? []),
    entraTokens: new EntraTokenAuthority(options.entraApps ?? [], options.entraManagedIdentity ?? {}),
    promptCache: new PromptCache(),
  };

  const control: SimulatorControl = {
    behaviour: () => mergeBehaviour(behaviour, {}),
    configure(patch) {
      const value = validated(patch);
      behaviour = mergeBehaviour(behaviour, value);
      if (value.faults !== undefined) faults.setFaults(behaviour.faults);
    },
    reset() {
      behaviour = mergeBehaviour(startupBehaviour, {});
      apiKey = options.apiKey;
      faults.reset(behaviour.faults);
      runtime.googleTokens.reset();
      runtime.entraTokens.reset();
      runtime.promptCache.clear();
      log.clear();
    },
    requests: () => log.list(),
    trustServiceAccount: (account) => runtime.googleTokens.trust(account),
    expireAccessTokens: () => {
      runtime.googleTokens.expireAll();
      runtime.entraTokens.expireAll();
    },
    setApiKey: (key) => {
      apiKey = key;
    },
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const rawUrl = req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const pathname = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    const method = req.method ?? 'GET';
    if (pathname.startsWith(CONTROL_PREFIX)) {
      handleControlRequest(req, res, pathname, control).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(openAiError(String(error), 'server_error')));
      });
      return;
    }
    const entry = log.open(pathname, req.headers);
    const exchange = new HttpExchange(req, res, pathname, log, entry, `req_${runtime.ids.alphanumeric(32)}`);
    let handler: WireHandler | undefined;
    for (const wire of WIRE_PROTOCOLS) {
      handler = wire.route(method, pathname);
      if (handler !== undefined) break;
    }
    if (handler === undefined) {
      req.resume();
      exchange.sendJson(404, openAiError(`Invalid URL (${method} ${pathname})`, 'invalid_request_error'));
      return;
    }
    handler(exchange, runtime).catch((error: unknown) => exchange.fail(error));
  };

  const server = createServer({ keepAlive: true, noDelay: true }, handle);
  // Longer than common client pools' idle timeouts, so clients never reuse a socket we are closing.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });

  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  let closing: Promise<void> | undefined;

  return {
    url,
    baseUrl: `${url}/v1`,
    port: address.port,
    configure: (patch) => control.configure(patch),
    reset: () => control.reset(),
    requests: () => log.list(),
    waitForRequest: (predicate, timeoutMs = DEFAULT_WAIT_MS) => log.waitFor(predicate, timeoutMs),
    trustServiceAccount: (account) => control.trustServiceAccount(account),
    expireAccessTokens: () => control.expireAccessTokens(),
    registerEntraApp: (app) => runtime.entraTokens.register(app),
    setApiKey: (key) => control.setApiKey(key),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
