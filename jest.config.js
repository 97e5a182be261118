// One jest run, three layers: unit specs beside the code, integration specs against real
// components, end-to-end specs that drive the running gateway with the official SDKs.
const fs = require('node:fs');
const path = require('node:path');

const swcrc = JSON.parse(fs.readFileSync(path.join(__dirname, '.swcrc'), 'utf8'));
const paths = JSON.parse(fs.readFileSync(path.join(__dirname, 'tsconfig.base.json'), 'utf8')).compilerOptions.paths;
const moduleNameMapper = Object.fromEntries(
  Object.entries(paths).map(([alias, [target]]) => [`^${alias}$`, `<rootDir>/${target}`]),
);
const { baseUrl: _b, paths: _p, ...jsc } = swcrc.jsc;
const transform = { '^.+\\.ts$': ['@swc/jest', { ...swcrc, jsc, swcrc: false }] };
const common = { rootDir: __dirname, testEnvironment: 'node', transform, moduleNameMapper, testPathIgnorePatterns: ['/node_modules/', '/dist/'] };
// Integration and end-to-end suites share one real Kafka broker and one Redis for the run.
const infra = { globalSetup: '<rootDir>/test/support/infra/global-setup.ts', globalTeardown: '<rootDir>/test/support/infra/global-teardown.ts' };

module.exports = {
  // A global option (projects cannot set their own): hooks that start the gateway, brokers or
  // processes get a minute on a loaded 2-core machine; tests that need longer say so.
  testTimeout: 60000,
  // The whole run goes through one worker on a 2-core machine: a worker whose heap has grown past
  // this after a test file (what suites leave behind adds up over hundreds of files; the large
  // uploads of the audio and image-edit suites among it) is replaced by a fresh one, rather than
  // let it reach Node's heap limit and end the run.
  workerIdleMemoryLimit: '1536MB',
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{services,libs,proto,scripts,bench}/**/*.spec.ts'] },
    { ...common, ...infra, displayName: 'integration', testMatch: ['<rootDir>/{services,libs,test}/**/*.int-spec.ts'] },
    { ...common, ...infra, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
};
