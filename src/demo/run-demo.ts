/**
 * `acft demo`: the whole loop on one machine, then a report.
 *
 * 1. A real Kafka broker (acquireBroker: KAFKA_BROKERS, else Testcontainers, else the embedded
 *    Kafka 3.9 JVM), the daemon in this process (its scoring and training in worker threads), a
 *    watcher on the labeling-requests and model-versions topics, and the hospital simulator
 *    (Fashion-MNIST shirts among other tops, an oracle radiologist, evaluation of every promoted
 *    version on a fixed evaluation set).
 * 2. A live status line until the daemon has published a version with the asked number of labels.
 * 3. Everything stopped in reverse order (simulator, watcher, daemon, broker), also on Ctrl-C.
 * 4. Offline: versions the simulator did not measure are measured on the same evaluation set; the
 *    pool is scored with the last served version for the gallery; random selection (RFT(LQ)) runs
 *    for as many labels on the same candidates, evaluation set, m and fine-tuning settings.
 * 5. demo-output/report.html (self-contained) and demo-output/demo.json.
 *
 * Steps 1-3 are in live.ts (the services in live-start.ts), step 4 in offline.ts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { alc } from '../core/metrics.js';
import { loadFashionMnist } from '../data/image-set.js';
import { buildTask, type Task } from '../data/task.js';
import { DEFAULT_TASK_SPEC } from '../simulate/simulator.js';
import { DemoError } from './errors.js';
import type { Gallery } from './gallery.js';
import { runLiveAndStop, type LiveOutcome } from './live.js';
import { daemonCurveOf, galleryOf, measureVersions, randomBaseline } from './offline.js';
import {
  PhaseClock,
  throwIfInterrupted,
  type DemoContext,
  type DemoOptions,
  type DemoOutcome,
} from './options.js';
import type { ProgressLine } from './progress.js';
import { renderReport } from './report.js';
import { resultJson, type BaselineSummary, type DemoResult, type DemoVersion } from './result.js';

export { DemoInterruptedError, type DemoOptions, type DemoOutcome } from './options.js';

/** Runs the demo; throws DemoError for what the user can fix, DemoInterruptedError after Ctrl-C. */
export async function runDemo(o: DemoOptions, ui: ProgressLine, signal: AbortSignal): Promise<DemoOutcome> {
  const phases = new PhaseClock();
  const startedAt = new Date(phases.t0).toISOString();
  const out = path.resolve(o.out);
  const runDir = await makeRunDir(out, startedAt);
  const ctx: DemoContext = { o, ui, signal, runDir, phases };
  const task = await loadTask(ctx);
  const live = await runLiveAndStop(ctx, task);

  // ---- offline: measure what the simulator did not, the gallery, the random baseline ----------
  const versions = await measureVersions(ctx, task, live);
  const gallery = await galleryOf(ctx, task, live);
  const baseline = await randomBaseline(ctx, task, live, versions);

  phases.endTotal();
  const result = demoResult(ctx, startedAt, task, live, { versions, gallery, baseline });
  return writeOutputs(out, runDir, result, live.metricsText);
}

/** Creates out/run-<time>/ (the daemon's state and models, the logs); fails early if out is not writable. */
async function makeRunDir(out: string, startedAt: string): Promise<string> {
  const runDir = path.join(out, `run-${startedAt.replace(/[:.]/g, '-')}`);
  try {
    await mkdir(runDir, { recursive: true });
  } catch (error) {
    throw new DemoError(
      `Cannot write to ${out} (${(error as Error).message}): pass --out a directory you can write to.`,
      { cause: error },
    );
  }
  return runDir;
}

/** Loads Fashion-MNIST and builds the simulator's task (shirts among other tops) with the demo's seed. */
async function loadTask(ctx: DemoContext): Promise<Task> {
  ctx.ui.log('Loading Fashion-MNIST (shirts among T-shirts, pullovers and coats, 1 : 9)...');
  const set = await loadFashionMnist();
  const task = buildTask(set, { ...DEFAULT_TASK_SPEC, seed: ctx.o.seed });
  ctx.phases.end('data');
  throwIfInterrupted(ctx.signal);
  return task;
}

/** What the offline part measured. */
interface OfflineOutcome {
  versions: DemoVersion[];
  gallery: Gallery | null;
  baseline: BaselineSummary | null;
}

/** Everything the run measured, as report.html and demo.json show it. */
function demoResult(
  ctx: DemoContext,
  startedAt: string,
  task: Task,
  live: LiveOutcome,
  { versions, gallery, baseline }: OfflineOutcome,
): DemoResult {
  const { o } = ctx;
  const { config, requested, streamed } = live;
  const daemonCurve = daemonCurveOf(versions, baseline);
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    seconds: ctx.phases.seconds,
    stopReason: live.stopReason,
    broker: { kind: live.brokerKind, brokers: live.brokers },
    backend: live.backend,
    metricsUrl: live.metricsUrl,
    task: {
      name: task.name,
      classNames: task.classNames,
      streamed: streamed.length,
      streamedByClass: countByClass(
        task.numClasses,
        streamed.map((p) => task.pool.labels[p]!),
      ),
    },
    settings: {
      labels: o.labels,
      b: o.b,
      m: o.m,
      epochs: o.epochs,
      strategy: config.training.strategy,
      criterion: config.scoring.criterion,
      augmentation: config.scoring.augmentation,
      holdoutShare: config.training.holdoutShare,
      ratePerSecond: o.rate,
      candidates: o.candidates,
      answerDelayMs: o.answerDelayMs,
      evalSize: o.evalSize,
      seed: o.seed,
    },
    versions,
    daemonCurve,
    daemonAlc: daemonCurve.length > 1 ? alc(daemonCurve) : null,
    baseline,
    requests: {
      classNames: task.classNames,
      counts: countByClass(task.numClasses, requested.values()),
      total: requested.size,
    },
    gallery,
    simulator: live.simulatorStats,
    daemon: live.daemonStatus,
    metricsText: live.metricsText,
    runDir: ctx.runDir,
  };
}

/** How many of `labels` are of each class. */
function countByClass(numClasses: number, labels: Iterable<number>): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const label of labels) counts[label]! += 1;
  return counts;
}

/** Writes out/report.html, out/demo.json and run-<time>/metrics.txt (the /metrics snapshot). */
async function writeOutputs(
  out: string,
  runDir: string,
  result: DemoResult,
  metricsText: string | null,
): Promise<DemoOutcome> {
  const reportPath = path.join(out, 'report.html');
  const jsonPath = path.join(out, 'demo.json');
  await writeFile(reportPath, renderReport(result));
  await writeFile(jsonPath, resultJson(result));
  if (metricsText !== null) await writeFile(path.join(runDir, 'metrics.txt'), metricsText);
  return { result, reportPath, jsonPath };
}
