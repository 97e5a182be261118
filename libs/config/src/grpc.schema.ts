import { z } from 'zod';
import { strictObject } from './primitives';

/**
 * The shared service token of the calls between services: every gRPC client sends it, every gRPC
 * server refuses a call without it. Empty: none (the embedded mode, a trusted network).
 */
const serviceToken = z
  .string()
  .refine((t) => t === '' || t.length >= 32, 'must be at least 32 characters (e.g. `openssl rand -hex 32`), or empty for none')
  // It travels as call metadata, which carries printable ASCII only.
  .refine((t) => /^[\x21-\x7e]*$/.test(t), 'must be printable ASCII without spaces');

export const grpcAuthSchema = strictObject({
  token: serviceToken.default(''),
  /**
   * Tokens the servers take besides `token`, for a rotation without stopping every service at
   * once: a list, or comma-separated text (an environment variable). Empty entries are ignored.
   */
  acceptedTokens: z
    .union([z.array(z.string()), z.string()])
    .default([])
    .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((t) => t.trim()).filter((t) => t !== ''))
    .pipe(z.array(serviceToken)),
})
  .refine((auth) => auth.acceptedTokens.length === 0 || auth.token !== '', { path: ['acceptedTokens'], message: 'applies with grpc.auth.token only' })
  .prefault({});

/**
 * TLS of the calls between services, on when any file is named: servers and clients present `cert`
 * and `key`; clients verify servers against `ca` (else the system's roots); with `ca`, servers also
 * require a client certificate it signed (mutual TLS). The files are read at start (libs/grpc).
 */
export const grpcTlsSchema = strictObject({
  cert: z.string().default(''),
  key: z.string().default(''),
  ca: z.string().default(''),
  /** The name the server certificates carry, when it is not the host of the peer addresses. */
  serverNameOverride: z.string().default(''),
})
  .superRefine((tls, ctx) => {
    if (tls.cert !== '' && tls.key === '') ctx.addIssue({ code: 'custom', path: ['key'], message: 'required with grpc.tls.cert: the private key of the certificate' });
    if (tls.key !== '' && tls.cert === '') ctx.addIssue({ code: 'custom', path: ['cert'], message: 'required with grpc.tls.key: the certificate of the private key' });
    if (tls.serverNameOverride !== '' && tls.cert === '' && tls.ca === '') ctx.addIssue({ code: 'custom', path: ['serverNameOverride'], message: 'applies to TLS only: set grpc.tls.ca (or cert and key) as well' });
  })
  .prefault({});
