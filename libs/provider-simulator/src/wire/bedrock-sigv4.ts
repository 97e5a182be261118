import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

export type SignatureCheck = { ok: true; accessKeyId: string } | { ok: false; errorType: string; message: string };

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
/** AWS rejects signatures dated further than this from its clock. */
const MAX_SKEW_MS = 15 * 60 * 1000;

const MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

export interface SignedRequest {
  method: string;
  /** The request target exactly as received (path still percent-encoded, query included). */
  rawUrl: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Checks a SigV4 `Authorization` header the way Bedrock does: the secret is the simulator's key,
 * any access key id is accepted, the signature is recomputed over the signed headers, the raw
 * path and the body, and compared in constant time.
 */
export async function verifySigV4(request: SignedRequest, secretAccessKey: string, now = Date.now()): Promise<SignatureCheck> {
  const authorization = request.headers.authorization;
  if (!authorization) return { ok: false, errorType: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' };
  const match = AUTHORIZATION.exec(authorization);
  if (!match) return { ok: false, errorType: 'IncompleteSignatureException', message: 'Authorization header requires Credential, SignedHeaders and Signature parameters.' };
  const [, accessKeyId = '', day = '', region = '', service = '', signedList = '', signature = ''] = match;
  if (service !== 'bedrock') return { ok: false, errorType: 'InvalidSignatureException', message: `Credential should be scoped to correct service: 'bedrock'.` };

  const amzDate = headerText(request.headers['x-amz-date']);
  const dateParts = amzDate === undefined ? null : AMZ_DATE.exec(amzDate);
  if (!dateParts || amzDate?.slice(0, 8) !== day) return { ok: false, errorType: 'IncompleteSignatureException', message: 'The X-Amz-Date header is missing or does not match the credential scope.' };
  const [, y, mo, d, h, mi, s] = dateParts.map(Number);
  const signingDate = new Date(Date.UTC(y ?? 0, (mo ?? 1) - 1, d, h, mi, s));
  if (Math.abs(now - signingDate.getTime()) > MAX_SKEW_MS) return { ok: false, errorType: 'InvalidSignatureException', message: 'Signature expired: the request time is too far from the server time.' };

  const signedNames = signedList.split(';');
  if (!signedNames.includes('host')) return { ok: false, errorType: 'InvalidSignatureException', message: "'Host' must be a signed header." };
  const headers: Record<string, string> = {};
  for (const name of signedNames) {
    const value = headerText(request.headers[name]);
    if (value === undefined) return { ok: false, errorType: 'InvalidSignatureException', message: `The signed header "${name}" is missing.` };
    headers[name] = value;
  }
  const payloadHash = headers['x-amz-content-sha256'];
  if (payloadHash !== undefined && payloadHash !== createHash('sha256').update(request.body).digest('hex')) {
    return { ok: false, errorType: 'InvalidSignatureException', message: 'The provided x-amz-content-sha256 header does not match what was computed.' };
  }

  const url = new URL(request.rawUrl, 'http://simulator');
  const queryAt = request.rawUrl.indexOf('?');
  const rawPath = queryAt === -1 ? request.rawUrl : request.rawUrl.slice(0, queryAt);
  const query: Record<string, string | string[]> = {};
  for (const [key, value] of url.searchParams) {
    const existing = query[key];
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  const sessionToken = headers['x-amz-security-token'];
  const signer = new SignatureV4({
    service,
    region,
    credentials: sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken },
    sha256: Sha256,
    // Only add the payload-hash header when the client signed one; otherwise it would change the canonical headers.
    applyChecksum: payloadHash !== undefined,
  });
  const expected = await signer.sign(new HttpRequest({ method: request.method, protocol: 'http:', hostname: headers['host'] ?? '', path: rawPath, query, headers, body: request.body }), {
    signingDate,
  });
  const expectedSignature = /Signature=([0-9a-f]{64})/.exec(expected.headers['authorization'] ?? '')?.[1] ?? '';
  if (expectedSignature.length !== signature.length || !timingSafeEqual(Buffer.from(expectedSignature), Buffer.from(signature))) {
    return { ok: false, errorType: 'InvalidSignatureException', message: MISMATCH };
  }
  return { ok: true, accessKeyId };
}

function headerText(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : value;
}
