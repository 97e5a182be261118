/**
 * Polls `condition` until it returns true (or a value other than false/undefined), failing after
 * `timeoutMs`. Errors thrown by the condition fail at once: they mean the condition can never hold.
 */
export async function waitFor<T>(
  condition: () => Promise<T | false | undefined> | T | false | undefined,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== false && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? 'a condition'}`);
    await new Promise((done) => setTimeout(done, intervalMs));
  }
}
