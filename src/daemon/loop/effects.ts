/**
 * What the labeling reducers report (src/core: the pool's and the label store's effects), turned
 * into the daemon's bookkeeping, events and effects: arrivals for the scoring latency, answered
 * requests and their latency, candidates that left the pool (reported with their ids), dead
 * letters for feedback that waited in vain.
 */
import { DROP_REASONS } from '../../core/pool.js';
import type { LabelingEffect } from '../../core/labels.js';
import type { StoredCandidate } from '../stored-candidate.js';
import { deadLetter } from './dead-letters.js';
import type { Effect } from './io.js';
import type { DaemonState, LoopContext } from './state.js';

type Emitted = Extract<Effect, { type: 'emit' }>['event'];

function emit(out: Effect[], event: Emitted): void {
  out.push({ type: 'emit', event });
}

/**
 * Applies what one labeling step reported. `fromLedger`: the votes came from a scale-out ledger
 * entry, not from a feedback message consumed here; the instance that consumed the message counts
 * it, so an entry read back (this instance's own, or another's) counts no feedback here.
 */
export function applyLabelingEffects(
  state: DaemonState,
  ctx: LoopContext,
  effects: readonly LabelingEffect<StoredCandidate>[],
  now: number,
  out: Effect[],
  fromLedger = false,
): void {
  const forget: string[] = [];
  for (const e of effects) {
    if (poolEffect(state, e, now, forget, out)) continue;
    if (!fromLedger) labelsEffect(state, ctx, e, now, out);
    else if (e.type === 'first-label') state.requestTimes.delete(e.candidateId);
  }
  if (forget.length > 0) out.push({ type: 'forget', ids: forget });
}

/** What the pool reported; false when `e` is not the pool's. */
function poolEffect(
  state: DaemonState,
  e: LabelingEffect<StoredCandidate>,
  now: number,
  forget: string[],
  out: Effect[],
): boolean {
  switch (e.type) {
    case 'admitted':
      state.arrivals.set(e.id, now);
      return true;
    case 'evicted':
    case 'expired':
      state.dropped[e.type].push(e.id);
      state.arrivals.delete(e.id);
      forget.push(e.id);
      return true;
    case 'discarded':
      state.arrivals.delete(e.id);
      forget.push(e.id);
      return true;
    case 'refused':
      // Past the pool's TTL on arrival, or at a full pool of candidates that may not be
      // evicted: it leaves unlabeled like an expired or evicted one (too-large is a dead letter).
      if (e.reason === 'expired' || e.reason === 'pool-full')
        state.dropped[e.reason === 'expired' ? 'expired' : 'evicted'].push(e.id);
      if (e.reason !== 'too-large') emit(out, { type: 'candidate-refused', reason: e.reason });
      return true;
    case 'lease-expired':
      state.requestTimes.delete(e.id);
      emit(out, { type: 'request-expired', count: 1 });
      return true;
    default:
      return false;
  }
}

/** What the label store reported. */
function labelsEffect(
  state: DaemonState,
  ctx: LoopContext,
  e: LabelingEffect<StoredCandidate>,
  now: number,
  out: Effect[],
): void {
  switch (e.type) {
    case 'first-label':
      return firstLabel(state, e.candidateId, e.label, now, out);
    case 'duplicate-feedback':
    case 'stale-feedback':
    case 'already-labeled':
      return emit(out, { type: 'feedback', kind: 'duplicate' });
    case 'label-changed':
      emit(out, { type: 'feedback', kind: 'conflict' });
      return emit(out, { type: 'label-changed', from: e.from, to: e.to, trained: e.trained });
    case 'feedback-pending':
      return emit(out, { type: 'feedback', kind: 'pending' });
    case 'dead-letter': {
      emit(out, { type: 'feedback', kind: 'unknown' });
      // Waiting feedback of a checkpoint from before sources were kept has none: partition 0, offset 0.
      const source = e.feedback.source ?? {
        topic: ctx.config.kafka.topics.feedback,
        partition: 0,
        offset: 0,
      };
      deadLetter(
        state,
        ctx,
        out,
        source,
        { key: Buffer.from(e.feedback.candidateId), value: null },
        e.reason,
        `feedback for a candidate never seen (${e.cause})`,
        { fromMessage: false },
      );
      return;
    }
    default:
      return;
  }
}

function firstLabel(
  state: DaemonState,
  candidateId: string,
  label: number,
  now: number,
  out: Effect[],
): void {
  // In scale-out, an answer that reached this instance before the replay of its candidate (a
  // partition just gained) finds the request in the ledger's book, not in requestTimes.
  const asked = state.requestTimes.get(candidateId) ?? state.cluster?.book.get(candidateId)?.issuedAtMs;
  if (asked === undefined) {
    emit(out, { type: 'feedback', kind: 'unsolicited' });
    return;
  }
  state.requestTimes.delete(candidateId);
  emit(out, { type: 'feedback', kind: 'requested' });
  emit(out, { type: 'label-answered', seconds: (now - asked) / 1000, label });
}

/** Reports (with their ids) the candidates that left the pool unlabeled since the last call. */
export function reportDropped(state: DaemonState, out: Effect[]): void {
  for (const reason of DROP_REASONS) {
    const ids = state.dropped[reason];
    if (ids.length === 0) continue;
    state.dropped[reason] = [];
    emit(out, { type: 'candidates-dropped', reason, count: ids.length, ids });
  }
}
