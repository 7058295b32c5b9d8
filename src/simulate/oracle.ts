/**
 * The oracle radiologist of the simulator: it knows every candidate's true task label and answers
 * with it, except that with probability `labelNoise` it gives a wrong one.
 *
 * Every random choice is a pure function of (seed, candidate id), never of arrival order: the
 * same candidate always gets the same answer, whether it is asked once, asked again after a
 * restart, or labeled unasked by the closed-loop CAD. So the simulator never contradicts itself,
 * and a run is reproducible whatever the daemon asks and when.
 */
import { createRng, deriveSeed } from '../core/rng.js';

/** An answer of the oracle. */
export interface OracleAnswer {
  /** The label given: the true label, or a wrong one when `noisy`. */
  label: number;
  /** The candidate's true task label. */
  truth: number;
  /** The label is wrong on purpose (label noise). */
  noisy: boolean;
}

/** Options of {@link createOracle}. */
export interface OracleOptions {
  /** True task label of every candidate the oracle knows, by candidate id. */
  labels: ReadonlyMap<string, number>;
  /** K, the number of classes: labels are 0..K-1. */
  numClasses: number;
  /** Probability in [0, 1] that an answer is wrong. Default 0. */
  labelNoise?: number;
  /** Seed of the noise. Default 1. */
  seed?: number;
}

/** The oracle radiologist. */
export interface Oracle {
  readonly numClasses: number;
  readonly labelNoise: number;
  /** Whether the oracle knows the candidate. */
  knows(candidateId: string): boolean;
  /** The answer for a candidate, or undefined for a candidate it does not know. */
  answer(candidateId: string): OracleAnswer | undefined;
}

/** Thrown for options out of their domain. */
export class OracleOptionsError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'ORACLE_OPTIONS_INVALID';
  /** The same options fail the same way. */
  readonly retryable = false;
  override readonly name = 'OracleOptionsError';
}

/**
 * A noisy label: with probability `labelNoise` a class other than `truth`, uniformly among the
 * K - 1 others, drawn from an rng seeded by (seed, candidate id); otherwise `truth`.
 */
export function noisyLabel(
  truth: number,
  numClasses: number,
  labelNoise: number,
  seed: number,
  candidateId: string,
): OracleAnswer {
  if (labelNoise <= 0) return { label: truth, truth, noisy: false };
  const rng = createRng(deriveSeed('simulate-label-noise', seed, candidateId));
  if (rng.next() >= labelNoise) return { label: truth, truth, noisy: false };
  const other = rng.int(numClasses - 1);
  return { label: other >= truth ? other + 1 : other, truth, noisy: true };
}

/** Creates the oracle radiologist (see the module comment). */
export function createOracle(options: OracleOptions): Oracle {
  const { labels, numClasses } = options;
  const labelNoise = options.labelNoise ?? 0;
  const seed = options.seed ?? 1;
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new OracleOptionsError(`numClasses must be an integer >= 2, got ${numClasses}.`);
  }
  if (!(labelNoise >= 0 && labelNoise <= 1)) {
    throw new OracleOptionsError(`labelNoise must be a probability in [0, 1], got ${labelNoise}.`);
  }
  if (!Number.isSafeInteger(seed)) throw new OracleOptionsError(`seed must be a safe integer, got ${seed}.`);
  for (const [id, label] of labels) {
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
      throw new OracleOptionsError(`the label of ${id} is ${label}, not a class index 0..${numClasses - 1}.`);
    }
  }
  return {
    numClasses,
    labelNoise,
    knows: (candidateId) => labels.has(candidateId),
    answer(candidateId) {
      const truth = labels.get(candidateId);
      if (truth === undefined) return undefined;
      return noisyLabel(truth, numClasses, labelNoise, seed, candidateId);
    },
  };
}

/**
 * Whether the closed-loop CAD labels a candidate unasked: a deterministic share of candidates,
 * chosen by a hash of (seed, candidate id).
 */
export function isUnsolicited(candidateId: string, share: number, seed: number): boolean {
  if (share <= 0) return false;
  if (share >= 1) return true;
  return deriveSeed('simulate-unsolicited', seed, candidateId) / 0x1_0000_0000 < share;
}
