/**
 * What the phases of the daemon benchmark (scripts/bench-daemon.ts) share: the options, the run's
 * context (Kafka client, log tap, clean-ups, abort), the settings of a phase's daemon, and the
 * producer, simulator and clean-up steps every phase takes.
 */
import type { WriteStream } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { resolveConfig, type BackendChoice, type Config, type ConfigInput } from '../../src/config/index.js';
import type { Task } from '../../src/data/task.js';
import { startSimulator, type Simulator } from '../../src/simulate/simulator.js';
import { LogTap } from './log-tap.js';
import { exposeGc, type Cleanups, type RssSampler } from './support.js';

/** The command line, resolved. */
export interface BenchOptions {
  candidates: number;
  rate: number;
  b: number;
  out: string;
  seed: number;
  windows: number;
  windowPool: number;
  answerDelayMs: number;
  backend: BackendChoice;
  /** Extra daemon settings of every phase (e.g. the fine-tuning depth, the scoring workers). */
  daemon?: { scoring?: ConfigInput['scoring']; training?: ConfigInput['training'] };
  backlog: boolean;
  /** Candidates sent one at a time into the full pool (0: none). */
  probe: number;
  probeIntervalMs: number;
  timeoutS: number;
}

/** What every phase shares. */
export interface BenchContext {
  options: BenchOptions;
  brokers: string[];
  /** Prefix of every topic, group and directory of this run. */
  runId: string;
  workDir: string;
  task: Task;
  kafka: Kafka;
  logs: LogTap;
  cleanups: Cleanups;
  signal: AbortSignal;
  rss: RssSampler;
  gc: () => void;
  progress: (line: string) => void;
  onFatal: (error: Error) => void;
}

/**
 * The context of a run's phases on `brokers`: a Kafka client of its own (quiet, patient retries),
 * the daemons' log tap on `logFile`, and `abort` for a daemon's fatal error.
 */
export function benchContext(
  parts: Omit<BenchContext, 'kafka' | 'logs' | 'signal' | 'gc' | 'onFatal'> & {
    logFile: WriteStream;
    abort: AbortController;
  },
): BenchContext {
  const { logFile, abort, ...rest } = parts;
  return {
    ...rest,
    kafka: new Kafka({
      clientId: `${parts.runId}-bench`,
      brokers: parts.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 8, initialRetryTime: 300 },
    }),
    logs: new LogTap(logFile),
    signal: abort.signal,
    gc: exposeGc(),
    onFatal: (e) => abort.abort(e),
  };
}

/**
 * Runs a phase's `body`, then the clean-ups it added (whatever it started), whether it failed or
 * not; those of earlier phases stay.
 */
export async function withCleanups<T>(ctx: BenchContext, body: () => Promise<T>): Promise<T> {
  const mark = ctx.cleanups.size;
  try {
    return await body();
  } finally {
    await ctx.cleanups.runFrom(mark, ctx.progress);
  }
}

/** The settings of `phase`'s daemon: topics, group and directories of its own. */
export function daemonConfig(
  ctx: BenchContext,
  phase: string,
  pool: { maxCandidates: number; maxBytes: number },
  b: number,
  training: ConfigInput['training'] = {},
): Config {
  const name = `${ctx.runId}-${phase}`;
  const topic = (t: string) => `${name}.${t}`;
  return resolveConfig({
    // Only what is set here: ACFT_* variables of the shell do not change the benchmark.
    env: {},
    overrides: {
      kafka: {
        brokers: ctx.brokers,
        groupId: `${name}-daemon`,
        clientId: name,
        topics: {
          candidates: topic('candidates'),
          feedback: topic('feedback'),
          labelingRequests: topic('requests'),
          modelVersions: topic('versions'),
          deadLetter: topic('dead'),
          coordination: topic('coord'),
        },
      },
      pool,
      selection: { b, seed: ctx.options.seed },
      scoring: { ...ctx.options.daemon?.scoring },
      training: { ...ctx.options.daemon?.training, ...training, seed: ctx.options.seed },
      model: { storeDir: path.join(ctx.workDir, phase, 'models') },
      state: { checkpointDir: path.join(ctx.workDir, phase, 'state') },
      http: { port: 0 },
      log: { level: 'info' },
      backend: ctx.options.backend,
    },
  });
}

/**
 * Pool bounds with room for `count` candidates of the benchmark's images. A candidate is ~1.4 kB
 * as the pool counts it (784 B of pixels): the byte bound stays far away.
 */
export function roomFor(count: number): { maxCandidates: number; maxBytes: number } {
  return { maxCandidates: count, maxBytes: Math.max(256 << 20, count * 16_384) };
}

/** A connected producer of the benchmark's own, disconnected by the phase's clean-up. */
export async function connectedProducer(ctx: BenchContext, what: string): Promise<Producer> {
  const producer = ctx.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  ctx.cleanups.add(`disconnecting the ${what} producer`, () => producer.disconnect());
  return producer;
}

/**
 * Starts the simulator of `phase` on `config`'s topics: `total` candidates at --rate, each labeling
 * request answered after `answerDelayMs`; its group and client id are the phase's own.
 */
export function startPhaseSimulator(
  ctx: BenchContext,
  phase: string,
  config: Config,
  total: number,
  answerDelayMs: number,
): Promise<Simulator> {
  return startSimulator({
    kafka: { brokers: ctx.brokers, clientId: `${ctx.runId}-${phase}-sim`, topics: config.kafka.topics },
    groupId: `${ctx.runId}-${phase}-sim`,
    task: ctx.task,
    seed: ctx.options.seed,
    ratePerSecond: ctx.options.rate,
    total,
    answerDelayMs,
    evaluate: false,
    log: (line) => ctx.progress(`[${phase}] simulator: ${line}`),
  });
}
