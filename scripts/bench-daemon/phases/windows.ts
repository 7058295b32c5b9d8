/**
 * The windows phase of the daemon benchmark: a small daemon and the simulator answering requests
 * after a short delay; the time from the b-th trainable label to the model version of each window.
 */
import type { Config, ConfigInput } from '../../../src/config/index.js';
import { parseFeedback, parseModelVersion, type ModelVersionMessage } from '../../../src/messages/index.js';
import type { SimulatorStats } from '../../../src/simulate/report.js';
import type { Simulator } from '../../../src/simulate/simulator.js';
import { daemonConfig, startPhaseSimulator, withCleanups, type BenchContext } from '../context.js';
import { backendOf, cpuSeconds, problems, startDaemon, type Instrumented } from '../instrumented.js';
import type { LogEvent } from '../log-tap.js';
import { figure, median, round, s, waitUntil, type Figure } from '../support.js';

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

/** A model version as the watcher received it (Date.now()). */
interface Received {
  msg: ModelVersionMessage;
  receivedAt: number;
}

/** What the watcher has read so far. */
interface Watched {
  /** Every label's send time (Kafka CreateTime, set by the simulator's producer), by candidate. */
  labelSentAt: Map<string, number>;
  versions: Received[];
}

/**
 * Times `options.windows` fine-tuning windows. `variant` runs it again under another phase name
 * (its own topics, group and directories) with other training settings, e.g. another strategy.
 */
export async function windowsPhase(
  ctx: BenchContext,
  variant: { phase: string; training: ConfigInput['training'] } = { phase: 'windows', training: {} },
): Promise<WindowsPhaseReport> {
  const { phase } = variant;
  return withCleanups(ctx, async () => {
    const { run, backend } = await startWindowsDaemon(ctx, variant);
    ctx.rss.takeSpanPeak();
    const cpu0 = process.cpuUsage();
    const watched = await watchWindows(ctx, phase, run.config);
    const sim = await simulateUntilWindows(ctx, phase, run.config, watched);
    const windows = watched.versions.slice(0, ctx.options.windows);
    const qOf = identifyQ(windows);
    await waitUntil(
      'the feedback of every window',
      () => qOf.every((q) => q.every((id) => watched.labelSentAt.has(id))),
      60_000,
      ctx.signal,
      50,
    );
    const samples = windowSamples(ctx, phase, windows, qOf, watched.labelSentAt);
    await sim.stop();
    return windowsReport(ctx, phase, { config: run.config, backend, samples, cpu0, simStats: sim.stats() });
  });
}

/** Starts the phase's daemon: a pool of --window-pool, b = --b, the variant's training settings. */
async function startWindowsDaemon(
  ctx: BenchContext,
  variant: { phase: string; training: ConfigInput['training'] },
): Promise<{ run: Instrumented; backend: string | null }> {
  const { options } = ctx;
  const { phase } = variant;
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
  return { run, backend: await backendOf(run.daemon) };
}

/** A watcher consumer of the phase's feedback and model versions, from the beginning of both. */
async function watchWindows(ctx: BenchContext, phase: string, config: Config): Promise<Watched> {
  const topics = config.kafka.topics;
  // Every label's send time (Kafka CreateTime, set by the simulator's producer) and every version.
  const watched: Watched = { labelSentAt: new Map(), versions: [] };
  const watcher = ctx.kafka.consumer({ groupId: `${ctx.runId}-${phase}-watch`, maxWaitTimeInMs: 50 });
  await watcher.connect();
  ctx.cleanups.add('disconnecting the watcher', () => watcher.disconnect());
  await watcher.subscribe({ topics: [topics.feedback, topics.modelVersions], fromBeginning: true });
  await watcher.run({
    eachMessage: ({ topic, message }) => {
      const receivedAt = Date.now();
      if (topic === topics.modelVersions) {
        const p = parseModelVersion(message.value);
        if (p.ok) watched.versions.push({ msg: p.value, receivedAt });
      } else {
        const p = parseFeedback(message.value, { numClasses: config.limits.numClasses });
        const at = Number(message.timestamp);
        if (p.ok && !watched.labelSentAt.has(p.value.candidateId))
          watched.labelSentAt.set(p.value.candidateId, at);
      }
      return Promise.resolve();
    },
  });
  return watched;
}

/** Streams --window-pool candidates through the simulator until --windows versions have come. */
async function simulateUntilWindows(
  ctx: BenchContext,
  phase: string,
  config: Config,
  watched: Watched,
): Promise<Simulator> {
  const { options } = ctx;
  ctx.progress(
    `[${phase}] streaming ${options.windowPool} candidates; the simulator answers each request after ${options.answerDelayMs} ms`,
  );
  const sim = await startPhaseSimulator(ctx, phase, config, options.windowPool, options.answerDelayMs);
  ctx.cleanups.add('stopping the windows simulator', () => sim.stop());
  await waitUntil(
    `${options.windows} model versions`,
    () => watched.versions.length >= options.windows,
    options.timeoutS * 1000,
    ctx.signal,
    50,
  );
  return sim;
}

/** Q of window k: what it trained on that no earlier window had as Q (for ACFT(HQ), Q is in trainedOn). */
function identifyQ(windows: readonly Received[]): string[][] {
  const earlierQ = new Set<string>();
  return windows.map(({ msg }) => {
    const q = msg.trainedOn.filter((id) => !earlierQ.has(id));
    for (const id of q) earlierQ.add(id);
    return q;
  });
}

/** Each window's times: from its b-th label (the b-th earliest send time in its Q) to its version. */
function windowSamples(
  ctx: BenchContext,
  phase: string,
  windows: readonly Received[],
  qOf: readonly string[][],
  labelSentAt: ReadonlyMap<string, number>,
): WindowSample[] {
  const servedEvents = ctx.logs.of(phase, 'serving');
  const windowEvents = ctx.logs.of(phase, 'window');
  return windows.map(({ msg, receivedAt }, i) => {
    const q = qOf[i]!;
    const sentTimes = q.map((id) => labelSentAt.get(id)!).sort((a, b) => a - b);
    const bth = sentTimes[Math.min(ctx.options.b, sentTimes.length) - 1];
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
}

/** The phase's report: the windows, the medians over them, CPU and peak RSS since the daemon started. */
function windowsReport(
  ctx: BenchContext,
  phase: string,
  parts: {
    config: Config;
    backend: string | null;
    samples: WindowSample[];
    cpu0: NodeJS.CpuUsage;
    simStats: SimulatorStats;
  },
): WindowsPhaseReport {
  const { samples } = parts;
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
    config: parts.config,
    backend: parts.backend,
    answerDelayMs: ctx.options.answerDelayMs,
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
    cpuSeconds: cpuSeconds(parts.cpu0),
    simulator: parts.simStats,
    problems: problems(ctx, phase),
    method:
      "A watcher consumer reads feedback (first label per candidate, with its Kafka CreateTime: when the simulator's producer sent it) and model-versions (with the time each arrives). Q of window k = its trainedOn minus the Q of earlier windows (checked against counts.q); the b-th label is the b-th earliest send time in Q. bthLabelToVersionReceived = version message received - b-th label sent; it includes the feedback's trip to the daemon, the wait for the daemon's 500 ms tick, H (scoring L with the serving model), fine-tuning, hold-out evaluation, saving, and the version's trip back.",
  };
}
