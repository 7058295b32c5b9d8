/**
 * Randomized active selection (the paper's Eq. 4): which pool candidates to ask labels for.
 *
 * See DESIGN.md, "Randomized selection", for the conventions fixed here.
 */
import { createRng, type Rng } from './rng.js';

/** Options of {@link selectForLabeling}. */
export interface SelectOptions {
  /** Random extension w >= 1: the shortlist is the top ceil(w * b) candidates. Default 5. */
  omega?: number;
  /** Draw from the shortlist with Eq. 4's probabilities (true) or take the top b (false). Default true. */
  randomness?: boolean;
  /** Seed of the draw; give exactly one of `seed` and `rng` when randomness is on. */
  seed?: number;
  /** Source of the draw (advanced by it); give exactly one of `seed` and `rng` when randomness is on. */
  rng?: Rng;
}

/** How a selected candidate was taken. */
export type TakenBy = 'draw' | 'rank';

/** The outcome of one selection. All arrays of chosen candidates are aligned with `indices`. */
export interface Selection {
  /** Chosen pool indices, in the order they were taken. */
  indices: number[];
  /**
   * For each chosen candidate: its Eq. 4 sampling probability s_i within the shortlist when it was
   * drawn at random; 1 when it was taken by rank (randomness off, or the fallback when fewer
   * candidates with s_i > 0 remain than are still needed).
   */
  probabilities: number[];
  /** For each chosen candidate: its 0-based rank in the pool by score (descending, ties by index). */
  ranks: number[];
  /** For each chosen candidate: whether it was drawn at random or taken by rank. */
  takenBy: TakenBy[];
  /** The ceil(omega * b) pool indices considered (the whole pool if smaller), in rank order. */
  shortlist: number[];
  /** Eq. 4's sampling probability s of each shortlist entry (aligned with `shortlist`); sums to 1. */
  shortlistProbabilities: number[];
}

/** Why a selection input was refused. */
export type InvalidSelectionInputCode =
  'BAD_SCORE' | 'BAD_BATCH_SIZE' | 'BAD_OMEGA' | 'BAD_SEED' | 'MISSING_SEED' | 'AMBIGUOUS_RANDOMNESS';

/** Thrown when scores, b or the options are not valid. */
export class InvalidSelectionInputError extends Error {
  /** Retrying with the same input fails the same way. */
  readonly retryable = false;
  override readonly name = 'InvalidSelectionInputError';
  constructor(
    /** What was wrong. */
    readonly code: InvalidSelectionInputCode,
    message: string,
  ) {
    super(message);
  }
}

/** Default random extension w of the paper. */
export const DEFAULT_OMEGA = 5;

/**
 * Pool indices sorted by score, descending; ties keep index order.
 *
 * @param scores - finite worthiness scores, one per pool candidate.
 */
export function rankByScore(scores: readonly number[]): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort(
    (a, b) => (scores[b] as number) - (scores[a] as number) || a - b,
  );
}

/**
 * Eq. 4's sampling probabilities of a shortlist given its scores in rank order (descending):
 * a'_i = (a_i - a_last) / (a_first - a_last), s_i = a'_i / sum a'. When a_first == a_last, every
 * entry gets 1/n (uniform).
 */
export function samplingProbabilities(rankedScores: readonly number[]): number[] {
  const n = rankedScores.length;
  const first = rankedScores[0];
  const last = rankedScores[n - 1];
  if (first === undefined || last === undefined) return [];
  if (first === last) return rankedScores.map(() => 1 / n);
  const rescaled = rankedScores.map((a) => (a - last) / (first - last));
  const total = rescaled.reduce((s, v) => s + v, 0);
  return rescaled.map((v) => v / total);
}

/**
 * Picks b pool candidates to ask labels for.
 *
 * Ranks the pool by score (descending, ties by index), keeps the top ceil(omega * b) as the
 * shortlist (the whole pool if smaller), and with randomness on draws b of them without
 * replacement with Eq. 4's probabilities, renormalised after each draw. Conventions: uniform over
 * the shortlist when its first and last scores are equal; when fewer candidates with s > 0 remain
 * than are still needed, the rest are taken by rank; b larger than the pool selects the whole pool.
 * With randomness off it takes the top b, in rank order.
 *
 * Every random choice is seeded: with randomness on, exactly one of `seed` or `rng` is required.
 *
 * @param scores - worthiness score of each pool candidate (finite numbers; index = pool index).
 * @param b - how many to select, a non-negative integer.
 * @throws InvalidSelectionInputError on a non-finite score, a bad b or omega, a missing or doubled
 * source of randomness, or a seed that is not a safe integer.
 */
