/**
 * The rolling pool of unlabeled candidates: a reducer `(pool, event, config) => { state, effects }`.
 *
 * The pool is bounded by candidate count and by bytes, expires candidates after a TTL, tracks the
 * candidates that are out for labeling (each under a lease), keeps the freshest score of each
 * candidate, and evicts the lowest-score candidates first when full.
 *
 * State ownership: for O(log n) updates on a pool of 100,000 the reducer updates the state it is
 * given in place and returns that same object. Treat a state passed to {@link poolReducer} as
 * consumed (as RxJS `scan` does); take a snapshot (checkpoint-state.ts) to keep an old version.
 *
 * Rules fixed here:
 * - Eviction (when an arrival needs room, or on an `evict` event): only candidates that are
 *   pooled (not requested) AND scored at least once can be evicted. Among them the lowest
 *   current score goes first; ties go oldest first (`arrivedAtMs`, then admission order).
 *   Unscored candidates are never evicted, so each new arrival gets scored at least once before it
 *   can be pushed out; requested candidates are never evicted, so an outstanding request can
 *   always be answered. When even evicting every evictable candidate cannot make room, the
 *   arrival is refused (`refused`, reason `pool-full`) and nothing is evicted.
 * - Every event that carries `now` first applies the clock (as a `tick`): expired leases return
 *   their candidates to `pooled` first, then pooled candidates whose TTL has passed
 *   (`arrivedAtMs + ttlMs <= now`) expire. A requested candidate does not expire while its lease
 *   runs; if its TTL passed meanwhile, it expires on the tick its lease ends. Leases (and TTLs)
 *   ending at the same time are handled in admission order.
 * - A score is applied only when its model version is not older than the candidate's current
 *   score's version (by the caller's `compareVersions`): the freshest score wins; equal versions
 *   replace. Scores for unknown ids, older versions or non-finite values are ignored.
 */

/** Where a candidate came from in Kafka. */
/**
 * Why a candidate left the pool without a label (and without a dead letter): its TTL ran out
 * (`expired`, also when it arrived already past it), or the pool's bound pushed it out (`evicted`,
 * also when it was refused at a pool full of candidates that may not be evicted).
 */
