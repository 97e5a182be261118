import { GatewayError } from '@openrouter/errors';

/** The GatewayError `fn` throws; fails the test when it throws something else or nothing. */
export function errorOf(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error('expected a GatewayError');
}
