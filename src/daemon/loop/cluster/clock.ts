/**
 * Scale-out's part of the tick: requests whose lease ended are forgotten, ledger entries a failed
 * write left are written again, the shortlist is published when due.
 */
import type { LabelingEffect } from '../../../core/labels.js';
import { expireRequests, isOutstanding } from '../../../core/ledger.js';
import type { StoredCandidate } from '../../stored-candidate.js';
import type { Effect } from '../io.js';
import type { DaemonState, LoopContext } from '../state.js';
import { writeLedger } from './ledger.js';
import { publishShortlist } from './shortlists.js';
import type { ClusterState } from './state.js';

export function clusterTick(
  state: DaemonState,
  ctx: LoopContext,
  effects: readonly LabelingEffect<StoredCandidate>[],
  now: number,
  out: Effect[],
): void {
  const c = state.cluster as ClusterState;
  expireRequests(c.book, now);
  for (const e of effects)
    if (e.type === 'first-label' || e.type === 'label-changed' || e.type === 'label-confirmed')
      c.unwritten.add(e.candidateId);
  if (c.unwritten.size > 0) writeLedger(state, now, out);
  publishShortlist(state, ctx, now, out);
}

/** Requests outstanding as the coordinator sees them (0 on other instances). */
export function outstandingCount(state: DaemonState, now: number): number {
  const c = state.cluster as ClusterState;
  if (!c.election.coordinator) return 0;
  let n = 0;
  for (const id of c.book.keys()) if (isOutstanding(c.book, id, now)) n++;
  return n;
}
