export { ERROR_KINDS, GatewayError } from './gateway-error';
export type { BilledUsage, ErrorKind, GatewayErrorOptions } from './gateway-error';
