/**
 * Helpers of the daemon benchmark (scripts/bench-daemon.ts): figures with their unit and method,
 * exact and histogram quantiles, taps on the daemon's prom-client metrics, memory measurement,
 * waiting, and clean-up in reverse order. The daemon's log events are timestamped by log-tap.ts.
 */
import { readFileSync } from 'node:fs';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Counter, Histogram } from 'prom-client';

/** One measured figure: its value, its unit and how it was obtained. */
export interface Figure {
  value: number | null;
  unit: string;
  method: string;
}

export function figure(value: number | null, unit: string, method: string): Figure {
  return { value: value === null || Number.isFinite(value) ? value : null, unit, method };
}

/** Rounds for the JSON (times to the microsecond, rates to 0.01). */
export function round(value: number, digits = 6): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Milliseconds to seconds, rounded for the JSON. */
export const s = (ms: number): number => round(ms / 1000);

/** A rate (null: none), rounded to 0.01. */
export function rateFigure(rate: number | null, method: string, unit = 'candidates/s'): Figure {
  return figure(rate === null ? null : round(rate, 2), unit, method);
}

/** `count` events per second between `fromMs` and `toMs` (performance.now()); null for no time. */
export function perSecond(count: number, fromMs: number, toMs: number): number | null {
  return toMs > fromMs ? (count * 1000) / (toMs - fromMs) : null;
}

// ---- quantiles ---------------------------------------------------------------------------------

/**
 * The q-quantile of sorted values, interpolating linearly between the closest ranks (Hyndman and
 * Fan's type 7, numpy's default); null when there are none.
 */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(sorted.length - 1, lo + 1);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (h - lo);
}

export function median(values: readonly number[]): number | null {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/** Summary of a sample of durations in seconds. */
export interface DurationSummary {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  min: number | null;
  max: number | null;
  mean: number | null;
}

export function summarize(values: readonly number[]): DurationSummary {
  const sorted = [...values].sort((a, b) => a - b);
  const r = (v: number | null) => (v === null ? null : round(v));
  return {
    count: sorted.length,
    p50: r(quantile(sorted, 0.5)),
    p90: r(quantile(sorted, 0.9)),
    p99: r(quantile(sorted, 0.99)),
    p999: r(quantile(sorted, 0.999)),
    min: r(sorted[0] ?? null),
    max: r(sorted.at(-1) ?? null),
    mean: sorted.length === 0 ? null : round(sorted.reduce((s, v) => s + v, 0) / sorted.length),
  };
}

/** A cumulative histogram bucket: observations <= `le` (Infinity for +Inf). */
export interface Bucket {
  le: number;
  count: number;
}

/** Buckets as JSON can hold them (`le` '+Inf' rather than Infinity, which JSON turns into null). */
export function bucketsForJson(buckets: readonly Bucket[]): { le: number | '+Inf'; count: number }[] {
  return buckets.map((b) => ({ le: b.le === Infinity ? '+Inf' : b.le, count: b.count }));
}

/** The observations between two snapshots of the same histogram. */
export function bucketDelta(after: readonly Bucket[], before: readonly Bucket[]): Bucket[] {
  return after.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.count ?? 0) }));
}

/** The cumulative buckets of an unlabeled prom-client histogram, in increasing `le`. */
export async function histogramBuckets(h: Histogram): Promise<Bucket[]> {
  const { values } = await h.get();
  return values
    .filter((v) => v.metricName?.endsWith('_bucket') === true)
    .map((v) => {
      const le = (v.labels as { le?: number | string }).le;
      return { le: le === '+Inf' || le === undefined ? Infinity : Number(le), count: v.value };
    })
    .sort((a, b) => a.le - b.le);
}

