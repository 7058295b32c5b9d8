/**
 * One run of the paper's Algorithm 1 on a replayed, labeled image set: start from M0 and an
 * empty labeled set; at each step score the unlabeled pool, select b, reveal their labels (the
 * oracle), find H, fine-tune per the strategy, and evaluate on a fixed split.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { createRng, deriveSeed, shuffleInPlace } from '../core/rng.js';
import { selectForLabeling, shortlistOf } from '../core/select.js';
import { STRATEGIES, trainingSet, type StrategyCode } from '../core/strategies.js';
import { macroAuc, alc } from '../core/metrics.js';
import { HEAD_LAYER_NAME, replaceHead } from '../model/cnn.js';
import { fineTune, type FineTuneOptions } from '../model/fine-tune.js';
import { deserializeModel, serializeModel } from '../model/model-store.js';
import { featureModel, meanCandidateFeatures, predictProbs, scoreCandidatesBatch } from '../model/scoring.js';
import { criterionName, criterionScoreOptions, type Criterion, type LoopPolicy } from './policy.js';

/** Candidates with their patches, laid out candidate-major: [count, m, h, w, c]. */
export interface CandidateSet {
  ids: string[];
  labels: Int32Array;
  patches: Float32Array;
  count: number;
}

/** Everything a trajectory needs that does not depend on the strategy. */
export interface PreparedData {
  numClasses: number;
  m: number;
  patchShape: [number, number, number];
  pool: CandidateSet;
  evaluation: CandidateSet;
  evaluationSplit: 'validation' | 'test';
}

export interface TrajectoryConfig {
  strategy: StrategyCode;
  criterion: Criterion;
  policy: LoopPolicy;
  policyName: string;
  b: number;
  steps: number;
  omega: number;
  alpha: number;
  seed: number;
  fineTune: Omit<FineTuneOptions, 'seed'>;
  /** Candidates per scoring pass (bounds the tensor size). */
  scoreChunk: number;
}

export interface StepRecord {
  step: number;
  labels: number;
  auc: number;
  fineTuneSeconds: number;
  scoreSeconds: number;
  patchesScored: number;
  q: number;
  h: number;
  replayed: number;
  trainCandidates: number;
  /** How many of Q were of each class (the paper's Fig. 8). */
  classCountsInQ: number[];
  selection: 'random' | 'active';
}

export interface TrajectoryResult {
  strategy: StrategyCode;
  criterion: string;
  policy: string;
  seed: number;
  evaluationSplit: 'validation' | 'test';
  curve: { labels: number; auc: number }[];
  steps: StepRecord[];
  /** Area under the curve from the first to the last step (the 0-label point excluded). */
  alc: number;
  finalAuc: number;
  seconds: number;
}

const PATCH_SIZE = (d: PreparedData) => d.patchShape[0] * d.patchShape[1] * d.patchShape[2];

/** Copies the patches of `indices` (candidates of `set`) into one contiguous array. */
export function gatherPatches(d: PreparedData, set: CandidateSet, indices: readonly number[]): Float32Array {
  const per = d.m * PATCH_SIZE(d);
  const out = new Float32Array(indices.length * per);
  indices.forEach((idx, i) => out.set(set.patches.subarray(idx * per, (idx + 1) * per), i * per));
  return out;
}

function patchTensor(d: PreparedData, patches: Float32Array): tf.Tensor4D {
  const [h, w, c] = d.patchShape;
  return tf.tensor4d(patches, [patches.length / (h * w * c), h, w, c]);
}

/** Mean patch probabilities of candidates, [count x K] row-major. */
export async function predictCandidates(
  model: tfl.LayersModel,
  d: PreparedData,
  set: CandidateSet,
  indices: readonly number[],
  chunk: number,
): Promise<Float32Array> {
  const out = new Float32Array(indices.length * d.numClasses);
  for (let start = 0; start < indices.length; start += chunk) {
    const part = indices.slice(start, start + chunk);
    const x = patchTensor(d, gatherPatches(d, set, part));
    const mean = tf.tidy(() =>
      tf.mean(tf.reshape(predictProbs(model, x), [part.length, d.m, d.numClasses]), 1),
    );
    out.set(await mean.data(), start * d.numClasses);
    tf.dispose([x, mean]);
  }
  return out;
}

