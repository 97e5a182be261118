// scripts/run-kafka.sh, the broker for running the distributed services on one machine without
// containers (docs/deploy.md): it starts from the fetched jars, takes a topic and its records,
// and keeps them across a restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { freePorts } from '../support/ports';
import { waitFor } from '../support/infra/wait-for';

const SCRIPT = resolve(__dirname, '..', '..', 'scripts', 'run-kafka.sh');

describe('scripts/run-kafka.sh', () => {
  let dataDir: string;
  let broker: ChildProcess | undefined;
  let output = '';

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'openrouter-run-kafka-'));
  });

  afterEach(async () => stop());

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  function start(args: string[]): ChildProcess {
    output = '';
    const child = spawn('bash', [SCRIPT, ...args], { env: { ...process.env, OPENROUTER_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    return child;
  }

  async function stop(): Promise<void> {
    const child = broker;
    broker = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    await exited;
  }

  const exitOf = (child: ChildProcess): Promise<number | null> => new Promise((done) => child.once('exit', (code) => done(code)));

  it('refuses a port that is not one, before starting anything', async () => {
    for (const args of [['not-a-port'], ['70000'], ['9092', '9092']]) {
      const child = start(args);
      expect(await exitOf(child)).toBe(2);
      expect(output).toMatch(/^run-kafka: the (controller )?port must be a number from 1 to 65535/);
    }
  });

  it('serves a topic on the given port and keeps it across a restart', async () => {
    const [port, controllerPort] = await freePorts(2);
    const kafka = new Kafka({ clientId: 'run-kafka-spec', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 2 } });
    const admin = kafka.admin();
    const reachable = async (): Promise<boolean> => {
      try {
        await admin.connect();
        await admin.listTopics();
        return true;
      } catch {
        await admin.disconnect();
        return false;
      }
    };

    broker = start([String(port), String(controllerPort)]);
    await waitFor(reachable, { timeoutMs: 60_000, intervalMs: 250, what: `the broker on ${port} (${output})` });
    expect(output).toContain(`KAFKA_BROKERS=127.0.0.1:${port}`);
    await admin.createTopics({ topics: [{ topic: 'usage-check' }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'usage-check', messages: [{ key: 'org', value: 'kept' }] });
    await producer.disconnect();
    await admin.disconnect();

    await stop();
    broker = start([String(port), String(controllerPort)]);
    await waitFor(reachable, { timeoutMs: 60_000, intervalMs: 250, what: `the broker on ${port} after a restart (${output})` });
    try {
      expect(await admin.listTopics()).toContain('usage-check');
      const [offsets] = await admin.fetchTopicOffsets('usage-check');
      expect(offsets?.high).toBe('1');
    } finally {
      await admin.disconnect();
    }
  }, 150_000);
});
