/**
 * The pool phase of the daemon benchmark: the simulator streams N candidates at a set rate into a
 * daemon whose pool holds N (requests are never answered, so no window runs); ingest rate, scoring
 * latency of new candidates, bytes per pooled candidate. Then, with the pool full, the full-pool
 * rescore (rescore.ts) and new candidates one at a time (probe.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../../src/config/index.js';
import type { Daemon } from '../../../src/daemon/daemon.js';
import type { SimulatorStats } from '../../../src/simulate/report.js';
import type { Simulator } from '../../../src/simulate/simulator.js';
import { daemonConfig, roomFor, startPhaseSimulator, withCleanups, type BenchContext } from '../context.js';
import {
  backendOf,
  counterValue,
  cpuSeconds,
  histogramTotals,
  problems,
  startDaemon,
  waitAllScored,
  type Instrumented,
} from '../instrumented.js';
import {
  bucketsForJson,
  bytesPerCandidate,
  figure,
  histogramBuckets,
  histogramFigure,
  perSecond,
  rateFigure,
  round,
  s,
  settledMemory,
  summarize,
  type BytesPerCandidate,
  type DurationSummary,
  type Figure,
} from '../support.js';
import { exactRate, pausedSeconds, sampledRate, startTimeline, type TimelineSample } from '../timeline.js';
import { probePhase, type ProbeReport } from './probe.js';
import { rescorePhase, type RescoreReport } from './rescore.js';

const PHASE = 'pool';
/** Answers to labeling requests are this late in the pool phase: none comes, so no window runs. */
const NO_ANSWER_DELAY_MS = 3_600_000;

