/**
 * The daemon benchmark: `acft run` and `acft simulate` in one process on a real Kafka broker,
 * measuring what the closing note of the streaming-daemon issue reports.
 *
 *   npm run bench:daemon -- [--candidates 10000] [--rate 2000] [--b 25] [--seed 1]
 *       [--out bench-output/daemon.json] [--windows 3] [--window-pool 500] [--answer-delay-ms 200]
 *       [--backend auto] [--skip-backlog] [--probe 200] [--probe-interval-ms 50] [--timeout 1800]
 *   (`-- --help` lists them)
 *
 * The broker comes from acquireBroker() (KAFKA_BROKERS, else Testcontainers, else the embedded
 * JVM broker). Every phase uses topics, a consumer group and state directories of its own; the
 * daemons run in this process (their scoring and training run in worker threads):
 *
 * 1. pool: the simulator streams --candidates candidates at --rate/s into a daemon whose pool holds
 *    exactly that many (requests are never answered, so no window runs): ingest rate, scoring
 *    latency of a new candidate (exact, from a tap on the daemon's histogram, and as Prometheus'
 *    histogram_quantile would give it), bytes per pooled candidate (the pool's accounting and
 *    measured memory deltas), peak RSS. Then a promoted model version (a stored copy of the served
 *    model under a new id) is published, and the full-pool rescore it starts is timed. Last, --probe
 *    new candidates are sent one at a time into the full pool: the latency of a new candidate when
 *    nothing queues before it (the stream at --rate may saturate scoring; both are reported).
 * 2. backlog (unless --skip-backlog): the same number of candidates produced before a fresh daemon
 *    starts; the rate at which it drains them is its ingest capacity. Then as many again: the
 *    memory growth from N to 2N pooled candidates is the marginal cost of a candidate.
 * 3. windows: a daemon with a pool of --window-pool and b = --b, the simulator answering each
 *    request after --answer-delay-ms; the time from the b-th label to each of --windows model versions.
 *
 * Writes every figure with its unit and method to --out (JSON; partial, with the error, when a
 * phase fails), the daemons' log lines beside it (<out>.log.jsonl), and prints a short summary.
 * Ctrl-C stops cleanly (a second one exits at once); everything started is stopped in any case.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BACKEND_CHOICES, type BackendChoice } from '../src/config/index.js';
import { loadFashionMnist } from '../src/data/image-set.js';
import { buildTask, type Task } from '../src/data/task.js';
import { acquireBroker } from '../src/kafka/broker-source.js';
import { DEFAULT_TASK_SPEC } from '../src/simulate/simulator.js';
import {
  backlogPhase,
  benchContext,
  poolPhase,
  windowsPhase,
  type BenchContext,
  type BenchOptions,
} from './bench-daemon/phases.js';
import { headline, summary, type Results } from './bench-daemon/report.js';
import { Cleanups, RssSampler } from './bench-daemon/support.js';
import { choiceOption, intOption, numberOption } from '../src/cli/options.js';
import { Command, parseCommandLine, type Parsed } from './args.js';

function program(): Command {
  return new Command('npm run bench:daemon --')
    .description(
      "The daemon benchmark on a real broker: ingest, scoring latency, memory and the full-pool rescore (pool phase); the ingest capacity on a backlog; the time from the b-th label to a published version (windows). Writes JSON with every figure's unit and method.",
    )
    .option(
      '--candidates <n>',
      'candidates streamed, and the pool size of the ingest/rescore phase',
      intOption('--candidates', 2),
      10_000,
    )
    .option(
      '--rate <r>',
      'candidates per second the simulator offers',
      numberOption('--rate', Number.MIN_VALUE),
      2000,
    )
    .option('--b <b>', 'labels per fine-tuning window', intOption('--b', 1), 25)
    .option(
      '--seed <s>',
      'seed of the task, the stream order, selection and training',
      intOption('--seed', 0),
      1,
    )
    .option(
      '--out <file>',
      "JSON report; the daemon logs go to FILE's .log.jsonl",
      path.join('bench-output', 'daemon.json'),
    )
    .option('--windows <w>', 'fine-tuning windows to time', intOption('--windows', 1), 3)
    .option('--window-pool <p>', 'pool size of the windows phase', intOption('--window-pool', 1), 500)
    .option(
      '--answer-delay-ms <d>',
      "the simulated radiologist's delay in the windows phase",
      intOption('--answer-delay-ms', 0),
      200,
    )
    .option(
      '--backend <name>',
      BACKEND_CHOICES.join(', '),
      choiceOption('--backend', BACKEND_CHOICES),
      'auto',
    )
    .option('--skip-backlog', 'skip the ingest-capacity (backlog) phase')
    .option(
      '--probe <n>',
      'new candidates sent one at a time into the full pool (0: none)',
      intOption('--probe', 0),
      200,
    )
    .option(
      '--probe-interval-ms <ms>',
      'least time between two probe candidates',
      intOption('--probe-interval-ms', 0),
      50,
    )
    .option('--timeout <s>', 'longest wait for any one step, in seconds', intOption('--timeout', 1), 1800);
}

function parseOptions(argv: string[]): Parsed<BenchOptions> {
  const cmd = program();
  return parseCommandLine(cmd, argv, (v) => {
    const options: BenchOptions = {
      candidates: v['candidates'] as number,
      rate: v['rate'] as number,
      b: v['b'] as number,
      seed: v['seed'] as number,
      out: v['out'] as string,
      windows: v['windows'] as number,
      windowPool: v['windowPool'] as number,
      answerDelayMs: v['answerDelayMs'] as number,
      backend: v['backend'] as BackendChoice,
      backlog: v['skipBacklog'] !== true,
      probe: v['probe'] as number,
      probeIntervalMs: v['probeIntervalMs'] as number,
      timeoutS: v['timeout'] as number,
    };
    if (options.windowPool < options.b) {
      cmd.error(`--window-pool (${options.windowPool}) must be at least --b (${options.b})`, { exitCode: 2 });
    }
    return options;
  });
}

function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryBytes: os.totalmem(),
    freeMemoryBytesAtStart: os.freemem(),
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
  };
}

/** A progress line on stderr, with the seconds since `t0`. */
function progressLog(t0: number): (line: string) => void {
  return (line) => {
    process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  };
}