export const DROP_REASONS = ['expired', 'evicted'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface SourceRef {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** The worthiness of a candidate under one model version. */
export interface PooledScore {
  /** The worthiness score a_i (finite). */
  readonly value: number;
  readonly entropy: number;
  readonly diversity: number;
  /** The dominant (predicted) class. */
  readonly dominantClass: number;
  /** The candidate's prediction: the mean patch probabilities. */
  readonly meanProbs: readonly number[];
  /** The model version that produced it. */
  readonly modelVersion: string;
  readonly scoredAtMs: number;
}

/** A candidate as it enters the pool. `payload` is opaque to the pool (the adapter's compact form). */
export interface NewCandidate<T> {
  readonly id: string;
  readonly source: SourceRef;
  /** When the candidate was produced (e.g. the Kafka message time); the TTL counts from here. */
  readonly arrivedAtMs: number;
  /** Measured size of the stored candidate, counted against `maxBytes`. */
  readonly bytes: number;
  readonly payload: T;
}

/** An outstanding labeling request on a pooled candidate. */
export interface OutstandingRequest {
  readonly requestId: string;
  readonly issuedAtMs: number;
  /** The request expires (the candidate returns to `pooled`) at this time. */
  readonly leaseUntilMs: number;
}

/** A candidate in the pool. */
export interface PooledCandidate<T> extends NewCandidate<T> {
  /** Admission order (unique within a pool, increasing). */
  readonly seq: number;
  /** The freshest score, absent until the candidate is scored once. */
  score?: PooledScore;
  /** `requested` while a labeling request on it is outstanding. */
  state: 'pooled' | 'requested';
  /** Present exactly when `state` is `requested`. */
  request?: OutstandingRequest;
}

/** What the pool is bounded by and how it behaves; units are explicit. */
export interface PoolConfig {
  /** Most candidates held (>= 1). */
  readonly maxCandidates: number;
  /** Most bytes held (sum of `bytes`). */
  readonly maxBytes: number;
  /** A pooled candidate expires `ttlMs` after `arrivedAtMs` (Infinity: never). */
  readonly ttlMs: number;
  /** How long a labeling request stays outstanding before its candidate returns to the pool. */
  readonly leaseMs: number;
  /** Share of the bound in (0, 1] at or above which {@link pressure} says `pause`. */
  readonly highWatermark: number;
  /** Share of the bound in [0, highWatermark) at or below which {@link pressure} says `resume`. */
  readonly lowWatermark: number;
  /**
   * What {@link pressure} measures: `pinned` (default) counts only candidates that cannot be
   * evicted (unscored or requested), `total` counts the whole pool.
   */
  readonly backpressureOn?: 'pinned' | 'total';
  /** Order of model versions: < 0 when a is older than b, 0 when the same, > 0 when newer. */
  readonly compareVersions: (a: string, b: string) => number;
}

/** One score to apply, for candidate `id`. */
export interface ScoreUpdate extends PooledScore {
  readonly id: string;
}

/** A request to mark as issued. */
export interface IssuedRequest {
  readonly candidateId: string;
  readonly requestId: string;
}

/** Events the pool reacts to. */
export type PoolEvent<T> =
  | { readonly type: 'candidate-arrived'; readonly candidate: NewCandidate<T>; readonly now: number }
  | { readonly type: 'scored'; readonly scores: readonly ScoreUpdate[] }
  | { readonly type: 'tick'; readonly now: number }
  | { readonly type: 'requests-issued'; readonly requests: readonly IssuedRequest[]; readonly now: number }
  | { readonly type: 'requests-withdrawn'; readonly requestIds: readonly string[] }
  | { readonly type: 'labeled'; readonly id: string }
  | { readonly type: 'discard'; readonly id: string; readonly reason: string }
  | { readonly type: 'evict'; readonly now: number };

/** Why an arrival was not admitted. */
export type RefusalReason = 'expired' | 'too-large' | 'invalid-bytes' | 'pool-full';

/** What happened, for the adapters (logs, metrics, topics). */
export type PoolEffect<T> =
  | { readonly type: 'admitted'; readonly id: string }
  | { readonly type: 'duplicate'; readonly id: string }
  | { readonly type: 'refused'; readonly id: string; readonly reason: RefusalReason }
  | { readonly type: 'evicted'; readonly id: string; readonly score: number }
  | { readonly type: 'expired'; readonly id: string }
  | {
      readonly type: 'score-ignored';
      readonly id: string;
      readonly modelVersion: string;
      readonly reason: 'unknown' | 'stale' | 'invalid';
    }
  | {
      readonly type: 'requested';
      readonly id: string;
      readonly requestId: string;
      readonly leaseUntilMs: number;
    }
  | {
      readonly type: 'request-refused';
      readonly id: string;
      readonly requestId: string;
      readonly reason: 'unknown' | 'outstanding';
    }
  | { readonly type: 'lease-expired'; readonly id: string; readonly requestId: string }
  | { readonly type: 'request-withdrawn'; readonly id: string; readonly requestId: string }
  /** The candidate left the pool because it got a label; it carries what training needs. */
  | { readonly type: 'labeled'; readonly candidate: PooledCandidate<T> }
  | { readonly type: 'not-in-pool'; readonly id: string }
  | { readonly type: 'discarded'; readonly id: string; readonly reason: string };

/** The result of one reducer step. */
export interface PoolStep<T> {
  readonly state: PoolState<T>;
  readonly effects: PoolEffect<T>[];
}

// --- a small binary min-heap with lazy deletion (stale entries are skipped by their owners) ---

/** A binary min-heap by `less`. Internal to the pool's indexes. */
export class MinHeap<E> {
  private items: E[] = [];
  constructor(private readonly less: (a: E, b: E) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): E | undefined {
    return this.items[0];
  }

  push(e: E): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i] as E, a[p] as E)) break;
      [a[i], a[p]] = [a[p] as E, a[i] as E];
      i = p;
    }
  }

  pop(): E | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  /** Replaces the contents with `entries` (O(n)). */
  rebuild(entries: E[]): void {
    this.items = entries;
    for (let i = (entries.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private siftDown(start: number): void {
    const a = this.items;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l] as E, a[m] as E)) m = l;
      if (r < a.length && this.less(a[r] as E, a[m] as E)) m = r;
      if (m === i) return;
      [a[i], a[m]] = [a[m] as E, a[i] as E];
      i = m;
    }
  }
}

