/**
 * The ledger (scale-out): a compacted topic keyed by candidate id that every instance reads in
 * full. It holds what must outlive any one instance:
 * - `labeled` entries, written by the instance that owns the candidate's partition whenever a
 *   feedback message changes the candidate's votes: the votes, the label, the hold-out decision and
 *   the candidate's pixels. Reading them rebuilds L (and the hold-out) on every instance, so the
 *   coordinator can train on H ∪ Q and a new coordinator starts from the same L.
 * - `requested` entries, written by the coordinator before it publishes a labeling request: a new
 *   coordinator knows every outstanding request and its lease, and the owner of the candidate
 *   marks it requested in its pool (never evicted, never offered again while outstanding).
 * A later `labeled` entry replaces the `requested` one under compaction.
 *
 * Pure functions on the pool, the label store and a request book; no Kafka here.
 */
import {
  getLabeled,
  isLabeled,
  labelsReducer,
  type LabelingConfig,
  type LabelingEffect,
  type LabelingState,
  type LabelsConfig,
  type LabelsEffect,
  type LabelsState,
  type LabelableCandidate,
} from './labels.js';
import { hasCandidate, poolReducer, type SourceRef } from './pool.js';
import type { StrategyCode } from './strategies.js';

/** One annotator's vote as the ledger carries it. */
export interface LedgerVote {
  readonly annotatorId: string;
  readonly label: number;
  readonly timeMs: number;
}

/** A labeled candidate as the ledger carries it; `payload` is what training needs. */
export interface LabeledEntry<T> {
  readonly candidateId: string;
  readonly label: number;
  readonly heldOut: boolean;
  readonly votes: readonly LedgerVote[];
  readonly source: SourceRef;
  readonly payload: T;
}

/** An outstanding labeling request as the ledger carries it. */
export interface RequestedEntry {
  readonly candidateId: string;
  readonly requestId: string;
  readonly modelVersion: string;
  readonly issuedAtMs: number;
  readonly leaseUntilMs: number;
}

/** The ledger entry of a labeled candidate of `labels` (undefined when it is not labeled). */
export function labeledEntry<T>(labels: LabelsState<T>, candidateId: string): LabeledEntry<T> | undefined {
  const r = getLabeled(labels, candidateId);
  if (r === undefined) return undefined;
  return {
    candidateId,
    label: r.label,
    heldOut: r.heldOut,
    votes: [...r.votes]
      .sort((a, b) => a.seq - b.seq)
      .map((v) => ({ annotatorId: v.annotatorId, label: v.label, timeMs: v.timeMs })),
    source: { ...r.source },
    payload: r.payload,
  };
}

/**
 * Windows seen on `model-versions` whose trained candidates had no `labeled` entry yet (the two
 * topics are read independently): candidate id -> window seq. {@link applyLabeledEntry} marks
 * them trained when their entry arrives.
 */
export type LateTrained = Map<string, { readonly seq: number; readonly label: number | null }>;

/**
 * Applies a `labeled` entry: a pooled candidate leaves the pool for L; an unknown one enters L
 * with the entry's payload; every vote is applied by the label store's rules (a vote already held
 * is a no-op), so applying an entry twice, or an instance's own entry, changes nothing.
 */
export function applyLabeledEntry<T>(
  state: LabelingState<T>,
  entry: LabeledEntry<T>,
  now: number,
  config: LabelingConfig,
  late?: LateTrained,
): LabelingEffect<T>[] {
  const effects: LabelingEffect<T>[] = [];
  const id = entry.candidateId;
  let candidate: LabelableCandidate<T> | undefined;
  if (!isLabeled(state.labels, id)) {
    candidate = { id, source: entry.source, payload: entry.payload };
    if (hasCandidate(state.pool, id)) {
      for (const e of poolReducer(state.pool, { type: 'labeled', id }, config.pool).effects) {
        effects.push(e);
        if (e.type === 'labeled') candidate = e.candidate;
      }
    }
  }
  const votes = [...entry.votes].sort((a, b) => a.timeMs - b.timeMs);
  for (const v of votes) {
    const feedback = { candidateId: id, label: v.label, annotatorId: v.annotatorId, timeMs: v.timeMs };
    const event =
      candidate !== undefined && !isLabeled(state.labels, id)
        ? ({ type: 'feedback', feedback, now, candidate } as const)
        : ({ type: 'feedback', feedback, now } as const);
    effects.push(...labelsReducer(state.labels, event, config.labels).effects);
  }
  const trained = late?.get(id);
  const record = getLabeled(state.labels, id);
  if (trained !== undefined && record !== undefined) {
    late?.delete(id);
    state.labels.fresh.delete(id);
    record.consumedByWindow ??= trained.seq;
    record.trainedLabel = trained.label ?? record.label;
    record.lastTrainedWindow = trained.seq;
  }
  return effects;
}

/** A version seen on `model-versions` that this instance did not make. */
export interface ObservedWindow {
  readonly strategy: StrategyCode;
  /** The candidates it trained on. */
  readonly trainedOn: readonly string[];
}

/**
 * Records a window another instance ran (its version was published): its Q is no longer new and
 * its candidates count as trained with their current labels, as if this instance had run it, so
 * a coordinator that takes over plans the next window from the same L. Trained candidates not
 * labeled here yet go to `late`. Does nothing while a window of this instance is in flight.
 */
export function observeWindow<T>(
  labels: LabelsState<T>,
  window: ObservedWindow,
  now: number,
  config: LabelsConfig,
  late: LateTrained,
): LabelsEffect[] {
  if (labels.inFlight !== null) return [];
  const seq = labels.windowSeq;
  const known = window.trainedOn.filter((id) => getLabeled(labels, id) !== undefined);
  for (const id of window.trainedOn) if (!known.includes(id)) late.set(id, { seq, label: null });
  const trainedSet = new Set(known);
  const q = [...labels.fresh].filter((id) => trainedSet.has(id));
  const plan = {
    seq,
    strategy: window.strategy,
    startFrom: 'previous' as const,
    q,
    h: [],
    corrected: [],
    replay: [],
    train: known,
    trainLabels: known.map((id) => getLabeled(labels, id)?.label ?? 0),
  };
  return [
    ...labelsReducer(labels, { type: 'window-started', plan, now }, config).effects,
    ...labelsReducer(labels, { type: 'window-completed', seq, now }, config).effects,
  ];
}

/** Outstanding requests by candidate id (the coordinator's view, rebuilt from the ledger). */
export type RequestBook = Map<string, RequestedEntry>;

/** Records a `requested` entry (a newer request of the same candidate replaces an older one). */
export function bookRequest(book: RequestBook, entry: RequestedEntry): void {
  const seen = book.get(entry.candidateId);
  if (seen === undefined || entry.issuedAtMs >= seen.issuedAtMs) book.set(entry.candidateId, entry);
}

/** Drops the requests whose lease has ended by `now`; returns them. */
export function expireRequests(book: RequestBook, now: number): RequestedEntry[] {
  const gone: RequestedEntry[] = [];
  for (const [id, e] of book) {
    if (e.leaseUntilMs <= now) {
      book.delete(id);
      gone.push(e);
    }
  }
  return gone;
}

/** Whether a request on the candidate is outstanding at `now`. */
export function isOutstanding(book: RequestBook, candidateId: string, now: number): boolean {
  const e = book.get(candidateId);
  return e !== undefined && e.leaseUntilMs > now;
}
