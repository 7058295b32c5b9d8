/**
 * Fine-tuning windows and labeling requests: when a window starts, what it trains on, the
 * deterministic ids that make a retried window or a replayed request idempotent, and whether a
 * new version is promoted.
 *
 * A window's lifecycle is recorded in the label store (labels.ts: `window-started`,
 * `window-completed`, `window-abandoned`); only one window is in flight at a time, and a window
 * interrupted by a crash is retried from the checkpoint's in-flight plan, so it trains on the same
 * inputs and {@link windowId} gives it the same version id.
 */
import {
  newLabelsSinceWindow,
  trainableCandidates,
  type LabeledCandidate,
  type LabelsState,
  type WindowPlan,
} from './labels.js';
import { selectionInput, type PooledScore, type PoolEvent, type PoolState } from './pool.js';
import { createRng, deriveSeed, shuffleInPlace } from './rng.js';
import { selectForLabeling, type Selection, type TakenBy } from './select.js';
import {
  misclassified,
  STRATEGIES,
  trainingSet,
  type LearningStrategy,
  type StrategyCode,
} from './strategies.js';

export type { WindowPlan } from './labels.js';

/**
 * A stable 128-bit hash of a string as 32 hex digits (cyrb128 over UTF-16 code units): the same
 * on every platform and Node version. Not cryptographic: it names things, it does not protect them.
 */
export function stableHash(text: string): string {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1, h2, h3, h4].map((h) => (h >>> 0).toString(16).padStart(8, '0')).join('');
}

/** JSON text with object keys sorted at every level, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    );
  });
}

/**
 * The id of the labeling request for a candidate, made at window `windowSeq` from its score by
 * `modelVersion`: a function of those three only, so replaying a window after a restart yields the same
 * request ids and the `labeling-requests` topic (keyed by it) does not ask a radiologist twice.
 */
export function requestId(candidateId: string, modelVersion: string, windowSeq: number): string {
  return `lr-${stableHash(canonicalJson(['acft-request/1', candidateId, modelVersion, windowSeq]))}`;
}

/** Why a window starts. */
export type WindowTrigger = 'b-labels' | 'max-interval';

/** When windows start. */
export interface WindowTriggerOptions {
  /** Start once this many new labels are in (the paper's b). */
  readonly b: number;
  /** Start once the oldest new label has waited this long (with at least one new label). */
  readonly maxIntervalMs: number;
}

/**
 * Whether a fine-tuning window should start now: `b-labels` when at least b new labels (see
 * `newLabelsSinceWindow`) are in; else `max-interval` when at least one is and the oldest of them
 * was recorded `maxIntervalMs` ago or more (so no label waits longer than that for a window to
 * start; this also covers the first window); else null. Always null while a window is in flight.
 */
export function shouldStartWindow(
  labels: LabelsState<unknown>,
  now: number,
  options: WindowTriggerOptions,
): WindowTrigger | null {
  if (labels.inFlight !== null) return null;
  const n = newLabelsSinceWindow(labels);
  if (n === 0) return null;
  if (n >= options.b) return 'b-labels';
  const oldestId = labels.fresh.values().next();
  if (oldestId.done === true) return null;
  const oldest = labels.records.get(oldestId.value);
  if (oldest !== undefined && now - oldest.firstLabeledAtMs >= options.maxIntervalMs) return 'max-interval';
  return null;
}

/** Options of {@link planWindow}. */
export interface PlanWindowOptions {
  /** Rehearsal: per class, how many labeled candidates outside the strategy's set to add (0: none). */
  readonly replayPerClass: number;
  /** Seed of the rehearsal draw. */
  readonly seed: number;
  /** Step mixed into the rehearsal seed; default the window's seq. */
  readonly step?: number;
}

/**
 * Plans the next window from the label store (the window's seq is `labels.windowSeq`).
 *
 * - Q: the new labels (first label since the last window), in label order; held-out candidates
 *   never appear anywhere in a plan.
 * - L: every other labeled candidate. `corrected`: those of L trained on before whose label has
 *   changed since; they are trained again with their new label, like Q.
 * - H: only for strategies that train on H (ACFT(HQ)), the candidates of L that the serving model
 *   misclassifies (`predictedClassOf(id) !== label`); for the others H is empty and
 *   `predictedClassOf` is not called.
 * - train: `trainingSet(strategy, { labeled: L, newlyLabeled: Q u corrected, misclassified: H })`,
 *   then `replay`: per class (ascending), up to `replayPerClass` candidates of L not in that set,
 *   drawn with a seeded shuffle of them in label order.
 *
 * Retrying a window that was in flight must reuse `labels.inFlight`, not plan again.
 */