/** @internal An eviction index entry; stale when the candidate's stamp moved on. */
export interface EvictEntry {
  readonly id: string;
  readonly value: number;
  readonly arrivedAtMs: number;
  readonly seq: number;
  readonly stamp: number;
}
/** @internal A TTL index entry. */
export interface ExpiryEntry {
  readonly id: string;
  readonly arrivedAtMs: number;
  readonly seq: number;
}
/** @internal A lease index entry. */
export interface LeaseEntry {
  readonly id: string;
  readonly seq: number;
  readonly requestId: string;
  readonly leaseUntilMs: number;
}

/** @internal A pool entry: the candidate and its index stamp. */
export interface Slot<T> {
  readonly candidate: PooledCandidate<T>;
  /** Changes on every score or state change, so stale eviction entries can be recognised. */
  stamp: number;
}

/**
 * The pool's state. Read it through the functions of this module; its fields are internal
 * indexes (the heaps hold stale entries that are skipped lazily).
 */
export interface PoolState<T> {
  /** Candidates by id, in admission order. */
  readonly slots: Map<string, Slot<T>>;
  bytes: number;
  /** Candidates that can be evicted (pooled and scored), and their bytes. */
  evictableCount: number;
  evictableBytes: number;
  requestedCount: number;
  /** Unscored candidates (pooled or requested). */
  unscoredCount: number;
  unscoredBytes: number;
  requestedBytes: number;
  requestedUnscoredBytes: number;
  requestedUnscoredCount: number;
  /** The next admission sequence number. */
  nextSeq: number;
  nextStamp: number;
  readonly evictHeap: MinHeap<EvictEntry>;
  readonly expiryHeap: MinHeap<ExpiryEntry>;
  readonly leaseHeap: MinHeap<LeaseEntry>;
}

/** An empty pool. */
export function emptyPool<T>(nextSeq = 0): PoolState<T> {
  return {
    slots: new Map(),
    bytes: 0,
    evictableCount: 0,
    evictableBytes: 0,
    requestedCount: 0,
    unscoredCount: 0,
    unscoredBytes: 0,
    requestedBytes: 0,
    requestedUnscoredBytes: 0,
    requestedUnscoredCount: 0,
    nextSeq,
    nextStamp: 0,
    evictHeap: new MinHeap<EvictEntry>(
      (a, b) => a.value < b.value || (a.value === b.value && olderFirst(a, b)),
    ),
    expiryHeap: new MinHeap<ExpiryEntry>(olderFirst),
    leaseHeap: new MinHeap<LeaseEntry>(
      (a, b) => a.leaseUntilMs < b.leaseUntilMs || (a.leaseUntilMs === b.leaseUntilMs && a.seq < b.seq),
    ),
  };
}

function olderFirst(
  a: { arrivedAtMs: number; seq: number },
  b: { arrivedAtMs: number; seq: number },
): boolean {
  return a.arrivedAtMs < b.arrivedAtMs || (a.arrivedAtMs === b.arrivedAtMs && a.seq < b.seq);
}

/**
 * A pool holding `candidates` (any order; admission order is their `seq`), e.g. from a checkpoint.
 * Entries are copied; the indexes are rebuilt.
 *
 * @param nextSeq - the next admission number; at least one more than every `seq`.
 */