function rows(flat: Float32Array, k: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < flat.length; i += k) out.push(Array.from(flat.subarray(i, i + k)));
  return out;
}

function argmaxRow(flat: Float32Array, i: number, k: number): number {
  let best = 0;
  for (let y = 1; y < k; y++) if ((flat[i * k + y] ?? 0) > (flat[i * k + best] ?? 0)) best = y;
  return best;
}

/** AUC (macro one-vs-rest when K > 2) of `model` on the evaluation split. */
export async function evaluate(model: tfl.LayersModel, d: PreparedData, chunk: number): Promise<number> {
  const all = Array.from({ length: d.evaluation.count }, (_, i) => i);
  const probs = await predictCandidates(model, d, d.evaluation, all, chunk);
  return macroAuc(rows(probs, d.numClasses), Array.from(d.evaluation.labels));
}

/** Mean feature vectors of the shortlisted candidates, keyed by their index in `candidates`. */
async function shortlistFeatures(
  model: tfl.LayersModel,
  d: PreparedData,
  candidates: readonly number[],
  shortlist: readonly number[],
  chunk: number,
): Promise<Map<number, Float32Array>> {
  const features = featureModel(model);
  const out = new Map<number, Float32Array>();
  for (let s = 0; s < shortlist.length; s += chunk) {
    const part = shortlist.slice(s, s + chunk);
    const x = patchTensor(
      d,
      gatherPatches(
        d,
        d.pool,
        part.map((i) => candidates[i]!),
      ),
    );
    const { values, dim } = await meanCandidateFeatures(features, x, d.m);
    x.dispose();
    part.forEach((i, k) => out.set(i, values.subarray(k * dim, (k + 1) * dim)));
  }
  return out;
}

