/**
 * The labeled set L, the validation hold-out and the feedback rules: a reducer
 * `(labels, event, config) => { state, effects }`, plus {@link ingestCandidate} and
 * {@link ingestFeedback}, which route a message between the pool and the label store so that no
 * candidate is ever both pooled and labeled.
 *
 * State ownership: like the pool, the reducer updates the state it is given in place and returns
 * it (see pool.ts).
 *
 * Feedback rules:
 * - Votes: each annotator has one vote per candidate, their latest label (by the feedback's
 *   `timeMs`; on equal times the later-received one). Feedback with the annotator's current label
 *   is a no-op (`duplicate-feedback`): the label and the vote stay as they are (only the time
 *   before which other labels of theirs count as stale moves up). Feedback with another label
 *   that is older than the annotator's latest feedback is a no-op too (`stale-feedback`), so late
 *   or replayed feedback never undoes a relabel. Otherwise the annotator's vote is replaced.
 * - Label: the majority over the annotators' votes; a tie goes to the tied label whose most
 *   recent vote is the latest (by the vote's `timeMs`, then by reception order).
 * - A change of a candidate's label is recorded (`label-changed`, saying whether it was already
 *   trained on); training reads the label when a window is planned, so the new label is used from
 *   the next window on, and a trained candidate whose label changed is trained again (windows.ts).
 * - Exactly-once counting: a candidate counts as a new label once, on its first vote; only
 *   candidates not held out count (`newLabelsSinceWindow`).
 * - Hold-out: decided once per candidate, on its first label, by `isHeldOut(id, share, salt)`, and
 *   kept; held-out candidates are never returned for training.
 * - Unknown candidates: feedback for a candidate that is neither pooled nor labeled waits in a
 *   bounded buffer (`maxPending` feedback messages, each for `pendingTtlMs` after reception).
 *   When the candidate arrives, its feedback is applied in reception order and the candidate goes
 *   straight to L (never to the pool). When the TTL passes, or when the buffer is full and the
 *   oldest waiting feedback must make room, it is dead-lettered with reason `unknown-candidate`.
 *   A candidate that expired or was evicted from the pool is unknown again: its payload is gone.
 */
import { isHeldOut } from './holdout.js';
import {
  hasCandidate,
  poolReducer,
  type NewCandidate,
  type PoolConfig,
  type PoolEffect,
  type PoolState,
  type SourceRef,
} from './pool.js';
import type { StrategyCode } from './strategies.js';

/** A radiologist's (or the CAD loop's) answer about one candidate. */
export interface Feedback {
  readonly candidateId: string;
  /** The class index. */
  readonly label: number;
  readonly annotatorId: string;
  /** When the annotator gave it. */
  readonly timeMs: number;
  /** The labeling request it answers, if any. */
  readonly requestId?: string;
  /** Where the message came from: the source of its dead letter, should it wait in vain. */
  readonly source?: SourceRef;
}

/** One annotator's current vote on a candidate. */
export interface Vote {
  readonly annotatorId: string;
  readonly label: number;
  /** The time of the feedback that set this vote. */
  readonly timeMs: number;
  /** Reception order of that feedback (unique within the store). */
  readonly seq: number;
  /** The latest `timeMs` of this annotator's feedback on the candidate (stale horizon). */
  readonly latestMs: number;
}

/** What the label store needs of a candidate to keep it for training. */
export interface LabelableCandidate<T> {
  readonly id: string;
  readonly source: SourceRef;
  readonly payload: T;
}

/** A candidate in L (or in the hold-out). */
export interface LabeledCandidate<T> {
  readonly id: string;
  readonly source: SourceRef;
  /** What training needs (the pool's payload). */
  readonly payload: T;
  /** In the validation hold-out: never trained on. Decided on the first label. */
  readonly heldOut: boolean;
  /** The current label (see the module's rules). */
  label: number;
  /** Each annotator's current vote. */
  votes: Vote[];
  /** The `now` of its first label. */
  readonly firstLabeledAtMs: number;
  /** Order of first labels (unique, increasing). */
  readonly labelSeq: number;
  /** The window whose Q held it; null while it is a new label (or held out). */
  consumedByWindow: number | null;
  /** The label it was last trained with; null when never trained on. */
  trainedLabel: number | null;
  /** The last window that trained on it. */
  lastTrainedWindow: number | null;
}