export function restorePool<T>(candidates: readonly PooledCandidate<T>[], nextSeq: number): PoolState<T> {
  const sorted = [...candidates].sort((a, b) => a.seq - b.seq);
  const maxSeq = sorted.length > 0 ? (sorted[sorted.length - 1] as PooledCandidate<T>).seq : -1;
  const state = emptyPool<T>(Math.max(nextSeq, maxSeq + 1));
  for (const c of sorted) {
    const candidate: PooledCandidate<T> = {
      ...c,
      source: { ...c.source },
      state: c.request !== undefined ? 'requested' : 'pooled',
    };
    if (candidate.request !== undefined) candidate.request = { ...candidate.request };
    if (candidate.request === undefined) delete candidate.request;
    if (candidate.score === undefined) delete candidate.score;
    else candidate.score = copyScore(candidate.score);
    insert(state, candidate);
  }
  return state;
}

/** A copy of a score that shares nothing with it (its mean probabilities copied too). */
export function copyScore(s: PooledScore): PooledScore {
  return {
    value: s.value,
    entropy: s.entropy,
    diversity: s.diversity,
    dominantClass: s.dominantClass,
    meanProbs: [...s.meanProbs],
    modelVersion: s.modelVersion,
    scoredAtMs: s.scoredAtMs,
  };
}

// --- bookkeeping: every membership or status change goes through `enter` / `leave` ---

function isEvictable(c: PooledCandidate<unknown>): boolean {
  return c.state === 'pooled' && c.score !== undefined;
}

/** Removes a slot's contribution to the aggregates. */
function leave<T>(state: PoolState<T>, slot: Slot<T>): void {
  const c = slot.candidate;
  if (isEvictable(c)) {
    state.evictableCount--;
    state.evictableBytes -= c.bytes;
  }
  if (c.score === undefined) {
    state.unscoredCount--;
    state.unscoredBytes -= c.bytes;
  }
  if (c.state === 'requested') {
    state.requestedCount--;
    state.requestedBytes -= c.bytes;
    if (c.score === undefined) {
      state.requestedUnscoredCount--;
      state.requestedUnscoredBytes -= c.bytes;
    }
  }
}

/** Adds a slot's contribution to the aggregates and indexes it under a new stamp. */
function enter<T>(state: PoolState<T>, slot: Slot<T>): void {
  const c = slot.candidate;
  slot.stamp = state.nextStamp++;
  if (isEvictable(c)) {
    state.evictableCount++;
    state.evictableBytes += c.bytes;
    state.evictHeap.push({
      id: c.id,
      value: (c.score as PooledScore).value,
      arrivedAtMs: c.arrivedAtMs,
      seq: c.seq,
      stamp: slot.stamp,
    });
  }
  if (c.score === undefined) {
    state.unscoredCount++;
    state.unscoredBytes += c.bytes;
  }
  if (c.state === 'requested') {
    state.requestedCount++;
    state.requestedBytes += c.bytes;
    if (c.score === undefined) {
      state.requestedUnscoredCount++;
      state.requestedUnscoredBytes += c.bytes;
    }
    const r = c.request as OutstandingRequest;
    state.leaseHeap.push({ id: c.id, seq: c.seq, requestId: r.requestId, leaseUntilMs: r.leaseUntilMs });
  }
}

function insert<T>(state: PoolState<T>, candidate: PooledCandidate<T>): void {
  const slot: Slot<T> = { candidate, stamp: 0 };
  state.slots.set(candidate.id, slot);
  state.bytes += candidate.bytes;
  enter(state, slot);
  if (candidate.state === 'pooled') {
    state.expiryHeap.push({ id: candidate.id, arrivedAtMs: candidate.arrivedAtMs, seq: candidate.seq });
  }
}

function remove<T>(state: PoolState<T>, slot: Slot<T>): void {
  leave(state, slot);
  state.bytes -= slot.candidate.bytes;
  state.slots.delete(slot.candidate.id);
}

/** Applies `change` to a slot's candidate, keeping aggregates and indexes right. */
function update<T>(state: PoolState<T>, slot: Slot<T>, change: (c: PooledCandidate<T>) => void): void {
  leave(state, slot);
  change(slot.candidate);
  enter(state, slot);
}

