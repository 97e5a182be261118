import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Behaviour } from './core/behaviour-config';
import type { SimulatorOptions } from './simulator-server';

export const CLI_USAGE = `Usage: provider-simulator [options]

  --host H                    interface to bind (default 127.0.0.1)
  --port N                    port (default 0 = any free port)
  --api-key K                 require "Authorization: Bearer K"
  --latency-ms N              delay before response headers
  --ttft-ms N                 stream: delay before the first token
  --tokens-per-second N       stream pacing (0 = unpaced)
  --completion-tokens N       default reply length in tokens
  --embedding-dimensions N    default embedding size
  --context-window N          prompt token limit
  --access-token-expires-in N expires_in of the Google access tokens issued (Vertex AI)
  --google-service-account E=F  trust service account E (its email) whose public key is the PEM file F;
                              repeatable
  --seed N                    PRNG seed
  --help                      show this text`;

export type CliCommand = { kind: 'help' } | { kind: 'start'; options: SimulatorOptions };

const NUMERIC_BEHAVIOUR_FLAGS: Readonly<Record<string, keyof Omit<Behaviour, 'faults' | 'ignoreMaxTokens' | 'ignoreStreamOptions' | 'omitUsage'>>> = {
  'latency-ms': 'latencyMs',
  'ttft-ms': 'ttftMs',
  'tokens-per-second': 'tokensPerSecond',
  'completion-tokens': 'completionTokens',
  'embedding-dimensions': 'embeddingDimensions',
  'context-window': 'contextWindow',
  'access-token-expires-in': 'accessTokenExpiresInSeconds',
};

/** Parses argv (without node and script). Throws with a readable message on bad input. */
export function parseCliArgs(argv: readonly string[], readFile: (path: string) => string = (path) => readFileSync(path, 'utf8')): CliCommand {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'api-key': { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean' },
      'latency-ms': { type: 'string' },
      'ttft-ms': { type: 'string' },
      'tokens-per-second': { type: 'string' },
      'completion-tokens': { type: 'string' },
      'embedding-dimensions': { type: 'string' },
      'context-window': { type: 'string' },
      'access-token-expires-in': { type: 'string' },
      'google-service-account': { type: 'string', multiple: true },
    },
  });
  if (values.help === true) return { kind: 'help' };

  const options: SimulatorOptions = {};
  const strings: Readonly<Record<string, unknown>> = values;
  const text = (flag: string): string | undefined => {
    const value = strings[flag];
    return typeof value === 'string' ? value : undefined;
  };
  const host = text('host');
  if (host !== undefined) options.host = host;
  const apiKey = text('api-key');
  if (apiKey !== undefined) options.apiKey = apiKey;
  const port = text('port');
  if (port !== undefined) options.port = integer('port', port, 0, 65_535);
  const seed = text('seed');
  if (seed !== undefined) options.seed = integer('seed', seed, 0, 0xffffffff);

  const accounts = values['google-service-account'] ?? [];
  if (accounts.length > 0) options.googleServiceAccounts = accounts.map((value) => serviceAccount(value, readFile));

  const behaviour: Partial<Behaviour> = {};
  for (const [flag, key] of Object.entries(NUMERIC_BEHAVIOUR_FLAGS)) {
    const raw = text(flag);
    if (raw !== undefined) behaviour[key] = number(flag, raw);
  }
  if (Object.keys(behaviour).length > 0) options.behaviour = behaviour;
  return { kind: 'start', options };
}

function serviceAccount(value: string, readFile: (path: string) => string): { clientEmail: string; publicKey: string } {
  const at = value.indexOf('=');
  if (at <= 0 || at === value.length - 1) throw new Error(`--google-service-account expects EMAIL=PUBLIC_KEY_FILE, got "${value}"`);
  const path = value.slice(at + 1);
  try {
    return { clientEmail: value.slice(0, at), publicKey: readFile(path) };
  } catch {
    throw new Error(`--google-service-account: cannot read ${path}`);
  }
}

function number(flag: string, raw: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0) throw new Error(`--${flag} expects a non-negative number, got "${raw}"`);
  return value;
}

function integer(flag: string, raw: string, min: number, max: number): number {
  const value = number(flag, raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${flag} expects an integer in ${min}..${max}, got "${raw}"`);
  return value;
}
