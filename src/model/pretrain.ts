/**
 * The default pre-trained model M0: the small CNN trained on MNIST digits (another domain than
 * the clothing or medical target, as ImageNet is for the paper's medical tasks), seeded.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';
import { buildCnn } from './cnn.js';
import { fineTune, type FineTuneOptions } from './fine-tune.js';
import { saveModelToDir, loadModelFromPath, type StoredModel } from './model-store.js';
import { predictProbs } from './scoring.js';
import type { ImageSet } from '../data/image-set.js';

export interface PretrainOptions {
  seed: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Images held out (the last ones of each class) to report accuracy. */
  holdoutPerClass: number;
}

export const DEFAULT_PRETRAIN: PretrainOptions = {
  seed: 7,
  epochs: 3,
  batchSize: 64,
  learningRate: 1e-3,
  holdoutPerClass: 100,
};

export interface PretrainResult {
  stored: StoredModel;
  holdoutAccuracy: number;
  trainImages: number;
  seconds: number;
}

/** Images of `set` as float patches in [0, 1]. */
function toFloat(set: ImageSet, indices: number[]): Float32Array {
  const size = set.height * set.width * set.channels;
  const out = new Float32Array(indices.length * size);
  indices.forEach((idx, i) => {
    const img = set.images.subarray(idx * size, (idx + 1) * size);
    for (let p = 0; p < size; p++) out[i * size + p] = (img[p] ?? 0) / 255;
  });
  return out;
}

/** Trains M0 on `set` (all its classes) and saves it to `dir` as a tfjs LayersModel. */
export async function pretrain(
  set: ImageSet,
  dir: string,
  options: Partial<PretrainOptions> = {},
  onEpoch?: (epoch: number, loss: number) => void,
): Promise<PretrainResult> {
  const o = { ...DEFAULT_PRETRAIN, ...options };
  const started = performance.now();
  const numClasses = set.classNames.length;
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < set.count; i++) {
    const y = set.labels[i] ?? 0;
    const list = byClass.get(y) ?? [];
    list.push(i);
    byClass.set(y, list);
  }
  const train: number[] = [];
  const holdout: number[] = [];
  for (const list of byClass.values()) {
    train.push(...list.slice(0, Math.max(0, list.length - o.holdoutPerClass)));
    holdout.push(...list.slice(Math.max(0, list.length - o.holdoutPerClass)));
  }
  const model = buildCnn({
    height: set.height,
    width: set.width,
    channels: set.channels,
    numClasses,
    seed: o.seed,
  });
  const ft: Partial<FineTuneOptions> = {
    optimizer: 'adam',
    learningRate: o.learningRate,
    headLearningRateMultiplier: 1,
    gamma: 1,
    epochs: o.epochs,
    batchSize: o.batchSize,
    seed: o.seed,
  };
  await fineTune(
    model,
    {
      patches: toFloat(set, train),
      labels: Int32Array.from(train, (i) => set.labels[i] ?? 0),
      count: train.length,
      patchShape: [set.height, set.width, set.channels],
    },
    ft,
    onEpoch,
  );
  const x = tf.tensor4d(toFloat(set, holdout), [holdout.length, set.height, set.width, set.channels]);
  const predicted = tf.tidy(() => tf.argMax(predictProbs(model, x), 1));
  const pred = await predicted.data();
  tf.dispose([x, predicted]);
  let correct = 0;
  holdout.forEach((idx, i) => {
    if (pred[i] === set.labels[idx]) correct++;
  });
  const holdoutAccuracy = holdout.length > 0 ? correct / holdout.length : NaN;
  const stored = await saveModelToDir(model, dir, {
    version: 'm0',
    parent: null,
    createdAt: new Date().toISOString(),
    info: {
      dataset: set.name,
      classes: set.classNames,
      seed: o.seed,
      epochs: o.epochs,
      trainImages: train.length,
      holdoutAccuracy,
    },
  });
  model.dispose();
  return {
    stored,
    holdoutAccuracy,
    trainImages: train.length,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Loads M0 from `dir` (verifying its checksum). */
export async function loadM0(dir: string): Promise<tfl.LayersModel> {
  return (await loadModelFromPath(dir)).model;
}