/** Ctrl-C (or SIGTERM) aborts the run, which then cleans up; a second one exits at once. */
function abortOnSignals(abort: AbortController, progress: (line: string) => void): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (abort.signal.aborted) {
      process.stderr.write(`${signal} again: exiting without cleaning up\n`);
      process.exit(130);
    }
    progress(`${signal}: stopping (again to exit at once)`);
    abort.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** What the report says of the run before it starts: the command, options, seeds, machine. */
function reportBase(options: BenchOptions, started: Date, logPath: string) {
  return {
    benchmark: 'acft daemon: acft run + acft simulate in one process on a real Kafka broker',
    command: ['npx tsx scripts/bench-daemon.ts', ...process.argv.slice(2)],
    startedAt: started.toISOString(),
    options,
    seeds: {
      simulator: options.seed,
      'selection.seed': options.seed,
      'training.seed': options.seed,
      task: options.seed,
      note: 'the simulator seed sets the task subsampling, the stream order and the oracle; scoring.patchSeed keeps its default (see config)',
    },
    machine: machine(),
    node: { version: process.version, v8: process.versions.v8 },
    logFile: logPath,
  };
}

/** What a run found: the phases' results, the broker and task it ran on, the error that ended it. */
interface RunState {
  results: Results;
  broker: { kind: string; brokers: string[] } | null;
  task: { name: string; poolSize: number } | null;
  error?: string;
}

/** What the phases run with, besides the broker and the task. */
interface RunSetup {
  options: BenchOptions;
  runId: string;
  outPath: string;
  logPath: string;
  cleanups: Cleanups;
  abort: AbortController;
  rss: RssSampler;
  progress: (line: string) => void;
}

