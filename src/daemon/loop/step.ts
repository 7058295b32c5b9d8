/**
 * The step: `(state, input) => { state, effects }`, the one place where the daemon decides. No
 * I/O: every input is an event of the world (a chunk of messages, the clock, a stage's outcome),
 * every effect a request to it. It updates the state it owns in place (state.ts) and returns it.
 * Each kind of input has its handler, by concern, in the modules beside this one.
 */
import { onAssigned, onBrokerInput, onConsumerCrashed, onGroupOffsets } from './broker.js';
import { onCluster } from './cluster/step.js';
import { onTick } from './clock.js';
import { onDeadLettersFailed, onDeadLettersSent } from './dead-letters.js';
import {
  onCheckpointFailed,
  onCheckpointWritten,
  onCommitFailed,
  onCommitted,
  onVersionsFailed,
  onVersionsPublished,
} from './durability.js';
import { onChunk } from './intake.js';
import type { Effect, Input, StepResult } from './io.js';
import { onDrain, onStart } from './lifecycle.js';
import { onRequestsFailed, onRequestsSent } from './requests.js';
import { onScored, onScoringFailed } from './scoring.js';
import { onServed, onVersionLoaded, onVersionRead, onVersionRefused } from './serving.js';
import type { DaemonState, LoopContext } from './state.js';
import { onVersionSaved, onWindowFailed, onWindowTrained } from './windows.js';

/** Folds one input into the state; returns the state and the effects to carry out. */
export function step(state: DaemonState, input: Input, ctx: LoopContext): StepResult<DaemonState> {
  const out: Effect[] = [];
  dispatch(state, input, ctx, out);
  return { state, effects: out };
}

function dispatch(state: DaemonState, input: Input, ctx: LoopContext, out: Effect[]): void {
  switch (input.type) {
    case 'chunk':
      if (state.draining)
        out.push({ type: 'reply', reply: input.reply, outcome: { lastTaken: undefined, paused: true } });
      else onChunk(state, input, ctx, out);
      return;
    case 'tick':
      return onTick(state, ctx, input.now, out);
    case 'start':
      return onStart(state, ctx, input, out);
    case 'drain':
      return onDrain(state, ctx, input, out);
    case 'assigned':
      return onAssigned(state, ctx, input, out);
    case 'group-offsets':
      return onGroupOffsets(state, input, out);
    case 'broker-answered':
    case 'broker-failed':
      return onBrokerInput(state, input, out);
    case 'consumer-crashed':
      return onConsumerCrashed(state, input, out);
    default:
      return dispatchOutcome(state, input, ctx, out);
  }
}

/** The outcomes of the stages. */
function dispatchOutcome(state: DaemonState, input: Input, ctx: LoopContext, out: Effect[]): void {
  const now = input.now;
  switch (input.type) {
    case 'scored':
      return onScored(state, ctx, input, out);
    case 'scoring-failed':
      return onScoringFailed(state, ctx, input, out);
    case 'served':
      return onServed(state, ctx, input, out);
    case 'version-read':
      return onVersionRead(state, ctx, input, out);
    case 'version-loaded':
      return onVersionLoaded(state, input, out);
    case 'version-refused':
      return onVersionRefused(input, out);
    case 'window-trained':
      return onWindowTrained(state, ctx, input, out);
    case 'window-failed':
      return onWindowFailed(state, ctx, input.generation, input.error, input.now, out);
    case 'version-saved':
      return onVersionSaved(state, ctx, input, out);
    default:
      return dispatchDurability(state, input, ctx, now, out);
  }
}

function dispatchDurability(
  state: DaemonState,
  input: Input,
  ctx: LoopContext,
  now: number,
  out: Effect[],
): void {
  switch (input.type) {
    case 'checkpoint-written':
      return onCheckpointWritten(state, ctx, input, out);
    case 'checkpoint-failed':
      return onCheckpointFailed(state, ctx, input, now, out);
    case 'committed':
      return onCommitted(state, ctx, input, now, out);
    case 'commit-failed':
      return onCommitFailed(state, ctx, input, now, out);
    case 'requests-sent':
      return onRequestsSent(state, input, now, out);
    case 'requests-failed':
      return onRequestsFailed(state, ctx, input, now, out);
    case 'versions-published':
      return onVersionsPublished(state, ctx, input, now, out);
    case 'versions-failed':
      return onVersionsFailed(state, input, now, out);
    case 'dead-letters-sent':
      return onDeadLettersSent(state, input, now, out);
    case 'dead-letters-failed':
      return onDeadLettersFailed(state, input, now, out);
    default:
      return onCluster(state, input, ctx, out);
  }
}