/** A feedback message waiting for its candidate. */
export interface PendingFeedback {
  readonly feedback: Feedback;
  readonly receivedAtMs: number;
  /** Reception order. */
  readonly seq: number;
}

/**
 * A fine-tuning window's plan (made by windows.ts `planWindow`). All id lists hold candidates of
 * L that are not held out.
 */
export interface WindowPlan {
  /** The window's number: the count of windows completed before it. */
  readonly seq: number;
  readonly strategy: StrategyCode;
  /** Fine-tune from M0 or from the serving model. */
  readonly startFrom: 'M0' | 'previous';
  /** Q: candidates whose first label came since the last window, in label order. */
  readonly q: readonly string[];
  /** H: candidates of L (labeled before this window) the serving model misclassifies. */
  readonly h: readonly string[];
  /** Candidates trained on before whose label has changed since; trained again, like Q. */
  readonly corrected: readonly string[];
  /** Rehearsal: candidates of L outside the strategy's set, a few per class. */
  readonly replay: readonly string[];
  /** Everything trained on in this window: the strategy's set, then `replay`. */
  readonly train: readonly string[];
  /** The label of each `train` entry at planning time (aligned). */
  readonly trainLabels: readonly number[];
}

/** Configuration of the label store. */
export interface LabelsConfig {
  /** Share of candidates held out for validation, in [0, 1]. */
  readonly holdoutShare: number;
  /** Salt of the hold-out hash (default ''). */
  readonly holdoutSalt?: string;
  /** Most feedback messages waiting for their candidates. */
  readonly maxPending: number;
  /** How long feedback waits for its candidate. */
  readonly pendingTtlMs: number;
}

/** The label store's state. Read it through this module's functions. */
export interface LabelsState<T> {
  /** L and the hold-out, by id. */
  readonly records: Map<string, LabeledCandidate<T>>;
  /** New labels not yet consumed by a completed window, in label order (not held out). */
  readonly fresh: Set<string>;
  /** Feedback waiting for its candidate, by seq, in reception order. */
  readonly pending: Map<number, PendingFeedback>;
  /** Seqs of the waiting feedback, by candidate id. */
  readonly pendingByCandidate: Map<string, number[]>;
  nextLabelSeq: number;
  nextVoteSeq: number;
  nextPendingSeq: number;
  /** Windows completed so far (the next window's seq). */
  windowSeq: number;
  lastWindowAtMs: number | null;
  /** The window started and not yet completed or abandoned. */
  inFlight: WindowPlan | null;
  /** The latest `now` seen (null before any): reception times never go backwards. */
  clockMs: number | null;
}

/** Why feedback was dead-lettered. */
export interface DeadLetterFeedback {
  readonly type: 'dead-letter';
  readonly reason: 'unknown-candidate';
  /** `ttl-expired`: its candidate never came; `buffer-full`: it made room for newer feedback. */
  readonly cause: 'ttl-expired' | 'buffer-full';
  readonly feedback: Feedback;
  readonly receivedAtMs: number;
}

/** What happened, for the adapters. */
export type LabelsEffect =
  | {
      readonly type: 'first-label';
      readonly candidateId: string;
      readonly label: number;
      readonly heldOut: boolean;
      readonly annotatorId: string;
      readonly requestId?: string;
    }
  | {
      readonly type: 'label-changed';
      readonly candidateId: string;
      readonly from: number;
      readonly to: number;
      /** Whether it had been trained on (with a label other than the new one, or the same). */
      readonly trained: boolean;
      readonly heldOut: boolean;
    }
  | {
      readonly type: 'label-confirmed';
      readonly candidateId: string;
      readonly label: number;
      readonly annotatorId: string;
    }
  | { readonly type: 'duplicate-feedback'; readonly candidateId: string; readonly annotatorId: string }
  | { readonly type: 'stale-feedback'; readonly candidateId: string; readonly annotatorId: string }
  | { readonly type: 'feedback-pending'; readonly candidateId: string; readonly pending: number }
  | { readonly type: 'pending-applied'; readonly candidateId: string; readonly count: number }
  | DeadLetterFeedback
  | { readonly type: 'already-labeled'; readonly candidateId: string }
  | { readonly type: 'window-started'; readonly seq: number }
  | {
      readonly type: 'window-completed';
      readonly seq: number;
      readonly consumed: number;
      readonly trained: number;
    }
  | { readonly type: 'window-abandoned'; readonly seq: number }
  | {
      readonly type: 'window-ignored';
      readonly seq: number;
      readonly reason: 'in-flight' | 'not-in-flight' | 'wrong-seq';
    };

