import 'reflect-metadata';
import { runServiceMain } from '@openrouter/service-runtime';
import { startBilling } from './index';

runServiceMain('billing', startBilling);
