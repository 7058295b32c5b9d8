/**
 * Commit-after-effects offset tracking, per topic-partition.
 *
 * A message is `track`ed when it enters the pipeline and `done` when its effects are recorded; they
 * may finish in any order. {@link committable} gives, per partition, the offset to commit: the
 * lowest offset not yet done (or one past the highest done when all are), so a commit never passes
 * a message whose effects are not recorded. Kafka offsets need not be contiguous (compaction,
 * transaction markers): only tracked offsets count. Partitions no longer owned are `revoke`d and
 * never committed.
 *
 * Offsets are JS numbers: Kafka's int64 offsets are exact below 2^53, which no real partition
 * reaches; the adapter converts kafkajs' strings.
 *
 * State ownership: the functions update the state they are given in place and return it.
 */

/** A topic-partition. */
export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** A message's position, or (from {@link committable}) the offset to commit. */
export interface PartitionOffset extends TopicPartition {
  readonly offset: number;
}

/** What a checkpoint records per partition. */
export interface PartitionPosition extends TopicPartition {
  /**
   * Every tracked message below this offset has its effects in the checkpoint: consumption
   * resumes here after a restore (null: nothing known yet).
   */
  readonly position: number | null;
  /** The offset last committed to Kafka (null: none by this owner). */
  readonly committed: number | null;
}

/** Thrown for an offset that is not a non-negative safe integer. */
export class InvalidOffsetError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'INVALID_OFFSET';
  /** Retrying with the same offset fails the same way. */
  readonly retryable = false;
  override readonly name = 'InvalidOffsetError';
}

/** One owned partition's tracking. */
export interface PartitionTrack {
  readonly topic: string;
  readonly partition: number;
  /** Tracked offsets from `head` on, ascending; those before `head` are done and forgotten. */
  order: number[];
  head: number;
  /** Tracked offsets not done yet. */
  readonly pending: Set<number>;
  /** The highest offset done since the partition was owned. */
  highestDone: number | null;
  /** Where tracking started: the lowest tracked offset, or the restored checkpoint position. */
  base: number | null;
  committed: number | null;
}

/** Offset tracking of every owned partition. */
export interface OffsetsState {
  readonly partitions: Map<string, PartitionTrack>;
}

/** No partitions tracked. */
export function emptyOffsets(): OffsetsState {
  return { partitions: new Map() };
}

function key(tp: TopicPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}

function checkOffset(offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new InvalidOffsetError(`offset must be a non-negative safe integer, got ${offset}`);
  }
}

function newTrack(tp: TopicPartition): PartitionTrack {
  return {
    topic: tp.topic,
    partition: tp.partition,
    order: [],
    head: 0,
    pending: new Set(),
    highestDone: null,
    base: null,
    committed: null,
  };
}

