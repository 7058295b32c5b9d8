/**
 * Fine-tuning windows in the loop, one at a time: triggered by `b` new labels (or the maximum
 * interval), H predicted by the served model (effect `score-window`), planned, trained in the
 * training worker (effect `train`, which reuses a version the store already holds under the same
 * id), judged against its parent on the hold-out, saved (`save-version`), then completed: the
 * labels consumed, the version served if promoted, its message put in the outbox, which a
 * checkpoint makes durable before it is published (durability.ts). A window in flight is
 * abandoned at shutdown or when the instance stops coordinating: it is planned again from the
 * same inputs and finds the same version id.
 */
import {
  holdoutCandidates,
  labelsReducer,
  trainableCandidates,
  trainingExamples,
} from '../../core/labels.js';
import { deriveSeed } from '../../core/rng.js';
import { STRATEGIES } from '../../core/strategies.js';
import { planWindow, promotionDecision, shouldStartWindow, windowId } from '../../core/windows.js';
import { augmentationSpecOf, fineTuneOptionsOf } from '../../config/index.js';
import { encodeModelVersion, type ModelVersionMessage } from '../../messages/index.js';
import type { ScoreBatchResult } from '../../workers/scoring-service.js';
import { scoringInput } from '../stored-candidate.js';
import { requestCheckpoint } from './durability.js';
import { isCoordinator, ownVersion } from './cluster/versions.js';
import type { Effect, Input } from './io.js';
import { maybeRequest } from './requests.js';
import { serve } from './serving.js';
import type { DaemonState, LoopContext, WindowInFlight, WindowResult } from './state.js';

/** Starts a window when one is due (none while one runs; in scale-out, only the coordinator). */
export function maybeWindow(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  if (state.window !== null || state.draining || !isCoordinator(state)) return;
  const t = ctx.config.training;
  const trigger = shouldStartWindow(state.labeling.labels, now, {
    b: ctx.config.selection.b,
    maxIntervalMs: t.windowMaxIntervalMs,
  });
  if (trigger === null) return;
  const generation = ++state.windowGeneration;
  state.window = { generation, trigger, startedAtMs: now, parent: state.served, phase: 'predicting' };
  if (STRATEGIES[t.strategy].trainOn !== 'HQ') return plan(state, ctx, new Map(), out);
  // H needs the serving model's predictions on L.
  const entries = trainableCandidates(state.labeling.labels).map((c) => ({ id: c.id, stored: c.payload }));
  out.push({ type: 'score-window', generation, entries });
}

/** The served model's predictions on L came: plan the window and train. */
export function onWindowPredictions(
  state: DaemonState,
  ctx: LoopContext,
  generation: number,
  results: readonly ScoreBatchResult[],
  _now: number,
  out: Effect[],
): void {
  if (state.window?.generation !== generation) return;
  const predicted = new Map<string, number>();
  for (const result of results) for (const x of result.results) predicted.set(x.id, x.dominantClass);
  plan(state, ctx, predicted, out);
}

