/**
 * More rounds of the backlog phase's ingest rate (for scripts/bench-throughput.ts): fresh daemons
 * draining the backlog phase's candidates again.
 */
import type { Config } from '../../../src/config/index.js';
import { ensureTopics } from '../../../src/simulate/kafka-client.js';
import { daemonConfig, roomFor, withCleanups, type BenchContext } from '../context.js';
import { counterValue, startDaemon } from '../instrumented.js';
import { cpuSpan, round, settledMemory, waitUntil, type CpuSpan } from '../support.js';
import { rateFromJoin } from '../timeline.js';

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
  return withCleanups(ctx, async () => {
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
  });
}