/** Events the label store reacts to. */
export type LabelsEvent<T> =
  /** Feedback; `candidate` is given when the candidate was just taken from the pool. */
  | {
      readonly type: 'feedback';
      readonly feedback: Feedback;
      readonly now: number;
      readonly candidate?: LabelableCandidate<T>;
    }
  /** A candidate arrived that has feedback waiting (or is labeled already). */
  | { readonly type: 'candidate-arrived'; readonly candidate: LabelableCandidate<T>; readonly now: number }
  | { readonly type: 'tick'; readonly now: number }
  | { readonly type: 'window-started'; readonly plan: WindowPlan; readonly now: number }
  /** The window's version was published (promoted or rejected): its Q is consumed. */
  | { readonly type: 'window-completed'; readonly seq: number; readonly now: number }
  /** The window was given up before publishing (e.g. shutdown): it will be planned again. */
  | { readonly type: 'window-abandoned'; readonly seq: number };

/** The result of one reducer step. */
export interface LabelsStep<T> {
  readonly state: LabelsState<T>;
  readonly effects: LabelsEffect[];
}

/** An empty label store. */
export function emptyLabels<T>(): LabelsState<T> {
  return {
    records: new Map(),
    fresh: new Set(),
    pending: new Map(),
    pendingByCandidate: new Map(),
    nextLabelSeq: 0,
    nextVoteSeq: 0,
    nextPendingSeq: 0,
    windowSeq: 0,
    lastWindowAtMs: null,
    inFlight: null,
    clockMs: null,
  };
}

/** The label the votes give: majority, ties to the label with the most recent vote. */
export function resolveLabel(votes: readonly Vote[]): number | undefined {
  const tally = new Map<number, { count: number; last: Vote }>();
  for (const v of votes) {
    const t = tally.get(v.label);
    if (t === undefined) tally.set(v.label, { count: 1, last: v });
    else {
      t.count++;
      if (moreRecent(v, t.last)) t.last = v;
    }
  }
  let best: { label: number; count: number; last: Vote } | undefined;
  for (const [label, t] of tally) {
    if (
      best === undefined ||
      t.count > best.count ||
      (t.count === best.count && moreRecent(t.last, best.last))
    ) {
      best = { label, ...t };
    }
  }
  return best?.label;
}

function moreRecent(a: Vote, b: Vote): boolean {
  return a.timeMs > b.timeMs || (a.timeMs === b.timeMs && a.seq > b.seq);
}

function createRecord<T>(
  state: LabelsState<T>,
  candidate: LabelableCandidate<T>,
  first: Feedback,
  now: number,
  config: LabelsConfig,
  effects: LabelsEffect[],
): void {
  const heldOut = isHeldOut(candidate.id, config.holdoutShare, config.holdoutSalt ?? '');
  const vote: Vote = {
    annotatorId: first.annotatorId,
    label: first.label,
    timeMs: first.timeMs,
    seq: state.nextVoteSeq++,
    latestMs: first.timeMs,
  };
  state.records.set(candidate.id, {
    id: candidate.id,
    source: {
      topic: candidate.source.topic,
      partition: candidate.source.partition,
      offset: candidate.source.offset,
    },
    payload: candidate.payload,
    heldOut,
    label: first.label,
    votes: [vote],
    firstLabeledAtMs: now,
    labelSeq: state.nextLabelSeq++,
    consumedByWindow: null,
    trainedLabel: null,
    lastTrainedWindow: null,
  });
  if (!heldOut) state.fresh.add(candidate.id);
  effects.push({
    type: 'first-label',
    candidateId: candidate.id,
    label: first.label,
    heldOut,
    annotatorId: first.annotatorId,
    ...(first.requestId !== undefined ? { requestId: first.requestId } : {}),
  });
}

