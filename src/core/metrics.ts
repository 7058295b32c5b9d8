/**
 * How success is measured: AUC, learning curves, ALC and annotation saving (DESIGN.md, "How
 * success is measured").
 */

/** One point of a learning curve: test AUC after training on `labels` labeled candidates. */
export interface CurvePoint {
  /** Number of labeled candidates. */
  labels: number;
  /** Test AUC at that number of labels. */
  auc: number;
}

/** Mean and standard deviation of a sample. */
export interface MeanStd {
  mean: number;
  /** Sample standard deviation (divides by n - 1); 0 for one value. */
  std: number;
  n: number;
}

/** Why a metric input was refused. */
export type InvalidMetricInputCode = 'LENGTH_MISMATCH' | 'BAD_SCORE' | 'BAD_LABEL' | 'BAD_CURVE';

/** Thrown when a metric's input is malformed (as opposed to merely degenerate, which gives NaN). */
export class InvalidMetricInputError extends Error {
  /** Retrying with the same input fails the same way. */
  readonly retryable = false;
  override readonly name = 'InvalidMetricInputError';
  constructor(
    /** What was wrong. */
    readonly code: InvalidMetricInputCode,
    message: string,
  ) {
    super(message);
  }
}

/** 1-based ranks of the values in ascending order, tied values sharing their mean rank (midrank). */
function midranks(values: readonly number[]): number[] {
  const order = Array.from({ length: values.length }, (_, i) => i).sort(
    (a, b) => (values[a] as number) - (values[b] as number),
  );
  const ranks = new Array<number>(values.length);
  let start = 0;
  while (start < order.length) {
    let end = start + 1;
    const v = values[order[start] as number] as number;
    while (end < order.length && values[order[end] as number] === v) end++;
    // Positions start..end-1 (0-based) hold the same value: ranks start+1..end, mean (start+1+end)/2.
    const rank = (start + 1 + end) / 2;
    for (let p = start; p < end; p++) ranks[order[p] as number] = rank;
    start = end;
  }
  return ranks;
}

/**
 * Area under the ROC curve of a binary problem: the probability that a random positive scores
 * above a random negative, ties counting 1/2 (Mann-Whitney U with midranks).
 *
 * @param scores - finite scores, higher = more positive.
 * @param labels - 1/true = positive, 0/false = negative.
 * @returns the AUC in [0, 1], or NaN when one class is absent (so a curve can still be drawn).
 * @throws InvalidMetricInputError when lengths differ, a score is not finite or a label is not 0/1.
 */
export function binaryAuc(scores: readonly number[], labels: readonly (0 | 1 | boolean)[]): number {
  if (scores.length !== labels.length) {
    throw new InvalidMetricInputError(
      'LENGTH_MISMATCH',
      `${scores.length} scores but ${labels.length} labels`,
    );
  }
  scores.forEach((s, i) => {
    if (typeof s !== 'number' || !Number.isFinite(s)) {
      throw new InvalidMetricInputError('BAD_SCORE', `score ${i} must be finite, got ${s}`);
    }
  });
  const positive = labels.map((l, i) => {
    if (l === 1 || l === true) return true;
    if (l === 0 || l === false) return false;
    throw new InvalidMetricInputError('BAD_LABEL', `label ${i} must be 0, 1 or a boolean, got ${String(l)}`);
  });
  const nPos = positive.filter(Boolean).length;
  const nNeg = positive.length - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  const ranks = midranks(scores);
  let rankSum = 0;
  positive.forEach((p, i) => {
    if (p) rankSum += ranks[i] as number;
  });
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * One-vs-rest AUC averaged over the classes that are present in `labels` (a class needs at least one
 * positive and one negative to count). For |Y| = 2 it is exactly binaryAuc of column 1 (the two
 * one-vs-rest AUCs are equal in exact arithmetic; this avoids float noise from column 0).
 *
 * @param probs - one row per sample, one column per class (the candidate's mean patch probabilities).
 * @param labels - the true class of each sample, an integer in [0, |Y|).
 * @returns the macro AUC, or NaN when fewer than two classes are present.
 * @throws InvalidMetricInputError when lengths differ, rows are ragged or not finite, or a label is
 * not a class index.
 */
export function macroAuc(probs: readonly (readonly number[])[], labels: readonly number[]): number {
  if (probs.length !== labels.length) {
    throw new InvalidMetricInputError('LENGTH_MISMATCH', `${probs.length} rows but ${labels.length} labels`);
  }
  const classes = probs[0]?.length ?? 0;
  probs.forEach((row, i) => {
    if (row.length !== classes) {
      throw new InvalidMetricInputError(
        'BAD_SCORE',
        `row ${i} has ${row.length} columns, expected ${classes}`,
      );
    }
  });
  labels.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= classes) {
      throw new InvalidMetricInputError(
        'BAD_LABEL',
        `label ${i} must be a class index in [0, ${classes}), got ${l}`,
      );
    }
  });
  if (probs.length === 0) return NaN;
  if (classes === 2) {
    return binaryAuc(
      probs.map((row) => row[1] as number),
      labels.map((l) => l === 1),
    );
  }
  let sum = 0;
  let counted = 0;
  for (let c = 0; c < classes; c++) {
    const auc = binaryAuc(
      probs.map((row) => row[c] as number),
      labels.map((l) => l === c),
    );
    if (!Number.isNaN(auc)) {
      sum += auc;
      counted++;
    }
  }
  return counted === 0 ? NaN : sum / counted;
}