function plan(state: DaemonState, ctx: LoopContext, predicted: Map<string, number>, out: Effect[]): void {
  const window = state.window as WindowInFlight;
  const { config } = ctx;
  const t = config.training;
  const strategy = STRATEGIES[t.strategy];
  const labels = state.labeling.labels;
  const p = planWindow(labels, strategy, (id) => predicted.get(id) ?? -1, {
    replayPerClass: t.replayPerClass,
    seed: t.seed,
  });
  labelsReducer(labels, { type: 'window-started', plan: p, now: window.startedAtMs }, ctx.labeling.labels);
  const train = trainingExamples(labels, p.train);
  const holdout = holdoutCandidates(labels);
  const fineTune = fineTuneOptionsOf(t, {
    continual: strategy.continual,
    fromM0: window.parent.version === ctx.m0.version,
  });
  const version = windowId({
    parentVersion: window.parent.version,
    strategy: strategy.code,
    train: p.train,
    trainLabels: p.trainLabels,
    hyperParameters: {
      ...fineTune,
      seed: t.seed,
      m: config.scoring.m,
      augmentation: config.scoring.augmentation,
    },
  });
  Object.assign(window, { plan: p, version, phase: 'training' });
  out.push({
    type: 'train',
    generation: window.generation,
    version,
    job: {
      parent: window.parent.artifact,
      m0: ctx.m0.artifact,
      startFrom: p.startFrom,
      numClasses: config.limits.numClasses,
      train: {
        candidates: train.map((x) => scoringInput(x.id, x.payload)),
        labels: train.map((x) => x.label),
      },
      holdout: {
        candidates: holdout.map((x) => scoringInput(x.id, x.payload)),
        labels: holdout.map((x) => x.label),
      },
      m: config.scoring.m,
      augmentation: augmentationSpecOf(config.scoring),
      seed: deriveSeed(t.seed, 'window', p.seq),
      fineTune,
    },
  });
}

/** Training gave a version (or the store held it): judge it, then save it unless it was stored. */
export function onWindowTrained(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'window-trained' }>,
  out: Effect[],
): void {
  const window = state.window;
  if (window?.generation !== input.generation || window.version === undefined) return;
  window.result = input.result;
  if (input.result.storedStatus !== undefined && input.result.location !== undefined)
    return complete(state, ctx, input.result.location, input.result.storedStatus, input.now, out);
  window.phase = 'saving';
  out.push({
    type: 'save-version',
    generation: window.generation,
    artifact: input.result.artifact,
    meta: {
      version: window.version,
      parent: window.parent.version,
      createdAt: new Date(input.now).toISOString(),
      info: {
        m0: ctx.m0.version,
        status: decide(state, ctx, input.result),
        strategy: STRATEGIES[ctx.config.training.strategy].code,
        holdoutAuc: input.result.holdoutAuc,
        parentHoldoutAuc: input.result.parentHoldoutAuc,
        trainingSeconds: input.result.seconds,
        trainPatches: input.result.trainPatches,
        epochLosses: [...input.result.epochLosses],
      },
    },
  });
}

/** Promoted unless worse than its parent on the hold-out beyond the tolerance, or below the floor. */
function decide(state: DaemonState, ctx: LoopContext, result: WindowResult): 'promoted' | 'rejected' {
  const holdout = holdoutCandidates(state.labeling.labels);
  const positives = holdout.filter((x) => x.label === 1).length;
  const t = ctx.config.training;
  return promotionDecision(
    result.holdoutAuc ?? NaN,
    result.parentHoldoutAuc,
    t.promotionTolerance,
    // The noise of a small binary hold-out widens the tolerance (see promotionDecision).
    ctx.config.limits.numClasses === 2 ? { positives, negatives: holdout.length - positives } : undefined,
    t.promotionMinAuc,
  );
}

export function onVersionSaved(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'version-saved' }>,
  out: Effect[],
): void {
  const window = state.window;
  if (window?.generation !== input.generation || window.result === undefined) return;
  complete(state, ctx, input.location, decide(state, ctx, window.result), input.now, out);
}

/**
 * The window's end: labels consumed, the version served if promoted, its message in the outbox
 * (a checkpoint makes it durable, then it is published: no crash leaves on the topic a version
 * the restored state does not know).
 */
