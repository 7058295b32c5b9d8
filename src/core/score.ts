/**
 * Worthiness score of one candidate (the paper's Eq. 1-3, with majority selection).
 *
 * A candidate has m patches; the model gives each patch a probability vector over |Y| classes, so
 * the input is an m x |Y| matrix. See DESIGN.md, "Worthiness score", for the conventions fixed here.
 */

/** Options of {@link scoreCandidate}; every field is optional and defaults to {@link DEFAULT_SCORE_OPTIONS}. */
export interface ScoreOptions {
  /** Share of patches kept by majority selection, in (0, 1]. Default 0.25. */
  alpha?: number;
  /** Majority selection on (keep the top ceil(alpha*m) patches) or off (keep all). Default true. */
  majority?: boolean;
  /** Weight lambda1 of entropy in the score. Default 1. */
  lambdaEntropy?: number;
  /** Weight lambda2 of diversity in the score. Default 0. */
  lambdaDiversity?: number;
  /** Probabilities are clamped to [epsilon, 1] inside logarithms, in (0, 1). Default 1e-6. */
  epsilon?: number;
}

/** {@link ScoreOptions} with every field resolved. */
export type ResolvedScoreOptions = Readonly<Required<ScoreOptions>>;

/** The defaults of the paper's optimized setting: entropy with majority selection, alpha = 1/4. */
export const DEFAULT_SCORE_OPTIONS: ResolvedScoreOptions = Object.freeze({
  alpha: 0.25,
  majority: true,
  lambdaEntropy: 1,
  lambdaDiversity: 0,
  epsilon: 1e-6,
});

/** The worthiness of one candidate and what it was computed from. */
export interface CandidateScore {
  /** argmax of the mean patch probabilities (the first class on ties). */
  dominantClass: number;
  /** Mean row of the probability matrix: the candidate's prediction. */
  meanProbs: number[];
  /**
   * Indices of the kept patches. With majority selection: ordered by the probability of the
   * dominant class, descending, ties in patch order (the stable sort's order). Without: 0..m-1.
   */
  keptPatches: number[];
  /** Entropy e of the kept patches (nats, averaged over the kept patches). */
  entropy: number;
  /** Diversity d of the kept patches (sum over classes and unordered patch pairs). */
  diversity: number;
  /** a = lambdaEntropy * entropy + lambdaDiversity * diversity. */
  score: number;
}

/** Why a score input was refused. */
export type InvalidScoreInputCode =
  'EMPTY' | 'NOT_RECTANGULAR' | 'TOO_FEW_CLASSES' | 'BAD_PROBABILITY' | 'BAD_OPTION';

/** Thrown when the probability matrix or the options are not valid. */
export class InvalidScoreInputError extends Error {
  /** Retrying with the same input fails the same way. */
  readonly retryable = false;
  override readonly name = 'InvalidScoreInputError';
  constructor(
    /** What was wrong. */
    readonly code: InvalidScoreInputCode,
    message: string,
  ) {
    super(message);
  }
}

/** Tolerance on probabilities outside [0, 1], for float error from a softmax. */
const PROBABILITY_TOLERANCE = 1e-6;

/**
 * Fills in defaults and checks the options.
 *
 * @throws InvalidScoreInputError (code BAD_OPTION) when alpha is not in (0, 1], epsilon not in
 * (0, 1), or a lambda is not finite.
 */
