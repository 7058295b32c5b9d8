/**
 * The report's gallery (the paper's appendix): the pool candidates the served model favors most
 * and least, each with its image, its m patches, the patch predictions and its worthiness score.
 * The daemon's pool lives in its own state; the gallery scores the same candidates (those streamed
 * and not asked about) with the same model, patches and score options in the main thread, which
 * gives the daemon's own scores.
 */
import { scoreCandidate, type ScoreOptions } from '../core/score.js';
import { generatePatches, resolveAugmentationSpec, type AugmentationSpec } from '../core/patches.js';
import { imageAt } from '../data/image-set.js';
import type { Task } from '../data/task.js';
import { initBackend, tf, type BackendRequest } from '../model/backend.js';
import { loadModelFromPath } from '../model/model-store.js';
import { predictProbs } from '../model/scoring.js';
import { grayPngDataUri, unitToBytes } from './png.js';

export interface GalleryItem {
  id: string;
  /** The true label (the oracle's), and its class name. */
  label: number;
  className: string;
  score: number;
  entropy: number;
  diversity: number;
  dominantClass: number;
  meanProbs: number[];
  /** Per patch, the class probabilities: m x K. */
  patchProbs: number[][];
  /** Patches kept by majority selection (those the score is computed on). */
  keptPatches: number[];
  /** The candidate's image and its m patches as PNG data URIs (left out of demo.json). */
  image: string;
  patches: string[];
}

export interface Gallery {
  /** The model version that scored the pool. */
  version: string;
  /** Candidates scored. */
  scored: number;
  most: GalleryItem[];
  least: GalleryItem[];
  /** Mean score of the pool, for scale. */
  meanScore: number;
}

export interface GalleryOptions {
  task: Task;
  /** Positions into task.pool of the candidates to score. */
  positions: readonly number[];
  version: string;
  modelDir: string;
  sha256?: string;
  augmentation: AugmentationSpec;
  patchSeed: number;
  scoreOptions: ScoreOptions;
  /** Candidates shown at each end. */
  count: number;
  backend: BackendRequest;
  chunk?: number;
  /** Checked between chunks (the event loop gets a turn there, so that Ctrl-C is seen). */
  signal?: AbortSignal;
}

/** Scores the candidates with the model and keeps the `count` highest and lowest scores. */
export async function buildGallery(o: GalleryOptions): Promise<Gallery> {
  await initBackend(o.backend);
  const { task } = o;
  const set = task.set;
  const split = task.pool;
  const m = resolveAugmentationSpec(o.augmentation).m;
  const side = o.augmentation.size ?? set.height;
  const plane = side * side * set.channels;
  const shape = { height: set.height, width: set.width, channels: set.channels };
  const chunk = o.chunk ?? 128;
  const patchesOf = (p: number) =>
    generatePatches(imageAt(set, split.indices[p]!), shape, o.augmentation, {
      candidateId: split.ids[p]!,
      seed: o.patchSeed,
    });

  const { model } = await loadModelFromPath(o.modelDir, o.sha256);
  const scored: { position: number; probs: number[][]; s: ReturnType<typeof scoreCandidate> }[] = [];
  try {
    for (let start = 0; start < o.positions.length; start += chunk) {
      await new Promise((resolve) => setImmediate(resolve));
      o.signal?.throwIfAborted();
      const part = o.positions.slice(start, start + chunk);
      const buffer = new Float32Array(part.length * m * plane);
      part.forEach((p, i) => buffer.set(patchesOf(p), i * m * plane));
      const x = tf.tensor4d(buffer, [part.length * m, side, side, set.channels]);
      const probs = predictProbs(model, x);
      let flat: Float32Array;
      try {
        flat = (await probs.data()) as Float32Array;
      } finally {
        tf.dispose([x, probs]);
      }
      const k = task.numClasses;
      part.forEach((position, i) => {
        const rows = Array.from({ length: m }, (_, j) => {
          const at = (i * m + j) * k;
          return Array.from(flat.subarray(at, at + k), (v) => Math.min(1, Math.max(0, v)));
        });
        scored.push({ position, probs: rows, s: scoreCandidate(rows, o.scoreOptions) });
      });
    }
  } finally {
    model.dispose();
  }

  const byScore = [...scored].sort((a, b) => b.s.score - a.s.score);
  const item = (x: (typeof scored)[number]): GalleryItem => {
    const patches = patchesOf(x.position);
    const label = split.labels[x.position]!;
    return {
      id: split.ids[x.position]!,
      label,
      className: task.classNames[label] ?? String(label),
      score: x.s.score,
      entropy: x.s.entropy,
      diversity: x.s.diversity,
      dominantClass: x.s.dominantClass,
      meanProbs: [...x.s.meanProbs],
      patchProbs: x.probs,
      keptPatches: [...x.s.keptPatches],
      image: grayPngDataUri(imageAt(set, split.indices[x.position]!), set.width, set.height),
      patches: Array.from({ length: m }, (_, j) =>
        grayPngDataUri(unitToBytes(patches.subarray(j * plane, (j + 1) * plane)), side, side),
      ),
    };
  };
  const count = Math.min(o.count, Math.floor(byScore.length / 2));
  return {
    version: o.version,
    scored: scored.length,
    most: byScore.slice(0, count).map(item),
    least: byScore
      .slice(byScore.length - count)
      .reverse()
      .map(item),
    meanScore: scored.length === 0 ? NaN : scored.reduce((s, x) => s + x.s.score, 0) / scored.length,
  };
}
