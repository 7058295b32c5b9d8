/**
 * Fine-tuning a LayersModel on candidate patches, with the paper's recipe (Table 3): a larger
 * learning rate for the last layer, momentum SGD (or Adam), a per-epoch decay gamma. A custom
 * loop instead of `model.fit` because tfjs optimisers have one learning rate, and the head needs
 * its own.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { HEAD_LAYER_NAME } from './cnn.js';
import { frozenVariableNames, type FineTuneDepth } from './fine-tune-depth.js';

export type OptimizerName = 'sgd-momentum' | 'adam';

/** Every knob of one fine-tuning run; {@link DEFAULT_FINE_TUNE} holds the defaults. */
export interface FineTuneOptions {
  optimizer: OptimizerName;
  /** Learning rate of every layer but the head. */
  learningRate: number;
  /** The head's learning rate is this multiple of `learningRate` (paper: 10). */
  headLearningRateMultiplier: number;
  momentum: number;
  /** Learning-rate decay per epoch (paper: 0.95). */
  gamma: number;
  epochs: number;
  batchSize: number;
  /** Seed of the batch order. */
  seed: number;
  /**
   * Weigh each class's loss by n / (K * n_class) within the training set, so a 1:9 training set
   * does not teach the model to call everything negative.
   */
  classBalanced: boolean;
  /**
   * Weight layers fine-tuned, counted from the output ('all': every one). The layers below stay
   * as they came, so their features can be cached (see fine-tune-depth.ts).
   */
  depth: FineTuneDepth;
}

/**
 * Defaults chosen for the small CNN on 28x28 patches (Adam; the paper's AlexNet used momentum
 * 0.9 at 1e-4, which moves a small fresh network too slowly).
 */
export const DEFAULT_FINE_TUNE: FineTuneOptions = {
  optimizer: 'adam',
  learningRate: 1e-3,
  headLearningRateMultiplier: 10,
  momentum: 0.9,
  gamma: 0.95,
  epochs: 5,
  batchSize: 64,
  seed: 1,
  classBalanced: false,
  depth: 'all',
};

/** Training data: `count` patches of `patchShape`, row-major, each with a class label. */
export interface PatchBatch {
  patches: Float32Array;
  labels: Int32Array;
  count: number;
  patchShape: [number, number, number];
}

export interface FineTuneResult {
  /** Mean training loss per epoch. */
  epochLosses: number[];
  seconds: number;
  samples: number;
}

type SettableOptimizer = tf.Optimizer & { learningRate: number; setLearningRate?: (lr: number) => void };

function makeOptimizer(name: OptimizerName, lr: number, momentum: number): SettableOptimizer {
  const opt = name === 'adam' ? tf.train.adam(lr) : tf.train.momentum(lr, momentum);
  return opt as unknown as SettableOptimizer;
}

function setLearningRate(opt: SettableOptimizer, lr: number): void {
  if (typeof opt.setLearningRate === 'function') opt.setLearningRate(lr);
  else opt.learningRate = lr;
}

/** Mulberry32: the batch order's seeded generator (kept local: one use, no state shared). */
function shuffled(n: number, seed: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const tmp = order[i]!;
    order[i] = order[j]!;
    order[j] = tmp;
  }
  return order;
}

/** Per-class loss weights n / (K n_k) of a label vector (0 for absent classes). */
export function classBalanceWeights(labels: Int32Array, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const y of labels) counts[y] = (counts[y] ?? 0) + 1;
  const present = counts.filter((c) => c > 0).length;
  return counts.map((c) => (c > 0 ? labels.length / (present * c) : 0));
}

/**
 * Fine-tunes `model` in place on `data`. Resolves once every epoch has run; tensors created
 * here are all disposed.
 */
