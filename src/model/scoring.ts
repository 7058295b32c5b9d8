/**
 * Batched scoring on the tfjs backend: the patches of many candidates are predicted in one pass,
 * and the worthiness score of every candidate (dominant class, majority top-k, entropy,
 * diversity; DESIGN.md) is computed with tensor ops, so the only read-back is the final scores.
 * This is the path that runs on the GPU where one exists; `scoreCandidate` in the core is the
 * reference it must agree with.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { HEAD_LAYER_NAME } from './cnn.js';
import { resolveScoreOptions, type ScoreOptions } from '../core/score.js';
import { applyLayers, type SplitModel } from './fine-tune-depth.js';

/** Scores of a batch of candidates, one entry per candidate. */
export interface BatchScores {
  score: Float32Array;
  entropy: Float32Array;
  diversity: Float32Array;
  dominantClass: Int32Array;
  /** Mean patch probabilities, [candidates x classes] row-major: the candidate's prediction. */
  meanProbs: Float32Array;
  numClasses: number;
}

/** Predicts class probabilities of `count` patches in batches; returns a [count, K] tensor. */
export function predictProbs(model: tfl.LayersModel, patches: tf.Tensor4D, batchSize = 512): tf.Tensor2D {
  return tf.tidy(() => {
    const n = patches.shape[0];
    if (n <= batchSize) return model.predict(patches) as tf.Tensor2D;
    const parts: tf.Tensor2D[] = [];
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const slice = tf.slice(patches, [start, 0, 0, 0], [size, -1, -1, -1]);
      parts.push(model.predict(slice) as tf.Tensor2D);
    }
    return tf.concat(parts, 0);
  });
}

/**
 * Scores `[candidates, m, K]` patch probabilities as tensors. Exposed apart from the model so it
 * can be checked against the core reference on arbitrary probabilities.
 */
export function scoreProbabilityTensor(
  probs: tf.Tensor3D,
  options: ScoreOptions = {},
): {
  score: tf.Tensor1D;
  entropy: tf.Tensor1D;
  diversity: tf.Tensor1D;
  dominantClass: tf.Tensor1D;
  meanProbs: tf.Tensor2D;
} {
  const o = resolveScoreOptions(options);
  const [n, m, numClasses] = probs.shape;
  const k = o.majority ? Math.max(1, Math.ceil(o.alpha * m)) : m;
  return tf.tidy(() => {
    const meanProbs = tf.mean(probs, 1) as tf.Tensor2D; // [n, K]
    const dominantClass = tf.argMax(meanProbs, 1) as tf.Tensor1D; // [n]
    let kept: tf.Tensor3D = probs;
    if (k < m) {
      // Probability of the dominant class for each patch: [n, m].
      const mask = tf.reshape(tf.cast(tf.oneHot(dominantClass, numClasses), 'float32'), [n, 1, numClasses]);
      const domProb = tf.sum(tf.mul(probs, mask), 2) as tf.Tensor2D;
      const { indices } = tf.topk(domProb, k, true); // [n, k]
      // Flat row indices (candidate * m + patch): a plain axis-0 gather, because batched gather
      // (batchDims = 1) is wrong on the wasm backend of tfjs 4.22.
      const rowsBase = tf.reshape(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(m, 'int32')), [n, 1]);
      const flat = tf.reshape(tf.add(indices, rowsBase), [n * k]);
      kept = tf.reshape(tf.gather(tf.reshape(probs, [n * m, numClasses]), flat), [n, k, numClasses]);
    }
    const logp = tf.log(tf.clipByValue(kept, o.epsilon, 1));
    const entropy = tf.div(tf.neg(tf.sum(tf.mul(kept, logp), [1, 2])), k) as tf.Tensor1D;
    // sum_{j<l} (p_j - p_l)(q_j - q_l) = k * sum_j (p_j - mean p)(q_j - mean q), per class: the
    // centred form avoids the cancellation of k*sum(pq) - sum(p)sum(q) in float32.
    const pc = tf.sub(kept, tf.mean(kept, 1, true));
    const qc = tf.sub(logp, tf.mean(logp, 1, true));
    const diversity = tf.relu(tf.mul(tf.sum(tf.mul(pc, qc), [1, 2]), k)) as tf.Tensor1D;
    const score = tf.add(
      tf.mul(entropy, o.lambdaEntropy),
      tf.mul(diversity, o.lambdaDiversity),
    ) as tf.Tensor1D;
    return { score, entropy, diversity, dominantClass, meanProbs };
  });
}

/**
 * Scores `candidates` candidates of `m` patches each (`patches` is [candidates * m, h, w, c],
 * candidate-major) with `model`, reading back only the per-candidate results.
 */
