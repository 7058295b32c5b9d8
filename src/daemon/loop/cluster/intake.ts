/**
 * Scale-out's part of the intake: after a message changed the pool and L, a candidate just
 * admitted is marked requested when the ledger holds a live request on it, and every candidate
 * whose votes changed here gets its `labeled` ledger entry, the message's offset held until the
 * broker confirms it. A candidate message below the offset committed when its partition was
 * gained is a replay that rebuilds the pool (dead-lettered when first read, not again).
 */
import type { LabelingEffect } from '../../../core/labels.js';
import type { SourceRef } from '../../../core/pool.js';
import type { StoredCandidate } from '../../stored-candidate.js';
import type { Effect } from '../io.js';
import type { DaemonState, LoopContext } from '../state.js';
import { markRequested, writeLedger } from './ledger.js';

/** After a message's step: true when its offset is held (a ledger entry waits for the broker). */
export function afterMessage(
  state: DaemonState,
  ctx: LoopContext,
  effects: readonly LabelingEffect<StoredCandidate>[],
  source: SourceRef,
  now: number,
  out: Effect[],
): boolean {
  const c = state.cluster;
  if (c === undefined) return false;
  let changed = false;
  for (const e of effects) {
    if (e.type === 'admitted') markRequested(state, ctx, e.id, now);
    else if (e.type === 'first-label' || e.type === 'label-changed' || e.type === 'label-confirmed') {
      c.unwritten.add(e.candidateId);
      changed = true;
    }
  }
  return changed ? writeLedger(state, now, out, source) : false;
}

/** A candidate message read again to rebuild the pool of a partition just gained. */
export function isReplay(state: DaemonState, source: SourceRef): boolean {
  const c = state.cluster;
  if (c === undefined || source.topic !== c.candidatesTopic) return false;
  const until = c.replayUntil.get(source.partition);
  return until !== undefined && source.offset < until;
}