function applyVote<T>(
  state: LabelsState<T>,
  record: LabeledCandidate<T>,
  fb: Feedback,
  effects: LabelsEffect[],
): void {
  const candidateId = record.id;
  const { annotatorId } = fb;
  const i = record.votes.findIndex((v) => v.annotatorId === annotatorId);
  const prev = record.votes[i];
  if (prev !== undefined) {
    if (prev.label === fb.label) {
      if (fb.timeMs > prev.latestMs) record.votes[i] = { ...prev, latestMs: fb.timeMs };
      effects.push({ type: 'duplicate-feedback', candidateId, annotatorId });
      return;
    }
    if (fb.timeMs < prev.latestMs) {
      effects.push({ type: 'stale-feedback', candidateId, annotatorId });
      return;
    }
  }
  const vote: Vote = {
    annotatorId,
    label: fb.label,
    timeMs: fb.timeMs,
    seq: state.nextVoteSeq++,
    latestMs: fb.timeMs,
  };
  if (prev !== undefined) record.votes[i] = vote;
  else record.votes.push(vote);
  const from = record.label;
  const to = resolveLabel(record.votes) as number;
  if (to !== from) {
    record.label = to;
    effects.push({
      type: 'label-changed',
      candidateId,
      from,
      to,
      trained: record.trainedLabel !== null,
      heldOut: record.heldOut,
    });
  } else {
    effects.push({ type: 'label-confirmed', candidateId, label: to, annotatorId });
  }
}

function dropPending<T>(state: LabelsState<T>, seq: number): PendingFeedback | undefined {
  const p = state.pending.get(seq);
  if (p === undefined) return undefined;
  state.pending.delete(seq);
  const id = p.feedback.candidateId;
  const seqs = state.pendingByCandidate.get(id);
  if (seqs !== undefined) {
    const rest = seqs.filter((s) => s !== seq);
    if (rest.length === 0) state.pendingByCandidate.delete(id);
    else state.pendingByCandidate.set(id, rest);
  }
  return p;
}

function holdPending<T>(
  state: LabelsState<T>,
  fb: Feedback,
  now: number,
  config: LabelsConfig,
  effects: LabelsEffect[],
): void {
  const id = fb.candidateId;
  const seqs = state.pendingByCandidate.get(id) ?? [];
  const same = seqs.some((s) => {
    const f = state.pending.get(s)?.feedback;
    return (
      f !== undefined && f.annotatorId === fb.annotatorId && f.label === fb.label && f.timeMs === fb.timeMs
    );
  });
  if (same) {
    effects.push({ type: 'duplicate-feedback', candidateId: id, annotatorId: fb.annotatorId });
    return;
  }
  if (config.maxPending < 1) {
    effects.push({
      type: 'dead-letter',
      reason: 'unknown-candidate',
      cause: 'buffer-full',
      feedback: fb,
      receivedAtMs: now,
    });
    return;
  }
  while (state.pending.size >= config.maxPending) {
    const oldest = state.pending.keys().next();
    if (oldest.done === true) break;
    const p = dropPending(state, oldest.value) as PendingFeedback;
    effects.push({
      type: 'dead-letter',
      reason: 'unknown-candidate',
      cause: 'buffer-full',
      feedback: p.feedback,
      receivedAtMs: p.receivedAtMs,
    });
  }
  const seq = state.nextPendingSeq++;
  state.pending.set(seq, { feedback: fb, receivedAtMs: now, seq });
  const mine = state.pendingByCandidate.get(id);
  if (mine === undefined) state.pendingByCandidate.set(id, [seq]);
  else mine.push(seq);
  effects.push({ type: 'feedback-pending', candidateId: id, pending: state.pending.size });
}

function expirePending<T>(
  state: LabelsState<T>,
  now: number,
  config: LabelsConfig,
  effects: LabelsEffect[],
): void {
  for (const [seq, p] of state.pending) {
    if (p.receivedAtMs + config.pendingTtlMs > now) break; // reception order is time order
    dropPending(state, seq);
    effects.push({
      type: 'dead-letter',
      reason: 'unknown-candidate',
      cause: 'ttl-expired',
      feedback: p.feedback,
      receivedAtMs: p.receivedAtMs,
    });
  }
}

/**
 * Restarts the wait of every waiting feedback at `now`. Called when consumption (re)starts, after a
 * restart or a rebalance: while the daemon was down or catching up, the candidates a feedback waits
 * for may be just behind in their topic, and the downtime must not count against the
 * pending-feedback time (it would dead-letter valid feedback as 'unknown-candidate').
 */
