/**
 * The phases of the daemon benchmark (scripts/bench-daemon.ts), each on topics, a consumer group
 * and state directories of its own, with an in-process daemon (its scoring and training run in
 * worker threads) and the simulator or a plain producer on the other side:
 *
 * - pool: the simulator streams N candidates at a set rate into a daemon whose pool holds N;
 *   ingest rate, scoring latency of new candidates, bytes per pooled candidate. Then, with the
 *   pool full, a promoted model version (a stored copy of the served model under a new id) is
 *   published and the full-pool rescore it starts is timed; then new candidates are sent one at a
 *   time into the full pool (their latency with nothing queued before them).
 * - backlog: N candidates produced before a fresh daemon starts; the rate at which it drains them
 *   (its ingest capacity, with scoring running alongside); then N more, for the marginal memory
 *   of a pooled candidate.
 * - windows: a small daemon and the simulator answering requests after a short delay; the time
 *   from the b-th trainable label to the model version of each window.
 */
import type { WriteStream } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { Counter, Histogram, Registry } from 'prom-client';
import { resolveConfig, type BackendChoice, type Config, type ConfigInput } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { initialModel } from '../../src/daemon/initial-model.js';
import type { Task } from '../../src/data/task.js';
import {
  encodeCandidate,
  encodeModelVersion,
  parseFeedback,
  parseModelVersion,
  type ModelVersionMessage,
} from '../../src/messages/index.js';
import { ModelStore } from '../../src/model/model-store.js';
import { buildCandidate, streamOrder } from '../../src/simulate/candidates.js';
import { ensureTopics } from '../../src/simulate/kafka-client.js';
import type { SimulatorStats } from '../../src/simulate/report.js';
import { startSimulator, type Simulator } from '../../src/simulate/simulator.js';
import {
  bucketDelta,
  bucketsForJson,
  figure,
  histogramBuckets,
  histogramQuantile,
  median,
  round,
  Series,
  cpuSpan,
  sampleCpu,
  settledMemory,
  summarize,
  tapCounter,
  tapHistogram,
  waitUntil,
  exposeGc,
  LogTap,
  type Cleanups,
  type CpuSample,
  type CpuSpan,
  type DurationSummary,
  type Figure,
  type LogEvent,
  type RssSampler,
} from './support.js';

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

/** Answers to labeling requests are this late in the pool phase: none comes, so no window runs. */
const NO_ANSWER_DELAY_MS = 3_600_000;
const SAMPLE_INTERVAL_MS = 100;
const MAX_TIMELINE_SAMPLES = 3000;

const s = (ms: number): number => round(ms / 1000);

// ---- a daemon with taps ----------------------------------------------------------------------------

interface Instrumented {
  daemon: Daemon;
  config: Config;
  phase: string;
  /** performance.now() of each candidate ingested (validated and handed to the pool). */
  ingestAt: Series;
  /** performance.now() of the daemon's group join (its 'partitions-assigned' log line): intake starts. */
  joinedAt: number;
  /** performance.now() of each candidate's first score. */
  scoredAt: Series;
  /** Each candidate's scoring latency (arrival in the pool to first score) as the daemon observed it, in s. */
  latencies: Series;
  latencyHistogram: Histogram;
  /** CPU at the group join, and when the ingest counter reached `cpuMark` (see {@link startDaemon}). */
  cpuAtJoin: CpuSample | undefined;
  cpuAtMark: CpuSample | undefined;
}

