export { ERROR_KINDS, GatewayError } from './gateway-error';
export type { ErrorKind, GatewayErrorOptions } from './gateway-error';
