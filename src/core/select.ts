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
  /**
   * Inter-diversity strength beta >= 0 (DESIGN.md, the paper's Sec. 6.1 suggestion). 0 (default)
   * is Eq. 4 as is. Above 0, every shortlist entry's weight is multiplied, at each pick, by
   * (1 - sim)^beta, where sim is its largest cosine similarity (clamped to [0, 1]) with the
   * candidates already chosen in this selection, so near-duplicates are not all asked at once.
   * Needs `features`.
   */
  interDiversity?: number;
  /**
   * Feature vector of each shortlist candidate, keyed by pool index (e.g. the model's penultimate
   * activations averaged over the candidate's patches). Only read when `interDiversity` > 0; must
   * then hold every shortlist index, with vectors of one length.
   */
  features?: ReadonlyMap<number, ArrayLike<number>>;
}

/** How a selected candidate was taken. */
export type TakenBy = 'draw' | 'rank';

/** The outcome of one selection. All arrays of chosen candidates are aligned with `indices`. */
export interface Selection {
  /** Chosen pool indices, in the order they were taken. */
  indices: number[];
  /**
   * For each chosen candidate: its Eq. 4 sampling probability s_i within the shortlist when it was
   * drawn at random (with inter-diversity on: the probability of the draw that took it, given the
   * candidates chosen before it); 1 when it was taken by rank (randomness off, or the fallback when fewer
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
  | 'BAD_SCORE'
  | 'BAD_BATCH_SIZE'
  | 'BAD_OMEGA'
  | 'BAD_SEED'
  | 'MISSING_SEED'
  | 'AMBIGUOUS_RANDOMNESS'
  | 'BAD_INTER_DIVERSITY'
  | 'MISSING_FEATURES';

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
 * The ceil(omega * b) best pool indices (at least b, at most the pool), in rank order: the
 * candidates {@link selectForLabeling} chooses from. Callers that re-rank with inter-diversity use
 * it to know whose features to compute. Inputs are not validated here.
 */
export function shortlistOf(scores: readonly number[], b: number, omega: number = DEFAULT_OMEGA): number[] {
  const n = scores.length;
  const take = Math.min(b, n);
  // omega * b can land a hair above an integer (1.1 * 10); do not let that add a candidate.
  const size = Math.min(n, Math.max(take, Math.ceil(omega * b - 1e-9)));
  return rankByScore(scores).slice(0, size);
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

  const take = Math.min(b, scores.length);
  const shortlist = shortlistOf(scores, b, omega);
  const shortlistProbabilities = samplingProbabilities(shortlist.map((i) => scores[i] as number));

  const selection: Selection = {
    indices: [],
    probabilities: [],
    ranks: [],
    takenBy: [],
    shortlist,
    shortlistProbabilities,
  };
  const pick = (rank: number, takenBy: TakenBy, probability?: number): void => {
    selection.indices.push(shortlist[rank] as number);
    selection.ranks.push(rank);
    selection.takenBy.push(takenBy);
    selection.probabilities.push(
      takenBy === 'draw' ? (probability ?? (shortlistProbabilities[rank] as number)) : 1,
    );
  };

  const beta = options.interDiversity ?? 0;
  if (typeof beta !== 'number' || !Number.isFinite(beta) || beta < 0) {
    throw new InvalidSelectionInputError(
      'BAD_INTER_DIVERSITY',
      `interDiversity must be a finite number >= 0, got ${beta}`,
    );
  }
  // With no more drawable candidates than needed the chosen set is certain: Eq. 4 as is.
  const drawable = shortlistProbabilities.filter((p) => p > 0).length;
  if (beta > 0 && (rng === undefined || drawable > take)) {
    diversePicks(
      shortlist,
      shortlistProbabilities,
      take,
      beta,
      featureRows(shortlist, options.features),
      rng,
      pick,
    );
    return selection;
  }

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

/** The shortlist's feature vectors, unit-normalised (a zero vector stays zero), in rank order. */
function featureRows(
  shortlist: readonly number[],
  features: ReadonlyMap<number, ArrayLike<number>> | undefined,
): Float64Array[] {
  let dim: number | undefined;
  return shortlist.map((index) => {
    const f = features?.get(index);
    if (f === undefined) {
      throw new InvalidSelectionInputError(
        'MISSING_FEATURES',
        `inter-diversity needs the features of every shortlist candidate; pool index ${index} has none`,
      );
    }
    dim ??= f.length;
    if (f.length !== dim || dim === 0) {
      throw new InvalidSelectionInputError(
        'MISSING_FEATURES',
        `feature vectors must share one non-zero length; pool index ${index} has ${f.length}, expected ${dim}`,
      );
    }
    const row = Float64Array.from(f);
    let norm = 0;
    for (const v of row) {
      if (!Number.isFinite(v)) {
        throw new InvalidSelectionInputError(
          'MISSING_FEATURES',
          `feature of pool index ${index} is not finite`,
        );
      }
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    if (norm > 0) for (let k = 0; k < row.length; k++) row[k] = (row[k] as number) / norm;
    return row;
  });
}

/**
 * Selection with inter-diversity: at each pick, shortlist entry r weighs s_r * (1 - sim_r)^beta
 * (sim_r: largest cosine similarity, clamped to [0, 1], with the entries already picked). With an
 * rng it draws by those weights, else it takes the heaviest (ties by rank). When every remaining
 * weight is 0 (only duplicates of chosen ones, or s = 0), the rest are taken by rank.
 */
function diversePicks(
  shortlist: readonly number[],
  s: readonly number[],
  take: number,
  beta: number,
  rows: readonly Float64Array[],
  rng: Rng | undefined,
  pick: (rank: number, takenBy: TakenBy, probability?: number) => void,
): void {
  const maxSim = new Float64Array(shortlist.length);
  const taken = new Uint8Array(shortlist.length);
  for (let picked = 0; picked < take; picked++) {
    const weights = s.map((p, r) => (taken[r] ? 0 : p * Math.pow(1 - (maxSim[r] as number), beta)));
    const total = weights.reduce((a, w) => a + w, 0);
    let chosen: number;
    let takenBy: TakenBy;
    if (total <= 0) {
      chosen = taken.findIndex((t) => t === 0);
      takenBy = 'rank';
    } else if (rng === undefined) {
      chosen = weights.reduce((best, w, r) => (w > (weights[best] as number) ? r : best), 0);
      takenBy = 'rank';
    } else {
      let u = rng.next() * total;
      chosen = -1;
      for (let r = 0; r < weights.length && chosen < 0; r++) {
        const w = weights[r] as number;
        if (w <= 0) continue;
        u -= w;
        if (u < 0) chosen = r;
      }
      if (chosen < 0) chosen = weights.reduceRight((last, w, r) => (last < 0 && w > 0 ? r : last), -1);
      takenBy = 'draw';
    }
    pick(chosen, takenBy, takenBy === 'draw' ? (weights[chosen] as number) / total : 1);
    taken[chosen] = 1;
    const c = rows[chosen] as Float64Array;
    rows.forEach((row, r) => {
      if (taken[r]) return;
      let dot = 0;
      for (let k = 0; k < row.length; k++) dot += (row[k] as number) * (c[k] as number);
      const sim = Math.min(1, Math.max(0, dot));
      if (sim > (maxSim[r] as number)) maxSim[r] = sim;
    });
  }
}
