/**
 * The daemon's state as plain JSON-compatible data, for checkpoints: the pool (with the
 * outstanding requests, which live on their pooled candidates), the label store (L, hold-out,
 * waiting feedback, window bookkeeping), the offsets the state includes, and the served version.
 *
 * `fromSnapshot(toSnapshot(s))` behaves exactly like `s`, and `toSnapshot(fromSnapshot(x))`
 * deep-equals `x`. Payloads are the adapter's business: they go through `encodePayload` /
 * `decodePayload` (e.g. typed arrays to base64). Writing the file atomically is the adapter's too.
 *
 * Offsets: a checkpoint records, per owned partition, the position below which every tracked
 * message's effects are in it. Messages in flight (tracked, not done) are not part of it: after a
 * restore the consumer reads again from that position. That is safe because every effect is
 * idempotent (a known candidate is a `duplicate` or `already-labeled`, repeated feedback a
 * `duplicate-feedback` or `stale-feedback`, a request for an outstanding candidate is refused), so
 * no label is counted twice. Commit a position to Kafka only after the checkpoint holding it is
 * durable.
 */
import {
  restoreLabels,
  copyPlan,
  type Feedback,
  type LabeledCandidate,
  type LabelsState,
  type PendingFeedback,
  type Vote,
  type WindowPlan,
} from './labels.js';
import { checkpointPositions, restoreOffsets, type OffsetsState, type PartitionPosition } from './offsets.js';
import {
  poolCandidates,
  restorePool,
  copyScore,
  type PooledScore,
  type OutstandingRequest,
  type PoolState,
  type PooledCandidate,
  type SourceRef,
} from './pool.js';

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The format tag of snapshots written by this version. */
export const SNAPSHOT_FORMAT = 'acft-checkpoint/1';

/** Everything a checkpoint holds, live. */
export interface CoreState<T> {
  readonly pool: PoolState<T>;
  readonly labels: LabelsState<T>;
  readonly offsets: OffsetsState;
  /** The model version served (null: M0). */
  readonly servedVersion: string | null;
}

/** A pooled candidate in a snapshot. */
export interface PooledCandidateSnapshot {
  readonly id: string;
  readonly source: SourceRef;
  readonly arrivedAtMs: number;
  readonly bytes: number;
  readonly payload: Json;
  readonly seq: number;
  readonly state: 'pooled' | 'requested';
  readonly score?: PooledScore;
  /** The outstanding request, when `state` is `requested`. */
  readonly request?: OutstandingRequest;
}

/** A labeled candidate in a snapshot. */
export interface LabeledCandidateSnapshot {
  readonly id: string;
  readonly source: SourceRef;
  readonly payload: Json;
  readonly heldOut: boolean;
  readonly label: number;
  readonly votes: readonly Vote[];
  readonly firstLabeledAtMs: number;
  readonly labelSeq: number;
  readonly consumedByWindow: number | null;
  readonly trainedLabel: number | null;
  readonly lastTrainedWindow: number | null;
}

/** The plain-data checkpoint. */
export interface CheckpointSnapshot {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly servedVersion: string | null;
  readonly pool: {
    readonly nextSeq: number;
    /** In admission order. */
    readonly candidates: readonly PooledCandidateSnapshot[];
  };
  readonly labels: {
    /** In label order. */
    readonly records: readonly LabeledCandidateSnapshot[];
    /** New labels not consumed by a window, in label order. */
    readonly fresh: readonly string[];
    /** Waiting feedback, in reception order. */
    readonly pending: readonly PendingFeedback[];
    readonly nextLabelSeq: number;
    readonly nextVoteSeq: number;
    readonly nextPendingSeq: number;
    readonly windowSeq: number;
    readonly lastWindowAtMs: number | null;
    readonly inFlight: WindowPlan | null;
    readonly clockMs: number | null;
  };
  /** Per owned partition: where the state's effects end, and the last commit. */
  readonly offsets: readonly PartitionPosition[];
}

/** Thrown by {@link fromSnapshot} for data that is not a snapshot of this format. */
export class InvalidSnapshotError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'INVALID_SNAPSHOT';
  /** Retrying with the same data fails the same way. */
  readonly retryable = false;
  override readonly name = 'InvalidSnapshotError';
}

function source(s: SourceRef): SourceRef {
  return { topic: s.topic, partition: s.partition, offset: s.offset };
}

function feedbackSnapshot(f: Feedback): Feedback {
  return {
    candidateId: f.candidateId,
    label: f.label,
    annotatorId: f.annotatorId,
    timeMs: f.timeMs,
    ...(f.requestId !== undefined ? { requestId: f.requestId } : {}),
    ...(f.source !== undefined
      ? { source: { topic: f.source.topic, partition: f.source.partition, offset: f.source.offset } }
      : {}),
  };
}

/**
 * The state as a JSON-compatible snapshot (no `undefined` fields, no shared references with the
 * live state).
 *
 * @param encodePayload - turns a payload into JSON data.
 */