/** Drops stale heap entries once they outnumber the live ones, so memory stays O(pool). */
function compact<T>(state: PoolState<T>): void {
  const live = state.slots.size;
  if (state.evictHeap.size > 2 * state.evictableCount + 64) {
    const entries: EvictEntry[] = [];
    for (const slot of state.slots.values()) {
      const c = slot.candidate;
      if (isEvictable(c)) {
        const value = (c.score as PooledScore).value;
        entries.push({ id: c.id, value, arrivedAtMs: c.arrivedAtMs, seq: c.seq, stamp: slot.stamp });
      }
    }
    state.evictHeap.rebuild(entries);
  }
  if (state.expiryHeap.size > 2 * live + 64) {
    const entries: ExpiryEntry[] = [];
    for (const { candidate: c } of state.slots.values()) {
      if (c.state === 'pooled') entries.push({ id: c.id, arrivedAtMs: c.arrivedAtMs, seq: c.seq });
    }
    state.expiryHeap.rebuild(entries);
  }
  if (state.leaseHeap.size > 2 * state.requestedCount + 64) {
    const entries: LeaseEntry[] = [];
    for (const { candidate: c } of state.slots.values()) {
      if (c.request !== undefined) {
        entries.push({
          id: c.id,
          seq: c.seq,
          requestId: c.request.requestId,
          leaseUntilMs: c.request.leaseUntilMs,
        });
      }
    }
    state.leaseHeap.rebuild(entries);
  }
}

/** A requested candidate back in the pool (its lease ended, or its request was withdrawn): TTL applies again. */
function releaseRequest<T>(state: PoolState<T>, slot: Slot<T>): void {
  update(state, slot, (c) => {
    c.state = 'pooled';
    delete c.request;
  });
  const c = slot.candidate;
  state.expiryHeap.push({ id: c.id, arrivedAtMs: c.arrivedAtMs, seq: c.seq });
}

// --- the clock ---

function applyClock<T>(state: PoolState<T>, now: number, config: PoolConfig, effects: PoolEffect<T>[]): void {
  for (
    let top = state.leaseHeap.peek();
    top !== undefined && top.leaseUntilMs <= now;
    top = state.leaseHeap.peek()
  ) {
    state.leaseHeap.pop();
    const slot = state.slots.get(top.id);
    const r = slot?.candidate.request;
    if (slot === undefined || r === undefined) continue;
    if (r.requestId !== top.requestId || r.leaseUntilMs !== top.leaseUntilMs) continue;
    releaseRequest(state, slot);
    effects.push({ type: 'lease-expired', id: slot.candidate.id, requestId: r.requestId });
  }
  for (
    let top = state.expiryHeap.peek();
    top !== undefined && top.arrivedAtMs + config.ttlMs <= now;
    top = state.expiryHeap.peek()
  ) {
    state.expiryHeap.pop();
    const slot = state.slots.get(top.id);
    // A requested candidate's entry is dropped here; it is pushed again when its lease ends.
    if (slot === undefined || slot.candidate.seq !== top.seq || slot.candidate.state !== 'pooled') continue;
    remove(state, slot);
    effects.push({ type: 'expired', id: top.id });
  }
  compact(state);
}

// --- eviction ---

/** Evicts the lowest-score evictable candidate; false when there is none. */
function evictOne<T>(state: PoolState<T>, effects: PoolEffect<T>[]): boolean {
  for (let top = state.evictHeap.pop(); top !== undefined; top = state.evictHeap.pop()) {
    const slot = state.slots.get(top.id);
    if (slot === undefined || slot.stamp !== top.stamp || !isEvictable(slot.candidate)) continue;
    remove(state, slot);
    effects.push({ type: 'evicted', id: top.id, score: top.value });
    return true;
  }
  return false;
}

function overBounds(
  state: PoolState<unknown>,
  config: PoolConfig,
  extraCount: number,
  extraBytes: number,
): boolean {
  return state.slots.size + extraCount > config.maxCandidates || state.bytes + extraBytes > config.maxBytes;
}

