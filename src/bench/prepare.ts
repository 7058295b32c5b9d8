/**
 * Turns a labeled image set and a task spec into the candidates a trajectory replays: a seeded
 * subsample of the training pool and of the evaluation split, each candidate with its m patches.
 */
import { createRng, deriveSeed, shuffleInPlace } from '../core/rng.js';
import { generatePatches, resolveAugmentationSpec, type AugmentationSpec } from '../core/patches.js';
import type { ImageSet } from '../data/image-set.js';
import type { Split, Task } from '../data/task.js';
import type { CandidateSet, PreparedData } from './trajectory.js';

export interface PrepareOptions {
  augmentation: AugmentationSpec;
  /** Candidates drawn from the training pool (all if larger than the pool). */
  poolSize: number;
  /** Candidates drawn from the evaluation split (all if larger). */
  evaluationSize: number;
  evaluationSplit: 'validation' | 'test';
  /** Seed of the pool subsample and of the patch sampling. */
  seed: number;
}

function subsample(split: Split, size: number, seed: number): number[] {
  const order = Array.from({ length: split.indices.length }, (_, i) => i);
  if (size >= order.length) return order;
  return shuffleInPlace(order, createRng(seed))
    .slice(0, size)
    .sort((a, b) => a - b);
}

function candidates(
  set: ImageSet,
  split: Split,
  positions: number[],
  spec: AugmentationSpec,
  m: number,
  seed: number,
): CandidateSet {
  const shape = { height: set.height, width: set.width, channels: set.channels };
  const size = spec.size ?? set.height;
  const per = m * size * size * set.channels;
  const patches = new Float32Array(positions.length * per);
  const ids: string[] = [];
  const labels = new Int32Array(positions.length);
  positions.forEach((pos, i) => {
    const imageIndex = split.indices[pos]!;
    const id = split.ids[pos]!;
    const pixels = set.images.subarray(
      imageIndex * set.height * set.width * set.channels,
      (imageIndex + 1) * set.height * set.width * set.channels,
    );
    patches.set(generatePatches(pixels, shape, spec, { candidateId: id, seed }), i * per);
    ids.push(id);
    labels[i] = split.labels[pos]!;
  });
  return { ids, labels, patches, count: positions.length };
}

/** Builds the pool and the evaluation candidates of `task` (patches made here, once). */
export function prepareData(set: ImageSet, task: Task, o: PrepareOptions): PreparedData {
  const m = resolveAugmentationSpec(o.augmentation).m;
  const size = o.augmentation.size ?? set.height;
  const evalSplit = o.evaluationSplit === 'test' ? task.test : task.validation;
  const patchSeed = deriveSeed('patches', o.seed);
  return {
    numClasses: task.numClasses,
    m,
    patchShape: [size, size, set.channels],
    pool: candidates(
      set,
      task.pool,
      subsample(task.pool, o.poolSize, deriveSeed('pool', o.seed)),
      o.augmentation,
      m,
      patchSeed,
    ),
    evaluation: candidates(
      set,
      evalSplit,
      subsample(evalSplit, o.evaluationSize, deriveSeed('evaluation', o.evaluationSplit)),
      o.augmentation,
      m,
      patchSeed,
    ),
    evaluationSplit: o.evaluationSplit,
  };
}
