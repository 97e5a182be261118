export { createLogger, NestPinoLogger } from './logger';
export type { Logger } from './logger';
export { evaluateReadiness } from './health';
export type { ReadinessCheck, ReadinessReport } from './health';