export async function scoreCandidatesBatch(
  model: tfl.LayersModel,
  patches: tf.Tensor4D,
  m: number,
  options: ScoreOptions = {},
  batchSize = 512,
): Promise<BatchScores> {
  const probs = predictProbs(model, patches, batchSize);
  try {
    return await scorePatchProbabilities(probs, m, options);
  } finally {
    probs.dispose();
  }
}

/**
 * Runs `patches` through a model split at its cut: the trunk (the frozen layers) then the top.
 * Returns both the features at the cut, [count, featureSize], and the probabilities, [count, K];
 * the caller disposes both.
 */
export function predictThroughCut(
  split: SplitModel,
  patches: tf.Tensor4D,
  batchSize = 512,
): { features: tf.Tensor2D; probs: tf.Tensor2D } {
  const n = patches.shape[0];
  const features = tf.tidy(() => {
    const parts: tf.Tensor2D[] = [];
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const slice = tf.slice(patches, [start, 0, 0, 0], [size, -1, -1, -1]);
      parts.push(tf.reshape(applyLayers(split.trunk, slice), [size, split.featureSize]));
    }
    return parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
  });
  return { features, probs: predictFromFeatures(split, features, batchSize) };
}

/** Runs features at the cut, [count, featureSize], through the layers above it: [count, K]. */
export function predictFromFeatures(split: SplitModel, features: tf.Tensor2D, batchSize = 4096): tf.Tensor2D {
  const cutShape = split.trunk.at(-1)!.outputShape as (number | null)[];
  return tf.tidy(() => {
    const n = features.shape[0];
    const parts: tf.Tensor2D[] = [];
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const slice = tf.reshape(tf.slice(features, [start, 0], [size, -1]), [
        size,
        ...cutShape.slice(1),
      ] as number[]);
      parts.push(applyLayers(split.top, slice) as tf.Tensor2D);
    }
    return parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
  });
}

/**
 * Scores patch probabilities, [candidates * m, K] candidate-major, reading back only the
 * per-candidate results. `probs` is left to the caller.
 */
export async function scorePatchProbabilities(
  probs: tf.Tensor2D,
  m: number,
  options: ScoreOptions = {},
): Promise<BatchScores> {
  const total = probs.shape[0];
  if (m < 1 || total % m !== 0) throw new Error(`patch count ${total} is not a multiple of m = ${m}`);
  const n = total / m;
  const numClasses = probs.shape[1];
  const out = tf.tidy(() => scoreProbabilityTensor(tf.reshape(probs, [n, m, numClasses]), options));
  try {
    const [score, entropy, diversity, dominant, meanProbs] = await Promise.all([
      out.score.data(),
      out.entropy.data(),
      out.diversity.data(),
      out.dominantClass.data(),
      out.meanProbs.data(),
    ]);
    return {
      score: Float32Array.from(score),
      entropy: Float32Array.from(entropy),
      diversity: Float32Array.from(diversity),
      dominantClass: Int32Array.from(dominant),
      meanProbs: Float32Array.from(meanProbs),
      numClasses: out.meanProbs.shape[1],
    };
  } finally {
    tf.dispose([out.score, out.entropy, out.diversity, out.dominantClass, out.meanProbs]);
  }
}

/**
 * A model that maps patches to the activations the head reads (the model's feature space), or
 * the second-to-last layer's output when the model has no layer named `head`. Shares weights
 * with `model`: dispose neither while the other is in use (disposing this one frees nothing).
 */
export function featureModel(model: tfl.LayersModel): tfl.LayersModel {
  const layers = model.layers;
  const head = layers.find((l) => l.name === HEAD_LAYER_NAME) ?? layers[layers.length - 1];
  if (head === undefined) throw new Error('model has no layers');
  const input = head.input;
  if (Array.isArray(input)) throw new Error(`layer ${head.name} has several inputs; no single feature space`);
  return tfl.model({ inputs: model.inputs, outputs: input });
}

/**
 * Mean feature vector (see {@link featureModel}) over the m patches of each candidate, row-major
 * [candidates x features]; `patches` is [candidates * m, h, w, c], candidate-major.
 */
export async function meanCandidateFeatures(
  features: tfl.LayersModel,
  patches: tf.Tensor4D,
  m: number,
  batchSize = 512,
): Promise<{ values: Float32Array; dim: number }> {
  const total = patches.shape[0];
  if (m < 1 || total % m !== 0) throw new Error(`patch count ${total} is not a multiple of m = ${m}`);
  const mean = tf.tidy(() => {
    const f = predictProbs(features, patches, batchSize); // [total, dim] (any 2-D output)
    return tf.mean(tf.reshape(f, [total / m, m, -1]), 1) as tf.Tensor2D;
  });
  try {
    return { values: Float32Array.from(await mean.data()), dim: mean.shape[1] };
  } finally {
    mean.dispose();
  }
}