/** Loads the task (Fashion-MNIST, --seed) and checks that its pool holds every candidate needed. */
async function loadTask(setup: RunSetup, state: RunState): Promise<Task> {
  const { options } = setup;
  setup.progress('loading Fashion-MNIST');
  const set = await loadFashionMnist();
  const fashion = buildTask(set, { ...DEFAULT_TASK_SPEC, seed: options.seed });
  state.task = { name: fashion.name, poolSize: fashion.pool.ids.length };
  const needed = Math.max(options.candidates + options.probe, options.windowPool);
  if (fashion.pool.ids.length < needed) {
    throw new Error(`the task's pool holds ${fashion.pool.ids.length} candidates, fewer than ${needed}`);
  }
  return fashion;
}

/** A real Kafka broker (see acquireBroker), stopped by the clean-ups; returns its addresses. */
async function acquire(setup: RunSetup, state: RunState): Promise<string[]> {
  const acquired = await acquireBroker({ log: setup.progress });
  setup.cleanups.add('stopping the broker', () => acquired.stop());
  state.broker = { kind: acquired.kind, brokers: acquired.brokers };
  return acquired.brokers;
}

/**
 * Sets the run up (the log file, a work directory, the task, the broker) and runs the phases; what
 * they find goes into `state` as it comes. Everything started is left to `setup.cleanups`.
 */
async function runPhases(setup: RunSetup, state: RunState): Promise<void> {
  const { options, runId, cleanups, abort, rss, progress } = setup;
  await mkdir(path.dirname(setup.outPath), { recursive: true });
  const file = createWriteStream(setup.logPath);
  cleanups.add('closing the log file', () => new Promise<void>((resolve) => file.end(resolve)));
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'acft-bench-daemon-'));
  cleanups.add('removing the work directory', () => rm(workDir, { recursive: true, force: true }));
  const task = await loadTask(setup, state);
  const brokers = await acquire(setup, state);
  const ctx = benchContext({
    options,
    brokers,
    runId,
    workDir,
    task,
    logFile: file,
    cleanups,
    abort,
    rss,
    progress,
  });
  await measure(ctx, state.results);
}

/** The phases in order; each one's report goes into `results` as soon as it has one. */
async function measure(ctx: BenchContext, results: Results): Promise<void> {
  await poolPhase(ctx, (report) => (results.pool = report));
  if (ctx.options.backlog) await backlogPhase(ctx, (report) => (results.backlog = report));
  results.windows = await windowsPhase(ctx);
}

/** Writes the JSON report (complete, or partial with the error) and prints the summary. */
async function writeReport(
  base: ReturnType<typeof reportBase>,
  state: RunState,
  outPath: string,
  peak: number,
  t0: number,
): Promise<void> {
  const { results, error } = state;
  const report = {
    ...base,
    complete: error === undefined,
    ...(error !== undefined ? { error } : {}),
    finishedAt: new Date().toISOString(),
    wallSeconds: Math.round(performance.now() - t0) / 1000,
    loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    broker: state.broker,
    task: state.task,
    headline: headline(results, peak),
    results,
  };
  await writeFile(outPath, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(
    `acft daemon benchmark${error === undefined ? '' : ' (INCOMPLETE)'}: ${base.machine.cpus} x ${base.machine.cpuModel}, Node ${process.version}\n${summary(results, peak)}\nwrote ${path.relative(process.cwd(), outPath)}\n`,
  );
}

async function main(): Promise<number> {
  const parsed = parseOptions(process.argv.slice(2));
  if (!parsed.ok) return parsed.exitCode;
  const options = parsed.options;
  const started = new Date();
  const t0 = performance.now();
  const progress = progressLog(t0);
  const abort = new AbortController();
  abortOnSignals(abort, progress);

  const cleanups = new Cleanups();
  const rss = new RssSampler(100);
  const runId = `bench-${Date.now().toString(36)}-${process.pid}`;
  const outPath = path.resolve(options.out);
  const logPath = outPath.replace(/\.json$/i, '') + '.log.jsonl';
  const base = reportBase(options, started, logPath);
  const state: RunState = { results: {}, broker: null, task: null };
  try {
    await runPhases({ options, runId, outPath, logPath, cleanups, abort, rss, progress }, state);
  } catch (e) {
    state.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    progress(`failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await cleanups.runFrom(0, progress);
    rss.stop();
  }

  const peak = Math.max(rss.peakBytes, process.resourceUsage().maxRSS * 1024);
  await writeReport(base, state, outPath, peak, t0);
  return state.error === undefined ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
