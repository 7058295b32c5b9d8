/**
 * A new assignment of the main group (scale-out): candidates of partitions no longer owned leave
 * the pool (their new owner pools them); a newly owned candidates partition is rebuilt: rewound to
 * the start of the pool's TTL (effect `rewind`, which pauses it first), its messages below the
 * offset committed then taken as replays, and resumed once the loop knows where they end.
 */
import { poolCandidates, poolReducer } from '../../../core/pool.js';
import type { Effect, Input } from '../io.js';
import type { DaemonState, LoopContext } from '../state.js';
import type { ClusterState } from './state.js';

export function onClusterAssignment(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'assigned' }>,
  out: Effect[],
): void {
  const c = state.cluster as ClusterState;
  const topic = ctx.config.kafka.topics.candidates;
  const owned = input.owned.filter((tp) => tp.topic === topic).map((tp) => tp.partition);
  // A member that rejoined under a new id rebuilds every partition it owns: another member may
  // have pooled, labeled and committed its candidates meanwhile.
  const gained = owned.filter((p) => input.rejoined || !c.ownedCandidates.includes(p));
  c.ownedCandidates = [...owned];
  const lost: string[] = [];
  for (const candidate of poolCandidates(state.labeling.pool))
    if (candidate.source.topic === topic && !owned.includes(candidate.source.partition))
      lost.push(candidate.id);
  for (const id of lost)
    poolReducer(state.labeling.pool, { type: 'discard', id, reason: 'partition-revoked' }, ctx.labeling.pool);
  if (lost.length > 0) {
    out.push({ type: 'forget', ids: lost });
    out.push({ type: 'emit', event: { type: 'pool-handed-over', candidates: lost.length } });
  }
  for (const p of [...c.replayUntil.keys()]) if (!owned.includes(p)) c.replayUntil.delete(p);
  if (gained.length > 0) out.push({ type: 'rewind', partitions: gained });
}

export function onRewound(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'rewound' }>,
  out: Effect[],
): void {
  const c = state.cluster as ClusterState;
  for (const r of input.replays)
    if (c.ownedCandidates.includes(r.partition)) c.replayUntil.set(r.partition, r.until);
  out.push({
    type: 'resume-partitions',
    topic: ctx.config.kafka.topics.candidates,
    partitions: input.partitions,
  });
}
