/**
 * The one way a single-instance daemon makes its progress durable: write a snapshot, then commit
 * exactly the offsets that snapshot records. Never the live offsets: they move on while the file is
 * written (the intake keeps running), and committing them acknowledged messages whose effects were
 * only in memory, which a crash then lost (issue 14: 11-12 of 1,500 candidates per run).
 */
import {
  checkpointCommits,
  type OffsetsState,
  type PartitionOffset,
  type PartitionPosition,
} from '../core/offsets.js';

/** What a checkpoint needs to know of the snapshot it writes. */
export interface Snapshot {
  /** Per owned partition, where the snapshot's effects end. */
  readonly offsets: readonly PartitionPosition[];
}

export interface CheckpointIo<S extends Snapshot> {
  /** Writes the snapshot durably (resolves once it is on disk). */
  readonly write: (snapshot: S) => Promise<void>;
  /** Called once the snapshot is durable, before any commit. */
  readonly written?: () => void;
  /** Commits offsets for the group; resolves once the broker acknowledged them. */
  readonly commit: (offsets: readonly PartitionOffset[]) => Promise<void>;
  /** The live offset tracking: which partitions are still owned, and their last commit. */
  readonly live: () => OffsetsState;
}

/**
 * Writes `snapshot`, then commits the positions it records (those past the last commit, of
 * partitions still owned once it is written). Returns what was committed.
 */
export async function checkpointThenCommit<S extends Snapshot>(
  snapshot: S,
  io: CheckpointIo<S>,
): Promise<PartitionOffset[]> {
  await io.write(snapshot);
  io.written?.();
  const commits = checkpointCommits(snapshot.offsets, io.live());
  if (commits.length > 0) await io.commit(commits);
  return commits;
}