/** Checks a curve and returns a copy sorted by label count. */
function sortedCurve(curve: readonly CurvePoint[]): CurvePoint[] {
  const sorted = [...curve].sort((a, b) => a.labels - b.labels);
  sorted.forEach((p, i) => {
    if (!Number.isFinite(p.labels) || p.labels < 0) {
      throw new InvalidMetricInputError('BAD_CURVE', `label count must be finite and >= 0, got ${p.labels}`);
    }
    if (i > 0 && (sorted[i - 1] as CurvePoint).labels === p.labels) {
      throw new InvalidMetricInputError('BAD_CURVE', `the curve has two points at ${p.labels} labels`);
    }
  });
  return sorted;
}

/**
 * Area under a learning curve (trapezoidal), divided by the range of label counts, so it is the
 * curve's mean AUC over that range (the paper's Table 4). A single point gives its AUC. Points may
 * come in any order; a NaN AUC makes the result NaN.
 *
 * @throws InvalidMetricInputError when the curve is empty, a label count is negative or not finite,
 * or two points share a label count.
 */
export function alc(curve: readonly CurvePoint[]): number {
  const sorted = sortedCurve(curve);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (first === undefined || last === undefined) {
    throw new InvalidMetricInputError('BAD_CURVE', 'the learning curve has no points');
  }
  if (sorted.length === 1) return first.auc;
  let area = 0;
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1] as CurvePoint;
    const b = sorted[i] as CurvePoint;
    area += ((b.labels - a.labels) * (a.auc + b.auc)) / 2;
  }
  return area / (last.labels - first.labels);
}

/**
 * The smallest label count at which the curve's AUC is >= target: the first measured point that
 * reaches it, without interpolating between points. Infinity when no point reaches it.
 *
 * @throws InvalidMetricInputError on a malformed curve (see {@link alc}).
 */
export function labelsToReach(curve: readonly CurvePoint[], target: number): number {
  for (const p of sortedCurve(curve)) {
    if (p.auc >= target) return p.labels;
  }
  return Infinity;
}

/**
 * Annotation saving 1 - (labels active needs to reach target) / (labels random needs), from
 * {@link labelsToReach}. NaN when the random curve never reaches the target (nothing to compare
 * with); -Infinity when only the active curve never reaches it; 0 when both reach it with 0 labels.
 *
 * @param activeCurve - learning curve of the active strategy.
 * @param randomCurve - learning curve of random selection (e.g. the mean over seeds).
 * @param target - the AUC to reach, e.g. what random reaches at the end.
 */
export function annotationSaving(
  activeCurve: readonly CurvePoint[],
  randomCurve: readonly CurvePoint[],
  target: number,
): number {
  const random = labelsToReach(randomCurve, target);
  const active = labelsToReach(activeCurve, target);
  if (random === Infinity) return NaN;
  if (active === Infinity) return -Infinity;
  if (random === 0) return active === 0 ? 0 : -Infinity;
  return 1 - active / random;
}

/**
 * Mean and sample standard deviation (n - 1 in the denominator; 0 for a single value). NaN for
 * both when `values` is empty.
 */
export function meanStd(values: readonly number[]): MeanStd {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN, n };
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n === 1) return { mean, std: 0, n };
  const ss = values.reduce((s, v) => s + (v - mean) ** 2, 0);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}