function complete(
  state: DaemonState,
  ctx: LoopContext,
  location: string,
  status: 'promoted' | 'rejected',
  now: number,
  out: Effect[],
): void {
  const window = state.window as Required<WindowInFlight>;
  // Scale-out: only the coordinator publishes versions (it may have stepped down meanwhile).
  if (!isCoordinator(state))
    return onWindowFailed(state, ctx, window.generation, new Error('no longer the coordinator'), now, out);
  const { plan: p, result, version, parent } = window;
  const labels = state.labeling.labels;
  const message = versionMessage(state, ctx, window, location, status, now);
  ownVersion(state, version);
  labelsReducer(labels, { type: 'window-completed', seq: p.seq, now }, ctx.labeling.labels);
  state.windowsDone.push({ version, status });
  state.window = null;
  out.push({
    type: 'emit',
    event: {
      type: 'window',
      version,
      parent: parent.version,
      status,
      trigger: window.trigger,
      q: p.q.length,
      h: p.h.length,
      train: p.train.length,
      holdoutAuc: result.holdoutAuc,
      parentHoldoutAuc: result.parentHoldoutAuc,
      seconds: (now - window.startedAtMs) / 1000,
    },
  });
  if (status === 'promoted') {
    const model = {
      version,
      artifact: result.artifact,
      holdoutAuc: result.holdoutAuc,
      publishedAtMs: Date.parse(message.time),
    };
    // Scale-out: served once the coordinator's write of it succeeds (cluster/requests.ts).
    if (state.cluster) state.servedOncePublished.set(version, model);
    else serve(state, model, out);
  }
  state.outbox.push({
    entry: { topic: ctx.config.kafka.topics.modelVersions, key: version, value: encodeModelVersion(message) },
    durable: false,
    sending: false,
  });
  requestCheckpoint(state, ctx, now, out);
  maybeRequest(state, ctx, now, out);
}

function versionMessage(
  state: DaemonState,
  ctx: LoopContext,
  window: Required<WindowInFlight>,
  location: string,
  status: 'promoted' | 'rejected',
  now: number,
): Omit<ModelVersionMessage, 'schema'> {
  const { plan: p, result } = window;
  return {
    version: window.version,
    parent: window.parent.version,
    m0: ctx.m0.version,
    strategy: STRATEGIES[ctx.config.training.strategy].code,
    status,
    counts: {
      q: p.q.length,
      h: p.h.length,
      labeled: trainableCandidates(state.labeling.labels).length,
      holdout: holdoutCandidates(state.labeling.labels).length,
    },
    trainedOn: [...p.train],
    metrics: {
      holdoutAuc: result.holdoutAuc,
      parentHoldoutAuc: result.parentHoldoutAuc,
      trainingSeconds: result.seconds,
      trainPatches: result.trainPatches,
      finalLoss: result.epochLosses.at(-1) ?? null,
    },
    artifact: { location, sha256: result.artifact.sha256 },
    windowStartedAt: new Date(window.startedAtMs).toISOString(),
    time: new Date(now).toISOString(),
  };
}

/** A window failed (training, saving, scoring H): it is planned again from the same inputs. */
export function onWindowFailed(
  state: DaemonState,
  ctx: LoopContext,
  generation: number,
  error: unknown,
  now: number,
  out: Effect[],
): void {
  if (state.window?.generation !== generation) return;
  abandonWindow(state, ctx, out, null);
  out.push({ type: 'emit', event: { type: 'window-failed', err: error } });
  maybeRequest(state, ctx, now, out);
}

/**
 * Abandons the window in flight (shutdown, stepping down; a failure, reason null, reports itself):
 * its outcome will be ignored.
 */
export function abandonWindow(
  state: DaemonState,
  ctx: LoopContext,
  out: Effect[],
  reason: 'shutdown' | 'stepped-down' | null,
): void {
  const window = state.window;
  if (window === null) return;
  if (reason !== null && window.plan !== undefined)
    out.push({ type: 'emit', event: { type: 'window-abandoned', seq: window.plan.seq, reason } });
  if (window.plan !== undefined && state.labeling.labels.inFlight?.seq === window.plan.seq)
    labelsReducer(
      state.labeling.labels,
      { type: 'window-abandoned', seq: window.plan.seq },
      ctx.labeling.labels,
    );
  state.window = null;
  state.windowGeneration++;
  out.push({ type: 'abandon-window', generation: window.generation });
}