function admit<T>(
  state: PoolState<T>,
  candidate: NewCandidate<T>,
  now: number,
  config: PoolConfig,
  effects: PoolEffect<T>[],
): void {
  const { id, bytes } = candidate;
  if (state.slots.has(id)) {
    effects.push({ type: 'duplicate', id });
    return;
  }
  if (!Number.isFinite(bytes) || bytes < 0) {
    effects.push({ type: 'refused', id, reason: 'invalid-bytes' });
    return;
  }
  if (candidate.arrivedAtMs + config.ttlMs <= now) {
    effects.push({ type: 'refused', id, reason: 'expired' });
    return;
  }
  if (bytes > config.maxBytes || config.maxCandidates < 1) {
    effects.push({ type: 'refused', id, reason: 'too-large' });
    return;
  }
  // Room is possible only if the candidates that cannot be evicted leave enough of it.
  const pinnedCount = state.slots.size - state.evictableCount;
  const pinnedBytes = state.bytes - state.evictableBytes;
  if (pinnedCount + 1 > config.maxCandidates || pinnedBytes + bytes > config.maxBytes) {
    effects.push({ type: 'refused', id, reason: 'pool-full' });
    return;
  }
  while (overBounds(state, config, 1, bytes) && evictOne(state, effects)) {
    // evictOne removed one; loop until there is room.
  }
  insert(state, {
    id,
    source: {
      topic: candidate.source.topic,
      partition: candidate.source.partition,
      offset: candidate.source.offset,
    },
    arrivedAtMs: candidate.arrivedAtMs,
    bytes,
    payload: candidate.payload,
    seq: state.nextSeq++,
    state: 'pooled',
  });
  effects.push({ type: 'admitted', id });
  compact(state);
}

function applyScores<T>(
  state: PoolState<T>,
  scores: readonly ScoreUpdate[],
  config: PoolConfig,
  effects: PoolEffect<T>[],
): void {
  for (const s of scores) {
    const { id, modelVersion } = s;
    if (!Number.isFinite(s.value)) {
      effects.push({ type: 'score-ignored', id, modelVersion, reason: 'invalid' });
      continue;
    }
    const slot = state.slots.get(id);
    if (slot === undefined) {
      effects.push({ type: 'score-ignored', id, modelVersion, reason: 'unknown' });
      continue;
    }
    const current = slot.candidate.score;
    if (current !== undefined && config.compareVersions(modelVersion, current.modelVersion) < 0) {
      effects.push({ type: 'score-ignored', id, modelVersion, reason: 'stale' });
      continue;
    }
    update(state, slot, (c) => {
      c.score = copyScore(s);
    });
  }
  compact(state);
}

function issueRequests<T>(
  state: PoolState<T>,
  requests: readonly IssuedRequest[],
  now: number,
  config: PoolConfig,
  effects: PoolEffect<T>[],
): void {
  for (const { candidateId: id, requestId } of requests) {
    const slot = state.slots.get(id);
    if (slot === undefined) {
      effects.push({ type: 'request-refused', id, requestId, reason: 'unknown' });
      continue;
    }
    if (slot.candidate.state === 'requested') {
      effects.push({ type: 'request-refused', id, requestId, reason: 'outstanding' });
      continue;
    }
    const leaseUntilMs = now + config.leaseMs;
    update(state, slot, (c) => {
      c.state = 'requested';
      c.request = { requestId, issuedAtMs: now, leaseUntilMs };
    });
    effects.push({ type: 'requested', id, requestId, leaseUntilMs });
  }
  compact(state);
}

/** Requests that never reached anyone (their message could not be published): as if their lease ended. */
function withdrawRequests<T>(
  state: PoolState<T>,
  requestIds: readonly string[],
  effects: PoolEffect<T>[],
): void {
  const wanted = new Set(requestIds);
  if (wanted.size === 0) return;
  const found = new Map<string, Slot<T>>();
  for (const slot of state.slots.values()) {
    const r = slot.candidate.request;
    if (r !== undefined && wanted.has(r.requestId)) found.set(r.requestId, slot);
  }
  // In the order given, whatever the order of the slots (a restored pool has its own).
  for (const requestId of wanted) {
    const slot = found.get(requestId);
    if (slot === undefined) continue;
    releaseRequest(state, slot);
    effects.push({ type: 'request-withdrawn', id: slot.candidate.id, requestId });
  }
  compact(state);
}