export function resumePendingClock<T>(state: LabelsState<T>, now: number): void {
  for (const [seq, p] of state.pending) {
    if (p.receivedAtMs < now) state.pending.set(seq, { ...p, receivedAtMs: now });
  }
}

/** Advances the clock (never backwards) and returns it. */
function advance<T>(state: LabelsState<T>, now: number): number {
  if (state.clockMs === null || now > state.clockMs) state.clockMs = now;
  return state.clockMs;
}

/** Makes `candidate` labeled from the feedback waiting for it; false when none waits. */
function claimPending<T>(
  state: LabelsState<T>,
  candidate: LabelableCandidate<T>,
  now: number,
  config: LabelsConfig,
  effects: LabelsEffect[],
): boolean {
  const seqs = state.pendingByCandidate.get(candidate.id);
  if (seqs === undefined) return false;
  const waiting = [...seqs].map((s) => dropPending(state, s)).filter((p) => p !== undefined);
  const [first, ...rest] = waiting;
  if (first === undefined) return false;
  createRecord(state, candidate, first.feedback, now, config, effects);
  const record = state.records.get(candidate.id) as LabeledCandidate<T>;
  for (const p of rest) applyVote(state, record, p.feedback, effects);
  effects.push({ type: 'pending-applied', candidateId: candidate.id, count: waiting.length });
  return true;
}

/**
 * The label store's reducer; updates `state` in place and returns it with the effects (see the
 * module comment for the rules).
 *
 * - `feedback`: applied to a labeled candidate; for a new one, `candidate` (taken from the pool)
 *   makes it a labeled candidate; without it, the feedback waits (`feedback-pending`).
 * - `candidate-arrived`: applies the feedback waiting for it (`pending-applied`); a labeled
 *   candidate is a no-op (`already-labeled`); otherwise nothing happens (the candidate belongs in
 *   the pool; {@link ingestCandidate} routes it).
 * - `tick`: dead-letters waiting feedback whose TTL has passed.
 * - `window-started` / `window-completed` / `window-abandoned`: a window's lifecycle. Completion
 *   consumes the plan's Q (those labels are no longer new) and records what was trained with which
 *   label. Only one window is in flight at a time.
 */
export function labelsReducer<T>(
  state: LabelsState<T>,
  event: LabelsEvent<T>,
  config: LabelsConfig,
): LabelsStep<T> {
  const effects: LabelsEffect[] = [];
  switch (event.type) {
    case 'feedback': {
      const now = advance(state, event.now);
      expirePending(state, now, config, effects);
      const fb = event.feedback;
      const record = state.records.get(fb.candidateId);
      if (record !== undefined) applyVote(state, record, fb, effects);
      else if (event.candidate !== undefined && event.candidate.id === fb.candidateId) {
        if (claimPending(state, event.candidate, now, config, effects)) {
          applyVote(state, state.records.get(fb.candidateId) as LabeledCandidate<T>, fb, effects);
        } else createRecord(state, event.candidate, fb, now, config, effects);
      } else holdPending(state, fb, now, config, effects);
      break;
    }
    case 'candidate-arrived': {
      const now = advance(state, event.now);
      expirePending(state, now, config, effects);
      const id = event.candidate.id;
      if (state.records.has(id)) {
        effects.push({ type: 'already-labeled', candidateId: id });
        break;
      }
      claimPending(state, event.candidate, now, config, effects);
      break;
    }
    case 'tick':
      expirePending(state, advance(state, event.now), config, effects);
      break;
    case 'window-started': {
      const { plan } = event;
      if (state.inFlight !== null) {
        effects.push({ type: 'window-ignored', seq: plan.seq, reason: 'in-flight' });
      } else if (plan.seq !== state.windowSeq) {
        effects.push({ type: 'window-ignored', seq: plan.seq, reason: 'wrong-seq' });
      } else {
        state.inFlight = plan;
        effects.push({ type: 'window-started', seq: plan.seq });
      }
      break;
    }
    case 'window-completed': {
      const plan = state.inFlight;
      if (plan === null || plan.seq !== event.seq) {
        effects.push({ type: 'window-ignored', seq: event.seq, reason: 'not-in-flight' });
        break;
      }
      for (const id of plan.q) {
        state.fresh.delete(id);
        const r = state.records.get(id);
        if (r !== undefined) r.consumedByWindow = plan.seq;
      }
      plan.train.forEach((id, i) => {
        const r = state.records.get(id);
        const label = plan.trainLabels[i];
        if (r === undefined || label === undefined) return;
        r.trainedLabel = label;
        r.lastTrainedWindow = plan.seq;
      });
      state.windowSeq = plan.seq + 1;
      state.lastWindowAtMs = event.now;
      state.inFlight = null;
      effects.push({
        type: 'window-completed',
        seq: plan.seq,
        consumed: plan.q.length,
        trained: plan.train.length,
      });
      break;
    }
    case 'window-abandoned':
      if (state.inFlight === null || state.inFlight.seq !== event.seq) {
        effects.push({ type: 'window-ignored', seq: event.seq, reason: 'not-in-flight' });
      } else {
        state.inFlight = null;
        effects.push({ type: 'window-abandoned', seq: event.seq });
      }
      break;
  }
  return { state, effects };
}