export async function fineTune(
  model: tfl.LayersModel,
  data: PatchBatch,
  options: Partial<FineTuneOptions> = {},
  onEpoch?: (epoch: number, loss: number) => void,
): Promise<FineTuneResult> {
  const opts: FineTuneOptions = { ...DEFAULT_FINE_TUNE, ...options };
  const started = performance.now();
  const numClasses = model.outputs[0]?.shape.at(-1);
  if (typeof numClasses !== 'number') throw new Error('model output has no class dimension');
  if (data.count === 0) return { epochLosses: [], seconds: 0, samples: 0 };
  const [h, w, c] = data.patchShape;
  if (data.patches.length !== data.count * h * w * c || data.labels.length !== data.count) {
    throw new Error('fine-tune data: patches/labels do not match count x patch shape');
  }
  for (const y of data.labels) {
    if (y < 0 || y >= numClasses) throw new Error(`fine-tune data: label ${y} outside 0..${numClasses - 1}`);
  }

  const head = model.getLayer(HEAD_LAYER_NAME);
  const headVars = new Set(head.trainableWeights.map((v) => (v.read() as tf.Variable).name));
  const frozen = frozenVariableNames(model, opts.depth);
  const trainable = model.trainableWeights
    .map((v) => v.read() as tf.Variable)
    .filter((v) => !frozen.has(v.name));
  const bodyList = trainable.filter((v) => !headVars.has(v.name));
  const headList = trainable.filter((v) => headVars.has(v.name));
  const bodyOpt = makeOptimizer(opts.optimizer, opts.learningRate, opts.momentum);
  const headOpt = makeOptimizer(
    opts.optimizer,
    opts.learningRate * opts.headLearningRateMultiplier,
    opts.momentum,
  );
  const weights = opts.classBalanced
    ? classBalanceWeights(data.labels, numClasses)
    : new Array<number>(numClasses).fill(1);

  const xAll = tf.tensor4d(data.patches, [data.count, h, w, c]);
  const yAll = tf.tensor1d(data.labels, 'int32');
  const classWeights = tf.tensor1d(weights);
  const epochLosses: number[] = [];
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const decay = Math.pow(opts.gamma, epoch);
      setLearningRate(bodyOpt, opts.learningRate * decay);
      setLearningRate(headOpt, opts.learningRate * opts.headLearningRateMultiplier * decay);
      const order = shuffled(data.count, opts.seed * 1000003 + epoch);
      let lossSum = 0;
      let batches = 0;
      const lossScalars: tf.Scalar[] = [];
      for (let start = 0; start < data.count; start += opts.batchSize) {
        const idx = order.subarray(start, Math.min(start + opts.batchSize, data.count));
        const loss = tf.tidy(() => {
          const indices = tf.tensor1d(idx, 'int32');
          const xb = tf.gather(xAll, indices);
          const yb = tf.gather(yAll, indices);
          const oneHot = tf.cast(tf.oneHot(yb, numClasses), 'float32');
          const sampleWeight = tf.gather(classWeights, yb);
          const lossFn = () => {
            const probs = model.apply(xb, { training: true }) as tf.Tensor2D;
            const logp = tf.log(tf.clipByValue(probs, 1e-7, 1));
            const perSample = tf.neg(tf.sum(tf.mul(oneHot, logp), 1));
            return tf.div(tf.sum(tf.mul(perSample, sampleWeight)), tf.sum(sampleWeight)) as tf.Scalar;
          };
          const { value, grads } = tf.variableGrads(lossFn, [...bodyList, ...headList]);
          const bodyGrads: tf.NamedTensorMap = {};
          const headGrads: tf.NamedTensorMap = {};
          for (const [name, g] of Object.entries(grads)) {
            if (headVars.has(name)) headGrads[name] = g;
            else bodyGrads[name] = g;
          }
          if (bodyList.length > 0) bodyOpt.applyGradients(bodyGrads);
          headOpt.applyGradients(headGrads);
          return value;
        });
        lossScalars.push(loss);
        batches++;
      }
      // One read-back per epoch, not per batch.
      const summed = tf.tidy(() => tf.addN(lossScalars));
      lossSum = (await summed.data())[0] ?? NaN;
      summed.dispose();
      tf.dispose(lossScalars);
      const mean = lossSum / batches;
      epochLosses.push(mean);
      onEpoch?.(epoch, mean);
    }
  } finally {
    tf.dispose([xAll, yAll, classWeights]);
    bodyOpt.dispose();
    headOpt.dispose();
  }
  return {
    epochLosses,
    seconds: (performance.now() - started) / 1000,
    samples: data.count * opts.epochs,
  };
}
