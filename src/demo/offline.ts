/**
 * The offline part of the demo, after everything live has stopped: versions the simulator did not
 * measure are measured on the same evaluation set; the pool is scored with the last served version
 * for the gallery; random selection (RFT(LQ)) runs for as many labels on the same candidates,
 * evaluation set, m and fine-tuning settings; the served model's learning curve.
 */
import { augmentationSpecOf, fineTuneOptionsOf, scoreOptionsOf } from '../config/index.js';
import { alc } from '../core/metrics.js';
import type { Task } from '../data/task.js';
import type { ModelVersionMessage } from '../messages/index.js';
import type { VersionReport } from '../simulate/report.js';
import { DEFAULT_TASK_SPEC } from '../simulate/simulator.js';
import { BaselineAbortedError, runBaselineInWorker, type BaselineJob } from './baseline.js';
import { buildGallery, type Gallery } from './gallery.js';
import type { LiveOutcome } from './live.js';
import { DemoInterruptedError, throwIfInterrupted, type DemoContext } from './options.js';
import type { BaselineSummary, CurvePoint, DemoVersion } from './result.js';

type TrajectoryResult = Awaited<ReturnType<typeof runBaselineInWorker>>;

/**
 * Every version the daemon published with both measures: the simulator's evaluation AUC where it
 * measured the version live, else the demo's, measured now (rejected or superseded versions).
 */
export async function measureVersions(
  ctx: DemoContext,
  task: Task,
  live: LiveOutcome,
): Promise<DemoVersion[]> {
  const { messages, reports } = live;
  const unmeasured = messages.filter((m) => reports.get(m.version)?.evaluation.kind !== 'evaluated');
  const laterAuc =
    unmeasured.length > 0
      ? await measureLater(ctx, task, live, unmeasured)
      : new Map<string, number | null>();
  const versions = messages.map((m) => demoVersion(m, reports.get(m.version), laterAuc.get(m.version)));
  ctx.phases.end('measuring versions');
  return versions;
}

/** Measures the versions the simulator did not on its evaluation set; a failure is logged, not fatal. */
async function measureLater(
  ctx: DemoContext,
  task: Task,
  live: LiveOutcome,
  unmeasured: ModelVersionMessage[],
): Promise<Map<string, number | null>> {
  const { o, ui, signal } = ctx;
  const laterAuc = new Map<string, number | null>();
  ui.log(`Measuring ${unmeasured.length} version(s) the simulator did not (rejected or superseded)...`);
  const { createEvaluator } = await import('../simulate/evaluation.js');
  const evaluator = await createEvaluator({
    task,
    size: o.evalSize,
    augmentation: augmentationSpecOf(live.config.scoring),
    patchSeed: live.config.scoring.patchSeed,
    backend: o.backend,
  });
  for (const m of unmeasured) {
    // tfjs computes synchronously: give the event loop a turn so that Ctrl-C is seen.
    await new Promise((resolve) => setImmediate(resolve));
    throwIfInterrupted(signal);
    try {
      laterAuc.set(m.version, (await evaluator.evaluate(m.artifact.location, m.artifact.sha256)).auc);
    } catch (error) {
      ui.log(`could not measure ${m.version}: ${(error as Error).message}`);
    }
  }
  return laterAuc;
}

/** One version for the report, from its message, the simulator's report and a later measure. */
function demoVersion(
  m: ModelVersionMessage,
  report: VersionReport | undefined,
  later: number | null | undefined,
): DemoVersion {
  const simAuc = report?.evaluation.kind === 'evaluated' ? report.evaluation.auc : undefined;
  return {
    version: m.version,
    parent: m.parent,
    status: m.status,
    labels: m.counts.labeled + m.counts.holdout,
    q: m.counts.q,
    h: m.counts.h,
    trained: m.trainedOn.length,
    holdout: m.counts.holdout,
    holdoutAuc: m.metrics.holdoutAuc,
    parentHoldoutAuc: m.metrics.parentHoldoutAuc,
    evaluationAuc: simAuc ?? later ?? null,
    evaluatedBy: simAuc !== undefined ? 'simulator' : later !== undefined ? 'demo' : null,
    windowSeconds: (Date.parse(m.time) - Date.parse(m.windowStartedAt)) / 1000,
    trainingSeconds: typeof m.metrics.trainingSeconds === 'number' ? m.metrics.trainingSeconds : null,
    publishedAt: m.time,
  };
}

/**
 * The gallery: the streamed candidates the daemon did not ask about, scored with the last served
 * version, the most and least uncertain shown. Null when no version was promoted.
 */
