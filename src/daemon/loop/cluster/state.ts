/**
 * Scale-out's part of the daemon state (docs/scale-out.md): who coordinates (the election of
 * core/election.ts), the outstanding requests every instance learns from the ledger (the book),
 * the coordinator's shortlists of every instance, the windows of other instances whose candidates
 * had no ledger entry yet, the partitions this instance pools and the replays that rebuild them,
 * and the ledger entries it still has to write.
 */
import { INITIAL_ELECTION, type ElectionState } from '../../../core/election.js';
import type { LateTrained, RequestBook } from '../../../core/ledger.js';
import type { PartitionOffset } from '../../../core/offsets.js';
import type { Shortlist } from '../../../core/shortlist.js';

export interface ClusterState {
  readonly instanceId: string;
  /** The candidates topic (replays are of it). */
  readonly candidatesTopic: string;
  election: ElectionState;
  readonly book: RequestBook;
  readonly late: LateTrained;
  readonly shortlists: Map<string, Shortlist>;
  /** Versions seen on model-versions or published by this instance (observed once). */
  readonly knownVersions: Set<string>;
  /** Candidate partitions this instance owns. */
  ownedCandidates: number[];
  /** Per gained candidate partition: below this offset, a message is a replay rebuilding the pool. */
  readonly replayUntil: Map<number, number>;
  /** Labeled candidates whose ledger entry is not written yet. */
  readonly unwritten: Set<string>;
  /**
   * What this instance last wrote (or has in flight) per candidate: label, held-out and votes as
   * one string. An entry equal to it is not written again, and a candidate whose votes changed
   * while its entry was in flight stays unwritten.
   */
  readonly written: Map<string, string>;
  /** Messages whose offsets wait for the ledger write of their labels. */
  holds: PartitionOffset[];
  /** A ledger write or a coordinator write is under way. */
  ledgerWriting: boolean;
  requesting: boolean;
  /** When this instance last published its shortlist. */
  lastShortlistAtMs: number;
}

export function emptyClusterState(instanceId: string, candidatesTopic: string): ClusterState {
  return {
    instanceId,
    candidatesTopic,
    election: INITIAL_ELECTION,
    book: new Map(),
    late: new Map(),
    shortlists: new Map(),
    knownVersions: new Set(),
    ownedCandidates: [],
    replayUntil: new Map(),
    unwritten: new Set(),
    written: new Map(),
    holds: [],
    ledgerWriting: false,
    requesting: false,
    lastShortlistAtMs: 0,
  };
}