export interface MemoryReport {
  pool: number;
  poolBytes: number;
  bytesPerCandidate: BytesPerCandidate;
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

/** What streaming the candidates into the pool measured. */
interface PoolStream {
  run: Instrumented;
  backend: string | null;
  /** Memory of the empty daemon (after it joined its group, before the first candidate). */
  emptyDaemon: NodeJS.MemoryUsage;
  /** CPU when the stream started. */
  cpu0: NodeJS.CpuUsage;
  /** performance.now() when the simulator's stream started. */
  t0: number;
  timeline: TimelineSample[];
  simStats: SimulatorStats;
  ingestCpu: number;
  ingestPeak: number;
}

/** The daemon with its pool full, once the stream is over. */
interface FullPool {
  memory: NodeJS.MemoryUsage;
  status: ReturnType<Daemon['status']>;
  batches: { count: number; sum: number };
  deadLettered: number;
}

/**
 * Runs the pool phase. `publish` receives the report as soon as the ingest figures are in (the
 * rescore and the probe fill it in afterwards), so that a later failure does not lose them.
 */
export async function poolPhase(
  ctx: BenchContext,
  publish: (report: PoolPhaseReport) => void,
): Promise<void> {
  const n = ctx.options.candidates;
  await withCleanups(ctx, async () => {
    const stream = await streamIntoPool(ctx, n);
    const full = await measureFullPool(ctx, stream.run);
    ctx.progress(
      `[pool] pool full (${full.status.pool}); publishing a promoted copy of ${full.status.servedVersion ?? '?'}`,
    );
    const result = await poolReport(ctx, stream, full, n);
    publish(result);

    result.rescore = await rescorePhase(ctx, stream.run);
    result.peakRssBytes.rescore = ctx.rss.takeSpanPeak();
    result.cpuSeconds.rescore = round(cpuSeconds(stream.cpu0) - stream.ingestCpu, 3);
    result.probe = await probePhase(ctx, stream.run, n);
    result.problems = problems(ctx, PHASE);
  });
}

/**
 * Starts a daemon whose pool holds `n`, then streams `n` candidates into it through the simulator
 * (no answers) and waits until every one is ingested and scored.
 */
async function streamIntoPool(ctx: BenchContext, n: number): Promise<PoolStream> {
  const { options } = ctx;
  const config = daemonConfig(ctx, PHASE, roomFor(n), options.b);
  ctx.progress(`[pool] starting a daemon (pool ${n}, b ${options.b}, m ${config.scoring.m})`);
  const run = await startDaemon(ctx, PHASE, config, n + options.probe);
  const backend = await backendOf(run.daemon);
  ctx.progress(`[pool] backend ${backend ?? 'unknown'}`);

  const emptyDaemon = await settledMemory(ctx.gc);
  ctx.rss.takeSpanPeak();
  const cpu0 = process.cpuUsage();

  ctx.progress(`[pool] streaming ${n} candidates at ${options.rate}/s through the simulator (no answers)`);
  // Held through `held` only, so that once stopped the simulator can be collected before the memory count.
  const held: { sim?: Simulator } = {};
  held.sim = await startPhaseSimulator(ctx, PHASE, config, n, NO_ANSWER_DELAY_MS);
  ctx.cleanups.add('stopping the pool simulator', () => held.sim?.stop() ?? Promise.resolve());
  const t0 = performance.now();
  const timeline = startTimeline(ctx, run, t0);
  const planned = held.sim.stats().candidatesPlanned;
  if (planned < n) throw new Error(`the simulator can stream only ${planned} candidates, not ${n}`);
  await waitAllScored(ctx, run, n, 'every candidate to be ingested and scored', timeline);
  await held.sim.streamed;
  await held.sim.stop();
  const simStats = held.sim.stats();
  delete held.sim;
  const ingestCpu = cpuSeconds(cpu0);
  const ingestPeak = ctx.rss.takeSpanPeak();
  return { run, backend, emptyDaemon, cpu0, t0, timeline: timeline.samples, simStats, ingestCpu, ingestPeak };
}

/** Memory, status and scoring totals of the full pool. */
async function measureFullPool(ctx: BenchContext, run: Instrumented): Promise<FullPool> {
  // Let requests go out and the simulator's garbage go, then measure the full pool.
  await sleep(1000);
  const memory = await settledMemory(ctx.gc);
  const status = run.daemon.status();
  const batches = await histogramTotals(run.daemon.metrics.scoringBatch);
  const deadLettered = await counterValue(run.daemon.metrics.deadLettered);
  return { memory, status, batches, deadLettered };
}

/** The phase's report on the stream, the scoring latency and the memory (no rescore, no probe yet). */
async function poolReport(
  ctx: BenchContext,
  stream: PoolStream,
  full: FullPool,
  n: number,
): Promise<PoolPhaseReport> {
  const { simStats } = stream;
  const simOffered = simStats.streamMs > 0 ? (simStats.candidatesSent * 1000) / simStats.streamMs : null;
  return {
    config: stream.run.config,
    backend: stream.backend,
    offered: {
      candidatesSent: simStats.candidatesSent,
      streamSeconds: s(simStats.streamMs),
      rate: rateFigure(simOffered, "the simulator's candidates sent / its streaming time (the offered load)"),
    },
    ingest: ingestFigures(ctx, stream, full, n),
    scoringLatency: await latencyFigures(stream.run),
    memory: memoryReport(stream.emptyDaemon, full),
    rescore: null,
    probe: null,
    peakRssBytes: { ingest: stream.ingestPeak, rescore: null },
    cpuSeconds: { ingest: stream.ingestCpu, rescore: null },
    simulator: simStats,
    timeline: stream.timeline,
    problems: problems(ctx, PHASE),
  };
}

/** Ingest rates and spans of the stream (before the probe adds candidates to the series). */
function ingestFigures(
  ctx: BenchContext,
  { run, t0, timeline }: PoolStream,
  { batches, deadLettered }: FullPool,
  n: number,
): PoolPhaseReport['ingest'] {
  const firstIngest = run.ingestAt.at(0)!;
  const lastIngest = run.ingestAt.at(n - 1)!;
  const lastScored = run.scoredAt.at(n - 1)!;
  const paused = pausedSeconds(ctx, PHASE, firstIngest, lastIngest);
  return {
    candidates: n,
    rate: rateFigure(
      exactRate(run.ingestAt, n),
      '(N - 1) / (time of the last - time of the first increment of acft_candidates_ingested_total), timed by a tap on the counter; bounded by the offered rate when the daemon keeps up (see backlog for capacity)',
    ),
    rateSampled: rateFigure(
      sampledRate(timeline, n),
      'acft_candidates_ingested_total sampled every 100 ms: delta from the first sample above 0 to the first sample at N, over the time between them',
    ),
    firstToLastIngestSeconds: figure(s(lastIngest - firstIngest), 's', 'first to last ingest (counter tap)'),
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
    scoringThroughput: rateFigure(
      perSecond(n, firstIngest, lastScored),
      "N / (first ingest -> last candidate's first score): at most the offered rate; clearly below it, scoring fell behind the stream and the latency at this load is mostly queueing (compare backlog.scoringThroughput and the one-at-a-time probe)",
    ),
  };
}

/** The scoring latency of the streamed candidates: exact (the tap) and as histogram_quantile gives it. */
async function latencyFigures(run: Instrumented): Promise<PoolPhaseReport['scoringLatency']> {
  const buckets = await histogramBuckets(run.latencyHistogram);
  const exact = summarize(run.latencies.toArray());
  return {
    p50: figure(
      exact.p50,
      's',
      'exact: every value the daemon observed into acft_scoring_latency_seconds (admission to the pool -> first score, micro-batch wait and worker round trip included) recorded by a tap; linear interpolation between closest ranks',
    ),
    p99: figure(exact.p99, 's', 'exact, as p50'),
    histogramP50: histogramFigure(
      0.5,
      buckets,
      "histogram_quantile(0.5, acft_scoring_latency_seconds_bucket): Prometheus' bucket interpolation",
    ),
    histogramP99: histogramFigure(
      0.99,
      buckets,
      "histogram_quantile(0.99, acft_scoring_latency_seconds_bucket): Prometheus' bucket interpolation",
    ),
    exact,
    firstObservedSeconds: run.latencies.at(0) ?? null,
    histogramBuckets: bucketsForJson(buckets),
    note: 'Latency starts when the consumed candidate enters the pool; the broker hop (produce -> fetch, at most the 250 ms fetch wait) is not included.',
  };
}

/** Bytes per pooled candidate: the full pool against the empty daemon. */
function memoryReport(emptyDaemon: NodeJS.MemoryUsage, full: FullPool): MemoryReport {
  const { status } = full;
  return {
    pool: status.pool,
    poolBytes: status.poolBytes,
    bytesPerCandidate: bytesPerCandidate(
      status.pool,
      status.poolBytes,
      { before: emptyDaemon, after: full.memory },
      {
        accounted:
          "status().poolBytes / status().pool: the pool's own accounting (pixel bytes + a fixed 600 B bookkeeping estimate + 2 B per id character)",
        heapPlusExternal:
          'process.memoryUsage() (heapUsed + external) of the full pool minus that of the empty daemon, each after 3 forced full GCs, divided by the pool size; main thread only (worker heaps excluded), includes everything else that grew (e.g. Kafka client buffers)',
        arrayBuffers:
          'process.memoryUsage().arrayBuffers delta (the typed arrays holding pixels) divided by the pool size; same GC protocol',
        rss: 'resident set size delta divided by the pool size; whole process (worker threads included) and noisy: freed memory is not returned to the OS at once, and worker and allocator growth is counted too',
      },
    ),
    emptyDaemon,
    fullPool: full.memory,
    method:
      'emptyDaemon: after the daemon started and joined its group, before the first candidate (Fashion-MNIST already loaded); fullPool: after every candidate was scored and the simulator stopped, 1 s later',
  };
}
