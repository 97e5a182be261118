import 'reflect-metadata';
import { runServiceMain } from '@openrouter/service-runtime';
import { startAlerting } from './index';

runServiceMain('alerting', startAlerting);
