import { GatewayError } from '@openrouter/errors';

/**
 * How an API that keeps what clients store (files and batches, stored responses) answers when its
 * store fails (Redis away, or too slow for a large value): the 503 `code` a client can retry, never
 * a 500. Errors of the API's own (a 404) pass as they are.
 */
export function storeFailureAs(code: string, message: string): <T>(work: Promise<T>) => Promise<T> {
  return async (work) => {
    try {
      return await work;
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new GatewayError('unavailable', message, { code, cause: error });
    }
  };
}