// --- reading the store ---

/** Whether the candidate is in L or the hold-out. */
export function isLabeled(state: LabelsState<unknown>, id: string): boolean {
  return state.records.has(id);
}

/** The labeled candidate with this id. Do not mutate it. */
export function getLabeled<T>(state: LabelsState<T>, id: string): LabeledCandidate<T> | undefined {
  return state.records.get(id);
}

/** Whether feedback is waiting for this candidate. */
export function hasPendingFeedback(state: LabelsState<unknown>, id: string): boolean {
  return state.pendingByCandidate.has(id);
}

/** Number of feedback messages waiting for their candidates. */
export function pendingCount(state: LabelsState<unknown>): number {
  return state.pending.size;
}

/** Number of labeled candidates (L and hold-out). */
export function labeledCount(state: LabelsState<unknown>): number {
  return state.records.size;
}

/**
 * Distinct candidates, not held out, whose first label came since the last completed window and
 * that the window in flight (if any) does not already hold. Each candidate counts once, however
 * often its feedback is replayed.
 */
export function newLabelsSinceWindow(state: LabelsState<unknown>): number {
  const inFlight = state.inFlight;
  if (inFlight === null) return state.fresh.size;
  let n = state.fresh.size;
  for (const id of inFlight.q) if (state.fresh.has(id)) n--;
  return n;
}

/** Ids of the new labels (see {@link newLabelsSinceWindow}, in flight included), in label order. */
export function freshIds(state: LabelsState<unknown>): string[] {
  return [...state.fresh];
}

/** Every labeled candidate not held out, in label order. */
export function trainableCandidates<T>(state: LabelsState<T>): LabeledCandidate<T>[] {
  return [...state.records.values()].filter((r) => !r.heldOut).sort((a, b) => a.labelSeq - b.labelSeq);
}

/** The hold-out, in label order: every version is evaluated on it. */
export function holdoutCandidates<T>(state: LabelsState<T>): LabeledCandidate<T>[] {
  return [...state.records.values()].filter((r) => r.heldOut).sort((a, b) => a.labelSeq - b.labelSeq);
}

/** One training example: a candidate's payload with its current label. */
export interface TrainingExample<T> {
  readonly id: string;
  readonly label: number;
  readonly payload: T;
}

/**
 * The training examples for `ids` (e.g. a window plan's `train`), with their current labels, in
 * the order given. Held-out and unknown ids are skipped: the hold-out is never trained on.
 */
export function trainingExamples<T>(state: LabelsState<T>, ids: readonly string[]): TrainingExample<T>[] {
  const out: TrainingExample<T>[] = [];
  for (const id of ids) {
    const r = state.records.get(id);
    if (r === undefined || r.heldOut) continue;
    out.push({ id, label: r.label, payload: r.payload });
  }
  return out;
}

/**
 * A label store holding `records`, `pending` feedback and the window bookkeeping, e.g. from a
 * checkpoint. Records and votes are copied.
 */
