import { z } from 'zod';

/** Decimal amounts travel as strings so money never passes through a float. */
export const decimal = z
  .union([z.string(), z.number()])
  .transform((v) => String(v))
  .refine((v) => /^\d+(\.\d+)?$/.test(v), { message: 'must be a non-negative decimal number, e.g. "0.15"' });

/** A boolean that may come from an environment variable as text. */
export const flag = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

export const port = z.coerce.number().int().min(0).max(65535);
export const host = z.string().min(1).default('127.0.0.1');

export const listenSchema = z.object({ host, port });
export type Listen = z.infer<typeof listenSchema>;

/** host:port of a gRPC peer. */
export const address = z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port');

/** Lower-case identifiers used for providers, tenants and the like. */
export const identifier = z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'lower-case letters, digits, ., - and _');
