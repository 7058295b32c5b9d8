/**
 * The step's intake: a chunk of a fetched batch, message by message, into the pool and the label
 * store, with the message's offset tracked (done at once, or held while its dead letter or ledger
 * entry waits for the broker). Bad messages are dead-lettered with their reason; the chunk stops
 * where candidate intake must pause. What the labeling reducers report becomes events, scoring
 * work and dead letters (effects.ts).
 */
import { ingestFeedback } from '../../core/labels.js';
import { getCandidate, poolSize, pressure, type SourceRef } from '../../core/pool.js';
import { trackDone } from '../../core/offsets.js';
import { augmentationSpecOf } from '../../config/index.js';
import { parseFeedback, rejected, type ParseFailure } from '../../messages/index.js';
import { patchShapeOf, takeCandidate, type StoredCandidate } from '../stored-candidate.js';
import { formatShape } from '../initial-model.js';
import { applyLabelingEffects, reportDropped } from './effects.js';
import { deadLetter } from './dead-letters.js';
import type { Effect, Input, IntakeMessage, ScoreEntry } from './io.js';
import type { DaemonState, LoopContext } from './state.js';
import { afterMessage } from './cluster/intake.js';
import { maybeWindow } from './windows.js';

type ChunkInput = Extract<Input, { type: 'chunk' }>;

/** Takes a chunk: every message until the end, or until candidate intake must pause. */
export function onChunk(state: DaemonState, input: ChunkInput, ctx: LoopContext, out: Effect[]): void {
  const { chunk, now } = input;
  const candidates = chunk.topic === ctx.config.kafka.topics.candidates;
  const admitted: ScoreEntry[] = [];
  let lastTaken: number | undefined;
  let paused = false;
  let ingested = 0;
  for (const message of chunk.messages) {
    // Backpressure inside a batch too: the rest of it is fetched again after the resume.
    if (candidates && applyBackpressure(state, ctx, out)) {
      paused = true;
      break;
    }
    const source = { topic: chunk.topic, partition: chunk.partition, offset: message.offset };
    const taken = candidates
      ? takeCandidateMessage(state, ctx, source, message, now, admitted, out)
      : takeFeedbackMessage(state, ctx, source, message, now, out);
    if (taken === 'ingested') ingested++;
    if (taken !== 'held') state.offsets = trackDone(state.offsets, source);
    lastTaken = message.offset;
  }
  if (ingested > 0) out.push({ type: 'emit', event: { type: 'ingested', count: ingested } });
  if (admitted.length > 0) out.push({ type: 'score', entries: admitted });
  // The b-th label starts its window now, not on the next tick.
  if (!candidates) maybeWindow(state, ctx, now, out);
  reportDropped(state, out);
  const behind = chunk.highWatermark - (lastTaken ?? chunk.highWatermark) - 1;
  out.push({
    type: 'emit',
    event: { type: 'lag', topic: chunk.topic, partition: chunk.partition, behind: Math.max(0, behind) },
  });
  out.push({ type: 'reply', reply: input.reply, outcome: { lastTaken, paused } });
}

/** What became of one message: in the state, held for the broker, or dead-lettered/refused. */
type Taken = 'ingested' | 'taken' | 'held';

function takeCandidateMessage(
  state: DaemonState,
  ctx: LoopContext,
  source: SourceRef,
  message: IntakeMessage,
  now: number,
  admitted: ScoreEntry[],
  out: Effect[],
): Taken {
  try {
    const taken = takeCandidate(state.labeling, message, source, now, ctx.config.limits, ctx.labeling, (s) =>
      patchShapeRefusal(s, ctx),
    );
    if (!taken.ok) return deadLetter(state, ctx, out, source, message, taken.reason, taken.error) ?? 'taken';
    const { effects } = taken.value;
    const refused = effects.find((e) => e.type === 'refused');
    if (refused?.type === 'refused' && refused.reason === 'too-large') {
      const error = `the candidate alone needs more than the pool's ACFT_POOL_MAX_BYTES (${ctx.labeling.pool.maxBytes} bytes)`;
      return deadLetter(state, ctx, out, source, message, 'limit-exceeded', error) ?? 'taken';
    }
    applyLabelingEffects(state, ctx, effects, now, out);
    for (const e of effects) {
      if (e.type !== 'admitted') continue;
      const pooled = getCandidate(state.labeling.pool, e.id);
      if (pooled) admitted.push({ id: e.id, stored: pooled.payload });
    }
    const held = afterMessage(state, ctx, effects, source, now, out);
    return held ? 'held' : 'ingested';
  } catch (error) {
    return poison(state, ctx, out, source, message, error);
  }
}