export function selectForLabeling(
  scores: readonly number[],
  b: number,
  options: SelectOptions = {},
): Selection {
  const omega = options.omega ?? DEFAULT_OMEGA;
  const randomness = options.randomness ?? true;
  scores.forEach((a, i) => {
    if (typeof a !== 'number' || !Number.isFinite(a)) {
      throw new InvalidSelectionInputError('BAD_SCORE', `score of pool index ${i} must be finite, got ${a}`);
    }
  });
  if (!Number.isSafeInteger(b) || b < 0) {
    throw new InvalidSelectionInputError('BAD_BATCH_SIZE', `b must be a non-negative integer, got ${b}`);
  }
  if (typeof omega !== 'number' || !Number.isFinite(omega) || omega < 1) {
    throw new InvalidSelectionInputError('BAD_OMEGA', `omega must be a finite number >= 1, got ${omega}`);
  }
  let rng: Rng | undefined;
  if (randomness) {
    if (options.rng !== undefined && options.seed !== undefined) {
      throw new InvalidSelectionInputError('AMBIGUOUS_RANDOMNESS', 'give either seed or rng, not both');
    }
    if (options.rng === undefined && options.seed === undefined) {
      throw new InvalidSelectionInputError(
        'MISSING_SEED',
        'randomized selection needs a seed or an rng (every random choice is seeded)',
      );
    }
    if (options.seed !== undefined && !Number.isSafeInteger(options.seed)) {
      throw new InvalidSelectionInputError('BAD_SEED', `seed must be a safe integer, got ${options.seed}`);
    }
    rng = options.rng ?? createRng(options.seed as number);
  }

  const n = scores.length;
  const take = Math.min(b, n);
  const ranking = rankByScore(scores);
  // omega * b can land a hair above an integer (1.1 * 10); do not let that add a candidate.
  const shortlistSize = Math.min(n, Math.max(take, Math.ceil(omega * b - 1e-9)));
  const shortlist = ranking.slice(0, shortlistSize);
  const shortlistProbabilities = samplingProbabilities(shortlist.map((i) => scores[i] as number));

  const selection: Selection = {
    indices: [],
    probabilities: [],
    ranks: [],
    takenBy: [],
    shortlist,
    shortlistProbabilities,
  };
  const pick = (rank: number, takenBy: TakenBy): void => {
    selection.indices.push(shortlist[rank] as number);
    selection.ranks.push(rank);
    selection.takenBy.push(takenBy);
    selection.probabilities.push(takenBy === 'draw' ? (shortlistProbabilities[rank] as number) : 1);
  };

  if (rng === undefined) {
    for (let r = 0; r < take; r++) pick(r, 'rank');
    return selection;
  }

  // Shortlist ranks still in play, in rank order.
  let remaining = shortlist.map((_, r) => r);
  while (selection.indices.length < take) {
    const needed = take - selection.indices.length;
    const positive = remaining.filter((r) => (shortlistProbabilities[r] as number) > 0);
    if (positive.length <= needed) {
      // Fewer (or exactly as many) drawable candidates than needed: the outcome is certain, so take
      // the rest by rank (candidates with s > 0 outrank those with s = 0). Each draw removes one
      // drawable candidate and one need, so this can only happen before the first draw.
      for (const r of remaining.slice(0, needed)) pick(r, 'rank');
      break;
    }
    const total = positive.reduce((s, r) => s + (shortlistProbabilities[r] as number), 0);
    let u = rng.next() * total;
    let chosen = positive[positive.length - 1] as number;
    for (const r of positive) {
      u -= shortlistProbabilities[r] as number;
      if (u < 0) {
        chosen = r;
        break;
      }
    }
    pick(chosen, 'draw');
    remaining = remaining.filter((r) => r !== chosen);
  }
  return selection;
}
