/**
 * The live part's services, started in order: a real Kafka broker, the daemon in this process, a
 * watcher on the topics the daemon publishes to, and the hospital simulator. Each one registers
 * its stop with the run's cleanups as soon as it is up.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { resolveConfig, augmentationSpecOf, type Config } from '../config/index.js';
import { Daemon } from '../daemon/daemon.js';
import { probeBrokers } from '../daemon/kafka-client.js';
import type { Task } from '../data/task.js';
import { acquireBroker, type AcquiredBroker } from '../kafka/broker-source.js';
import { parseLabelingRequest, parseModelVersion, type ModelVersionMessage } from '../messages/index.js';
import { createLogger, type Logger } from '../observability/logger.js';
import type { VersionReport } from '../simulate/report.js';
import { startSimulator, type Simulator } from '../simulate/simulator.js';
import { Cleanups } from '../support/cleanups.js';
import { brokerUnavailable, brokerUnreachable, daemonFailed } from './errors.js';
import { throwIfInterrupted, type DemoContext, type DemoOptions } from './options.js';
import type { ProgressLine } from './progress.js';

const DEFAULT_HTTP_PORT = 9464;
const CLEANUP_STEP_TIMEOUT_MS = 30_000;

/** What the live part starts, to stop it all afterwards: the cleanups and the log files. */
export class LiveResources {
  readonly cleanups = new Cleanups(CLEANUP_STEP_TIMEOUT_MS);
  private readonly files: WriteStream[] = [];

  constructor(private readonly runDir: string) {}

  /** A log file in the run directory, closed by {@link stopAll}. */
  openLog(name: string): WriteStream {
    const file = createWriteStream(path.join(this.runDir, name));
    this.files.push(file);
    return file;
  }

  /** Stops everything in reverse order (simulator, watcher, daemon, broker), then closes the logs. */
  async stopAll(ui: ProgressLine): Promise<void> {
    if (this.cleanups.size > 0) ui.log('Stopping the simulator, the daemon and the broker...');
    await this.cleanups.runAll((line) => ui.log(`while stopping: ${line}`));
    await Promise.all(this.files.map((f) => new Promise((resolve) => f.end(resolve))));
  }
}

/** The evaluation AUC as the console shows it. */
export function auc(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(3);
}

/** Short names for the versions (v1, v2, ... in the order first seen), for the console. */
export function versionNamer(): (version: string) => string {
  const names = new Map<string, string>();
  return (version) => {
    if (!names.has(version)) names.set(version, `v${names.size + 1}`);
    return names.get(version)!;
  };
}

/**
 * Acquires a broker (KAFKA_BROKERS, else Testcontainers, else the embedded one; its output in
 * broker.log) and checks that it answers, so that a dead one fails in seconds.
 */
export async function startBroker(ctx: DemoContext, res: LiveResources): Promise<AcquiredBroker> {
  const brokerLog = res.openLog('broker.log');
  ctx.ui.log('Starting a Kafka broker (KAFKA_BROKERS, else a Docker engine, else the embedded broker)...');
  let broker: AcquiredBroker;
  try {
    broker = await acquireBroker({
      log: (line) => brokerLog.write(`${line}\n`),
      embedded: { log: (line) => brokerLog.write(`${line}\n`) },
    });
  } catch (error) {
    throw brokerUnavailable(error);
  }
  res.cleanups.add('stopping the Kafka broker', () => broker.stop());
  ctx.ui.log(`Kafka: ${brokerKindText(broker)} at ${broker.brokers.join(',')}`);
  await checkReachable(broker);
  ctx.phases.end('broker');
  throwIfInterrupted(ctx.signal);
  return broker;
}

function brokerKindText(broker: AcquiredBroker): string {
  switch (broker.kind) {
    case 'env':
      return 'your brokers (KAFKA_BROKERS)';
    case 'testcontainers':
      return 'a Kafka container (Testcontainers)';
    case 'embedded':
      return 'an embedded Kafka 3.9 broker (a JVM from Maven Central jars)';
  }
}

/** Fails fast (seconds, not the daemon's minutes of retries) when the brokers do not answer. */
async function checkReachable(broker: AcquiredBroker): Promise<void> {
  try {
    await probeBrokers({ clientId: 'acft-demo-check', brokers: broker.brokers });
  } catch (error) {
    throw brokerUnreachable(error, broker.brokers, broker.kind === 'env');
  }
}