export function toSnapshot<T>(
  state: CoreState<T>,
  options: { encodePayload: (payload: T) => Json },
): CheckpointSnapshot {
  const { encodePayload } = options;
  const candidates: PooledCandidateSnapshot[] = [];
  for (const c of poolCandidates(state.pool)) {
    candidates.push({
      id: c.id,
      source: source(c.source),
      arrivedAtMs: c.arrivedAtMs,
      bytes: c.bytes,
      payload: encodePayload(c.payload),
      seq: c.seq,
      state: c.state,
      ...(c.score !== undefined ? { score: copyScore(c.score) } : {}),
      ...(c.request !== undefined
        ? {
            request: {
              requestId: c.request.requestId,
              issuedAtMs: c.request.issuedAtMs,
              leaseUntilMs: c.request.leaseUntilMs,
            },
          }
        : {}),
    });
  }
  const l = state.labels;
  const records = [...l.records.values()]
    .sort((a, b) => a.labelSeq - b.labelSeq)
    .map((r): LabeledCandidateSnapshot => ({
      id: r.id,
      source: source(r.source),
      payload: encodePayload(r.payload),
      heldOut: r.heldOut,
      label: r.label,
      votes: r.votes.map((v) => ({
        annotatorId: v.annotatorId,
        label: v.label,
        timeMs: v.timeMs,
        seq: v.seq,
        latestMs: v.latestMs,
      })),
      firstLabeledAtMs: r.firstLabeledAtMs,
      labelSeq: r.labelSeq,
      consumedByWindow: r.consumedByWindow,
      trainedLabel: r.trainedLabel,
      lastTrainedWindow: r.lastTrainedWindow,
    }));
  return {
    format: SNAPSHOT_FORMAT,
    servedVersion: state.servedVersion,
    pool: { nextSeq: state.pool.nextSeq, candidates },
    labels: {
      records,
      fresh: [...l.fresh],
      pending: [...l.pending.values()].map((p) => ({
        feedback: feedbackSnapshot(p.feedback),
        receivedAtMs: p.receivedAtMs,
        seq: p.seq,
      })),
      nextLabelSeq: l.nextLabelSeq,
      nextVoteSeq: l.nextVoteSeq,
      nextPendingSeq: l.nextPendingSeq,
      windowSeq: l.windowSeq,
      lastWindowAtMs: l.lastWindowAtMs,
      inFlight: l.inFlight === null ? null : copyPlan(l.inFlight),
      clockMs: l.clockMs,
    },
    offsets: checkpointPositions(state.offsets).map((p) => ({ ...p })),
  };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new InvalidSnapshotError(`not an ${SNAPSHOT_FORMAT} snapshot: ${what}`);
}

/**
 * The live state from a snapshot (e.g. parsed from a checkpoint file). Checks the format and the
 * shape of the top-level parts.
 *
 * @param decodePayload - turns JSON data back into a payload.
 * @throws InvalidSnapshotError when the data is not a snapshot of this format.
 */
export function fromSnapshot<T>(
  snapshot: unknown,
  options: { decodePayload: (data: Json) => T },
): CoreState<T> {
  check(isObject(snapshot), 'not an object');
  const s = snapshot as unknown as CheckpointSnapshot;
  check(s.format === SNAPSHOT_FORMAT, `format is ${String(s.format)}`);
  check(isObject(s.pool) && Array.isArray(s.pool.candidates), 'pool.candidates');
  check(isObject(s.labels) && Array.isArray(s.labels.records), 'labels.records');
  check(Array.isArray(s.labels.fresh) && Array.isArray(s.labels.pending), 'labels.fresh/pending');
  check(Array.isArray(s.offsets), 'offsets');
  check(s.servedVersion === null || typeof s.servedVersion === 'string', 'servedVersion');
  const { decodePayload } = options;

  const pooled = s.pool.candidates.map((c): PooledCandidate<T> => {
    const out: PooledCandidate<T> = {
      id: c.id,
      source: source(c.source),
      arrivedAtMs: c.arrivedAtMs,
      bytes: c.bytes,
      payload: decodePayload(c.payload),
      seq: c.seq,
      state: c.state,
    };
    if (c.score !== undefined) out.score = copyScore(c.score);
    if (c.request !== undefined) out.request = { ...c.request };
    return out;
  });
  const records = s.labels.records.map((r): LabeledCandidate<T> => ({
    id: r.id,
    source: source(r.source),
    payload: decodePayload(r.payload),
    heldOut: r.heldOut,
    label: r.label,
    votes: r.votes.map((v) => ({ ...v })),
    firstLabeledAtMs: r.firstLabeledAtMs,
    labelSeq: r.labelSeq,
    consumedByWindow: r.consumedByWindow,
    trainedLabel: r.trainedLabel,
    lastTrainedWindow: r.lastTrainedWindow,
  }));
  const l = s.labels;
  return {
    pool: restorePool(pooled, s.pool.nextSeq),
    labels: restoreLabels<T>({
      records,
      fresh: l.fresh,
      pending: l.pending.map((p) => ({
        feedback: feedbackSnapshot(p.feedback),
        receivedAtMs: p.receivedAtMs,
        seq: p.seq,
      })),
      nextLabelSeq: l.nextLabelSeq,
      nextVoteSeq: l.nextVoteSeq,
      nextPendingSeq: l.nextPendingSeq,
      windowSeq: l.windowSeq,
      lastWindowAtMs: l.lastWindowAtMs,
      inFlight: l.inFlight,
      clockMs: l.clockMs,
    }),
    offsets: restoreOffsets(s.offsets),
    servedVersion: s.servedVersion,
  };
}
