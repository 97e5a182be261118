import 'reflect-metadata';
import { runServiceMain } from '@openrouter/service-runtime';
import { startIngress } from './index';

runServiceMain('ingress', async (config, logger) => {
  const ingress = await startIngress(config, logger);
  // A generated key is told once, on the terminal, never in the log (as the embedded gateway does).
  if (ingress.adminKeyGenerated) process.stdout.write(`Admin key (generated; set OPENROUTER_ADMIN_KEY to choose one): ${ingress.adminKey}\n`);
  if (ingress.devKeyGenerated) process.stdout.write(`Development key (generated; set OPENROUTER_DEV_KEY to choose one): ${ingress.devKey}\n`);
  return ingress;
});
