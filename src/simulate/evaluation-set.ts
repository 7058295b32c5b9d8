/**
 * Which candidates the simulator evaluates model versions on (pure; no tfjs): a subsample of the
 * task's validation split, drawn with a fixed seed so that every run (and every version) of one
 * task and size is measured on the same candidates.
 */
import { createRng, deriveSeed, shuffleInPlace } from '../core/rng.js';
import type { Split } from '../data/task.js';

/** Positions into `split` of the evaluation set: `size` of them (all when larger), ascending. */
export function evaluationPositions(split: Split, size: number): number[] {
  const all = Array.from({ length: split.ids.length }, (_, i) => i);
  if (size >= all.length) return all;
  return shuffleInPlace(all, createRng(deriveSeed('simulate-evaluation', size)))
    .slice(0, size)
    .sort((a, b) => a - b);
}
