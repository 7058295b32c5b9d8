/**
 * Versions and commits in scale-out: only the coordinator publishes versions; a version of another
 * instance's window, read on model-versions, is observed once (its trained candidates leave the new
 * labels, core/ledger.ts `observeWindow`); what is processed is committed, below any feedback still
 * waiting for its candidate (so that whoever owns the partition after a crash reads it again).
 */
import { observeWindow } from '../../../core/ledger.js';
import type { PartitionOffset } from '../../../core/offsets.js';
import type { SourceRef } from '../../../core/pool.js';
import type { ModelVersionMessage } from '../../../messages/index.js';
import type { Effect } from '../io.js';
import type { DaemonState, LoopContext } from '../state.js';

/** Coordinates now (always, with one instance). */
export function isCoordinator(state: DaemonState): boolean {
  return state.cluster === undefined || state.cluster.election.coordinator;
}

/** A version this instance publishes as the coordinator: not to be observed as another's window. */
export function ownVersion(state: DaemonState, version: string): void {
  state.cluster?.knownVersions.add(version);
}

/** A version on model-versions (promoted or rejected): another instance's window, once. */
export function onClusterVersion(
  state: DaemonState,
  ctx: LoopContext,
  message: ModelVersionMessage,
  now: number,
  _out: Effect[],
): void {
  const c = state.cluster;
  if (c === undefined || c.knownVersions.has(message.version)) return;
  c.knownVersions.add(message.version);
  observeWindow(
    state.labeling.labels,
    { strategy: message.strategy, trainedOn: message.trainedOn },
    now,
    ctx.labeling.labels,
    c.late,
  );
}

/** What scale-out commits of what is processed: feedback partitions held below waiting feedback. */
export function clusterCommits(state: DaemonState, commits: readonly PartitionOffset[]): PartitionOffset[] {
  const waiting: SourceRef[] = [];
  for (const p of state.labeling.labels.pending.values())
    if (p.feedback.source) waiting.push(p.feedback.source);
  return capCommits(commits, waiting);
}

/**
 * Caps commits of feedback partitions below the earliest feedback still waiting for its candidate,
 * so that waiting feedback is read again by whoever owns the partition after a crash.
 */
export function capCommits(
  commits: readonly PartitionOffset[],
  waiting: Iterable<SourceRef>,
): PartitionOffset[] {
  const earliest = new Map<string, number>();
  for (const s of waiting) {
    const key = `${s.topic}:${s.partition}`;
    earliest.set(key, Math.min(earliest.get(key) ?? Infinity, s.offset));
  }
  return commits.flatMap((c) => {
    const cap = earliest.get(`${c.topic}:${c.partition}`);
    if (cap === undefined || c.offset <= cap) return [c];
    return [{ ...c, offset: cap }];
  });
}