export function planWindow<T>(
  labels: LabelsState<T>,
  strategy: LearningStrategy | StrategyCode,
  predictedClassOf: (candidateId: string) => number,
  options: PlanWindowOptions,
): WindowPlan {
  const s = typeof strategy === 'string' ? STRATEGIES[strategy] : strategy;
  const trainable = trainableCandidates(labels);
  const q = trainable.filter((r) => labels.fresh.has(r.id)).map((r) => r.id);
  const qSet = new Set(q);
  const older = trainable.filter((r) => !qSet.has(r.id));
  const corrected = older
    .filter((r) => r.trainedLabel !== null && r.trainedLabel !== r.label)
    .map((r) => r.id);
  const h =
    s.trainOn === 'HQ'
      ? misclassified<LabeledCandidate<T>>(
          older,
          (r) => predictedClassOf(r.id),
          (r) => r.label,
        ).map((r) => r.id)
      : [];
  const core = trainingSet(s, {
    labeled: older.map((r) => r.id),
    newlyLabeled: [...q, ...corrected],
    misclassified: h,
  });
  const coreSet = new Set(core);
  const replay: string[] = [];
  if (options.replayPerClass > 0) {
    const byClass = new Map<number, string[]>();
    for (const r of older) {
      if (coreSet.has(r.id)) continue;
      const ids = byClass.get(r.label);
      if (ids === undefined) byClass.set(r.label, [r.id]);
      else ids.push(r.id);
    }
    const rng = createRng(deriveSeed(options.seed, 'replay', options.step ?? labels.windowSeq));
    for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
      const ids = shuffleInPlace(byClass.get(label) as string[], rng);
      replay.push(...ids.slice(0, options.replayPerClass));
    }
  }
  const train = [...core, ...replay];
  return {
    seq: labels.windowSeq,
    strategy: s.code,
    startFrom: s.startFrom,
    q,
    h,
    corrected,
    replay,
    train,
    trainLabels: train.map((id) => (labels.records.get(id) as LabeledCandidate<T>).label),
  };
}

/** What a window's model version is a function of. */
export interface WindowIdInputs {
  /** The version fine-tuned from (null for M0 when there is none). */
  readonly parentVersion: string | null;
  readonly strategy: StrategyCode;
  /** Trained candidate ids (any order) and their labels (aligned). */
  readonly train: readonly string[];
  readonly trainLabels: readonly number[];
  /** Every other input of training (learning rates, epochs, seed, ...), JSON-compatible. */
  readonly hyperParameters: Readonly<Record<string, unknown>>;
}

/**
 * The model version id of a window: `mv-` + a hash of its inputs (parent version, strategy, the
 * trained (id, label) pairs sorted by id, and the hyper-parameters with keys sorted). A retried
 * window with the same inputs yields the same id, so it cannot publish a second, different version.
 *
 * @param hash - the hash of the canonical text; default {@link stableHash}.
 */
