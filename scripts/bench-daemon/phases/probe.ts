/**
 * The probe step of the pool phase: after the rescore, new candidates are sent one at a time into
 * the full pool, for the scoring latency of a new candidate with nothing queued before it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Producer } from 'kafkajs';
import { encodeCandidate } from '../../../src/messages/index.js';
import { buildCandidate, streamOrder } from '../../../src/simulate/candidates.js';
import { connectedProducer, type BenchContext } from '../context.js';
import { allScored, type Instrumented } from '../instrumented.js';
import {
  bucketDelta,
  figure,
  histogramBuckets,
  histogramFigure,
  summarize,
  waitUntil,
  type Bucket,
  type DurationSummary,
  type Figure,
} from '../support.js';

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
export async function probePhase(
  ctx: BenchContext,
  run: Instrumented,
  n: number,
): Promise<ProbeReport | null> {
  const { probe: count, probeIntervalMs } = ctx.options;
  if (count === 0) return null;
  ctx.progress(`[pool] probe: ${count} new candidates one at a time into the full pool`);
  const producer = await connectedProducer(ctx, 'probe');
  const positions = streamOrder(ctx.task.pool, ctx.options.seed).slice(n, n + count);
  const bucketsBefore = await histogramBuckets(run.latencyHistogram);
  const firstIndex = run.latencies.length;
  const endToEnd = await sendOneAtATime(ctx, run, producer, positions);
  const latencies: number[] = [];
  for (let i = firstIndex; i < run.latencies.length; i++) latencies.push(run.latencies.at(i)!);
  const buckets = bucketDelta(await histogramBuckets(run.latencyHistogram), bucketsBefore);
  return probeReport(probeIntervalMs, summarize(latencies), summarize(endToEnd), buckets);
}

/**
 * Sends the candidates of the task's pool at `positions`, each once the previous one is scored and
 * at least --probe-interval-ms after the previous send; returns each one's end-to-end latency, in s.
 */
async function sendOneAtATime(
  ctx: BenchContext,
  run: Instrumented,
  producer: Producer,
  positions: readonly number[],
): Promise<number[]> {
  const { probeIntervalMs: intervalMs, timeoutS } = ctx.options;
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
  return endToEnd;
}

/** The probe's figures: the daemon's latencies (exact and from the histogram) and end to end. */
function probeReport(
  intervalMs: number,
  exact: DurationSummary,
  e2e: DurationSummary,
  buckets: readonly Bucket[],
): ProbeReport {
  return {
    candidates: exact.count,
    intervalMs,
    p50: figure(
      exact.p50,
      's',
      'exact, as the daemon observes acft_scoring_latency_seconds (admission to the pool -> first score; 1 ms resolution), one candidate in flight at a time',
    ),
    p99: figure(exact.p99, 's', 'exact, as p50'),
    histogramP50: histogramFigure(
      0.5,
      buckets,
      'histogram_quantile(0.5) over the bucket increase during the probe',
    ),
    histogramP99: histogramFigure(
      0.99,
      buckets,
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
