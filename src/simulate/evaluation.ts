/**
 * The simulator's own measure of a model version: AUC (macro one-vs-rest when K > 2) on a fixed
 * evaluation set, a subsample of the task's validation split that the daemon never sees (it is
 * disjoint from the streamed pool). Patches are made as the daemon makes them for image
 * candidates: the same augmentation spec, m and patch seed, per candidate id.
 *
 * This module loads tfjs; the simulator imports it only when evaluation is on.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { macroAuc } from '../core/metrics.js';
import { generatePatches, resolveAugmentationSpec, type AugmentationSpec } from '../core/patches.js';
import { imageAt } from '../data/image-set.js';
import type { Task } from '../data/task.js';
import { initBackend, tf, type BackendRequest } from '../model/backend.js';
import { loadModelFromPath } from '../model/model-store.js';
import { predictProbs } from '../model/scoring.js';
import { evaluationPositions } from './evaluation-set.js';

/** Options of {@link createEvaluator}. */
export interface EvaluatorOptions {
  task: Task;
  /** Candidates drawn from the validation split (all when larger). */
  size: number;
  /** The daemon's augmentation for image candidates (preset with its m). */
  augmentation: AugmentationSpec;
  /** The daemon's `scoring.patchSeed`. */
  patchSeed: number;
  /** tfjs backend (initialized once per process). Default 'auto'. */
  backend?: BackendRequest;
  /** Candidates predicted per tensor. Default 128. */
  chunk?: number;
}

/** One evaluation. */
export interface EvaluationResult {
  /** AUC in [0, 1]; null when the evaluation set lacks a class. */
  auc: number | null;
  /** Candidates evaluated. */
  size: number;
  ms: number;
}

export interface Evaluator {
  /** The tfjs backend in use. */
  readonly backend: string;
  /** Candidates in the evaluation set. */
  readonly size: number;
  /**
   * Loads the model in `dir` (checking `sha256` when given) and measures it. `aborted` is asked
   * between chunks; when it says yes the evaluation stops with an error.
   *
   * @throws ModelArtifactError for a missing, malformed or altered artifact; Error for a model
   * whose input or output does not fit the task.
   */
  evaluate(dir: string, sha256?: string, aborted?: () => boolean): Promise<EvaluationResult>;
}

/** Thrown when an evaluation is abandoned because the simulator stops. */
export class EvaluationAbortedError extends Error {
  readonly code = 'EVALUATION_ABORTED';
  readonly retryable = true;
  override readonly name = 'EvaluationAbortedError';
}

function checkModel(model: tfl.LayersModel, shape: [number, number, number], numClasses: number): void {
  const input = model.inputs[0]?.shape;
  const [, h, w, c] = input ?? [];
  if (input?.length !== 4 || h !== shape[0] || w !== shape[1] || c !== shape[2]) {
    throw new Error(
      `the model takes input ${JSON.stringify(input)}, but the patches are [null, ${shape.join(', ')}]`,
    );
  }
  const output = model.outputs[0]?.shape;
  if (output?.length !== 2 || output[1] !== numClasses) {
    throw new Error(`the model outputs ${JSON.stringify(output)}, but the task has ${numClasses} classes`);
  }
}

/** Initializes the tfjs backend and fixes the evaluation set. */
export async function createEvaluator(options: EvaluatorOptions): Promise<Evaluator> {
  const { task, augmentation, patchSeed } = options;
  const info = await initBackend(options.backend ?? 'auto');
  const chunk = options.chunk ?? 128;
  const split = task.validation;
  const positions = evaluationPositions(split, options.size);
  const labels = positions.map((p) => split.labels[p]!);
  const set = task.set;
  const m = resolveAugmentationSpec(augmentation).m;
  const side = augmentation.size ?? set.height;
  const patchShape: [number, number, number] = [side, side, set.channels];
  const imageShape = { height: set.height, width: set.width, channels: set.channels };
  const perCandidate = m * side * side * set.channels;

  const evaluate = async (dir: string, sha256?: string, aborted?: () => boolean) => {
    const started = performance.now();
    const { model } = await loadModelFromPath(dir, sha256);
    try {
      checkModel(model, patchShape, task.numClasses);
      const probs: number[][] = [];
      for (let start = 0; start < positions.length; start += chunk) {
        if (aborted?.() === true) throw new EvaluationAbortedError('evaluation abandoned: stopping');
        const part = positions.slice(start, start + chunk);
        const patches = new Float32Array(part.length * perCandidate);
        part.forEach((p, i) => {
          const out = generatePatches(imageAt(set, split.indices[p]!), imageShape, augmentation, {
            candidateId: split.ids[p]!,
            seed: patchSeed,
          });
          patches.set(out, i * perCandidate);
        });
        const x = tf.tensor4d(patches, [part.length * m, ...patchShape]);
        const mean = tf.tidy(() =>
          tf.mean(tf.reshape(predictProbs(model, x), [part.length, m, task.numClasses]), 1),
        );
        try {
          const flat = await mean.data();
          for (let i = 0; i < part.length; i++) {
            probs.push(Array.from(flat.subarray(i * task.numClasses, (i + 1) * task.numClasses)));
          }
        } finally {
          tf.dispose([x, mean]);
        }
      }
      const auc = macroAuc(probs, labels);
      return {
        auc: Number.isNaN(auc) ? null : auc,
        size: positions.length,
        ms: performance.now() - started,
      };
    } finally {
      model.dispose();
    }
  };
  return { backend: info.name, size: positions.length, evaluate };
}