function takeFeedbackMessage(
  state: DaemonState,
  ctx: LoopContext,
  source: SourceRef,
  message: IntakeMessage,
  now: number,
  out: Effect[],
): Taken {
  try {
    const parsed = parseFeedback(message.value, {
      numClasses: ctx.config.limits.numClasses,
      maxPayloadBytes: ctx.config.limits.maxPayloadBytes,
      // No key is a mismatch, not "unchecked": scale-out routes feedback to its candidate by key.
      key: message.key,
    });
    if (!parsed.ok)
      return deadLetter(state, ctx, out, source, message, parsed.reason, parsed.error) ?? 'taken';
    const f = parsed.value;
    const feedback = {
      candidateId: f.candidateId,
      label: f.label,
      annotatorId: f.annotatorId,
      timeMs: Date.parse(f.time),
      ...(f.requestId ? { requestId: f.requestId } : {}),
      source,
    };
    const { effects } = ingestFeedback(state.labeling, feedback, now, ctx.labeling);
    applyLabelingEffects(state, ctx, effects, now, out);
    return afterMessage(state, ctx, effects, source, now, out) ? 'held' : 'taken';
  } catch (error) {
    return poison(state, ctx, out, source, message, error);
  }
}

/** A message that threw inside processing: dead-lettered as poison, never retried forever. */
function poison(
  state: DaemonState,
  ctx: LoopContext,
  out: Effect[],
  source: SourceRef,
  message: IntakeMessage,
  error: unknown,
): Taken {
  out.push({ type: 'emit', event: { type: 'poison', ...source, err: error } });
  return deadLetter(state, ctx, out, source, message, 'poison', error) ?? 'taken';
}

/** Patch shapes already found to fit, by image shape (a stream repeats a few). */
const fitting = new Set<string>();

/** Why a stored candidate cannot be scored by M0's lineage (its patches are another shape), if so. */
export function patchShapeRefusal(stored: StoredCandidate, ctx: LoopContext): ParseFailure | undefined {
  const [h, w, c] = ctx.m0Shape;
  if (stored.kind === 'patches') {
    const [, ph, pw, pc] = stored.shape;
    if (ph === h && pw === w && pc === c) return undefined;
  }
  const plain = stored.kind === 'image' && stored.roi === undefined && stored.augmentation === undefined;
  const key = plain ? `${stored.shape.join('x')}>${h}x${w}x${c}` : undefined;
  if (key !== undefined && fitting.has(key)) return undefined;
  const shape = patchShapeOf(stored, stored.augmentation ?? augmentationSpecOf(ctx.config.scoring));
  const want = formatShape(ctx.m0Shape);
  if (typeof shape === 'string')
    return rejected('shape-mismatch', `its patches cannot be made (${shape}); the model takes ${want}`);
  if (formatShape(shape) === want) {
    if (key !== undefined && fitting.size < 256) fitting.add(key);
    return undefined;
  }
  return rejected(
    'shape-mismatch',
    `its patches are ${formatShape(shape)}, the model (M0 ${ctx.m0.version}, ACFT_MODEL_M0_PATH) takes ${want}`,
  );
}

/**
 * Pauses or resumes candidate intake by the pool's watermarks (effects `pause` / `resume`);
 * true while intake is paused.
 */
export function applyBackpressure(state: DaemonState, ctx: LoopContext, out: Effect[]): boolean {
  const p = pressure(state.labeling.pool, ctx.labeling.pool);
  const topic = ctx.config.kafka.topics.candidates;
  if (p === 'pause' && !state.intakePaused) {
    state.intakePaused = true;
    out.push({ type: 'pause', topic });
    out.push({ type: 'emit', event: { type: 'paused', pool: poolSize(state.labeling.pool) } });
  } else if (p === 'resume' && state.intakePaused) {
    state.intakePaused = false;
    out.push({ type: 'resume', topic });
    out.push({ type: 'emit', event: { type: 'resumed', pool: poolSize(state.labeling.pool) } });
  }
  return state.intakePaused;
}
