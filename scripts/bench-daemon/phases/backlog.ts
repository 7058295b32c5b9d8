/**
 * The backlog phase of the daemon benchmark: N candidates produced before a fresh daemon starts;
 * the rate at which it drains them (its ingest capacity, with scoring running alongside); then N
 * more, for the marginal memory of a pooled candidate.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Producer } from 'kafkajs';
import type { Config } from '../../../src/config/index.js';
import { encodeCandidate } from '../../../src/messages/index.js';
import { buildCandidate, streamOrder } from '../../../src/simulate/candidates.js';
import { ensureTopics } from '../../../src/simulate/kafka-client.js';
import { connectedProducer, daemonConfig, roomFor, withCleanups, type BenchContext } from '../context.js';
import {
  allScored,
  counterValue,
  cpuSeconds,
  problems,
  startDaemon,
  waitAllScored,
  type Instrumented,
} from '../instrumented.js';
import {
  bytesPerCandidate,
  cpuSpan,
  figure,
  perSecond,
  rateFigure,
  s,
  settledMemory,
  waitUntil,
  type BytesPerCandidate,
  type CpuSpan,
  type Figure,
} from '../support.js';
import {
  exactRate,
  pausedSeconds,
  rateFromJoin,
  sampledRate,
  startTimeline,
  type TimelineSample,
} from '../timeline.js';

const PHASE = 'backlog';

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

export interface MarginalMemoryReport {
  poolBefore: number;
  poolAfter: number;
  bytesPerCandidate: BytesPerCandidate;
  before: NodeJS.MemoryUsage;
  after: NodeJS.MemoryUsage;
  method: string;
}

/** The daemon that drained the backlog, its timeline, and the CPU when it started. */
interface Drained {
  run: Instrumented;
  timeline: TimelineSample[];
  cpu0: NodeJS.CpuUsage;
}

/** Runs the backlog phase; `publish` receives the report before the marginal-memory step fills it in. */
export async function backlogPhase(
  ctx: BenchContext,
  publish: (report: BacklogPhaseReport) => void,
): Promise<void> {
  const n = ctx.options.candidates;
  await withCleanups(ctx, async () => {
    const config = backlogConfig(ctx, n);
    await ensureTopics(ctx.kafka, config.kafka.topics, true);
    const producer = await connectedProducer(ctx, 'backlog');
    ctx.progress(`[backlog] producing ${n} candidates before the daemon starts`);
    const p0 = performance.now();
    await produceCandidates(ctx, producer, config.kafka.topics.candidates, backlogItems(ctx, n));
    const produceSeconds = s(performance.now() - p0);
    const drained = await drainBacklog(ctx, config, n);
    const result = await backlogReport(ctx, drained, n, produceSeconds);
    publish(result);
    result.marginalMemory = await marginalMemory(ctx, drained.run, producer, n);
    result.problems = problems(ctx, PHASE);
  });
}

/** The settings of the backlog's daemon: room for 2N, no checkpoint. */
function backlogConfig(ctx: BenchContext, n: number): Config {
  // Room for 2N: the backpressure watermark (0.9 of the bound, unscored candidates) is never reached,
  // so what is measured is the intake itself, with scoring running alongside.
  const base = daemonConfig(ctx, PHASE, roomFor(2 * n), ctx.options.b);
  // No checkpoint during the phase: one is due every 30 s, the phase lasts about a minute, and a
  // snapshot of the pool in flight as memory is read counts as pool memory (one run read 5,042
  // bytes per candidate where the others read about 1,880).
  return { ...base, state: { ...base.state, checkpointIntervalMs: 24 * 3_600_000 } };
}

/** Starts a daemon on the backlog and waits until it has ingested and scored all `n` candidates. */
async function drainBacklog(ctx: BenchContext, config: Config, n: number): Promise<Drained> {
  // Each daemon and each bare consumer starts on a collected heap: garbage left by what ran before
  // would be collected during (and charged to) the next measurement.
  await settledMemory(ctx.gc);
  ctx.rss.takeSpanPeak();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  ctx.progress(`[backlog] starting a daemon on the backlog`);
  const run = await startDaemon(ctx, PHASE, config, 2 * n, n);
  const timeline = startTimeline(ctx, run, t0);
  await waitAllScored(ctx, run, n, 'the backlog to be ingested and scored', timeline);
  return { run, timeline: timeline.samples, cpu0 };
}

/** The drain's figures: ingest capacity (three ways), spans, scoring throughput, CPU and RSS. */
async function backlogReport(
  ctx: BenchContext,
  { run, timeline, cpu0 }: Drained,
  n: number,
  produceSeconds: number,
): Promise<BacklogPhaseReport> {
  const first = run.ingestAt.at(0)!;
  const lastIngest = run.ingestAt.at(n - 1)!;
  const lastScored = run.scoredAt.at(n - 1)!;
  const paused = pausedSeconds(ctx, PHASE, first, lastIngest);
  const deadLettered = await counterValue(run.daemon.metrics.deadLettered);
  const peakRssBytes = ctx.rss.takeSpanPeak();
  const cpu = cpuSeconds(cpu0);
  return {
    candidates: n,
    produceSeconds,
    rate: rateFigure(
      rateFromJoin(run.ingestAt, run.joinedAt, n),
      "N / (the daemon's group join -> N-th increment of acft_candidates_ingested_total) while a daemon with room for 2N drains N candidates produced before it started: every fetch included (scoring runs alongside; paused time, if any, included)",
    ),
    rateFirstToLast: rateFigure(
      exactRate(run.ingestAt, n),
      '(N - 1) / (first -> N-th increment of the ingest counter): the fetch of the first batch left out',
    ),
    rateSampled: rateFigure(
      sampledRate(timeline, n),
      'the ingest counter sampled every 100 ms, first sample above 0 to the first at N',
    ),
    firstToLastIngestSeconds: figure(s(lastIngest - first), 's', 'first to last ingest'),
    allScoredSeconds: figure(s(lastScored - first), 's', "first ingest to the last candidate's first score"),
    scoringThroughput: rateFigure(
      perSecond(n, first, lastScored),
      'N / (first ingest -> last first score): new-candidate scoring capacity',
    ),
    backpressure: { pauses: paused.count, pausedSeconds: paused.seconds },
    deadLettered,
    peakRssBytes,
    cpuSeconds: cpu,
    intakeCpu: cpuSpan(run.cpuAtJoin, run.cpuAtMark, n),
    marginalMemory: null,
    timeline,
    problems: problems(ctx, PHASE),
  };
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

/** Candidates of the task at the items' positions, ids suffixed by theirs, produced in batches of 500. */
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
  return {
    poolBefore: st1.pool,
    poolAfter: st2.pool,
    bytesPerCandidate: bytesPerCandidate(
      st2.pool - st1.pool,
      st2.poolBytes - st1.poolBytes,
      { before, after },
      {
        accounted: "increase of status().poolBytes (the pool's own accounting) / candidates added",
        heapPlusExternal:
          'increase of heapUsed + external (main thread) from N to 2N pooled and scored candidates, each after 3 forced full GCs, / candidates added: the marginal cost',
        arrayBuffers: 'increase of arrayBuffers / candidates added',
        rss: 'increase of the resident set size / candidates added (whole process; allocator noise)',
      },
    ),
    before,
    after,
    method:
      'a daemon with room for 2N holds the N backlog candidates, all scored; N more (the same images under new ids) are produced and scored; memory is read 1 s after each, after forced full GCs',
  };
}