/** The /metrics port: the one asked for, else 9464 when free, else any free port (0). */
export async function metricsPort(o: DemoOptions): Promise<number> {
  return o.httpPort ?? ((await portFree(DEFAULT_HTTP_PORT)) ? DEFAULT_HTTP_PORT : 0);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The daemon's configuration: this run's topics (prefixed with the run id) and the demo's settings. */
export function demoConfig(
  o: DemoOptions,
  runId: string,
  runDir: string,
  brokers: string[],
  port: number,
): Config {
  const topic = (name: string) => `${runId}.${name}`;
  return resolveConfig({
    env: {},
    overrides: {
      kafka: {
        brokers,
        clientId: runId,
        groupId: `${runId}-daemon`,
        topics: {
          candidates: topic('candidates'),
          feedback: topic('feedback'),
          labelingRequests: topic('labeling-requests'),
          modelVersions: topic('model-versions'),
          deadLetter: topic('dead-letter'),
          coordination: topic('coordination'),
        },
      },
      selection: { b: o.b, seed: o.seed },
      scoring: { m: o.m },
      training: { epochs: o.epochs, seed: o.seed },
      model: { storeDir: path.join(runDir, 'models'), ...(o.m0 !== undefined ? { m0Path: o.m0 } : {}) },
      state: { checkpointDir: path.join(runDir, 'state') },
      http: { port },
      log: { level: 'info' },
      backend: o.backend,
    },
  });
}

/** This run's id (the prefix of its topics and client ids), its brokers and the daemon's configuration. */
export interface LiveSetup {
  runId: string;
  brokers: string[];
  config: Config;
}

/** The daemon, up, and what the demo reads from it. */
export interface RunningDaemon {
  daemon: Daemon;
  metricsUrl: string | null;
  /** The error the daemon stopped on, if it did. */
  fatal: () => Error | undefined;
}

/**
 * Starts the acft daemon in this process (its scoring and training in worker threads); a start
 * that fails says what to check (the port, M0, the brokers).
 */
export async function startDaemon(
  ctx: DemoContext,
  res: LiveResources,
  { brokers, config }: LiveSetup,
  port: number,
): Promise<RunningDaemon> {
  const { o, ui } = ctx;
  // The daemon's JSON log lines go to a file; errors are also shown.
  const logger = daemonLogger(ui, res.openLog('daemon.log.jsonl'));
  let fatal: Error | undefined;
  ui.log(`Starting the acft daemon (b ${o.b}, m ${o.m}, ${o.epochs} epochs per window)...`);
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ config, logger, onFatal: (error) => (fatal = error) });
  } catch (error) {
    throw daemonFailed(error, { port, m0Path: config.model.m0Path, brokers });
  }
  res.cleanups.add('stopping the daemon', () => daemon.close());
  const metricsUrl = daemon.status().httpUrl === null ? null : `${daemon.status().httpUrl}/metrics`;
  ui.log(`Daemon up: metrics at ${metricsUrl ?? 'n/a'}, state and logs in ${ctx.runDir}`);
  ctx.phases.end('daemon start');
  throwIfInterrupted(ctx.signal);
  return { daemon, metricsUrl, fatal: () => fatal };
}

/** The daemon's JSON log lines go to `file`; its errors are also shown. */
function daemonLogger(ui: ProgressLine, file: WriteStream): Logger {
  return createLogger({
    level: 'info',
    destination: {
      write: (line: string) => {
        file.write(line);
        if (line.includes('"level":"error"') || line.includes('"level":"fatal"')) {
          try {
            const { msg, event } = JSON.parse(line) as { msg?: string; event?: string };
            ui.log(`daemon: ${msg ?? 'error'}${event ? ` (${event})` : ''}`);
          } catch {
            // not JSON: leave it in the file
          }
        }
      },
    },
  });
}

/** What the watcher collects from the daemon's topics. */
export interface Watched {
  /** Candidates the daemon asked about, with their true class. */
  requested: Map<string, number>;
  /** The versions the daemon published, each once, in order. */
  messages: ModelVersionMessage[];
}