/**
 * The pool reducer. Updates `state` in place and returns it with the effects of the event (see
 * the module comment for the rules).
 *
 * - `candidate-arrived`: admits the candidate (`admitted`), evicting for room; a known id is a
 *   no-op (`duplicate`); refusals say why (`refused`).
 * - `scored`: applies each score unless stale, unknown or non-finite (`score-ignored`).
 * - `tick`: lease expiry (`lease-expired`), then TTL expiry (`expired`).
 * - `requests-issued`: marks each candidate `requested` under a lease of `leaseMs` from `now`
 *   (`requested`); a candidate already requested or unknown is refused (`request-refused`).
 * - `requests-withdrawn`: returns the candidates of these outstanding requests to the pool, as a
 *   lease expiry would (`request-withdrawn`); ids not outstanding are passed over.
 * - `labeled`: removes the candidate and returns it (`labeled`), or `not-in-pool`.
 * - `discard`: removes the candidate (e.g. poison in scoring) (`discarded`), or `not-in-pool`.
 * - `evict`: evicts until the bounds hold (after a bound was lowered), as far as possible.
 */
export function poolReducer<T>(state: PoolState<T>, event: PoolEvent<T>, config: PoolConfig): PoolStep<T> {
  const effects: PoolEffect<T>[] = [];
  switch (event.type) {
    case 'candidate-arrived':
      applyClock(state, event.now, config, effects);
      admit(state, event.candidate, event.now, config, effects);
      break;
    case 'scored':
      applyScores(state, event.scores, config, effects);
      break;
    case 'tick':
      applyClock(state, event.now, config, effects);
      break;
    case 'requests-issued':
      applyClock(state, event.now, config, effects);
      issueRequests(state, event.requests, event.now, config, effects);
      break;
    case 'requests-withdrawn':
      withdrawRequests(state, event.requestIds, effects);
      break;
    case 'labeled':
    case 'discard': {
      const slot = state.slots.get(event.id);
      if (slot === undefined) {
        effects.push({ type: 'not-in-pool', id: event.id });
        break;
      }
      remove(state, slot);
      if (event.type === 'labeled') effects.push({ type: 'labeled', candidate: slot.candidate });
      else effects.push({ type: 'discarded', id: event.id, reason: event.reason });
      compact(state);
      break;
    }
    case 'evict':
      applyClock(state, event.now, config, effects);
      while (overBounds(state, config, 0, 0) && evictOne(state, effects)) {
        // keep evicting
      }
      compact(state);
      break;
  }
  return { state, effects };
}

// --- reading the pool ---

/** Number of candidates in the pool (pooled and requested). */
export function poolSize(state: PoolState<unknown>): number {
  return state.slots.size;
}

/** Sum of the candidates' bytes. */
export function poolBytes(state: PoolState<unknown>): number {
  return state.bytes;
}

/** Number of outstanding labeling requests. */
export function requestedCount(state: PoolState<unknown>): number {
  return state.requestedCount;
}

/** Number of candidates not scored yet. */
export function unscoredCount(state: PoolState<unknown>): number {
  return state.unscoredCount;
}

/** The candidate with this id, if pooled or requested. Do not mutate it. */
export function getCandidate<T>(state: PoolState<T>, id: string): PooledCandidate<T> | undefined {
  return state.slots.get(id)?.candidate;
}

/** Whether the pool holds this id. */
export function hasCandidate(state: PoolState<unknown>, id: string): boolean {
  return state.slots.has(id);
}

/** Every candidate, in admission order. Do not mutate them. */
export function* poolCandidates<T>(state: PoolState<T>): IterableIterator<PooledCandidate<T>> {
  for (const slot of state.slots.values()) yield slot.candidate;
}

