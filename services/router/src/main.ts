import 'reflect-metadata';
import { runServiceMain } from '@openrouter/service-runtime';
import { startRouter } from './index';

runServiceMain('router', startRouter);