/** Runs one trajectory. `m0` is not modified; `onStep` reports progress. */
export async function runTrajectory(
  m0: tfl.LayersModel,
  d: PreparedData,
  cfg: TrajectoryConfig,
  onStep?: (record: StepRecord) => void,
): Promise<TrajectoryResult> {
  const started = performance.now();
  const strategy = STRATEGIES[cfg.strategy];
  const scoreOptions = criterionScoreOptions(cfg.criterion, cfg.alpha);
  const selectRng = createRng(deriveSeed('select', cfg.seed));

  // M0 with a fresh task head, serialized once: "start from M0" restores exactly this.
  const m0Copy = await (async () => {
    const s = await serializeModel(m0);
    return deserializeModel(s.topology, s.weightSpecs, s.weights);
  })();
  const start = replaceHead(m0Copy, d.numClasses, deriveSeed('head', cfg.seed));
  const startArtifacts = await serializeModel(start);
  // `start` shares all but the head with `m0Copy`: dispose it, then the head only m0Copy holds.
  start.dispose();
  tf.dispose(m0Copy.getLayer(HEAD_LAYER_NAME).getWeights());
  const freshStart = () =>
    deserializeModel(startArtifacts.topology, startArtifacts.weightSpecs, startArtifacts.weights);

  let model = await freshStart();
  const unlabeled = new Set<number>(Array.from({ length: d.pool.count }, (_, i) => i));
  let labeled: number[] = [];
  const curve: { labels: number; auc: number }[] = [
    { labels: 0, auc: await evaluate(model, d, cfg.scoreChunk) },
  ];
  const steps: StepRecord[] = [];

  for (let step = 1; step <= cfg.steps && unlabeled.size > 0; step++) {
    const candidates = [...unlabeled];
    let q: number[];
    let scoreSeconds = 0;
    let patchesScored = 0;
    const activeNow = strategy.selection === 'active' && step > cfg.policy.randomWarmupSteps;
    if (activeNow) {
      const t0 = performance.now();
      const scores = new Float32Array(candidates.length);
      for (let s = 0; s < candidates.length; s += cfg.scoreChunk) {
        const part = candidates.slice(s, s + cfg.scoreChunk);
        const x = patchTensor(d, gatherPatches(d, d.pool, part));
        const r = await scoreCandidatesBatch(model, x, d.m, scoreOptions);
        x.dispose();
        scores.set(r.score, s);
      }
      const interDiversity = cfg.policy.interDiversity ?? 0;
      const features =
        interDiversity > 0
          ? await shortlistFeatures(
              model,
              d,
              candidates,
              shortlistOf(Array.from(scores), cfg.b, cfg.omega),
              cfg.scoreChunk,
            )
          : undefined;
      scoreSeconds = (performance.now() - t0) / 1000;
      patchesScored = candidates.length * d.m;
      const sel = selectForLabeling(Array.from(scores), cfg.b, {
        omega: cfg.omega,
        randomness: cfg.criterion.randomness,
        rng: selectRng,
        interDiversity,
        ...(features ? { features } : {}),
      });
      q = sel.indices.map((i) => candidates[i]!);
    } else {
      q = shuffleInPlace(candidates, selectRng).slice(0, cfg.b);
    }

    // H: labeled candidates the current model misclassifies (only the HQ strategy trains on it).
    const h: number[] = [];
    const correct: number[] = [];
    if (labeled.length > 0 && (strategy.trainOn === 'HQ' || cfg.policy.replayPerClass > 0)) {
      const probs = await predictCandidates(model, d, d.pool, labeled, cfg.scoreChunk);
      labeled.forEach((idx, i) => {
        (argmaxRow(probs, i, d.numClasses) === d.pool.labels[idx] ? correct : h).push(idx);
      });
    }
    let train = trainingSet(strategy, { labeled, newlyLabeled: q, misclassified: h });
    let replayed = 0;
    if (strategy.continual && cfg.policy.replayPerClass > 0 && correct.length > 0) {
      const replayRng = createRng(deriveSeed('replay', cfg.seed, step));
      const inTrain = new Set(train);
      const byClass = new Map<number, number[]>();
      for (const idx of shuffleInPlace([...correct], replayRng)) {
        if (inTrain.has(idx)) continue;
        const y = d.pool.labels[idx] ?? 0;
        const list = byClass.get(y) ?? [];
        if (list.length < cfg.policy.replayPerClass) list.push(idx);
        byClass.set(y, list);
      }
      const extra = [...byClass.values()].flat();
      replayed = extra.length;
      train = [...train, ...extra];
    }

    // Start model and learning rate.
    const continuing = strategy.startFrom === 'previous' && step > 1;
    if (!continuing) {
      model.dispose();
      model = await freshStart();
    }
    const lrFactor =
      strategy.continual && (continuing || !cfg.policy.coldStartFullLr) ? cfg.policy.continualLrFactor : 1;
    const perCandidate = d.m;
    const labels = new Int32Array(train.length * perCandidate);
    train.forEach((idx, i) => labels.fill(d.pool.labels[idx] ?? 0, i * perCandidate, (i + 1) * perCandidate));
    const ft = await fineTune(
      model,
      {
        patches: gatherPatches(d, d.pool, train),
        labels,
        count: train.length * perCandidate,
        patchShape: d.patchShape,
      },
      {
        ...cfg.fineTune,
        learningRate: cfg.fineTune.learningRate * lrFactor,
        classBalanced: cfg.policy.classBalanced,
        seed: deriveSeed('fine-tune', cfg.seed, step),
      },
    );

    for (const idx of q) unlabeled.delete(idx);
    labeled = [...labeled, ...q];
    const auc = await evaluate(model, d, cfg.scoreChunk);
    curve.push({ labels: labeled.length, auc });
    const classCountsInQ = new Array<number>(d.numClasses).fill(0);
    for (const idx of q) {
      const y = d.pool.labels[idx] ?? 0;
      classCountsInQ[y] = (classCountsInQ[y] ?? 0) + 1;
    }
    const record: StepRecord = {
      step,
      labels: labeled.length,
      auc,
      fineTuneSeconds: ft.seconds,
      scoreSeconds,
      patchesScored,
      q: q.length,
      h: h.length,
      replayed,
      trainCandidates: train.length,
      classCountsInQ,
      selection: activeNow ? 'active' : 'random',
    };
    steps.push(record);
    onStep?.(record);
  }
  model.dispose();
  const afterZero = curve.slice(1);
  return {
    strategy: cfg.strategy,
    criterion: strategy.selection === 'random' ? 'random' : criterionName(cfg.criterion),
    policy: cfg.policyName,
    seed: cfg.seed,
    evaluationSplit: d.evaluationSplit,
    curve,
    steps,
    alc: afterZero.length > 0 ? alc(afterZero) : NaN,
    finalAuc: curve.at(-1)?.auc ?? NaN,
    seconds: (performance.now() - started) / 1000,
  };
}
