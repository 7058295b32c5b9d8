/**
 * Shortlists for scale-out: each instance offers the coordinator the top of the pool it owns, and
 * the coordinator merges the offers into one list and makes the randomized selection (DESIGN.md,
 * Eq. 4) over it. The union of every instance's top ω·b contains the global top ω·b, so the merged
 * selection equals the selection one instance owning every partition would make (given the same
 * scores).
 */
import { selectionInput, type PooledScore, type PoolState } from './pool.js';
import type { Selection } from './select.js';
import { selectRequests, type PlannedRequest } from './windows.js';

/** One candidate offered for selection, with the score its owner holds for it. */
export interface ShortlistEntry {
  readonly candidateId: string;
  readonly score: PooledScore;
}

/** One instance's offer. */
export interface Shortlist {
  readonly instanceId: string;
  /** When the instance made it (its clock). */
  readonly sentAtMs: number;
  readonly entries: readonly ShortlistEntry[];
}

/** Orders entries by score, highest first; ties by candidate id (a total, instance-free order). */
export function compareEntries(a: ShortlistEntry, b: ShortlistEntry): number {
  return (
    b.score.value - a.score.value ||
    (a.candidateId < b.candidateId ? -1 : a.candidateId > b.candidateId ? 1 : 0)
  );
}

/**
 * The top `size` selectable candidates of a pool (pooled, scored, not requested), by
 * {@link compareEntries}.
 */
export function shortlistOf(pool: PoolState<unknown>, size: number): ShortlistEntry[] {
  const input = selectionInput(pool);
  const entries = input.candidates.map((c) => ({
    candidateId: c.id,
    score: c.score as PooledScore,
  }));
  return entries.sort(compareEntries).slice(0, Math.max(0, size));
}

/** Options of {@link mergeShortlists}. */
export interface MergeOptions {
  readonly nowMs: number;
  /** Shortlists older than this are left out (their instance is gone or lagging). */
  readonly maxAgeMs: number;
  /** Candidates that must not be offered (labeled, or requested and outstanding). */
  readonly exclude: (candidateId: string) => boolean;
}

/**
 * Merges the instances' shortlists: stale lists and excluded candidates are left out; a candidate
 * offered by several instances (its partition moved between two offers) keeps the entry of the
 * newest list. The result is sorted by {@link compareEntries}.
 */
export function mergeShortlists(lists: Iterable<Shortlist>, options: MergeOptions): ShortlistEntry[] {
  const best = new Map<string, { entry: ShortlistEntry; at: number }>();
  for (const list of lists) {
    if (options.nowMs - list.sentAtMs > options.maxAgeMs) continue;
    for (const entry of list.entries) {
      if (!Number.isFinite(entry.score.value) || options.exclude(entry.candidateId)) continue;
      const seen = best.get(entry.candidateId);
      if (seen === undefined || list.sentAtMs > seen.at)
        best.set(entry.candidateId, { entry, at: list.sentAtMs });
    }
  }
  return [...best.values()].map((x) => x.entry).sort(compareEntries);
}

/** Options of {@link planMergedRequests} (as windows.ts's `planRequests`). */
export interface PlanMergedOptions {
  readonly b: number;
  readonly omega?: number;
  readonly randomness?: boolean;
  readonly seed: number;
  readonly windowSeq: number;
}

/**
 * The randomized selection of `b` candidates over a merged shortlist, as labeling requests (the
 * same request ids as one instance would derive). `rank` is the 0-based rank in the merged list.
 */
export function planMergedRequests(
  merged: readonly ShortlistEntry[],
  options: PlanMergedOptions,
): { requests: PlannedRequest[]; selection: Selection } {
  return selectRequests(merged, options);
}
