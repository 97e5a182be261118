import OpenAI from 'openai';

/** The official SDK's error for a call that must fail: throws when it succeeds, or fails some other way. */
export async function apiError(run: () => Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof OpenAI.APIError)) throw new Error(`expected an API error, got ${String(error)}`);
  return error;
}