export async function galleryOf(ctx: DemoContext, task: Task, live: LiveOutcome): Promise<Gallery | null> {
  const { o, ui, signal } = ctx;
  const { config, messages, requested, streamed } = live;
  const served = [...messages].reverse().find((m) => m.status === 'promoted');
  if (served === undefined) return null;
  throwIfInterrupted(signal);
  ui.log('Scoring the pool with the last served version for the gallery...');
  const gallery = await buildGallery({
    task,
    positions: streamed.filter((p) => !requested.has(task.pool.ids[p]!)),
    version: served.version,
    modelDir: served.artifact.location,
    sha256: served.artifact.sha256,
    augmentation: augmentationSpecOf(config.scoring),
    patchSeed: config.scoring.patchSeed,
    scoreOptions: scoreOptionsOf(config.scoring),
    count: o.galleryCount,
    backend: o.backend,
    signal,
  }).catch((error: unknown) => {
    throwIfInterrupted(signal);
    throw error;
  });
  ctx.phases.end('gallery');
  return gallery;
}

/** The most labels any version was trained with. */
export function labelsReached(versions: DemoVersion[]): number {
  return Math.max(0, ...versions.map((v) => v.labels));
}

/**
 * Random selection (RFT(LQ)) in a worker thread, for comparison, on the same candidates,
 * evaluation set, m and fine-tuning settings. Null when not asked for or no labels were reached.
 */
export async function randomBaseline(
  ctx: DemoContext,
  task: Task,
  live: LiveOutcome,
  versions: DemoVersion[],
): Promise<BaselineSummary | null> {
  const { o, ui, signal } = ctx;
  // The baseline takes as many steps as the daemon ran windows, of the daemon's mean labels per
  // window (b plus the labels held out), so that both curves have points at about the same counts.
  const reached = labelsReached(versions);
  if (!o.baseline || reached <= 0) return null;
  throwIfInterrupted(signal);
  const steps = versions.length;
  const perStep = Math.max(1, Math.round(reached / steps));
  ui.log(
    `Random-selection baseline: ${steps} steps of ${perStep} labels (RFT(LQ), seed ${o.seed}) on the same ${live.streamed.length} candidates and evaluation set...`,
  );
  let baseline: BaselineSummary;
  try {
    const result = await runBaselineInWorker(baselineJob(ctx, live, perStep, steps), {
      onStep: (s) =>
        ui.update(`random baseline: step ${s.step}/${steps} · ${s.labels} labels · AUC ${s.auc.toFixed(3)}`),
      signal,
    });
    ui.done();
    baseline = baselineSummary(result, task.numClasses);
  } catch (error) {
    ui.done();
    if (error instanceof BaselineAbortedError) throw new DemoInterruptedError('interrupted');
    throw error;
  }
  ctx.phases.end('random baseline');
  return baseline;
}

/** The baseline worker's job: the demo's task, the streamed candidates and the daemon's settings. */
function baselineJob(ctx: DemoContext, live: LiveOutcome, b: number, steps: number): BaselineJob {
  const { o } = ctx;
  const { config, streamed } = live;
  const t = config.training;
  return {
    backend: o.backend,
    taskSpec: DEFAULT_TASK_SPEC,
    taskSeed: o.seed,
    poolPositions: streamed,
    evalSize: o.evalSize,
    augmentation: augmentationSpecOf(config.scoring),
    patchSeed: config.scoring.patchSeed,
    m0Dir: config.model.m0Path,
    b,
    steps,
    seed: t.seed,
    omega: config.selection.omega,
    alpha: config.scoring.alpha,
    // Random selection retrains from M0 on everything: the full learning rate.
    fineTune: { ...fineTuneOptionsOf(t), depth: t.fineTuneDepth },
  };
}

/** The baseline for the report: its curve, ALC, final AUC and picks per class over every step. */
function baselineSummary(result: TrajectoryResult, numClasses: number): BaselineSummary {
  const classCounts = new Array<number>(numClasses).fill(0);
  for (const s of result.steps)
    s.classCountsInQ.forEach((c, k) => (classCounts[k] = (classCounts[k] ?? 0) + c));
  return {
    strategy: result.strategy,
    seed: result.seed,
    curve: result.curve,
    classCounts,
    alc: result.curve.length > 1 ? alc(result.curve) : null,
    finalAuc: Number.isFinite(result.finalAuc) ? result.finalAuc : null,
    seconds: result.seconds,
  };
}

/** The served model's curve: M0 (the baseline's first point is the same model), then each promoted version. */
export function daemonCurveOf(versions: DemoVersion[], baseline: BaselineSummary | null): CurvePoint[] {
  const reached = labelsReached(versions);
  const byLabels = new Map<number, number>();
  if (baseline?.curve[0] !== undefined) byLabels.set(0, baseline.curve[0].auc);
  for (const v of versions) {
    if (v.status === 'promoted' && v.evaluationAuc !== null) byLabels.set(v.labels, v.evaluationAuc);
  }
  // After a rejected last window the served model is still the last promoted one: a flat step.
  const lastServed = [...versions].reverse().find((v) => v.status === 'promoted' && v.evaluationAuc !== null);
  if (lastServed !== undefined && reached > lastServed.labels)
    byLabels.set(reached, lastServed.evaluationAuc!);
  return [...byLabels.entries()]
    .map(([labels, a]) => ({ labels, auc: a }))
    .sort((a, b) => a.labels - b.labels);
}
