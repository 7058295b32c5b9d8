/**
 * The loop's start and its draining. At start: requests whose send the restored checkpoint did
 * not know to be confirmed are sent again (same ids), and the outboxes it holds are sent. At
 * drain (shutdown): no more intake, the window in flight abandoned (it is planned again from the
 * same inputs after a restart), one last checkpoint and its commit; effect `drained` says when.
 */
import { flushDeadLetters } from './dead-letters.js';
import { publishOutbox, requestCheckpoint } from './durability.js';
import type { Effect, Input } from './io.js';
import { sendRequests } from './requests.js';
import type { DaemonState, LoopContext } from './state.js';
import { abandonWindow } from './windows.js';

export function onStart(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'start' }>,
  out: Effect[],
): void {
  if (input.resend.length > 0) {
    out.push({ type: 'emit', event: { type: 'requests-resent', count: input.resend.length } });
    sendRequests(state, input.resend, out);
  }
  flushDeadLetters(state, out);
  publishOutbox(state, ctx, out);
}

export function onDrain(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'drain' }>,
  out: Effect[],
): void {
  if (state.draining) return;
  abandonWindow(state, ctx, out, 'shutdown');
  state.draining = true;
  state.rescore = null;
  out.push({ type: 'pause', topic: ctx.config.kafka.topics.candidates });
  out.push({ type: 'pause', topic: ctx.config.kafka.topics.feedback });
  requestCheckpoint(state, ctx, input.now, out);
  if (!state.checkpoint.inFlight) out.push({ type: 'drained' });
}