/**
 * Watches what the daemon publishes, from the beginning of both topics: the requests (for the
 * class share and the gallery) and versions (for the report). Each version is named on arrival.
 */
export async function startWatcher(
  res: LiveResources,
  { runId, brokers, config }: LiveSetup,
  task: Task,
  nameOf: (version: string) => string,
): Promise<Watched> {
  const topics = config.kafka.topics;
  const poolLabel = new Map(task.pool.ids.map((id, i) => [id, task.pool.labels[i]!]));
  const watched: Watched = { requested: new Map(), messages: [] };
  const kafka = new Kafka({ clientId: `${runId}-watch`, brokers, logLevel: logLevel.NOTHING });
  const watcher: Consumer = kafka.consumer({ groupId: `${runId}-watch`, maxWaitTimeInMs: 250 });
  await watcher.connect();
  res.cleanups.add('stopping the watcher', () => watcher.disconnect());
  await watcher.subscribe({ topics: [topics.labelingRequests, topics.modelVersions], fromBeginning: true });
  await watcher.run({
    eachMessage: ({ topic, message }) => {
      if (topic === topics.modelVersions) {
        const parsed = parseModelVersion(message.value);
        if (parsed.ok && !watched.messages.some((m) => m.version === parsed.value.version)) {
          nameOf(parsed.value.version);
          watched.messages.push(parsed.value);
        }
      } else {
        const parsed = parseLabelingRequest(message.value, { numClasses: task.numClasses });
        const label = parsed.ok ? poolLabel.get(parsed.value.candidateId) : undefined;
        if (parsed.ok && label !== undefined) watched.requested.set(parsed.value.candidateId, label);
      }
      return Promise.resolve();
    },
  });
  return watched;
}

/** The simulator, running, and its report on each version it has seen. */
export interface RunningSimulator {
  sim: Simulator;
  reports: Map<string, VersionReport>;
}

/**
 * Starts the hospital simulator: it streams the candidates, answers the labeling requests as an
 * oracle radiologist would, and measures every promoted version on a fixed evaluation set.
 */
export async function startSim(
  ctx: DemoContext,
  res: LiveResources,
  { runId, brokers, config }: LiveSetup,
  task: Task,
  nameOf: (version: string) => string,
): Promise<RunningSimulator> {
  const { o, ui } = ctx;
  const topics = config.kafka.topics;
  const simLog = res.openLog('simulator.log');
  const reports = new Map<string, VersionReport>();
  ui.log(
    `Starting the hospital simulator: ${o.candidates} candidates at ${o.rate}/s, answers after ${o.answerDelayMs} ms, evaluation on ${o.evalSize} held-apart candidates...`,
  );
  const sim: Simulator = await startSimulator({
    kafka: {
      brokers,
      clientId: `${runId}-simulator`,
      topics: {
        candidates: topics.candidates,
        feedback: topics.feedback,
        labelingRequests: topics.labelingRequests,
        modelVersions: topics.modelVersions,
      },
    },
    groupId: `${runId}-simulator`,
    task,
    seed: o.seed,
    ratePerSecond: o.rate,
    total: o.candidates,
    augmentation: augmentationSpecOf(config.scoring),
    patchSeed: config.scoring.patchSeed,
    answerDelayMs: o.answerDelayMs,
    evaluate: true,
    evalSize: o.evalSize,
    backend: o.backend,
    versionsFromBeginning: true,
    log: (line) => simLog.write(`${new Date().toISOString()} ${line}\n`),
    onVersion: (r) => {
      reports.set(r.version, r);
      ui.log(versionLine(r, nameOf));
    },
  });
  res.cleanups.add('stopping the simulator', () => sim.stop());
  ctx.phases.end('simulator start');
  return { sim, reports };
}

/** The console line for a version the simulator has seen: its status and both AUCs. */
function versionLine(r: VersionReport, nameOf: (version: string) => string): string {
  const measured =
    r.evaluation.kind === 'evaluated'
      ? `evaluation AUC ${auc(r.evaluation.auc)}`
      : r.evaluation.kind === 'skipped'
        ? `not measured live (${r.evaluation.why})`
        : `not measured (${r.evaluation.error})`;
  return `${nameOf(r.version)} ${r.status} after ${r.labels} labels: holdout AUC ${auc(r.holdoutAuc)}, ${measured}`;
}
