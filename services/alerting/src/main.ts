import 'reflect-metadata';
import { runStoppableServiceMain } from '@openrouter/service-runtime';
import { startAlerting } from './index';

// A signal while it waits for its ClickHouse stops the wait, and the start.
runStoppableServiceMain('alerting', (config, logger, stopping) => startAlerting(config, logger, { stopping }));
