/**
 * What a benchmark trajectory does at each step besides the strategy itself: the selection
 * criterion (the paper's Table 4 axes) and the loop policy (the remedies beyond the paper).
 * Plain data, no tfjs: the runner interprets it.
 */
import type { ScoreOptions } from '../core/score.js';

/** One of the paper's eight criteria: {entropy, diversity} x {majority on, off} x {randomness on, off}. */
export interface Criterion {
  measure: 'entropy' | 'diversity';
  majority: boolean;
  randomness: boolean;
}

/** `entropy+majority+random`, `diversity`, `entropy+random`, ... */
export function criterionName(c: Criterion): string {
  return [c.measure, c.majority ? 'majority' : null, c.randomness ? 'random' : null]
    .filter(Boolean)
    .join('+');
}

/** Parses {@link criterionName}'s form; the parts after the measure may come in any order. */
export function parseCriterion(text: string): Criterion {
  const parts = text
    .trim()
    .toLowerCase()
    .split(/[+,/ ]+/)
    .filter(Boolean);
  const [measure, ...flags] = parts;
  if (measure !== 'entropy' && measure !== 'diversity') {
    throw new Error(`criterion '${text}': must start with 'entropy' or 'diversity'`);
  }
  const unknown = flags.filter((f) => f !== 'majority' && f !== 'random');
  if (unknown.length > 0) throw new Error(`criterion '${text}': unknown part(s) ${unknown.join(', ')}`);
  return { measure, majority: flags.includes('majority'), randomness: flags.includes('random') };
}

/** Score options of a criterion (one measure at a time, as the paper runs them). */
export function criterionScoreOptions(c: Criterion, alpha: number): ScoreOptions {
  return {
    alpha,
    majority: c.majority,
    lambdaEntropy: c.measure === 'entropy' ? 1 : 0,
    lambdaDiversity: c.measure === 'diversity' ? 1 : 0,
  };
}

/** The loop's knobs beyond the strategy (DESIGN.md: "These are defaults, not laws"). */
export interface LoopPolicy {
  /** Continual strategies fine-tune at this fraction of the from-M0 learning rate (paper: 0.1). */
  continualLrFactor: number;
  /**
   * The first window of a continual strategy starts from M0 with a fresh head; with this on it
   * uses the from-M0 learning rate (a fresh head at 1/10 the rate is a cold start of our making).
   */
  coldStartFullLr: boolean;
  /** The first N steps select at random (the model knows nothing of the task yet). */
  randomWarmupSteps: number;
  /**
   * Continual windows also replay up to this many correctly classified labeled candidates per
   * class (seeded), a small balanced memory of L against forgetting and one-class windows.
   */
  replayPerClass: number;
  /** Class-balanced cross-entropy in every window. */
  classBalanced: boolean;
  /**
   * Inter-diversity strength beta of the selection (the paper's Sec. 6.1 suggestion; 0 = off):
   * shortlist entries close in the model's feature space to ones already chosen are down-weighted
   * by (1 - cosine similarity)^beta. See `selectForLabeling`.
   */
  interDiversity?: number;
}

/** The paper's recipe, taken literally. */
export const PAPER_POLICY: LoopPolicy = {
  continualLrFactor: 0.1,
  coldStartFullLr: false,
  randomWarmupSteps: 0,
  replayPerClass: 0,
  classBalanced: false,
};

/**
 * acft's default, chosen on the validation split (shirts and dresses among other tops at 1:9,
 * 300 labels, 3 seeds each): the first window from M0 at the full rate, continual windows at the
 * full rate too (not 1/10), and a replay of 25 correctly classified labeled candidates per class.
 */
export const DEFAULT_POLICY: LoopPolicy = {
  continualLrFactor: 1,
  coldStartFullLr: true,
  randomWarmupSteps: 0,
  replayPerClass: 25,
  classBalanced: false,
};

/** Named policies, selectable with `--policies`. */
export const POLICIES: Record<string, LoopPolicy> = {
  paper: PAPER_POLICY,
  default: DEFAULT_POLICY,
  'cold-start-lr': { ...PAPER_POLICY, coldStartFullLr: true },
  replay: { ...PAPER_POLICY, coldStartFullLr: true, replayPerClass: 25 },
  'replay-balanced': { ...PAPER_POLICY, coldStartFullLr: true, replayPerClass: 25, classBalanced: true },
  warmup: { ...PAPER_POLICY, coldStartFullLr: true, replayPerClass: 25, randomWarmupSteps: 2 },
  'replay-rate': { ...PAPER_POLICY, coldStartFullLr: true, replayPerClass: 25, continualLrFactor: 0.3 },
  'inter-1': { ...DEFAULT_POLICY, interDiversity: 1 },
  'inter-4': { ...DEFAULT_POLICY, interDiversity: 4 },
  'replay-rate-warm': {
    ...PAPER_POLICY,
    coldStartFullLr: true,
    replayPerClass: 25,
    continualLrFactor: 0.3,
    randomWarmupSteps: 1,
  },
};
