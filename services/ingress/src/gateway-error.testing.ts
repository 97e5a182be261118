import { GatewayError } from '@openrouter/errors';

/** The GatewayError `run` rejects with; fails the test when it settles any other way. */
export async function failureOf(run: () => Promise<unknown>): Promise<GatewayError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof GatewayError)) throw new Error(`expected a GatewayError, got ${String(error)}`);
  return error;
}