/** The outstanding labeling requests, in admission order of their candidates. */
export function outstandingRequests(
  state: PoolState<unknown>,
): { candidateId: string; requestId: string; issuedAtMs: number; leaseUntilMs: number }[] {
  const out: { candidateId: string; requestId: string; issuedAtMs: number; leaseUntilMs: number }[] = [];
  for (const { candidate: c } of state.slots.values()) {
    if (c.request !== undefined) out.push({ candidateId: c.id, ...c.request });
  }
  return out;
}

/** The backpressure verdict: `hold` means keep doing what you do (between the watermarks). */
export type Pressure = 'pause' | 'resume' | 'hold';

/**
 * Backpressure with hysteresis: `pause` when the measured occupancy is at or above
 * `highWatermark` of either bound (count or bytes), `resume` when it is at or below
 * `lowWatermark` of both, else `hold`.
 *
 * By default (`backpressureOn: 'pinned'`) the occupancy counts only the candidates that cannot be
 * evicted (unscored or requested): scored pooled candidates can always make room for a newcomer,
 * so a pool full of them is the steady state and must not stop intake (fresh candidates would
 * otherwise wait, and expire, in Kafka). What builds up when scoring falls behind is unscored
 * candidates, and that is what pauses the partitions. `backpressureOn: 'total'` counts the whole
 * pool instead.
 */
export function pressure(state: PoolState<unknown>, config: PoolConfig): Pressure {
  const total = config.backpressureOn === 'total';
  // Unscored and requested overlap in requested-unscored; count each candidate once.
  const count = total
    ? state.slots.size
    : state.unscoredCount + state.requestedCount - state.requestedUnscoredCount;
  const bytes = total
    ? state.bytes
    : state.unscoredBytes + state.requestedBytes - state.requestedUnscoredBytes;
  if (
    count >= config.highWatermark * config.maxCandidates ||
    bytes >= config.highWatermark * config.maxBytes
  ) {
    return 'pause';
  }
  if (count <= config.lowWatermark * config.maxCandidates && bytes <= config.lowWatermark * config.maxBytes) {
    return 'resume';
  }
  return 'hold';
}

/** What selection sees: aligned arrays of the selectable candidates. */
export interface SelectionInput<T> {
  readonly ids: string[];
  /** Each candidate's freshest score value (finite), for `selectForLabeling`. */
  readonly scores: number[];
  readonly candidates: PooledCandidate<T>[];
}

/**
 * The candidates selection may pick: pooled (not requested) and scored at least once, in
 * admission order, with their freshest scores. O(n).
 */
export function selectionInput<T>(state: PoolState<T>): SelectionInput<T> {
  const ids: string[] = [];
  const scores: number[] = [];
  const candidates: PooledCandidate<T>[] = [];
  for (const { candidate: c } of state.slots.values()) {
    if (!isEvictable(c)) continue;
    ids.push(c.id);
    scores.push((c.score as PooledScore).value);
    candidates.push(c);
  }
  return { ids, scores, candidates };
}

/**
 * The background rescoring order for a newly served model `version`: the ids not yet scored with
 * `version` (with `compareVersions`, nor with a newer one). Pooled candidates come first: the
 * unscored ones (selection cannot see them at all) in admission order, then the scored ones by
 * previous score, highest first (ties by admission order); requested candidates come last, in the
 * same order.
 *
 * @param compareVersions - the version order; without it, every score of another version counts
 * as not scored with `version`.
 */
export function rescoreOrder(
  state: PoolState<unknown>,
  version: string,
  compareVersions: (a: string, b: string) => number = (a, b) => (a === b ? 0 : -1),
): string[] {
  const rank = (c: PooledCandidate<unknown>): number =>
    (c.state === 'requested' ? 2 : 0) + (c.score === undefined ? 0 : 1);
  const need: PooledCandidate<unknown>[] = [];
  for (const { candidate: c } of state.slots.values()) {
    if (c.score === undefined || compareVersions(c.score.modelVersion, version) < 0) need.push(c);
  }
  need.sort((a, b) => rank(a) - rank(b) || (b.score?.value ?? 0) - (a.score?.value ?? 0) || a.seq - b.seq);
  return need.map((c) => c.id);
}
