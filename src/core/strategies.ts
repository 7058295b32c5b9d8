/**
 * The learning strategies of the paper's Table 2, as data, and the training set each one uses.
 *
 * L = candidates labeled before this step, Q = newly labeled in this step, H = the candidates of L
 * that the current model M_{t-1} misclassifies.
 */

/** Code of a learning strategy, as the paper writes it. */
export type StrategyCode = 'RFT(LQ)' | 'AFT(LQ)' | 'ACFT(Q)' | 'ACFT(LQ)' | 'ACFT(HQ)';

/** One learning strategy: where each step starts from, what it trains on, how Q is chosen. */
export interface LearningStrategy {
  /** The paper's code. */
  readonly code: StrategyCode;
  /** Fine-tune from the pre-trained M0 at every step, or continue from the previous model M_{t-1}. */
  readonly startFrom: 'M0' | 'previous';
  /** Training set: L u Q, Q alone, or H u Q. */
  readonly trainOn: 'LQ' | 'Q' | 'HQ';
  /** How Q is chosen: at random (the baseline) or by active selection. */
  readonly selection: 'random' | 'active';
  /** True when the model is fine-tuned continually (startFrom = 'previous'). */
  readonly continual: boolean;
  /** One line for people. */
  readonly description: string;
}

/** The five strategies of the paper's Table 2, by code. */
export const STRATEGIES: Readonly<Record<StrategyCode, LearningStrategy>> = Object.freeze({
  'RFT(LQ)': Object.freeze({
    code: 'RFT(LQ)',
    startFrom: 'M0',
    trainOn: 'LQ',
    selection: 'random',
    continual: false,
    description: 'Random fine-tuning, the baseline: random Q; fine-tune M0 on L u Q at every step',
  }),
  'AFT(LQ)': Object.freeze({
    code: 'AFT(LQ)',
    startFrom: 'M0',
    trainOn: 'LQ',
    selection: 'active',
    continual: false,
    description: 'Active fine-tuning: active Q; fine-tune M0 on L u Q at every step',
  }),
  'ACFT(Q)': Object.freeze({
    code: 'ACFT(Q)',
    startFrom: 'previous',
    trainOn: 'Q',
    selection: 'active',
    continual: true,
    description: 'Active, continual fine-tuning on Q only: active Q; fine-tune M_{t-1} on Q (unstable)',
  }),
  'ACFT(LQ)': Object.freeze({
    code: 'ACFT(LQ)',
    startFrom: 'previous',
    trainOn: 'LQ',
    selection: 'active',
    continual: true,
    description: 'Active, continual fine-tuning on everything: active Q; fine-tune M_{t-1} on L u Q',
  }),
  'ACFT(HQ)': Object.freeze({
    code: 'ACFT(HQ)',
    startFrom: 'previous',
    trainOn: 'HQ',
    selection: 'active',
    continual: true,
    description:
      'Active, continual fine-tuning on the hard ones (the default): active Q; fine-tune M_{t-1} on H u Q',
  }),
});

/** Every strategy code, in the paper's order. */
export const STRATEGY_CODES: readonly StrategyCode[] = Object.freeze([
  'RFT(LQ)',
  'AFT(LQ)',
  'ACFT(Q)',
  'ACFT(LQ)',
  'ACFT(HQ)',
]);

/** Thrown by {@link parseStrategy} for a name it does not know. */
export class UnknownStrategyError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'UNKNOWN_STRATEGY';
  /** Retrying with the same name fails the same way. */
  readonly retryable = false;
  override readonly name = 'UnknownStrategyError';
}

/** Normalised name (upper case, letters only) -> strategy. */
const ALIASES: ReadonlyMap<string, StrategyCode> = new Map<string, StrategyCode>([
  ['RFTLQ', 'RFT(LQ)'],
  ['RFT', 'RFT(LQ)'],
  ['AFTLQ', 'AFT(LQ)'],
  ['AFT', 'AFT(LQ)'],
  ['ACFTQ', 'ACFT(Q)'],
  ['ACFTLQ', 'ACFT(LQ)'],
  ['ACFTHQ', 'ACFT(HQ)'],
  ['ACFT', 'ACFT(HQ)'],
]);

/**
 * Parses a strategy name, ignoring case, spaces, dashes, underscores and parentheses: 'acft-hq',
 * 'ACFT(HQ)', 'acft_lq', 'ACFT (Q)'. Bare family names mean the paper's usual member: 'rft' and
 * 'aft' mean RFT(LQ) and AFT(LQ); 'acft' means ACFT(HQ), the optimized default.
 *
 * @throws UnknownStrategyError for any other name.
 */
export function parseStrategy(s: string): LearningStrategy {
  const key = s.toUpperCase().replace(/[\s\-_()]/g, '');
  const code = ALIASES.get(key);
  if (code === undefined) {
    throw new UnknownStrategyError(
      `unknown learning strategy '${s}'; expected one of ${STRATEGY_CODES.join(', ')}`,
    );
  }
  return STRATEGIES[code];
}

/** The parts a training set is made from, at one step. */
export interface TrainingParts<T> {
  /** L: candidates labeled before this step. */
  readonly labeled: readonly T[];
  /** Q: candidates labeled in this step. */
  readonly newlyLabeled: readonly T[];
  /** H: the candidates of L that the current model misclassifies. */
  readonly misclassified: readonly T[];
}

/**
 * The candidates a strategy trains on at one step: L u Q, Q, or H u Q.
 *
 * The union keeps the first occurrence of each item (compared with `===`, or by `key` when
 * given), L (or H) first and then Q, so an item in both is trained on once.
 *
 * @param strategy - a strategy or its code.
 * @param parts - L, Q and H.
 * @param key - optional identity of an item, e.g. the candidate id, for deduplication.
 */
export function trainingSet<T>(
  strategy: LearningStrategy | StrategyCode,
  parts: TrainingParts<T>,
  key: (item: T) => unknown = (item) => item,
): T[] {
  const trainOn = typeof strategy === 'string' ? STRATEGIES[strategy].trainOn : strategy.trainOn;
  const groups: readonly (readonly T[])[] =
    trainOn === 'Q'
      ? [parts.newlyLabeled]
      : trainOn === 'LQ'
        ? [parts.labeled, parts.newlyLabeled]
        : [parts.misclassified, parts.newlyLabeled];
  const seen = new Set<unknown>();
  const out: T[] = [];
  for (const group of groups) {
    for (const item of group) {
      const k = key(item);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(item);
    }
  }
  return out;
}

/**
 * H: the items whose predicted class differs from their true class (the candidate prediction is
 * the argmax of its mean patch probabilities; computing it is the caller's).
 *
 * @param items - labeled candidates (L).
 * @param predictedClass - the current model's class for an item.
 * @param trueClass - the item's label.
 */
export function misclassified<T>(
  items: readonly T[],
  predictedClass: (item: T) => number,
  trueClass: (item: T) => number,
): T[] {
  return items.filter((item) => predictedClass(item) !== trueClass(item));
}
