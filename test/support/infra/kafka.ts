import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { freePorts } from '../ports';
import { waitFor } from './wait-for';

const ROOT = resolve(__dirname, '../../..');
const LIBS = join(ROOT, '.cache/kafka-libs');

/** The one user of the broker's SASL/PLAIN listener, for tests of authenticated clients. */
export const KAFKA_SASL_USER = { mechanism: 'plain', username: 'openrouter', password: 'kafka-test-secret' } as const;

export interface KafkaBrokerOptions {
  /** Keep the data directory on stop, so a restart finds the topics and messages again. */
  keepData?: boolean;
  startTimeoutMs?: number;
}

/**
 * A real Apache Kafka broker (KRaft, one node that is broker and controller) on loopback ports,
 * run on Java from the jars `scripts/fetch-kafka.sh` put in `.cache/kafka-libs`.
 */
export class KafkaBroker {
  private process: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly port: number,
    private readonly controllerPort: number,
    /** A second listener that requires SASL/PLAIN (`KAFKA_SASL_USER`). */
    readonly saslPort: number,
    readonly dataDir: string,
    private readonly startTimeoutMs: number,
  ) {}

  get brokers(): string[] {
    return [`127.0.0.1:${this.port}`];
  }

  get saslBrokers(): string[] {
    return [`127.0.0.1:${this.saslPort}`];
  }

  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  static async start(options: KafkaBrokerOptions = {}): Promise<KafkaBroker> {
    if (!existsSync(LIBS) || !readdirSync(LIBS).some((f) => f.startsWith('kafka_2.13-'))) {
      throw new Error(`Kafka jars are missing in ${LIBS}: run scripts/fetch-kafka.sh (needs mvn and Java 17)`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'or-kafka-'));
    const [brokerPort, controllerPort, saslPort] = await freePorts(3);
    const broker = new KafkaBroker(brokerPort, controllerPort, saslPort, dir, options.startTimeoutMs ?? 90_000);
    broker.writeConfig();
    await broker.format();
    await broker.launch();
    return broker;
  }

  /** Starts the broker again on the same ports and data after `stop()`. */
  async restart(): Promise<void> {
    if (this.running) throw new Error('the Kafka broker is still running');
    await this.launch();
  }

  /** Stops the broker (SIGTERM, then SIGKILL after a grace period); the data stays. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the broker and removes its data. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private get propertiesPath(): string {
    return join(this.dataDir, 'server.properties');
  }

  private writeConfig(): void {
    mkdirSync(join(this.dataDir, 'log'), { recursive: true });
    const properties = {
      'process.roles': 'broker,controller',
      'node.id': '1',
      'controller.quorum.voters': `1@127.0.0.1:${this.controllerPort}`,
      listeners: `PLAINTEXT://127.0.0.1:${this.port},SASL_PLAINTEXT://127.0.0.1:${this.saslPort},CONTROLLER://127.0.0.1:${this.controllerPort}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${this.port},SASL_PLAINTEXT://127.0.0.1:${this.saslPort}`,
      'controller.listener.names': 'CONTROLLER',
      'inter.broker.listener.name': 'PLAINTEXT',
      'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT',
      'sasl.enabled.mechanisms': 'PLAIN',
      'listener.name.sasl_plaintext.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required user_${KAFKA_SASL_USER.username}="${KAFKA_SASL_USER.password}";`,
      'log.dirs': join(this.dataDir, 'log'),
      'num.partitions': '1',
      'auto.create.topics.enable': 'false',
      'offsets.topic.replication.factor': '1',
      'offsets.topic.num.partitions': '1',
      'transaction.state.log.replication.factor': '1',
      'transaction.state.log.min.isr': '1',
      'group.initial.rebalance.delay.ms': '0',
      'log.flush.interval.messages': '1000000',
      'log.segment.bytes': String(64 * 1024 * 1024),
      'num.network.threads': '2',
      'num.io.threads': '2',
      'background.threads': '2',
      'log.cleaner.enable': 'false',
    };
    writeFileSync(this.propertiesPath, Object.entries(properties).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
    writeFileSync(
      join(this.dataDir, 'log4j.properties'),
      [
        'log4j.rootLogger=WARN, file',
        'log4j.appender.file=org.apache.log4j.FileAppender',
        `log4j.appender.file.File=${join(this.dataDir, 'broker.log')}`,
        'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
      ].join('\n') + '\n',
    );
  }

  private javaArgs(mainClass: string, args: string[]): string[] {
    return [
      '-Xms128m',
      '-Xmx512m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Djava.awt.headless=true',
      `-Dlog4j.configuration=file:${join(this.dataDir, 'log4j.properties')}`,
      '-cp',
      `${LIBS}/*`,
      mainClass,
      ...args,
    ];
  }

  private async format(): Promise<void> {
    // A Kafka cluster id is 16 random bytes in URL-safe base64 without padding.
    const clusterId = randomBytes(16).toString('base64url');
    // `--cluster-id=<id>`, not `-t <id>`: an id starting with '-' (1 in 64) would be read as an option.
    const child = spawn('java', this.javaArgs('kafka.tools.StorageTool', ['format', `--cluster-id=${clusterId}`, `--config=${this.propertiesPath}`]), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((done, fail) => {
      child.once('error', fail);
      child.once('exit', done);
    });
    if (code !== 0) throw new Error(`kafka storage format failed (exit ${code}): ${output.slice(-2000)}`);
  }

  private async launch(): Promise<void> {
    this.output = '';
    const child = spawn('java', this.javaArgs('kafka.Kafka', [this.propertiesPath]), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-8000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let spawnError: Error | undefined;
    child.once('error', (error) => (spawnError = error));
    const kafka = new Kafka({ clientId: 'test-infra', brokers: this.brokers, logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 1000 });
    try {
      await waitFor(
        async () => {
          if (spawnError) throw spawnError;
          if (!this.running) throw new Error(`the Kafka broker exited (${child.exitCode ?? child.signalCode}): ${this.output}`);
          const admin = kafka.admin();
          try {
            await admin.connect();
            // Listing topics proves the broker answers metadata requests and the controller has a leader.
            await admin.listTopics();
            const cluster = await admin.describeCluster();
            return cluster.brokers.length > 0 && cluster.controller !== null;
          } catch {
            return false;
          } finally {
            await admin.disconnect().catch(() => undefined);
          }
        },
        { timeoutMs: this.startTimeoutMs, intervalMs: 250, what: `Kafka broker on 127.0.0.1:${this.port}` },
      );
    } catch (error) {
      await this.stop();
      throw error;
    }
  }
}