function daemonConfig(
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
 * Starts a daemon with taps on its ingest counter and scoring-latency histogram. They are set
 * before any message is consumed: `Daemon.start` creates the metrics (on the registry given)
 * synchronously, before its first await.
 */
async function startDaemon(
  ctx: BenchContext,
  phase: string,
  config: Config,
  expected: number,
  cpuMark = Infinity,
): Promise<Instrumented> {
  const registry = new Registry();
  // Listening before the start: the CPU sample is taken as the join is logged. A failed start stops
  // the wait (else its timer would keep the process up).
  let cpuAtJoin: CpuSample | undefined;
  const startFailed = new AbortController();
  const joinSignal = AbortSignal.any([ctx.signal, startFailed.signal]);
  const joining = ctx.logs.next(
    `the ${phase} daemon to join its consumer group`,
    (e) => {
      const join = e.phase === phase && e.event === 'partitions-assigned';
      if (join) cpuAtJoin ??= sampleCpu();
      return join;
    },
    ctx.options.timeoutS * 1000,
    joinSignal,
  );
  joining.catch(() => undefined);
  const starting = Daemon.start({
    config,
    logger: ctx.logs.logger(phase),
    registry,
    onFatal: ctx.onFatal,
    observe: ctx.logs.observe(phase),
  });
  const ingested = registry.getSingleMetric('acft_candidates_ingested_total');
  const latency = registry.getSingleMetric('acft_scoring_latency_seconds');
  if (!(ingested instanceof Counter) || !(latency instanceof Histogram)) {
    startFailed.abort();
    await starting.then((d) => d.close()).catch(() => undefined);
    throw new Error('the daemon did not register its metrics on the registry given');
  }
  const run: Omit<Instrumented, 'daemon' | 'joinedAt' | 'cpuAtJoin'> = {
    config,
    phase,
    cpuAtMark: undefined,
    // Preallocated (typed arrays, before any memory baseline), so that recording adds nothing per candidate.
    ingestAt: new Series(expected),
    scoredAt: new Series(expected),
    latencies: new Series(expected),
    latencyHistogram: latency,
  };
  tapCounter(ingested, (by) => {
    const now = performance.now();
    for (let i = 0; i < by; i++) run.ingestAt.push(now);
    if (run.cpuAtMark === undefined && run.ingestAt.length >= cpuMark) run.cpuAtMark = sampleCpu();
  });
  tapHistogram(latency, (value) => {
    run.scoredAt.push(performance.now());
    run.latencies.push(value);
  });
  const daemon = await starting.catch((error: unknown) => {
    startFailed.abort(error);
    throw error;
  });
  ctx.cleanups.add(`closing the ${phase} daemon`, () => daemon.close());
  const joined = await joining;
  // The same object the taps write to (cpuAtMark is set later).
  return Object.assign(run, { daemon, joinedAt: joined.at, cpuAtJoin });
}

/** At least n candidates ingested and scored; throws when the daemon reports a lost scoring batch. */
function allScored(ctx: BenchContext, run: Instrumented, n: number): boolean {
  const failed = ctx.logs.firstError(run.phase, ['scoring-failed', 'consumer-crash']);
  if (failed !== undefined)
    throw new Error(`the ${run.phase} daemon logged '${failed.event}': ${failed.message}`);
  return run.ingestAt.length >= n && run.scoredAt.length >= n;
}

async function backendOf(d: Daemon): Promise<string | null> {
  const { values } = await d.metrics.backendInfo.get();
  const on = values.find((v) => v.value === 1);
  return typeof on?.labels.backend === 'string' ? on.labels.backend : null;
}

/** Count and sum of an unlabeled histogram. */
async function histogramTotals(h: Histogram): Promise<{ count: number; sum: number }> {
  const { values } = await h.get();
  const of = (suffix: string) => values.find((v) => v.metricName?.endsWith(suffix) === true)?.value ?? 0;
  return { count: of('_count'), sum: of('_sum') };
}

async function counterValue(c: Counter): Promise<number> {
  return (await c.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/** Errors and warnings the daemon logged in a phase, by event. */
function problems(ctx: BenchContext, phase: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of ctx.logs.of(phase)) {
    if (e.level !== 'error' && e.level !== 'fatal' && e.level !== 'warn') continue;
    out[e.event] = (out[e.event] ?? 0) + 1;
  }
  return out;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return round((d.user + d.system) / 1e6, 3);
}

// ---- timeline of a phase -----------------------------------------------------------------------------

interface TimelineSample {
  /** Seconds since the timeline started. */
  t: number;
  ingested: number;
  scored: number;
  pool: number;
  paused: boolean;
  rssBytes: number;
}

/**
 * Samples the counters every 100 ms (the ingest counter as Prometheus would scrape it, more often).
 * Past MAX_TIMELINE_SAMPLES, every other sample is dropped and the interval doubles.
 */
function startTimeline(ctx: BenchContext, run: Instrumented, t0: number) {
  let samples: TimelineSample[] = [];
  let stride = 1;
  let tick = 0;
  const sample = () => {
    if (samples.length >= MAX_TIMELINE_SAMPLES) {
      samples = samples.filter((_, i) => i % 2 === 0);
      stride *= 2;
    }
    const st = run.daemon.status();
    samples.push({
      t: s(performance.now() - t0),
      ingested: run.ingestAt.length,
      scored: run.scoredAt.length,
      pool: st.pool,
      paused: st.paused,
      rssBytes: ctx.rss.sample(),
    });
  };
  sample();
  const timer = setInterval(() => {
    if (++tick % stride === 0) sample();
  }, SAMPLE_INTERVAL_MS);
  return {
    get samples(): TimelineSample[] {
      return samples;
    },
    stop: () => {
      clearInterval(timer);
      sample();
    },
  };
}

/** Ingest rate from the sampled counter: from the first sample above 0 to the first at `total`. */
function sampledRate(samples: readonly TimelineSample[], total: number): number | null {
  const first = samples.find((x) => x.ingested > 0);
  const last = samples.find((x) => x.ingested >= total);
  if (first === undefined || last === undefined || last.t <= first.t) return null;
  return (last.ingested - first.ingested) / (last.t - first.t);
}

/**
 * `count` / the time from the group join to the count-th event, per second: the drain rate of a
 * backlog, fetches included (the bare consumer's is measured the same way).
 */
function rateFromJoin(times: Series, joinedAt: number, count: number): number | null {
  if (count < 1 || times.length < count) return null;
  const span = times.at(count - 1)! - joinedAt;
  return span > 0 ? (count * 1000) / span : null;
}

/** (count - 1) / the time from the first to the count-th event, per second. */
function exactRate(times: Series, count: number): number | null {
  if (count < 2 || times.length < count) return null;
  const span = times.at(count - 1)! - times.at(0)!;
  return span > 0 ? ((count - 1) * 1000) / span : null;
}

/**
 * Pauses of candidate intake by backpressure (the daemon's 'paused' / 'resumed' log lines) that
 * began before `until`, and the seconds of them that fall between `from` and `until`.
 */
function pausedSeconds(
  ctx: BenchContext,
  phase: string,
  from: number,
  until: number,
): { count: number; seconds: number } {
  let since: number | null = null;
  let total = 0;
  let count = 0;
  const add = (a: number, b: number) => {
    total += Math.max(0, Math.min(b, until) - Math.max(a, from));
  };
  for (const e of ctx.logs.of(phase)) {
    if (e.at > until) break;
    if (e.event === 'paused' && since === null) {
      since = e.at;
      count++;
    } else if (e.event === 'resumed' && since !== null) {
      add(since, e.at);
      since = null;
    }
  }
  if (since !== null) add(since, until);
  return { count, seconds: s(total) };
}

// ---- pool phase: ingest, latency, bytes, then the full-pool rescore ----------------------------------

export interface MemoryReport {
  pool: number;
  poolBytes: number;
  bytesPerCandidate: {
    accounted: Figure;
    heapPlusExternal: Figure;
    arrayBuffers: Figure;
    rss: Figure;
  };
  emptyDaemon: NodeJS.MemoryUsage;
  fullPool: NodeJS.MemoryUsage;
  method: string;
}

export interface PoolPhaseReport {
  config: Config;
  backend: string | null;
  offered: { candidatesSent: number; streamSeconds: number; rate: Figure };
  ingest: {
    candidates: number;
    rate: Figure;
    rateSampled: Figure;
    firstToLastIngestSeconds: Figure;
    allPooledAndScoredSeconds: Figure;
    streamStartToAllScoredSeconds: Figure;
    backpressure: { pauses: number; pausedSeconds: number };
    deadLettered: number;
    microBatches: {
      count: number;
      meanCandidates: number | null;
      meanSeconds: number | null;
      method: string;
    };
    scoringThroughput: Figure;
  };
  scoringLatency: {
    p50: Figure;
    p99: Figure;
    histogramP50: Figure;
    histogramP99: Figure;
    exact: DurationSummary;
    firstObservedSeconds: number | null;
    histogramBuckets: { le: number | '+Inf'; count: number }[];
    note: string;
  };
  memory: MemoryReport;
  /** Null until (or unless) the rescore is done. */
  rescore: RescoreReport | null;
  /** Null without a probe, or until it is done. */
  probe: ProbeReport | null;
  peakRssBytes: { ingest: number; rescore: number | null };
  cpuSeconds: { ingest: number; rescore: number | null };
  simulator: SimulatorStats;
  timeline: TimelineSample[];
  problems: Record<string, number>;
}

export interface RescoreReport {
  version: string;
  servedBefore: string;
  candidates: number;
  m: number;
  patches: number;
  seconds: Figure;
  publishToServedSeconds: Figure;
  publishToRescoredSeconds: Figure;
  candidatesPerSecond: Figure;
  patchesPerSecond: Figure;
}

/**
 * Runs the pool phase. `publish` receives the report as soon as the ingest figures are in (the
 * rescore and the probe fill it in afterwards), so that a later failure does not lose them.
 */
export async function poolPhase(
  ctx: BenchContext,
  publish: (report: PoolPhaseReport) => void,
): Promise<void> {
  const { options } = ctx;
  const n = options.candidates;
  const phase = 'pool';
  const mark = ctx.cleanups.size;
  try {
    // A candidate is ~1.4 kB as the pool counts it (784 B of pixels): the byte bound stays far away.
    const config = daemonConfig(
      ctx,
      phase,
      { maxCandidates: n, maxBytes: Math.max(256 << 20, n * 16_384) },
      options.b,
    );
    ctx.progress(`[pool] starting a daemon (pool ${n}, b ${options.b}, m ${config.scoring.m})`);
    const run = await startDaemon(ctx, phase, config, n + options.probe);
    const backend = await backendOf(run.daemon);
    ctx.progress(`[pool] backend ${backend ?? 'unknown'}`);

    const emptyDaemon = await settledMemory(ctx.gc);
    ctx.rss.takeSpanPeak();
    const cpu0 = process.cpuUsage();

    ctx.progress(`[pool] streaming ${n} candidates at ${options.rate}/s through the simulator (no answers)`);
    // Held through `held` only, so that once stopped the simulator can be collected before the memory count.
    const held: { sim?: Simulator } = {};
    held.sim = await startSimulator({
      kafka: { brokers: ctx.brokers, clientId: `${ctx.runId}-${phase}-sim`, topics: config.kafka.topics },
      groupId: `${ctx.runId}-${phase}-sim`,
      task: ctx.task,
      seed: options.seed,
      ratePerSecond: options.rate,
      total: n,
      answerDelayMs: NO_ANSWER_DELAY_MS,
      evaluate: false,
      log: (line) => ctx.progress(`[pool] simulator: ${line}`),
    });
    ctx.cleanups.add('stopping the pool simulator', () => held.sim?.stop() ?? Promise.resolve());
    const t0 = performance.now();
    const timeline = startTimeline(ctx, run, t0);
    const planned = held.sim.stats().candidatesPlanned;
    if (planned < n) throw new Error(`the simulator can stream only ${planned} candidates, not ${n}`);
    const timeoutMs = options.timeoutS * 1000;
    const report = setInterval(
      () => ctx.progress(`[pool]   ingested ${run.ingestAt.length}/${n}, scored ${run.scoredAt.length}`),
      5000,
    );
    try {
      await waitUntil(
        'every candidate to be ingested and scored',
        () => allScored(ctx, run, n),
        timeoutMs,
        ctx.signal,
      );
    } finally {
      clearInterval(report);
      timeline.stop();
    }
    await held.sim.streamed;
    await held.sim.stop();
    const simStats = held.sim.stats();
    delete held.sim;
    const ingestCpu = cpuSeconds(cpu0);
    const ingestPeak = ctx.rss.takeSpanPeak();

    // Let requests go out and the simulator's garbage go, then measure the full pool.
    await sleep(1000);
    const fullPool = await settledMemory(ctx.gc);
    const status = run.daemon.status();
    const batches = await histogramTotals(run.daemon.metrics.scoringBatch);
    const deadLettered = await counterValue(run.daemon.metrics.deadLettered);

    const firstIngest = run.ingestAt.at(0)!;
    const lastIngest = run.ingestAt.at(n - 1)!;
    const lastScored = run.scoredAt.at(n - 1)!;
    const buckets = await histogramBuckets(run.latencyHistogram);
    const exact = summarize(run.latencies.toArray());
    const paused = pausedSeconds(ctx, phase, firstIngest, lastIngest);
    // Before the probe adds candidates to the series.
    const ingestRate = exactRate(run.ingestAt, n);
    const ingestRateSampled = sampledRate(timeline.samples, n);
    const perCandidate = (bytes: number) => (status.pool > 0 ? round(bytes / status.pool, 1) : null);
    const memDelta = (k: keyof NodeJS.MemoryUsage) => fullPool[k] - emptyDaemon[k];

    const memory: MemoryReport = {
      pool: status.pool,
      poolBytes: status.poolBytes,
      bytesPerCandidate: {
        accounted: figure(
          perCandidate(status.poolBytes),
          'bytes',
          "status().poolBytes / status().pool: the pool's own accounting (pixel bytes + a fixed 600 B bookkeeping estimate + 2 B per id character)",
        ),
        heapPlusExternal: figure(
          perCandidate(memDelta('heapUsed') + memDelta('external')),
          'bytes',
          'process.memoryUsage() (heapUsed + external) of the full pool minus that of the empty daemon, each after 3 forced full GCs, divided by the pool size; main thread only (worker heaps excluded), includes everything else that grew (e.g. Kafka client buffers)',
        ),
        arrayBuffers: figure(
          perCandidate(memDelta('arrayBuffers')),
          'bytes',
          'process.memoryUsage().arrayBuffers delta (the typed arrays holding pixels) divided by the pool size; same GC protocol',
        ),
        rss: figure(
          perCandidate(memDelta('rss')),
          'bytes',
          'resident set size delta divided by the pool size; whole process (worker threads included) and noisy: freed memory is not returned to the OS at once, and worker and allocator growth is counted too',
        ),
      },
      emptyDaemon,
      fullPool,
      method:
        'emptyDaemon: after the daemon started and joined its group, before the first candidate (Fashion-MNIST already loaded); fullPool: after every candidate was scored and the simulator stopped, 1 s later',
    };

    ctx.progress(
      `[pool] pool full (${status.pool}); publishing a promoted copy of ${status.servedVersion ?? '?'}`,
    );
    const simOffered = simStats.streamMs > 0 ? (simStats.candidatesSent * 1000) / simStats.streamMs : null;

    const result: PoolPhaseReport = {
      config,
      backend,
      offered: {
        candidatesSent: simStats.candidatesSent,
        streamSeconds: s(simStats.streamMs),
        rate: figure(
          simOffered === null ? null : round(simOffered, 2),
          'candidates/s',
          "the simulator's candidates sent / its streaming time (the offered load)",
        ),
      },
      ingest: {
        candidates: n,
        rate: figure(
          ingestRate === null ? null : round(ingestRate, 2),
          'candidates/s',
          '(N - 1) / (time of the last - time of the first increment of acft_candidates_ingested_total), timed by a tap on the counter; bounded by the offered rate when the daemon keeps up (see backlog for capacity)',
        ),
        rateSampled: figure(
          ingestRateSampled === null ? null : round(ingestRateSampled, 2),
          'candidates/s',
          'acft_candidates_ingested_total sampled every 100 ms: delta from the first sample above 0 to the first sample at N, over the time between them',
        ),
        firstToLastIngestSeconds: figure(
          s(lastIngest - firstIngest),
          's',
          'first to last ingest (counter tap)',
        ),
        allPooledAndScoredSeconds: figure(
          s(lastScored - firstIngest),
          's',
          "first candidate ingested to the last candidate's first score",
        ),
        streamStartToAllScoredSeconds: figure(
          s(lastScored - t0),
          's',
          "the simulator's stream start (startSimulator resolved) to the last candidate's first score",
        ),
        backpressure: { pauses: paused.count, pausedSeconds: paused.seconds },
        deadLettered,
        microBatches: {
          count: batches.count,
          meanCandidates: batches.count > 0 ? round(n / batches.count, 2) : null,
          meanSeconds: batches.count > 0 ? round(batches.sum / batches.count) : null,
          method:
            'acft_scoring_batch_seconds count and sum while the stream was scored (one observation per micro-batch); meanCandidates = N / count',
        },
        scoringThroughput: figure(
          lastScored > firstIngest ? round((n * 1000) / (lastScored - firstIngest), 2) : null,
          'candidates/s',
          "N / (first ingest -> last candidate's first score): at most the offered rate; clearly below it, scoring fell behind the stream and the latency at this load is mostly queueing (compare backlog.scoringThroughput and the one-at-a-time probe)",
        ),
      },
      scoringLatency: {
        p50: figure(
          exact.p50,
          's',
          'exact: every value the daemon observed into acft_scoring_latency_seconds (admission to the pool -> first score, micro-batch wait and worker round trip included) recorded by a tap; linear interpolation between closest ranks',
        ),
        p99: figure(exact.p99, 's', 'exact, as p50'),
        histogramP50: figure(
          round(histogramQuantile(0.5, buckets) ?? NaN),
          's',
          "histogram_quantile(0.5, acft_scoring_latency_seconds_bucket): Prometheus' bucket interpolation",
        ),
        histogramP99: figure(
          round(histogramQuantile(0.99, buckets) ?? NaN),
          's',
          "histogram_quantile(0.99, acft_scoring_latency_seconds_bucket): Prometheus' bucket interpolation",
        ),
        exact,
        firstObservedSeconds: run.latencies.at(0) ?? null,
        histogramBuckets: bucketsForJson(buckets),
        note: 'Latency starts when the consumed candidate enters the pool; the broker hop (produce -> fetch, at most the 250 ms fetch wait) is not included.',
      },
      memory,
      rescore: null,
      probe: null,
      peakRssBytes: { ingest: ingestPeak, rescore: null },
      cpuSeconds: { ingest: ingestCpu, rescore: null },
      simulator: simStats,
      timeline: timeline.samples,
      problems: problems(ctx, phase),
    };
    publish(result);

    result.rescore = await rescorePhase(ctx, run);
    result.peakRssBytes.rescore = ctx.rss.takeSpanPeak();
    result.cpuSeconds.rescore = round(cpuSeconds(cpu0) - ingestCpu, 3);
    result.probe = await probePhase(ctx, run, n);
    result.problems = problems(ctx, phase);
  } finally {
    await ctx.cleanups.runFrom(mark, ctx.progress);
  }
}

/**
 * Publishes a promoted model version whose artifact is a stored copy of the served model (same
 * weights: same cost) under a new id; the daemon serves it and rescores its whole pool.
 */
async function rescorePhase(ctx: BenchContext, run: Instrumented): Promise<RescoreReport> {
  const { config, daemon, phase } = run;
  const served = daemon.status().servedVersion;
  const m0 = await initialModel(config.model.m0Path, config.limits.numClasses, config.training.seed);
  if (served === null || m0.version !== served) {
    throw new Error(`the daemon serves ${served ?? 'nothing'}, expected ${m0.version}`);
  }
  const version = `${ctx.runId}-rescore`;
  const store = new ModelStore(config.model.storeDir);
  const createdAt = new Date().toISOString();
  const stored = await store.saveArtifact(m0.artifact, {
    version,
    parent: served,
    createdAt,
    info: {
      status: 'promoted',
      m0: m0.version,
      strategy: 'ACFT(HQ)',
      note: 'benchmark: a copy of the served model',
    },
  });
  const message: Omit<ModelVersionMessage, 'schema'> = {
    version,
    parent: served,
    // Of the served M0's lineage: a daemon serves no other.
    m0: m0.version,
    strategy: 'ACFT(HQ)',
    status: 'promoted',
    counts: { q: 0, h: 0, labeled: 0, holdout: 0 },
    trainedOn: [],
    metrics: { holdoutAuc: null, parentHoldoutAuc: null },
    artifact: { location: stored.dir, sha256: stored.sha256 },
    windowStartedAt: createdAt,
    time: createdAt,
  };
  const producer = await connectedProducer(ctx, 'rescore');
  const patchesBefore = await counterValue(daemon.metrics.patchesScored);
  const timeoutMs = ctx.options.timeoutS * 1000;
  const sent = performance.now();
  await producer.send({
    topic: config.kafka.topics.modelVersions,
    acks: -1,
    messages: [{ key: version, value: encodeModelVersion(message) }],
  });
  const refused = ctx.logs
    .next(
      'a refusal',
      (e) => e.phase === phase && e.event === 'model-refused' && e.fields['version'] === version,
      timeoutMs,
      ctx.signal,
    )
    .then((e) =>
      Promise.reject(new Error(`the daemon refused the version: ${JSON.stringify(e.fields['err'])}`)),
    );
  refused.catch(() => undefined);
  const serving = await Promise.race([
    ctx.logs.next(
      `the daemon to serve ${version}`,
      (e) => e.phase === phase && e.event === 'serving' && e.fields['version'] === version,
      timeoutMs,
      ctx.signal,
    ),
    refused,
  ]);
  ctx.progress(`[pool] serving ${version} after ${s(serving.at - sent)} s; rescoring`);
  const rescored = await ctx.logs.next(
    `the daemon to rescore its pool with ${version}`,
    (e) => e.phase === phase && e.event === 'rescored' && e.fields['version'] === version,
    timeoutMs,
    ctx.signal,
  );
  const patches = (await counterValue(daemon.metrics.patchesScored)) - patchesBefore;
  const candidates = Number(rescored.fields['candidates']);
  const seconds = Number(rescored.fields['seconds']);
  return {
    version,
    servedBefore: served,
    candidates,
    m: config.scoring.m,
    patches,
    seconds: figure(
      round(seconds),
      's',
      "the daemon's own 'rescored' log line: start to end of the full-pool rescore (the same span acft_rescore_duration_seconds observes)",
    ),
    publishToServedSeconds: figure(
      s(serving.at - sent),
      's',
      "model-version message sent -> the daemon's 'serving' log line (consume, load and sha256 check, model sent to the scoring worker)",
    ),
    publishToRescoredSeconds: figure(s(rescored.at - sent), 's', "message sent -> 'rescored' log line"),
    candidatesPerSecond: figure(
      seconds > 0 ? round(candidates / seconds, 2) : null,
      'candidates/s',
      "candidates of the 'rescored' line / its seconds",
    ),
    patchesPerSecond: figure(
      seconds > 0 ? round(patches / seconds, 2) : null,
      'patches/s',
      'increase of acft_patches_scored_total during the rescore (m patches per image candidate, nothing else scored meanwhile) / seconds',
    ),
  };
}

export interface ProbeReport {
  candidates: number;
  intervalMs: number;
  p50: Figure;
  p99: Figure;
  histogramP50: Figure;
  histogramP99: Figure;
  endToEndP50: Figure;
  endToEndP99: Figure;
  exact: DurationSummary;
  endToEnd: DurationSummary;
  method: string;
}

/**
 * New candidates one at a time into the full pool, each sent once the previous one is scored and
 * at least `probeIntervalMs` after it was sent: the scoring latency of a new candidate when
 * nothing queues before it (the stream at --rate may saturate scoring).
 */
async function probePhase(ctx: BenchContext, run: Instrumented, n: number): Promise<ProbeReport | null> {
  const { probe: count, probeIntervalMs: intervalMs, timeoutS } = ctx.options;
  if (count === 0) return null;
  ctx.progress(`[pool] probe: ${count} new candidates one at a time into the full pool`);
  const producer = await connectedProducer(ctx, 'probe');
  const positions = streamOrder(ctx.task.pool, ctx.options.seed).slice(n, n + count);
  const bucketsBefore = await histogramBuckets(run.latencyHistogram);
  const firstIndex = run.latencies.length;
  const endToEnd: number[] = [];
  for (const position of positions) {
    const c = buildCandidate(ctx.task, ctx.task.pool, position);
    const value = encodeCandidate(c);
    const scoredBefore = run.scoredAt.length;
    const sent = performance.now();
    await producer.send({
      topic: run.config.kafka.topics.candidates,
      acks: -1,
      messages: [{ key: c.id, value }],
    });
    await waitUntil(
      `probe candidate ${c.id} to be scored`,
      () => allScored(ctx, run, scoredBefore + 1),
      timeoutS * 1000,
      ctx.signal,
      1,
    );
    endToEnd.push((run.scoredAt.at(-1)! - sent) / 1000);
    const rest = sent + intervalMs - performance.now();
    if (rest > 0) await sleep(rest);
  }
  const latencies: number[] = [];
  for (let i = firstIndex; i < run.latencies.length; i++) latencies.push(run.latencies.at(i)!);
  const buckets = bucketDelta(await histogramBuckets(run.latencyHistogram), bucketsBefore);
  const exact = summarize(latencies);
  const e2e = summarize(endToEnd);
  return {
    candidates: latencies.length,
    intervalMs,
    p50: figure(
      exact.p50,
      's',
      'exact, as the daemon observes acft_scoring_latency_seconds (admission to the pool -> first score; 1 ms resolution), one candidate in flight at a time',
    ),
    p99: figure(exact.p99, 's', 'exact, as p50'),
    histogramP50: figure(
      round(histogramQuantile(0.5, buckets) ?? NaN),
      's',
      'histogram_quantile(0.5) over the bucket increase during the probe',
    ),
    histogramP99: figure(
      round(histogramQuantile(0.99, buckets) ?? NaN),
      's',
      'histogram_quantile(0.99) over the bucket increase during the probe',
    ),
    endToEndP50: figure(
      e2e.p50,
      's',
      "end to end: before the producer's send (acks all) -> the daemon records the first score (tap); broker hop, fetch, validation, micro-batch wait and scoring included",
    ),
    endToEndP99: figure(e2e.p99, 's', 'end to end, as endToEndP50'),
    exact,
    endToEnd: e2e,
    method:
      'after the rescore, with the pool full (each probe candidate evicts one), candidates the stream did not send are produced one at a time: each once the previous is scored and at least intervalMs after the previous send',
  };
}

async function connectedProducer(ctx: BenchContext, what: string): Promise<Producer> {
  const producer = ctx.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  ctx.cleanups.add(`disconnecting the ${what} producer`, () => producer.disconnect());
  return producer;
}

// ---- backlog phase: ingest capacity --------------------------------------------------------------

export interface BacklogPhaseReport {
  candidates: number;
  produceSeconds: number;
  rate: Figure;
  rateFirstToLast: Figure;
  rateSampled: Figure;
  firstToLastIngestSeconds: Figure;
  allScoredSeconds: Figure;
  scoringThroughput: Figure;
  backpressure: { pauses: number; pausedSeconds: number };
  deadLettered: number;
  peakRssBytes: number;
  cpuSeconds: number;
  /** The main thread's and the process's CPU from the group join to the N-th candidate (Linux). */
  intakeCpu: CpuSpan | null;
  /** Null until (or unless) the marginal-memory step is done. */
  marginalMemory: MarginalMemoryReport | null;
  timeline: TimelineSample[];
  problems: Record<string, number>;
}

/** Candidates of the task at `positions`, ids suffixed by `suffix`, produced in batches of 500. */
/** Pool bounds with room for `count` candidates of the benchmark's images. */
function roomFor(count: number): { maxCandidates: number; maxBytes: number } {
  return { maxCandidates: count, maxBytes: Math.max(256 << 20, count * 16_384) };
}

/** One candidate to produce: an image of the pool and the suffix that makes its id unique. */
interface Produced {
  position: number;
  suffix: string;
}

/**
 * The first n candidates of the seeded stream order. Past the end of the pool the order starts
 * again with the same images under new ids (`.r1`, `.r2`, ...), so any n can be produced.
 */
function backlogItems(ctx: BenchContext, n: number, suffix = ''): Produced[] {
  const order = streamOrder(ctx.task.pool, ctx.options.seed);
  return Array.from({ length: n }, (_, i) => {
    const round = Math.floor(i / order.length);
    return { position: order[i % order.length]!, suffix: `${suffix}${round > 0 ? `.r${round}` : ''}` };
  });
}

async function produceCandidates(
  ctx: BenchContext,
  producer: Producer,
  topic: string,
  items: readonly Produced[],
): Promise<void> {
  for (let at = 0; at < items.length; at += 500) {
    const messages = items.slice(at, at + 500).map(({ position, suffix }) => {
      const built = buildCandidate(ctx.task, ctx.task.pool, position);
      const c = { ...built, id: `${built.id}${suffix}` };
      return { key: c.id, value: encodeCandidate(c) };
    });
    await producer.send({ topic, acks: -1, messages });
  }
}

export interface MarginalMemoryReport {
  poolBefore: number;
  poolAfter: number;
  bytesPerCandidate: {
    accounted: Figure;
    heapPlusExternal: Figure;
    arrayBuffers: Figure;
    rss: Figure;
  };
  before: NodeJS.MemoryUsage;
  after: NodeJS.MemoryUsage;
  method: string;
}

/**
 * Bytes per pooled candidate as a slope: memory with N candidates pooled and scored, then with 2N
 * (the same images again under new ids), each after forced full GCs. Fixed costs that grow once
 * (compiled code, client buffers) cancel out, which the empty -> full delta of the pool phase
 * cannot do at small N.
 */
async function marginalMemory(
  ctx: BenchContext,
  run: Instrumented,
  producer: Producer,
  n: number,
): Promise<MarginalMemoryReport> {
  await sleep(1000);
  const before = await settledMemory(ctx.gc);
  const st1 = run.daemon.status();
  ctx.progress(`[backlog] ${n} more candidates (the same images, new ids) for the marginal memory`);
  await produceCandidates(ctx, producer, run.config.kafka.topics.candidates, backlogItems(ctx, n, '.m'));
  await waitUntil(
    'the second half to be ingested and scored',
    () => allScored(ctx, run, 2 * n),
    ctx.options.timeoutS * 1000,
    ctx.signal,
  );
  await sleep(1000);
  const after = await settledMemory(ctx.gc);
  const st2 = run.daemon.status();
  const added = st2.pool - st1.pool;
  const per = (bytes: number) => (added > 0 ? round(bytes / added, 1) : null);
  const delta = (k: keyof NodeJS.MemoryUsage) => after[k] - before[k];
  return {
    poolBefore: st1.pool,
    poolAfter: st2.pool,
    bytesPerCandidate: {
      accounted: figure(
        per(st2.poolBytes - st1.poolBytes),
        'bytes',
        "increase of status().poolBytes (the pool's own accounting) / candidates added",
      ),
      heapPlusExternal: figure(
        per(delta('heapUsed') + delta('external')),
        'bytes',
        'increase of heapUsed + external (main thread) from N to 2N pooled and scored candidates, each after 3 forced full GCs, / candidates added: the marginal cost',
      ),
      arrayBuffers: figure(
        per(delta('arrayBuffers')),
        'bytes',
        'increase of arrayBuffers / candidates added',
      ),
      rss: figure(
        per(delta('rss')),
        'bytes',
        'increase of the resident set size / candidates added (whole process; allocator noise)',
      ),
    },
    before,
    after,
    method:
      'a daemon with room for 2N holds the N backlog candidates, all scored; N more (the same images under new ids) are produced and scored; memory is read 1 s after each, after forced full GCs',
  };
}

/** Runs the backlog phase; `publish` receives the report before the marginal-memory step fills it in. */
export async function backlogPhase(
  ctx: BenchContext,
  publish: (report: BacklogPhaseReport) => void,
): Promise<void> {
  const { options } = ctx;
  const n = options.candidates;
  const phase = 'backlog';
  const mark = ctx.cleanups.size;
  try {
    // Room for 2N: the backpressure watermark (0.9 of the bound, unscored candidates) is never reached,
    // so what is measured is the intake itself, with scoring running alongside.
    const base = daemonConfig(ctx, phase, roomFor(2 * n), options.b);
    // No checkpoint during the phase: one is due every 30 s, the phase lasts about a minute, and a
    // snapshot of the pool in flight as memory is read counts as pool memory (one run read 5,042
    // bytes per candidate where the others read about 1,880).
    const config: Config = { ...base, state: { ...base.state, checkpointIntervalMs: 24 * 3_600_000 } };
    await ensureTopics(ctx.kafka, config.kafka.topics, true);
    const producer = await connectedProducer(ctx, 'backlog');
    ctx.progress(`[backlog] producing ${n} candidates before the daemon starts`);
    const p0 = performance.now();
    await produceCandidates(ctx, producer, config.kafka.topics.candidates, backlogItems(ctx, n));
    const produceSeconds = s(performance.now() - p0);
    // Each daemon and each bare consumer starts on a collected heap: garbage left by what ran before
    // would be collected during (and charged to) the next measurement.
    await settledMemory(ctx.gc);
    ctx.rss.takeSpanPeak();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    ctx.progress(`[backlog] starting a daemon on the backlog`);
    const run = await startDaemon(ctx, phase, config, 2 * n, n);
    const timeline = startTimeline(ctx, run, t0);
    const report = setInterval(
      () => ctx.progress(`[backlog]   ingested ${run.ingestAt.length}/${n}, scored ${run.scoredAt.length}`),
      5000,
    );
    try {
      await waitUntil(
        'the backlog to be ingested and scored',
        () => allScored(ctx, run, n),
        options.timeoutS * 1000,
        ctx.signal,
      );
    } finally {
      clearInterval(report);
      timeline.stop();
    }
    const first = run.ingestAt.at(0)!;
    const lastScored = run.scoredAt.at(n - 1)!;
    const rate = rateFromJoin(run.ingestAt, run.joinedAt, n);
    const firstToLast = exactRate(run.ingestAt, n);
    const sampled = sampledRate(timeline.samples, n);
    const paused = pausedSeconds(ctx, phase, first, run.ingestAt.at(n - 1)!);
    const deadLettered = await counterValue(run.daemon.metrics.deadLettered);
    const peakRssBytes = ctx.rss.takeSpanPeak();
    const cpu = cpuSeconds(cpu0);
    const result: BacklogPhaseReport = {
      candidates: n,
      produceSeconds,
      rate: figure(
        rate === null ? null : round(rate, 2),
        'candidates/s',
        "N / (the daemon's group join -> N-th increment of acft_candidates_ingested_total) while a daemon with room for 2N drains N candidates produced before it started: every fetch included (scoring runs alongside; paused time, if any, included)",
      ),
      rateFirstToLast: figure(
        firstToLast === null ? null : round(firstToLast, 2),
        'candidates/s',
        '(N - 1) / (first -> N-th increment of the ingest counter): the fetch of the first batch left out',
      ),
      rateSampled: figure(
        sampled === null ? null : round(sampled, 2),
        'candidates/s',
        'the ingest counter sampled every 100 ms, first sample above 0 to the first at N',
      ),
      firstToLastIngestSeconds: figure(s(run.ingestAt.at(n - 1)! - first), 's', 'first to last ingest'),
      allScoredSeconds: figure(
        s(lastScored - first),
        's',
        "first ingest to the last candidate's first score",
      ),
      scoringThroughput: figure(
        lastScored > first ? round((n * 1000) / (lastScored - first), 2) : null,
        'candidates/s',
        'N / (first ingest -> last first score): new-candidate scoring capacity',
      ),
      backpressure: { pauses: paused.count, pausedSeconds: paused.seconds },
      deadLettered,
      peakRssBytes,
      cpuSeconds: cpu,
      intakeCpu: cpuSpan(run.cpuAtJoin, run.cpuAtMark, n),
      marginalMemory: null,
      timeline: timeline.samples,
      problems: problems(ctx, phase),
    };
    publish(result);
    result.marginalMemory = await marginalMemory(ctx, run, producer, n);
    result.problems = problems(ctx, phase);
  } finally {
    await ctx.cleanups.runFrom(mark, ctx.progress);
  }
}

/** The settings of the ingest rounds' daemons (room for 2n candidates), for measurements beside them. */
export function ingestRoundConfig(ctx: BenchContext, n: number): Config {
  return daemonConfig(ctx, 'intake-alone', roomFor(2 * n), ctx.options.b);
}

/**
 * One more measurement of the ingest rate: a fresh daemon (its own group, state and other topics)
 * drains the `n` candidates already on `candidatesTopic` (the backlog phase's) into a pool with
 * room for 2n, and stops once the n-th is ingested. Scoring runs alongside, as in the backlog
 * phase. The rate is measured the same way: n / (group join -> n-th increment of the ingest
 * counter). It starts on a collected heap, as the bare consumer rounds do.
 */
export async function ingestRoundPhase(
  ctx: BenchContext,
  candidatesTopic: string,
  n: number,
  roundNo: number,
): Promise<{ rate: number | null; deadLettered: number; cpu: CpuSpan | null }> {
  const phase = `ingest-r${roundNo}`;
  const mark = ctx.cleanups.size;
  try {
    const base = daemonConfig(ctx, phase, roomFor(2 * n), ctx.options.b);
    const config: Config = {
      ...base,
      kafka: { ...base.kafka, topics: { ...base.kafka.topics, candidates: candidatesTopic } },
    };
    await ensureTopics(ctx.kafka, config.kafka.topics, true);
    await settledMemory(ctx.gc);
    const run = await startDaemon(ctx, phase, config, 2 * n, n);
    await waitUntil(
      `round ${roundNo} of the ingest rate`,
      () => run.ingestAt.length >= n,
      ctx.options.timeoutS * 1000,
      ctx.signal,
    );
    const rate = rateFromJoin(run.ingestAt, run.joinedAt, n);
    return {
      rate: rate === null ? null : round(rate, 2),
      deadLettered: await counterValue(run.daemon.metrics.deadLettered),
      cpu: cpuSpan(run.cpuAtJoin, run.cpuAtMark, n),
    };
  } finally {
    await ctx.cleanups.runFrom(mark, ctx.progress);
  }
}

// ---- windows phase: b-th label -> model version ------------------------------------------------------

export interface WindowSample {
  index: number;
  version: string;
  status: string;
  trigger: string | null;
  q: number;
  h: number;
  /** |Q| as identified here (trainedOn minus earlier windows' Q); equals q when the bookkeeping agrees. */
  qIdentified: number;
  bthLabelSentAt: string;
  windowStartedAt: string;
  publishedAt: string;
  receivedAt: string;
  servedAt: string | null;
  seconds: {
    bthLabelToVersionReceived: number;
    bthLabelToServed: number | null;
    bthLabelToWindowStart: number;
    windowStartToPublished: number;
    windowLogSeconds: number | null;
    publishedToReceived: number;
  };
  holdoutAuc: number | null;
  parentHoldoutAuc: number | null;
}

export interface WindowsPhaseReport {
  config: Config;
  backend: string | null;
  answerDelayMs: number;
  windows: WindowSample[];
  bthLabelToVersion: { median: Figure; medianPromoted: Figure; samples: number[] };
  bthLabelToServed: { median: Figure; samples: number[] };
  peakRssBytes: number;
  cpuSeconds: number;
  simulator: SimulatorStats;
  problems: Record<string, number>;
  method: string;
}

/**
 * Times `options.windows` fine-tuning windows. `variant` runs it again under another phase name
 * (its own topics, group and directories) with other training settings, e.g. another strategy.
 */
export async function windowsPhase(
  ctx: BenchContext,
  variant: { phase: string; training: ConfigInput['training'] } = { phase: 'windows', training: {} },
): Promise<WindowsPhaseReport> {
  const { options } = ctx;
  const phase = variant.phase;
  const mark = ctx.cleanups.size;
  try {
    const poolSize = options.windowPool;
    const config = daemonConfig(
      ctx,
      phase,
      { maxCandidates: poolSize, maxBytes: 256 << 20 },
      options.b,
      variant.training,
    );
    ctx.progress(
      `[${phase}] starting a daemon (pool ${poolSize}, b ${options.b}, strategy ${config.training.strategy}, ${config.training.epochs} epochs)`,
    );
    const run = await startDaemon(ctx, phase, config, poolSize);
    const backend = await backendOf(run.daemon);
    const topics = config.kafka.topics;
    ctx.rss.takeSpanPeak();
    const cpu0 = process.cpuUsage();

    // Every label's send time (Kafka CreateTime, set by the simulator's producer) and every version.
    const labelSentAt = new Map<string, number>();
    const versions: { msg: ModelVersionMessage; receivedAt: number }[] = [];
    const watcher = ctx.kafka.consumer({ groupId: `${ctx.runId}-${phase}-watch`, maxWaitTimeInMs: 50 });
    await watcher.connect();
    ctx.cleanups.add('disconnecting the watcher', () => watcher.disconnect());
    await watcher.subscribe({ topics: [topics.feedback, topics.modelVersions], fromBeginning: true });
    await watcher.run({
      eachMessage: ({ topic, message }) => {
        const receivedAt = Date.now();
        if (topic === topics.modelVersions) {
          const p = parseModelVersion(message.value);
          if (p.ok) versions.push({ msg: p.value, receivedAt });
        } else {
          const p = parseFeedback(message.value, { numClasses: config.limits.numClasses });
          const at = Number(message.timestamp);
          if (p.ok && !labelSentAt.has(p.value.candidateId)) labelSentAt.set(p.value.candidateId, at);
        }
        return Promise.resolve();
      },
    });

    ctx.progress(
      `[${phase}] streaming ${poolSize} candidates; the simulator answers each request after ${options.answerDelayMs} ms`,
    );
    const sim = await startSimulator({
      kafka: { brokers: ctx.brokers, clientId: `${ctx.runId}-${phase}-sim`, topics },
      groupId: `${ctx.runId}-${phase}-sim`,
      task: ctx.task,
      seed: options.seed,
      ratePerSecond: options.rate,
      total: poolSize,
      answerDelayMs: options.answerDelayMs,
      evaluate: false,
      log: (line) => ctx.progress(`[${phase}] simulator: ${line}`),
    });
    ctx.cleanups.add('stopping the windows simulator', () => sim.stop());
    await waitUntil(
      `${options.windows} model versions`,
      () => versions.length >= options.windows,
      options.timeoutS * 1000,
      ctx.signal,
      50,
    );
    const windows = versions.slice(0, options.windows);
    // Q of window k: what it trained on that no earlier window had as Q (for ACFT(HQ), Q is in trainedOn).
    const earlierQ = new Set<string>();
    const qOf = windows.map(({ msg }) => {
      const q = msg.trainedOn.filter((id) => !earlierQ.has(id));
      for (const id of q) earlierQ.add(id);
      return q;
    });
    await waitUntil(
      'the feedback of every window',
      () => qOf.every((q) => q.every((id) => labelSentAt.has(id))),
      60_000,
      ctx.signal,
      50,
    );
    const servedEvents = ctx.logs.of(phase, 'serving');
    const windowEvents = ctx.logs.of(phase, 'window');
    const samples: WindowSample[] = windows.map(({ msg, receivedAt }, i) => {
      const q = qOf[i]!;
      const sentTimes = q.map((id) => labelSentAt.get(id)!).sort((a, b) => a - b);
      const bth = sentTimes[Math.min(options.b, sentTimes.length) - 1];
      if (bth === undefined) throw new Error(`model version ${msg.version} trained on no new label`);
      const served: LogEvent | undefined = servedEvents.find((e) => e.fields['version'] === msg.version);
      const logged = windowEvents.find((e) => e.fields['version'] === msg.version);
      const started = Date.parse(msg.windowStartedAt);
      const published = Date.parse(msg.time);
      return {
        index: i + 1,
        version: msg.version,
        status: msg.status,
        trigger: typeof logged?.fields['trigger'] === 'string' ? logged.fields['trigger'] : null,
        q: msg.counts.q,
        h: msg.counts.h,
        qIdentified: q.length,
        bthLabelSentAt: new Date(bth).toISOString(),
        windowStartedAt: msg.windowStartedAt,
        publishedAt: msg.time,
        receivedAt: new Date(receivedAt).toISOString(),
        servedAt: served === undefined ? null : new Date(served.wallMs).toISOString(),
        seconds: {
          bthLabelToVersionReceived: s(receivedAt - bth),
          bthLabelToServed: served === undefined ? null : s(served.wallMs - bth),
          bthLabelToWindowStart: s(started - bth),
          windowStartToPublished: s(published - started),
          windowLogSeconds:
            typeof logged?.fields['seconds'] === 'number' ? round(logged.fields['seconds']) : null,
          publishedToReceived: s(receivedAt - published),
        },
        holdoutAuc: msg.metrics.holdoutAuc,
        parentHoldoutAuc: msg.metrics.parentHoldoutAuc,
      };
    });
    await sim.stop();
    const simStats = sim.stats();
    const all = samples.map((w) => w.seconds.bthLabelToVersionReceived);
    const promoted = samples
      .filter((w) => w.status === 'promoted')
      .map((w) => w.seconds.bthLabelToVersionReceived);
    const servedSamples = samples.flatMap((w) =>
      w.seconds.bthLabelToServed === null ? [] : [w.seconds.bthLabelToServed],
    );
    const med = (v: number[]) => {
      const m = median(v);
      return m === null ? null : round(m);
    };
    return {
      config,
      backend,
      answerDelayMs: options.answerDelayMs,
      windows: samples,
      bthLabelToVersion: {
        median: figure(med(all), 's', 'median over the windows of bthLabelToVersionReceived'),
        medianPromoted: figure(med(promoted), 's', 'the same over promoted versions only'),
        samples: all,
      },
      bthLabelToServed: {
        median: figure(med(servedSamples), 's', "b-th label sent -> the daemon's 'serving' log line"),
        samples: servedSamples,
      },
      peakRssBytes: ctx.rss.takeSpanPeak(),
      cpuSeconds: cpuSeconds(cpu0),
      simulator: simStats,
      problems: problems(ctx, phase),
      method:
        "A watcher consumer reads feedback (first label per candidate, with its Kafka CreateTime: when the simulator's producer sent it) and model-versions (with the time each arrives). Q of window k = its trainedOn minus the Q of earlier windows (checked against counts.q); the b-th label is the b-th earliest send time in Q. bthLabelToVersionReceived = version message received - b-th label sent; it includes the feedback's trip to the daemon, the wait for the daemon's 500 ms tick, H (scoring L with the serving model), fine-tuning, hold-out evaluation, saving, and the version's trip back.",
    };
  } finally {
    await ctx.cleanups.runFrom(mark, ctx.progress);
  }
}