export function windowId(inputs: WindowIdInputs, hash: (text: string) => string = stableHash): string {
  const pairs = inputs.train
    .map((id, i) => [id, inputs.trainLabels[i] ?? null] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `mv-${hash(
    canonicalJson(['acft-window/1', inputs.parentVersion, inputs.strategy, pairs, inputs.hyperParameters]),
  )}`;
}

/** Whether a new version is served. */
export type PromotionDecision = 'promoted' | 'rejected';

/**
 * Hanley & McNeil's (1982) standard error of an AUC measured on `positives` and `negatives`.
 * NaN when either count is 0.
 */
export function aucStandardError(auc: number, positives: number, negatives: number): number {
  if (positives <= 0 || negatives <= 0) return NaN;
  const a = Math.min(1, Math.max(0, auc));
  const q1 = a / (2 - a);
  const q2 = (2 * a * a) / (1 + a);
  const variance =
    (a * (1 - a) + (positives - 1) * (q1 - a * a) + (negatives - 1) * (q2 - a * a)) / (positives * negatives);
  return Math.sqrt(Math.max(0, variance));
}

/**
 * Promote unless the candidate's holdout AUC is worse than its parent's by more than the
 * tolerance:
 * - parent AUC null or not finite (no parent, or a hold-out with one class so far) -> `promoted`:
 *   there is nothing to compare against;
 * - else candidate AUC not finite -> `rejected`: on a hold-out where the parent has an AUC, a
 *   candidate without one gives broken (e.g. NaN) predictions;
 * - else `rejected` iff candidate < parent - tolerance, where, when the hold-out's class counts
 *   are given, the tolerance is at least two standard errors of the difference (Hanley-McNeil,
 *   taken as independent, which errs towards promoting): on a hold-out of a few dozen labels an
 *   AUC moves by 0.05 to 0.1 from noise alone, and a fixed 0.02 would reject better versions.
 * Both AUCs must come from the same hold-out. A negative or non-finite tolerance counts as 0.
 *
 * Whatever the parent's AUC, a candidate whose AUC is below `minAuc` (a floor such as 0.5, chance
 * level) is `rejected`: a parent that scored as badly is no reason to serve another such model.
 * Without an AUC (a hold-out of one class so far) the floor cannot apply.
 */
export function promotionDecision(
  candidateAuc: number,
  parentAuc: number | null,
  tolerance: number,
  holdout?: { positives: number; negatives: number },
  minAuc?: number,
): PromotionDecision {
  if (minAuc !== undefined && Number.isFinite(candidateAuc) && candidateAuc < minAuc) return 'rejected';
  if (parentAuc === null || !Number.isFinite(parentAuc)) return 'promoted';
  if (!Number.isFinite(candidateAuc)) return 'rejected';
  let tol = Number.isFinite(tolerance) && tolerance > 0 ? tolerance : 0;
  if (holdout !== undefined) {
    const se = Math.hypot(
      aucStandardError(candidateAuc, holdout.positives, holdout.negatives),
      aucStandardError(parentAuc, holdout.positives, holdout.negatives),
    );
    if (Number.isFinite(se)) tol = Math.max(tol, 2 * se);
  }
  return candidateAuc < parentAuc - tol ? 'rejected' : 'promoted';
}

/** Options of {@link planRequests}. */
export interface PlanRequestsOptions {
  /** How many candidates to ask about. */
  readonly b: number;
  /** Random extension w (default 5). */
  readonly omega?: number;
  /** Randomized selection (default true). */
  readonly randomness?: boolean;
  /** Seed of the draw (used when randomness is on), e.g. `deriveSeed(runSeed, 'select', windowSeq)`. */
  readonly seed: number;
  /** The window the requests belong to. */
  readonly windowSeq: number;
  /** When the requests are issued. */
  readonly now: number;
}

/** A labeling request to publish, with why it was made. */
export interface PlannedRequest {
  readonly requestId: string;
  readonly candidateId: string;
  /**
   * The version whose scores made the request: the candidate's score's version (just after a new
   * version is served, the pool's scores are still the previous version's until it is rescored).
   */
  readonly modelVersion: string;
  /** The candidate's score that selection used. */
  readonly score: PooledScore;
  /** The candidate's 0-based rank in the pool by score. */
  readonly rank: number;
  /** Its Eq. 4 draw probability (1 when taken by rank). */
  readonly drawProbability: number;
  readonly takenBy: TakenBy;
}

/**
 * The randomized selection (Eq. 4) of `options.b` of `scored` (index = position), as labeling
 * requests with their ids, ranks and draw probabilities. Shared by one instance's pool and the
 * coordinator's merged shortlists, so both derive the same requests from the same input.
 */
export function selectRequests(
  scored: readonly { readonly candidateId: string; readonly score: PooledScore }[],
  options: Pick<PlanRequestsOptions, 'b' | 'omega' | 'randomness' | 'seed' | 'windowSeq'>,
): { requests: PlannedRequest[]; selection: Selection } {
  const randomness = options.randomness ?? true;
  const selection = selectForLabeling(
    scored.map((e) => e.score.value),
    options.b,
    {
      randomness,
      ...(options.omega !== undefined ? { omega: options.omega } : {}),
      ...(randomness ? { seed: options.seed } : {}),
    },
  );
  const requests = selection.indices.map((index, k): PlannedRequest => {
    const e = scored[index];
    if (e === undefined) throw new Error('selection index out of range');
    return {
      requestId: requestId(e.candidateId, e.score.modelVersion, options.windowSeq),
      candidateId: e.candidateId,
      modelVersion: e.score.modelVersion,
      score: e.score,
      rank: selection.ranks[k] as number,
      drawProbability: selection.probabilities[k] as number,
      takenBy: selection.takenBy[k] as TakenBy,
    };
  });
  return { requests, selection };
}

/**
 * Selects b candidates to ask labels for (randomized selection over {@link selectionInput}: pooled,
 * scored, not requested) and returns the requests plus the pool event that marks them requested.
 * Tick the pool to `now` first, so no expired candidate is chosen. A candidate is never requested
 * twice while outstanding: requested candidates are not selectable, and the pool refuses to
 * request one twice.
 */
export function planRequests<T>(
  pool: PoolState<T>,
  options: PlanRequestsOptions,
): { requests: PlannedRequest[]; event: PoolEvent<T>; selection: Selection } {
  const input = selectionInput(pool);
  const { requests, selection } = selectRequests(
    input.candidates.map((c) => {
      if (c.score === undefined) throw new Error(`candidate ${c.id} has no score`);
      return { candidateId: c.id, score: c.score };
    }),
    options,
  );
  return {
    requests,
    event: {
      type: 'requests-issued',
      now: options.now,
      requests: requests.map((r) => ({ candidateId: r.candidateId, requestId: r.requestId })),
    },
    selection,
  };
}
