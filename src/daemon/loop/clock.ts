/**
 * The loop's clock: what happens on every tick. The brokers' health first (so that nothing below
 * can skip the exit after a long outage); then, once the group has given this instance its
 * partitions, the pool's and the label store's clocks (TTL, leases, waiting feedback), requests,
 * windows, and the outboxes and checkpoints that are due.
 */
import { labelsReducer } from '../../core/labels.js';
import { poolBytes, poolReducer, poolSize, requestedCount } from '../../core/pool.js';
import { watchBrokers } from './broker.js';
import { clusterTick, outstandingCount } from './cluster/clock.js';
import { flushDeadLetters } from './dead-letters.js';
import { checkpointIfDue, publishOutbox } from './durability.js';
import { applyLabelingEffects, reportDropped } from './effects.js';
import { applyBackpressure } from './intake.js';
import type { Effect } from './io.js';
import { maybeRequest } from './requests.js';
import type { DaemonState, LoopContext } from './state.js';
import { maybeWindow } from './windows.js';

export function onTick(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  watchBrokers(state, ctx, now, out);
  if (!state.joined || state.draining) return;
  const { pool, labels } = state.labeling;
  const poolStep = poolReducer(pool, { type: 'tick', now }, ctx.labeling.pool);
  const labelsStep = labelsReducer(labels, { type: 'tick', now }, ctx.labeling.labels);
  applyLabelingEffects(state, ctx, [...poolStep.effects, ...labelsStep.effects], now, out);
  reportDropped(state, out);
  if (state.cluster) clusterTick(state, ctx, [...poolStep.effects, ...labelsStep.effects], now, out);
  applyBackpressure(state, ctx, out);
  maybeRequest(state, ctx, now, out);
  maybeWindow(state, ctx, now, out);
  checkpointIfDue(state, ctx, now, out);
  publishOutbox(state, ctx, out);
  flushDeadLetters(state, out);
  out.push({
    type: 'emit',
    event: {
      type: 'gauges',
      pool: poolSize(pool),
      poolBytes: poolBytes(pool),
      outstanding: state.cluster ? outstandingCount(state, now) : requestedCount(pool),
      deadLettersUnsent: state.deadLetters.length,
    },
  });
}
