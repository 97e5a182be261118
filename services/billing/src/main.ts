import 'reflect-metadata';
import { runStoppableServiceMain } from '@openrouter/service-runtime';
import { startBilling } from './index';

// A signal while it waits for its ClickHouse stops the wait, and the start.
runStoppableServiceMain('billing', (config, logger, stopping) => startBilling(config, logger, { stopping }));