export function resolveScoreOptions(options: ScoreOptions = {}): ResolvedScoreOptions {
  const resolved: Required<ScoreOptions> = {
    alpha: options.alpha ?? DEFAULT_SCORE_OPTIONS.alpha,
    majority: options.majority ?? DEFAULT_SCORE_OPTIONS.majority,
    lambdaEntropy: options.lambdaEntropy ?? DEFAULT_SCORE_OPTIONS.lambdaEntropy,
    lambdaDiversity: options.lambdaDiversity ?? DEFAULT_SCORE_OPTIONS.lambdaDiversity,
    epsilon: options.epsilon ?? DEFAULT_SCORE_OPTIONS.epsilon,
  };
  if (!(resolved.alpha > 0 && resolved.alpha <= 1)) {
    throw new InvalidScoreInputError('BAD_OPTION', `alpha must be in (0, 1], got ${resolved.alpha}`);
  }
  if (!(resolved.epsilon > 0 && resolved.epsilon < 1)) {
    throw new InvalidScoreInputError('BAD_OPTION', `epsilon must be in (0, 1), got ${resolved.epsilon}`);
  }
  for (const key of ['lambdaEntropy', 'lambdaDiversity'] as const) {
    if (!Number.isFinite(resolved[key])) {
      throw new InvalidScoreInputError('BAD_OPTION', `${key} must be a finite number, got ${resolved[key]}`);
    }
  }
  return Object.freeze(resolved);
}

/**
 * Checks that `probs` is a non-empty m x |Y| matrix with |Y| >= 2 and every value finite and in
 * [0, 1] up to 1e-6. Rows are not required to sum to 1.
 *
 * @returns the number of classes |Y|.
 * @throws InvalidScoreInputError
 */
export function validateProbabilityMatrix(probs: readonly (readonly number[])[]): number {
  const first = probs[0];
  if (first === undefined) {
    throw new InvalidScoreInputError('EMPTY', 'the probability matrix has no patches (rows)');
  }
  const classes = first.length;
  if (classes < 2) {
    throw new InvalidScoreInputError('TOO_FEW_CLASSES', `need at least 2 classes (columns), got ${classes}`);
  }
  for (let j = 0; j < probs.length; j++) {
    const row = probs[j] as readonly number[];
    if (!Array.isArray(row) || row.length !== classes) {
      throw new InvalidScoreInputError(
        'NOT_RECTANGULAR',
        `patch ${j} has ${Array.isArray(row) ? row.length : 'no'} class probabilities, expected ${classes}`,
      );
    }
    for (let y = 0; y < classes; y++) {
      const p = row[y] as number;
      if (
        typeof p !== 'number' ||
        !Number.isFinite(p) ||
        p < -PROBABILITY_TOLERANCE ||
        p > 1 + PROBABILITY_TOLERANCE
      ) {
        throw new InvalidScoreInputError(
          'BAD_PROBABILITY',
          `probability of patch ${j}, class ${y} must be a finite number in [0, 1], got ${p}`,
        );
      }
    }
  }
  return classes;
}

/** Mean row of the matrix. */
function meanRow(probs: readonly (readonly number[])[], classes: number): number[] {
  const mean = new Array<number>(classes).fill(0);
  for (const row of probs) {
    for (let y = 0; y < classes; y++) mean[y] = (mean[y] as number) + (row[y] as number);
  }
  return mean.map((s) => s / probs.length);
}

/** Index of the first maximum. */
function argmax(values: readonly number[]): number {
  let best = 0;
  for (let y = 1; y < values.length; y++) {
    if ((values[y] as number) > (values[best] as number)) best = y;
  }
  return best;
}

/**
 * Indices of the patches that majority selection keeps: the top k = max(1, ceil(alpha * m)) by
 * the probability of `dominantClass`, descending; a stable sort, so ties keep patch order.
 */
export function majorityPatches(
  probs: readonly (readonly number[])[],
  dominantClass: number,
  alpha: number,
): number[] {
  const m = probs.length;
  // alpha*m can land a hair above an integer (0.1 * 30); do not let that add a patch.
  const k = Math.min(m, Math.max(1, Math.ceil(alpha * m - 1e-9)));
  const order = Array.from({ length: m }, (_, j) => j);
  order.sort((a, b) => (probs[b]?.[dominantClass] as number) - (probs[a]?.[dominantClass] as number));
  return order.slice(0, k);
}

