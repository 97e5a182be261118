// Regenerates the TypeScript contracts from proto/ (buf + ts-proto). With --check, generates into
// a scratch folder and fails when the committed code differs, so CI proves the contracts are current.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const out = join(root, 'libs/contracts/src/gen');
const check = process.argv.includes('--check');

function generate(target) {
  const template = readFileSync(join(root, 'proto/buf.gen.yaml'), 'utf8').replace('out: libs/contracts/src/gen', `out: ${target}`);
  const templatePath = join(mkdtempSync(join(tmpdir(), 'buf-gen-')), 'buf.gen.yaml');
  writeFileSync(templatePath, template);
  rmSync(target, { recursive: true, force: true });
  execFileSync(join(root, 'node_modules/.bin/buf'), ['generate', 'proto', '--template', templatePath], { cwd: root, stdio: 'inherit' });
}

if (!check) {
  generate(out);
  process.exit(0);
}
const scratch = mkdtempSync(join(tmpdir(), 'contracts-'));
generate(scratch);
try {
  execFileSync('diff', ['-r', scratch, out], { stdio: 'inherit' });
  console.log('generated contracts are current');
} catch {
  console.error('libs/contracts/src/gen is stale: run `npm run proto:gen` and commit the result');
  process.exit(1);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
