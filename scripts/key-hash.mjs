// Prints the keyed hash (HMAC-SHA256, hex) under which configuration declares an API key or an
// admin key: `npm run --silent key:hash -- "$OPENROUTER_KEY_HASH_SECRET" "$KEY"`. The key itself
// is never written anywhere.
import { createHmac } from 'node:crypto';

const [secret, key] = process.argv.slice(2);
if (!secret || !key) {
  process.stderr.write('usage: npm run --silent key:hash -- <access.keyHashSecret> <key>\n');
  process.exit(2);
}
process.stdout.write(`${createHmac('sha256', secret).update(key).digest('hex')}\n`);