/**
 * Entropy e = -(1/k) sum_j sum_y p_j[y] ln p_j[y] of k patches; the p inside the logarithm is
 * clamped to [epsilon, 1], the p multiplying it is not.
 */
export function patchEntropy(rows: readonly (readonly number[])[], epsilon: number): number {
  let sum = 0;
  for (const row of rows) {
    for (const p of row) sum -= p * Math.log(clampProbability(p, epsilon));
  }
  return rows.length === 0 ? 0 : sum / rows.length;
}

/**
 * Diversity d = sum_y sum_{j<l} (p_j[y] - p_l[y]) (ln p_j[y] - ln p_l[y]), probabilities clamped
 * to [epsilon, 1] inside the logarithms; the literal pairwise sum, every term >= 0. O(k^2 |Y|).
 */
export function patchDiversity(rows: readonly (readonly number[])[], epsilon: number): number {
  let sum = 0;
  for (let j = 0; j < rows.length; j++) {
    const pj = rows[j] as readonly number[];
    for (let l = j + 1; l < rows.length; l++) {
      const pl = rows[l] as readonly number[];
      for (let y = 0; y < pj.length; y++) {
        const a = pj[y] as number;
        const b = pl[y] as number;
        sum += (a - b) * (Math.log(clampProbability(a, epsilon)) - Math.log(clampProbability(b, epsilon)));
      }
    }
  }
  return sum;
}

/**
 * The same diversity as {@link patchDiversity} in O(k |Y|), by the identity
 * sum_{j<l} (p_j - p_l)(q_j - q_l) = k sum_j p_j q_j - (sum_j p_j)(sum_j q_j) with q = ln clamp(p),
 * per class. Cancellation can make it differ from the pairwise sum by float error, so it is
 * clamped at 0.
 */
export function patchDiversityClosedForm(rows: readonly (readonly number[])[], epsilon: number): number {
  const k = rows.length;
  const first = rows[0];
  if (first === undefined) return 0;
  let sum = 0;
  for (let y = 0; y < first.length; y++) {
    let sp = 0;
    let sq = 0;
    let spq = 0;
    for (const row of rows) {
      const p = row[y] as number;
      const q = Math.log(clampProbability(p, epsilon));
      sp += p;
      sq += q;
      spq += p * q;
    }
    sum += k * spq - sp * sq;
  }
  return Math.max(0, sum);
}

function clampProbability(p: number, epsilon: number): number {
  return p < epsilon ? epsilon : p > 1 ? 1 : p;
}

/**
 * Scores one candidate: dominant class, majority selection, then
 * a = lambdaEntropy * entropy + lambdaDiversity * diversity on the kept patches.
 *
 * @param probs - m rows (patches) x |Y| columns (classes) of probabilities.
 * @param options - see {@link ScoreOptions}; defaults: entropy with majority selection, alpha 1/4.
 * @throws InvalidScoreInputError when the matrix is empty, ragged, has fewer than 2 classes, holds a
 * value that is not a finite number in [0, 1] (up to 1e-6), or an option is out of range.
 */
export function scoreCandidate(
  probs: readonly (readonly number[])[],
  options?: ScoreOptions,
): CandidateScore {
  const opts = resolveScoreOptions(options);
  const classes = validateProbabilityMatrix(probs);
  const meanProbs = meanRow(probs, classes);
  const dominantClass = argmax(meanProbs);
  const keptPatches = opts.majority
    ? majorityPatches(probs, dominantClass, opts.alpha)
    : Array.from({ length: probs.length }, (_, j) => j);
  const kept = keptPatches.map((j) => probs[j] as readonly number[]);
  const entropy = patchEntropy(kept, opts.epsilon);
  // Both criteria are always reported (they are recorded with every labeling request), whatever the lambdas.
  const diversity = patchDiversity(kept, opts.epsilon);
  return {
    dominantClass,
    meanProbs,
    keptPatches,
    entropy,
    diversity,
    score: opts.lambdaEntropy * entropy + opts.lambdaDiversity * diversity,
  };
}
