/**
 * A daemon of the benchmark with taps on its metrics (when each candidate was ingested and first
 * scored, each scoring latency), and what a phase reads from it afterwards.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import type { Config } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon/daemon.js';
import type { BenchContext } from './context.js';
import type { LogEvent } from './log-tap.js';
import { round, sampleCpu, Series, tapCounter, tapHistogram, waitUntil, type CpuSample } from './support.js';

export interface Instrumented {
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

/** The taps' record before the daemon is up. */
type Tapped = Omit<Instrumented, 'daemon' | 'joinedAt' | 'cpuAtJoin'>;

/**
 * The join of `phase`'s daemon to its consumer group, with a CPU sample taken as the join is logged.
 * Listening before the start; `stop` ends the wait when the start fails (else its timer would keep
 * the process up).
 */
function awaitJoin(
  ctx: BenchContext,
  phase: string,
): { joined: Promise<{ event: LogEvent; cpu: CpuSample | undefined }>; stop: (reason?: unknown) => void } {
  let cpuAtJoin: CpuSample | undefined;
  const startFailed = new AbortController();
  const joined = ctx.logs
    .next(
      `the ${phase} daemon to join its consumer group`,
      (e) => {
        const join = e.phase === phase && e.event === 'partitions-assigned';
        if (join) cpuAtJoin ??= sampleCpu();
        return join;
      },
      ctx.options.timeoutS * 1000,
      AbortSignal.any([ctx.signal, startFailed.signal]),
    )
    .then((event) => ({ event, cpu: cpuAtJoin }));
  joined.catch(() => undefined);
  return { joined, stop: (reason) => startFailed.abort(reason) };
}

/**
 * Taps the ingest counter and the scoring-latency histogram the daemon registered on `registry`
 * (undefined if it did not). The CPU is sampled when the ingest counter reaches `cpuMark`.
 */
function tapMetrics(
  registry: Registry,
  config: Config,
  phase: string,
  expected: number,
  cpuMark: number,
): Tapped | undefined {
  const ingested = registry.getSingleMetric('acft_candidates_ingested_total');
  const latency = registry.getSingleMetric('acft_scoring_latency_seconds');
  if (!(ingested instanceof Counter) || !(latency instanceof Histogram)) return undefined;
  const run: Tapped = {
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
  return run;
}

/**
 * Starts a daemon with taps on its ingest counter and scoring-latency histogram. They are set
 * before any message is consumed: `Daemon.start` creates the metrics (on the registry given)
 * synchronously, before its first await.
 */
export async function startDaemon(
  ctx: BenchContext,
  phase: string,
  config: Config,
  expected: number,
  cpuMark = Infinity,
): Promise<Instrumented> {
  const registry = new Registry();
  const join = awaitJoin(ctx, phase);
  const starting = Daemon.start({
    config,
    logger: ctx.logs.logger(phase),
    registry,
    onFatal: ctx.onFatal,
    observe: ctx.logs.observe(phase),
  });
  const run = tapMetrics(registry, config, phase, expected, cpuMark);
  if (run === undefined) {
    join.stop();
    await starting.then((d) => d.close()).catch(() => undefined);
    throw new Error('the daemon did not register its metrics on the registry given');
  }
  const daemon = await starting.catch((error: unknown) => {
    join.stop(error);
    throw error;
  });
  ctx.cleanups.add(`closing the ${phase} daemon`, () => daemon.close());
  const joined = await join.joined;
  // The same object the taps write to (cpuAtMark is set later).
  return Object.assign(run, { daemon, joinedAt: joined.event.at, cpuAtJoin: joined.cpu });
}

/** At least n candidates ingested and scored; throws when the daemon reports a lost scoring batch. */
export function allScored(ctx: BenchContext, run: Instrumented, n: number): boolean {
  const failed = ctx.logs.firstError(run.phase, ['scoring-failed', 'consumer-crash']);
  if (failed !== undefined)
    throw new Error(`the ${run.phase} daemon logged '${failed.event}': ${failed.message}`);
  return run.ingestAt.length >= n && run.scoredAt.length >= n;
}

/**
 * Waits until `n` candidates are ingested and scored (reporting progress every 5 s), then stops
 * `timeline`, also when the wait fails.
 */
export async function waitAllScored(
  ctx: BenchContext,
  run: Instrumented,
  n: number,
  what: string,
  timeline: { stop: () => void },
): Promise<void> {
  const report = setInterval(
    () =>
      ctx.progress(`[${run.phase}]   ingested ${run.ingestAt.length}/${n}, scored ${run.scoredAt.length}`),
    5000,
  );
  try {
    await waitUntil(what, () => allScored(ctx, run, n), ctx.options.timeoutS * 1000, ctx.signal);
  } finally {
    clearInterval(report);
    timeline.stop();
  }
}

export async function backendOf(d: Daemon): Promise<string | null> {
  const { values } = await d.metrics.backendInfo.get();
  const on = values.find((v) => v.value === 1);
  return typeof on?.labels.backend === 'string' ? on.labels.backend : null;
}

/** Count and sum of an unlabeled histogram. */
export async function histogramTotals(h: Histogram): Promise<{ count: number; sum: number }> {
  const { values } = await h.get();
  const of = (suffix: string) => values.find((v) => v.metricName?.endsWith(suffix) === true)?.value ?? 0;
  return { count: of('_count'), sum: of('_sum') };
}

export async function counterValue(c: Counter): Promise<number> {
  return (await c.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/** Errors and warnings the daemon logged in a phase, by event. */
export function problems(ctx: BenchContext, phase: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of ctx.logs.of(phase)) {
    if (e.level !== 'error' && e.level !== 'fatal' && e.level !== 'warn') continue;
    out[e.event] = (out[e.event] ?? 0) + 1;
  }
  return out;
}

/** CPU of the whole process (user + system) since `since`, in seconds. */
export function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return round((d.user + d.system) / 1e6, 3);
}