/**
 * Prometheus' `histogram_quantile(q, ...)` on cumulative buckets: the bucket holding rank q * n,
 * interpolated linearly inside it (its lower bound is the previous bucket's `le`, or 0); a rank
 * in the +Inf bucket gives the highest finite bound. Null without observations.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      if (b.count === prevCount) return b.le;
      return prevLe + (b.le - prevLe) * ((rank - prevCount) / (b.count - prevCount));
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** The q-quantile as Prometheus' histogram_quantile gives it, in seconds. */
export function histogramFigure(q: number, buckets: readonly Bucket[], method: string): Figure {
  return figure(round(histogramQuantile(q, buckets) ?? NaN), 's', method);
}

/** A growable series of numbers in a Float64Array: preallocated, recording adds nothing to the heap. */
export class Series {
  private data: Float64Array;
  length = 0;

  constructor(capacity = 1024) {
    this.data = new Float64Array(Math.max(16, capacity));
  }

  push(value: number): void {
    if (this.length === this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = value;
  }

  /** The value at `index` (negative: from the end), or undefined. */
  at(index: number): number | undefined {
    const i = index < 0 ? this.length + index : index;
    return i >= 0 && i < this.length ? this.data[i] : undefined;
  }

  toArray(): number[] {
    return Array.from(this.data.subarray(0, this.length));
  }
}

// ---- taps on the daemon's metrics ----------------------------------------------------------------

/**
 * Calls `onValue` with every value observed into `h` (unlabeled), then observes it as before. The
 * daemon's code is untouched: the tap shadows the instance's `observe`.
 */
export function tapHistogram(h: Histogram, onValue: (value: number) => void): void {
  const original = h.observe.bind(h) as (...args: unknown[]) => void;
  const tapped = (...args: unknown[]): void => {
    const value = args.at(-1);
    if (typeof value === 'number') onValue(value);
    original(...args);
  };
  h.observe = tapped as Histogram['observe'];
}

/** Calls `onInc` with every increment of `c`, then increments it as before. */
export function tapCounter(c: Counter, onInc: (by: number) => void): void {
  const original = c.inc.bind(c) as (a?: unknown, b?: unknown) => void;
  // No rest parameters: the tap runs on the daemon's hot path and must not allocate.
  const tapped = (a?: unknown, b?: unknown): void => {
    onInc(typeof a === 'number' ? a : typeof b === 'number' ? b : 1);
    if (b !== undefined) original(a, b);
    else if (a !== undefined) original(a);
    else original();
  };
  c.inc = tapped as Counter['inc'];
}

// ---- waiting -------------------------------------------------------------------------------------

/** The abort's reason (an Error), else an error naming what was waited for. */
export function abortError(signal: AbortSignal, what: string): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`stopped while waiting for ${what}`);
}

/** Polls `predicate` every `intervalMs` until it holds; rejects on timeout or abort. */
export async function waitUntil(
  what: string,
  predicate: () => boolean,
  timeoutMs: number,
  signal: AbortSignal,
  intervalMs = 20,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (signal.aborted) throw abortError(signal, what);
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// ---- memory ----------------------------------------------------------------------------------------

/** A full garbage collection (V8's gc(), exposed at run time when the process was not started with it). */
export function exposeGc(): () => void {
  const native = globalThis.gc;
  if (typeof native === 'function') return () => native();
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as unknown;
  if (typeof gc !== 'function') throw new Error('cannot expose the garbage collector');
  return gc as () => void;
}

/** Memory of the process after full collections (three, with turns of the event loop between). */
export async function settledMemory(gc: () => void): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 3; i++) {
    gc();
    await nextTurn();
  }
  return process.memoryUsage();
}

/** Bytes per pooled candidate, four ways (each figure's method says how). */
export interface BytesPerCandidate {
  accounted: Figure;
  heapPlusExternal: Figure;
  arrayBuffers: Figure;
  rss: Figure;
}

/**
 * Bytes per candidate for `count` candidates (null when there are none): `accountedBytes` (the
 * pool's own accounting) and the growth of the process's memory from `before` to `after`.
 */