export function restoreLabels<T>(parts: {
  readonly records: readonly LabeledCandidate<T>[];
  readonly fresh: readonly string[];
  readonly pending: readonly PendingFeedback[];
  readonly nextLabelSeq: number;
  readonly nextVoteSeq: number;
  readonly nextPendingSeq: number;
  readonly windowSeq: number;
  readonly lastWindowAtMs: number | null;
  readonly inFlight: WindowPlan | null;
  readonly clockMs: number | null;
}): LabelsState<T> {
  const state = emptyLabels<T>();
  for (const r of [...parts.records].sort((a, b) => a.labelSeq - b.labelSeq)) {
    state.records.set(r.id, { ...r, source: { ...r.source }, votes: r.votes.map((v) => ({ ...v })) });
  }
  for (const id of parts.fresh) state.fresh.add(id);
  for (const p of [...parts.pending].sort((a, b) => a.seq - b.seq)) {
    state.pending.set(p.seq, { ...p, feedback: { ...p.feedback } });
    const seqs = state.pendingByCandidate.get(p.feedback.candidateId);
    if (seqs === undefined) state.pendingByCandidate.set(p.feedback.candidateId, [p.seq]);
    else seqs.push(p.seq);
  }
  state.nextLabelSeq = parts.nextLabelSeq;
  state.nextVoteSeq = parts.nextVoteSeq;
  state.nextPendingSeq = parts.nextPendingSeq;
  state.windowSeq = parts.windowSeq;
  state.lastWindowAtMs = parts.lastWindowAtMs;
  state.inFlight = parts.inFlight === null ? null : copyPlan(parts.inFlight);
  state.clockMs = parts.clockMs;
  return state;
}

/** A deep copy of a window plan. */
export function copyPlan(plan: WindowPlan): WindowPlan {
  return {
    seq: plan.seq,
    strategy: plan.strategy,
    startFrom: plan.startFrom,
    q: [...plan.q],
    h: [...plan.h],
    corrected: [...plan.corrected],
    replay: [...plan.replay],
    train: [...plan.train],
    trainLabels: [...plan.trainLabels],
  };
}

// --- routing between the pool and the label store ---

/** The pool and the label store together: what candidate and feedback messages change. */
export interface LabelingState<T> {
  readonly pool: PoolState<T>;
  readonly labels: LabelsState<T>;
}

/** Configuration of both. */
export interface LabelingConfig {
  readonly pool: PoolConfig;
  readonly labels: LabelsConfig;
}

/** Effects of the pool and of the label store (their `type`s do not overlap). */
export type LabelingEffect<T> = PoolEffect<T> | LabelsEffect;

/** The result of one routed step. */
export interface LabelingStep<T> {
  readonly state: LabelingState<T>;
  readonly effects: LabelingEffect<T>[];
}

/**
 * Routes a candidate message: a labeled candidate (a replay) is a no-op (`already-labeled`); one
 * with feedback waiting goes straight to L; any other enters the pool.
 */
export function ingestCandidate<T>(
  state: LabelingState<T>,
  candidate: NewCandidate<T>,
  now: number,
  config: LabelingConfig,
): LabelingStep<T> {
  if (isLabeled(state.labels, candidate.id) || hasPendingFeedback(state.labels, candidate.id)) {
    const step = labelsReducer(state.labels, { type: 'candidate-arrived', candidate, now }, config.labels);
    return { state, effects: step.effects };
  }
  const step = poolReducer(state.pool, { type: 'candidate-arrived', candidate, now }, config.pool);
  return { state, effects: step.effects };
}

/**
 * Routes a feedback message: for a labeled candidate it is a vote; for a pooled one, the
 * candidate leaves the pool (answering its request, if any) and becomes labeled; otherwise the
 * feedback waits for its candidate.
 */
export function ingestFeedback<T>(
  state: LabelingState<T>,
  feedback: Feedback,
  now: number,
  config: LabelingConfig,
): LabelingStep<T> {
  const effects: LabelingEffect<T>[] = [];
  let candidate: LabelableCandidate<T> | undefined;
  if (!isLabeled(state.labels, feedback.candidateId) && hasCandidate(state.pool, feedback.candidateId)) {
    const step = poolReducer(state.pool, { type: 'labeled', id: feedback.candidateId }, config.pool);
    for (const e of step.effects) {
      effects.push(e);
      if (e.type === 'labeled') candidate = e.candidate;
    }
  }
  const event: LabelsEvent<T> =
    candidate === undefined
      ? { type: 'feedback', feedback, now }
      : { type: 'feedback', feedback, now, candidate };
  effects.push(...labelsReducer(state.labels, event, config.labels).effects);
  return { state, effects };
}
