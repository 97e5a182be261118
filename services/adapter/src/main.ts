import 'reflect-metadata';
import { runServiceMain } from '@openrouter/service-runtime';
import { startAdapter } from './index';

runServiceMain('adapter', startAdapter);
