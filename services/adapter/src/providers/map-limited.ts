/**
 * `fn` over `items` with at most `limit` calls in flight; results keep the input order. Once a call
 * fails no further one is started: the whole request has failed (the router may be retrying it on
 * another deployment), and every call made after that would be paid for and thrown away. The
 * failure is thrown once the calls in flight have ended: they are paid for, and a caller may bill
 * what they answered (a split embeddings request, `embedInCalls`).
 */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const at = next++;
      try {
        results[at] = await fn(items[at] as T, at);
      } catch (error) {
        if (!failed) failure = error;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (failed) throw failure;
  return results;
}
