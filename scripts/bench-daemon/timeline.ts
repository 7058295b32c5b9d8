/**
 * The course of a phase of the daemon benchmark: its counters sampled over time, the rates taken
 * from them and from the taps' exact times, and the time intake spent paused by backpressure.
 */
import type { BenchContext } from './context.js';
import type { Instrumented } from './instrumented.js';
import { s, type Series } from './support.js';

const SAMPLE_INTERVAL_MS = 100;
const MAX_TIMELINE_SAMPLES = 3000;

export interface TimelineSample {
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
export function startTimeline(ctx: BenchContext, run: Instrumented, t0: number) {
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
export function sampledRate(samples: readonly TimelineSample[], total: number): number | null {
  const first = samples.find((x) => x.ingested > 0);
  const last = samples.find((x) => x.ingested >= total);
  if (first === undefined || last === undefined || last.t <= first.t) return null;
  return (last.ingested - first.ingested) / (last.t - first.t);
}

/**
 * `count` / the time from the group join to the count-th event, per second: the drain rate of a
 * backlog, fetches included (the bare consumer's is measured the same way).
 */
export function rateFromJoin(times: Series, joinedAt: number, count: number): number | null {
  if (count < 1 || times.length < count) return null;
  const span = times.at(count - 1)! - joinedAt;
  return span > 0 ? (count * 1000) / span : null;
}

/** (count - 1) / the time from the first to the count-th event, per second. */
export function exactRate(times: Series, count: number): number | null {
  if (count < 2 || times.length < count) return null;
  const span = times.at(count - 1)! - times.at(0)!;
  return span > 0 ? ((count - 1) * 1000) / span : null;
}

/**
 * Pauses of candidate intake by backpressure (the daemon's 'paused' / 'resumed' log lines) that
 * began before `until`, and the seconds of them that fall between `from` and `until`.
 */
export function pausedSeconds(
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