export function bytesPerCandidate(
  count: number,
  accountedBytes: number,
  memory: { before: NodeJS.MemoryUsage; after: NodeJS.MemoryUsage },
  methods: Record<keyof BytesPerCandidate, string>,
): BytesPerCandidate {
  const per = (bytes: number) => (count > 0 ? round(bytes / count, 1) : null);
  const delta = (k: keyof NodeJS.MemoryUsage) => memory.after[k] - memory.before[k];
  return {
    accounted: figure(per(accountedBytes), 'bytes', methods.accounted),
    heapPlusExternal: figure(per(delta('heapUsed') + delta('external')), 'bytes', methods.heapPlusExternal),
    arrayBuffers: figure(per(delta('arrayBuffers')), 'bytes', methods.arrayBuffers),
    rss: figure(per(delta('rss')), 'bytes', methods.rss),
  };
}

/** Samples the resident set size every `intervalMs` and keeps the peak (overall and since a mark). */
export class RssSampler {
  peakBytes = 0;
  private sincePeak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 100) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): number {
    const rss = process.memoryUsage.rss();
    this.peakBytes = Math.max(this.peakBytes, rss);
    this.sincePeak = Math.max(this.sincePeak, rss);
    return rss;
  }

  /** The peak since the last call (or the start), then starts a new span. */
  takeSpanPeak(): number {
    const peak = Math.max(this.sincePeak, this.sample());
    this.sincePeak = 0;
    return peak;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

// ---- clean-up ----------------------------------------------------------------------------------------

export { Cleanups } from '../../src/support/cleanups.js';

// ---- CPU of the main thread ------------------------------------------------------------------------

/**
 * CPU time so far: the main thread's time on a CPU and waiting in a run queue (runnable, but another
 * thread or process had the core), from Linux's /proc/<pid>/task/<pid>/schedstat (nanoseconds), and
 * the whole process's user + system time (all threads: V8's GC and compiler helpers, the workers).
 */
export interface CpuSample {
  at: number;
  mainRunNs: number;
  mainWaitNs: number;
  processMicros: number;
}

/** undefined where schedstat cannot be read (not Linux, or a kernel without it). */
export function sampleCpu(): CpuSample | undefined {
  const at = performance.now();
  let text: string;
  try {
    text = readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'latin1');
  } catch {
    return undefined;
  }
  const [run, wait] = text.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(run) || !Number.isFinite(wait)) return undefined;
  const usage = process.cpuUsage();
  return { at, mainRunNs: run!, mainWaitNs: wait!, processMicros: usage.user + usage.system };
}

/** Where the CPU went between two samples, per message handled in between. */
export interface CpuSpan {
  seconds: number;
  /** Cores' worth of time the main thread ran (at most 1). */
  mainCores: number;
  /** Share of the time the main thread was runnable but waited for a core. */
  mainWaitShare: number;
  /** Cores' worth of CPU of the whole process (every thread). */
  processCores: number;
  /** Main-thread CPU per message, microseconds. */
  mainMicrosPerMessage: number;
  /** CPU of every thread of the process per message, microseconds. */
  processMicrosPerMessage: number;
}

export function cpuSpan(
  from: CpuSample | undefined,
  to: CpuSample | undefined,
  messages: number,
): CpuSpan | null {
  if (from === undefined || to === undefined || messages < 1 || to.at <= from.at) return null;
  const seconds = (to.at - from.at) / 1000;
  const run = (to.mainRunNs - from.mainRunNs) / 1e9;
  const wait = (to.mainWaitNs - from.mainWaitNs) / 1e9;
  const proc = (to.processMicros - from.processMicros) / 1e6;
  const r = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    seconds: r(seconds),
    mainCores: r(run / seconds),
    mainWaitShare: r(wait / seconds),
    processCores: r(proc / seconds),
    mainMicrosPerMessage: r((run * 1e6) / messages, 2),
    processMicrosPerMessage: r((proc * 1e6) / messages, 2),
  };
}
