import 'reflect-metadata';
import { runServiceMain } from '@openrouter/service-runtime';
import { startIngress } from './index';

runServiceMain('ingress', startIngress);
