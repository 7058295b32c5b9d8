/**
 * Dead letters in the loop: queued in the state (and so in every checkpoint) until the broker
 * confirms them, sent in order, one batch at a time, and sent again on the clock's tick after a
 * failure (dead-letters.ts has the checkpoint form). Scale-out writes no checkpoint: there a dead
 * letter born of a message holds that message's offset until the broker confirms it.
 */
import { done, track } from '../../core/offsets.js';
import type { SourceRef } from '../../core/pool.js';
import {
  createDeadLetter,
  encodeDeadLetter,
  type DeadLetterReason,
  type MessageKey,
} from '../../messages/index.js';
import { brokerAnswered, brokerFailed } from './broker.js';
import { isReplay } from './cluster/intake.js';
import type { Effect, Input } from './io.js';
import type { DaemonState, LoopContext } from './state.js';

/** Most dead letters in one send. */
const MAX_BATCH = 100;

/**
 * Queues a dead letter for a message; 'held' when its offset waits for the broker's confirmation
 * (the caller then does not mark it done).
 */
export function deadLetter(
  state: DaemonState,
  ctx: LoopContext,
  out: Effect[],
  source: SourceRef,
  message: { readonly key: MessageKey; readonly value: Buffer | null },
  reason: DeadLetterReason,
  error: unknown,
  options: { fromMessage?: boolean } = {},
): 'held' | undefined {
  // Scale-out: a candidate replayed to rebuild a pool was dead-lettered when first read.
  if (isReplay(state, source)) return undefined;
  const dl = createDeadLetter({
    source: { ...source, key: message.key },
    reason,
    error,
    payload: message.value,
    maxPayloadBytes: ctx.config.limits.deadLetterPayloadBytes,
  });
  const hold = state.cluster !== undefined && options.fromMessage !== false;
  if (hold) state.offsets = track(state.offsets, source);
  state.deadLetters.push({
    key: dl.source.key ?? null,
    value: encodeDeadLetter(dl),
    ...(hold ? { hold: source } : {}),
  });
  out.push({ type: 'emit', event: { type: 'dead-letter', reason, ...source } });
  flushDeadLetters(state, out);
  return hold ? 'held' : undefined;
}

/** Sends the oldest queued dead letters, unless a send is under way. */
export function flushDeadLetters(state: DaemonState, out: Effect[]): void {
  if (state.deadLettersSending > 0 || state.deadLetters.length === 0 || state.draining) return;
  const letters = state.deadLetters.slice(0, MAX_BATCH);
  state.deadLettersSending = letters.length;
  out.push({ type: 'send-dead-letters', letters });
}

export function onDeadLettersSent(
  state: DaemonState,
  input: Extract<Input, { type: 'dead-letters-sent' }>,
  now: number,
  out: Effect[],
): void {
  // The batch sent was the head of the queue; letters queued meanwhile are behind it.
  state.deadLetters.splice(0, input.letters.length);
  state.deadLettersSending = 0;
  for (const d of input.letters) if (d.hold !== undefined) state.offsets = done(state.offsets, d.hold);
  brokerAnswered(state, now, out);
  flushDeadLetters(state, out);
}

export function onDeadLettersFailed(
  state: DaemonState,
  input: Extract<Input, { type: 'dead-letters-failed' }>,
  now: number,
  out: Effect[],
): void {
  state.deadLettersSending = 0;
  out.push({
    type: 'emit',
    event: { type: 'dead-letter-send-failed', queued: state.deadLetters.length, err: input.error },
  });
  brokerFailed(state, 'dead-letter send failed', now, out);
  // Sent again on the next tick.
}