/** Index of the first entry of order[from..] that is >= x. */
function lowerBound(order: number[], from: number, x: number): number {
  let lo = from;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((order[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Moves `head` past done offsets; drops the forgotten prefix now and then. */
function advance(t: PartitionTrack): void {
  while (t.head < t.order.length && !t.pending.has(t.order[t.head] as number)) t.head++;
  if (t.head > 1024 && t.head * 2 > t.order.length) {
    t.order = t.order.slice(t.head);
    t.head = 0;
  }
}

/** The tracking of the message's partition, which becomes owned if it was not; checks the offset. */
function trackOf(state: OffsetsState, message: PartitionOffset): PartitionTrack {
  checkOffset(message.offset);
  const k = key(message);
  let t = state.partitions.get(k);
  if (t === undefined) {
    t = newTrack(message);
    state.partitions.set(k, t);
  }
  return t;
}

/**
 * Records that a message entered the pipeline. A partition not owned yet becomes owned. Tracking
 * an offset again before it is done is a no-op; tracking it again after (a redelivery) makes it
 * pending again.
 *
 * @throws InvalidOffsetError for an offset that is not a non-negative safe integer.
 */
export function track(state: OffsetsState, message: PartitionOffset): OffsetsState {
  const t = trackOf(state, message);
  const o = message.offset;
  if (t.pending.has(o)) return state;
  t.pending.add(o);
  if (t.base === null || o < t.base) t.base = o;
  const last = t.order[t.order.length - 1];
  if (last === undefined || t.head >= t.order.length || o > last) {
    if (t.head >= t.order.length) {
      t.order = [];
      t.head = 0;
    }
    t.order.push(o);
  } else {
    const i = lowerBound(t.order, t.head, o);
    if (t.order[i] !== o) t.order.splice(i, 0, o);
  }
  return state;
}

/**
 * Records that a message's effects are recorded. Any order is fine. An offset that is not tracked
 * (or of a partition no longer owned) is ignored.
 */
export function done(state: OffsetsState, message: PartitionOffset): OffsetsState {
  const t = state.partitions.get(key(message));
  if (t === undefined || !t.pending.delete(message.offset)) return state;
  if (t.highestDone === null || message.offset > t.highestDone) t.highestDone = message.offset;
  advance(t);
  return state;
}

/**
 * Records a message that entered the pipeline and had its effects recorded in the same step: the
 * same as {@link track} then {@link done}, without the bookkeeping of an offset that is pending
 * for no time at all (the intake processes most messages so).
 */
export function trackDone(state: OffsetsState, message: PartitionOffset): OffsetsState {
  const t = trackOf(state, message);
  const o = message.offset;
  // Pending already (a redelivery of a message still in flight), or behind a pending one: the
  // general way keeps the order of what is pending.
  if (t.pending.has(o) || t.head < t.order.length) {
    track(state, message);
    return done(state, message);
  }
  // Nothing pending: tracking then finishing it would only move the head past it.
  if (t.base === null || o < t.base) t.base = o;
  if (t.highestDone === null || o > t.highestDone) t.highestDone = o;
  return state;
}

/** The lowest offset that may still need processing, or null when nothing is known. */
function frontier(t: PartitionTrack): number | null {
  const first = t.order[t.head];
  if (first !== undefined) return first;
  return t.highestDone === null ? null : t.highestDone + 1;
}

/**
 * Per owned partition, the offset to commit (Kafka's "next offset to read"): the lowest tracked
 * offset not done, or one past the highest done when all are. Only partitions where that offset is
 * past both the last commit and where tracking started are listed; and a restored partition with
 * nothing tracked since, whose checkpoint position is past its last known commit. Never past an
 * unfinished message.
 */
export function committable(state: OffsetsState): PartitionOffset[] {
  const out: PartitionOffset[] = [];
  for (const t of state.partitions.values()) {
    const f = frontier(t);
    if (f === null) {
      // Restored and untouched since: the checkpoint's position, if Kafka was never told (a commit
      // that failed in an outage before the restart). Otherwise the group would stay behind it
      // until a new message of the partition came.
      if (t.base !== null && t.committed !== null && t.base > t.committed) {
        out.push({ topic: t.topic, partition: t.partition, offset: t.base });
      }
      continue;
    }
    if (t.committed !== null && f <= t.committed) continue;
    if (t.base !== null && f <= t.base) continue;
    out.push({ topic: t.topic, partition: t.partition, offset: f });
  }
  return out;
}

/**
 * The commits that a written checkpoint allows: per partition it recorded, its position, where that
 * is past the last commit known and the partition is still owned. Never the live offsets: they move
 * on while a checkpoint is written, and a commit past the checkpoint's position would skip messages
 * whose effects only the in-memory state held (a crash then loses them).
 */
export function checkpointCommits(
  positions: readonly PartitionPosition[],
  live: OffsetsState,
): PartitionOffset[] {
  const out: PartitionOffset[] = [];
  for (const p of positions) {
    if (p.position === null) continue;
    const t = live.partitions.get(key(p));
    if (t === undefined) continue;
    if (t.committed !== null && p.position <= t.committed) continue;
    out.push({ topic: p.topic, partition: p.partition, offset: p.position });
  }
  return out;
}

/**
 * Sets what the broker holds as the last commit of owned partitions (null: none), as read back at
 * an assignment: the next commit is decided against it, not against what an earlier run believed.
 * Unlike {@link markCommitted} it may move a commit back (a commit the broker never took).
 */
export function setCommitted(
  state: OffsetsState,
  commits: readonly (TopicPartition & { readonly committed: number | null })[],
): OffsetsState {
  for (const c of commits) {
    const t = state.partitions.get(key(c));
    if (t !== undefined) t.committed = c.committed;
  }
  return state;
}

/** Forgets partitions no longer owned (after a rebalance): nothing is committed for them. */
export function revoke(state: OffsetsState, partitions: readonly TopicPartition[]): OffsetsState {
  for (const tp of partitions) state.partitions.delete(key(tp));
  return state;
}

/** Records commits that Kafka acknowledged; commits of partitions not owned are ignored. */
export function markCommitted(state: OffsetsState, commits: readonly PartitionOffset[]): OffsetsState {
  for (const c of commits) {
    const t = state.partitions.get(key(c));
    if (t === undefined) continue;
    if (t.committed === null || c.offset > t.committed) t.committed = c.offset;
  }
  return state;
}

/** The owned partitions. */
export function ownedPartitions(state: OffsetsState): TopicPartition[] {
  return [...state.partitions.values()].map((t) => ({ topic: t.topic, partition: t.partition }));
}

/** Number of tracked messages not done (in one partition, or in all). */
export function inFlightCount(state: OffsetsState, tp?: TopicPartition): number {
  if (tp !== undefined) return state.partitions.get(key(tp))?.pending.size ?? 0;
  let n = 0;
  for (const t of state.partitions.values()) n += t.pending.size;
  return n;
}

/**
 * What a checkpoint records per owned partition: the position up to which every tracked message's
 * effects are in the state (the committable offset, else the last commit, else where tracking
 * started), and the last commit.
 */
export function checkpointPositions(state: OffsetsState): PartitionPosition[] {
  const ready = new Map(committable(state).map((c) => [key(c), c.offset]));
  return [...state.partitions.values()].map((t) => {
    const k = key(t);
    let position = ready.get(k) ?? null;
    if (position === null) {
      position = t.committed;
      if (t.base !== null && (position === null || t.base > position)) position = t.base;
    }
    return { topic: t.topic, partition: t.partition, position, committed: t.committed };
  });
}

/**
 * Offset tracking restored from checkpoint positions: each partition is owned, with nothing in
 * flight; consumption resumes at `position`. {@link committable} reports a position past the last
 * commit the checkpoint knows of (a commit that failed before the restart); one with no known
 * commit only once a message past it is done.
 */
export function restoreOffsets(positions: readonly PartitionPosition[]): OffsetsState {
  const state = emptyOffsets();
  for (const p of positions) {
    const t = newTrack(p);
    t.committed = p.committed;
    t.base = p.position;
    state.partitions.set(key(p), t);
  }
  return state;
}
