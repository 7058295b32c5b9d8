/**
 * A Kafka broker a fault test owns: the embedded broker (src/kafka/embedded-broker.ts) on a fixed
 * port, controller port and data directory, so that it can be stopped (SIGTERM or SIGKILL) and
 * started again exactly as it was: clients see the same address, and the topics, messages and
 * committed offsets are still there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/kafka/embedded-broker.js';

export class OwnedBroker {
  private broker?: EmbeddedBroker;
  private port?: number;
  private controllerPort?: number;
  private dataDir?: string;
  private root?: string;

  get brokers(): string[] {
    return [`127.0.0.1:${this.port}`];
  }

  async start(): Promise<void> {
    this.root ??= await mkdtemp(path.join(os.tmpdir(), 'acft-owned-kafka-'));
    this.dataDir ??= path.join(this.root, 'data');
    const log =
      process.env['KAFKA_TEST_LOG'] === '1'
        ? (l: string) => process.stderr.write(`[kafka] ${l}\n`)
        : undefined;
    // The old JVM's sockets may linger a moment: retry the bind for a while.
    for (let attempt = 1; ; attempt++) {
      try {
        this.broker = await startEmbeddedBroker({
          dataDir: this.dataDir,
          ...(this.port !== undefined ? { port: this.port, controllerPort: this.controllerPort } : {}),
          ...(log ? { log } : {}),
        });
        break;
      } catch (error) {
        if (attempt >= 10 || this.port === undefined) throw error;
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    this.port = this.broker.port;
    this.controllerPort = this.broker.controllerPort;
  }

  /** Stops the broker with `signal` (SIGTERM: a clean shutdown; SIGKILL: a crash); data is kept. */
  async stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const broker = this.broker;
    if (!broker) return;
    this.broker = undefined;
    broker.kill(signal);
    await broker.exited;
    await broker.stop();
  }

  async cleanup(): Promise<void> {
    await this.stop('SIGKILL');
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }
}
