/**
 * Scores in the loop: new candidates' scores and the rescore of the pool with a newer version
 * (highest previous scores first, one chunk at a time; a newer version starts a new generation,
 * and the older chain stops at its next chunk). A candidate that fails its batch alone is
 * dead-lettered and leaves the pool.
 */
import { getCandidate, poolReducer, poolSize, rescoreOrder } from '../../core/pool.js';
import type { ScoreBatchResult } from '../../workers/scoring-service.js';
import { deadLetter } from './dead-letters.js';
import type { Effect, Input, Poisoned, ScoreEntry } from './io.js';
import { maybeRequest } from './requests.js';
import type { DaemonState, LoopContext } from './state.js';
import { onWindowPredictions, onWindowFailed } from './windows.js';

/** Candidates rescored per call. */
export const RESCORE_CHUNK = 256;

type Scored = Extract<Input, { type: 'scored' }>;

export function onScored(state: DaemonState, ctx: LoopContext, input: Scored, out: Effect[]): void {
  const { purpose, results, now } = input;
  for (const result of results) {
    out.push({
      type: 'emit',
      event: {
        type: 'scoring-batch',
        seconds: result.seconds,
        patches: result.patches,
        fromCache: result.patchesFromCache,
      },
    });
  }
  if (purpose.kind === 'window') {
    onWindowPredictions(state, ctx, purpose.generation, results, now, out);
    return;
  }
  for (const result of results) recordScores(state, ctx, result, now);
  for (const p of input.poisoned) discardPoisoned(state, ctx, p, out);
  if (purpose.kind === 'new') {
    const latencies: number[] = [];
    for (const result of results)
      for (const r of result.results) {
        const at = state.arrivals.get(r.id);
        if (at === undefined) continue;
        latencies.push((now - at) / 1000);
        state.arrivals.delete(r.id);
      }
    if (latencies.length > 0)
      out.push({ type: 'emit', event: { type: 'scoring-latency', seconds: latencies } });
  } else if (state.rescore?.generation === purpose.generation) {
    state.rescore.done += results.reduce((n, r) => n + r.results.length, 0) + input.poisoned.length;
    nextRescoreChunk(state, ctx, now, out);
  }
  maybeRequest(state, ctx, now, out);
}

function recordScores(state: DaemonState, ctx: LoopContext, result: ScoreBatchResult, now: number): void {
  poolReducer(
    state.labeling.pool,
    {
      type: 'scored',
      scores: result.results.map((r) => ({
        id: r.id,
        value: r.score,
        entropy: r.entropy,
        diversity: r.diversity,
        dominantClass: r.dominantClass,
        meanProbs: r.meanProbs,
        modelVersion: result.version,
        scoredAtMs: now,
      })),
    },
    ctx.labeling.pool,
  );
}

function discardPoisoned(state: DaemonState, ctx: LoopContext, p: Poisoned, out: Effect[]): void {
  const candidate = getCandidate(state.labeling.pool, p.id);
  if (!candidate) return;
  poolReducer(state.labeling.pool, { type: 'discard', id: p.id, reason: 'poison' }, ctx.labeling.pool);
  state.arrivals.delete(p.id);
  out.push({ type: 'forget', ids: [p.id] });
  out.push({ type: 'emit', event: { type: 'poison', ...candidate.source, err: p.error } });
  deadLetter(state, ctx, out, candidate.source, { key: Buffer.from(p.id), value: null }, p.reason, p.error, {
    fromMessage: false,
  });
}

export function onScoringFailed(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'scoring-failed' }>,
  out: Effect[],
): void {
  const { purpose, error } = input;
  if (state.draining) return;
  if (purpose.kind === 'new') out.push({ type: 'emit', event: { type: 'scoring-failed', err: error } });
  else if (purpose.kind === 'window') onWindowFailed(state, ctx, purpose.generation, error, input.now, out);
  else if (state.rescore?.generation === purpose.generation) {
    state.rescore = null;
    out.push({ type: 'emit', event: { type: 'rescore-failed', err: error } });
  }
}

/** Starts rescoring the whole pool with the served version; a rescore under way stops. */
export function startRescore(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  const generation = ++state.rescoreGeneration;
  state.rescore = {
    version: state.served.version,
    generation,
    done: 0,
    total: poolSize(state.labeling.pool),
    startedAtMs: now,
  };
  nextRescoreChunk(state, ctx, now, out);
}

function nextRescoreChunk(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  const r = state.rescore;
  if (r === null || state.draining) return;
  const ids = rescoreOrder(state.labeling.pool, r.version, ctx.labeling.pool.compareVersions).slice(
    0,
    RESCORE_CHUNK,
  );
  if (ids.length > 0) {
    const ratio = r.total > 0 ? Math.min(1, r.done / r.total) : 1;
    out.push({ type: 'emit', event: { type: 'rescore-progress', ratio } });
    out.push({
      type: 'rescore',
      generation: r.generation,
      version: r.version,
      entries: entriesOf(state, ids),
    });
    return;
  }
  state.rescore = null;
  out.push({ type: 'emit', event: { type: 'rescore-progress', ratio: 1 } });
  out.push({
    type: 'emit',
    event: {
      type: 'rescored',
      version: r.version,
      candidates: r.done,
      seconds: (now - r.startedAtMs) / 1000,
    },
  });
}

/** The pooled candidates of `ids`, with what the scorer needs. */
export function entriesOf(state: DaemonState, ids: readonly string[]): ScoreEntry[] {
  const entries: ScoreEntry[] = [];
  for (const id of ids) {
    const c = getCandidate(state.labeling.pool, id);
    if (c) entries.push({ id, stored: c.payload });
  }
  return entries;
}
