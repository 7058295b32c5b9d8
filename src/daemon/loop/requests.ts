/**
 * Labeling requests in the loop: the pool is topped up to `b` candidates asked or answered per
 * window by the randomized selection (DESIGN.md, Eq. 4), never while a window runs; each request
 * names the version whose scores made it. Until the broker confirms a send its requests are kept
 * as unconfirmed (checkpointed, sent again after a restart); a send that fails withdraws them, so
 * their candidates are asked again later instead of waiting out their lease with nobody to answer.
 */
import { newLabelsSinceWindow } from '../../core/labels.js';
import { poolReducer, requestedCount } from '../../core/pool.js';
import { deriveSeed } from '../../core/rng.js';
import { planRequests } from '../../core/windows.js';
import type { UnconfirmedRequest } from '../outbox.js';
import { encodePlannedRequest } from '../request-message.js';
import { brokerAnswered, brokerFailed } from './broker.js';
import { clusterMaybeRequest } from './cluster/requests.js';
import type { Effect, Input } from './io.js';
import type { DaemonState, LoopContext } from './state.js';

/** Asks for labels when fewer than `b` are asked or answered in this window. */
export function maybeRequest(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  if (state.draining || state.window !== null) return;
  if (state.cluster) return clusterMaybeRequest(state, ctx, now, out);
  const { selection } = ctx.config;
  const { pool, labels } = state.labeling;
  const need = selection.b - newLabelsSinceWindow(labels) - requestedCount(pool);
  if (need <= 0) return;
  const planned = planRequests(pool, {
    b: need,
    omega: selection.omega,
    randomness: selection.randomness,
    seed: deriveSeed(selection.seed, 'select', labels.windowSeq, state.requestRound++),
    windowSeq: labels.windowSeq,
    now,
  });
  if (planned.requests.length === 0) return;
  const step = poolReducer(pool, planned.event, ctx.labeling.pool);
  const issued = new Set(step.effects.filter((e) => e.type === 'requested').map((e) => e.id));
  const leaseExpiresAt = new Date(now + selection.leaseMs).toISOString();
  const requests = planned.requests
    .filter((r) => issued.has(r.candidateId))
    .map((r): UnconfirmedRequest => {
      state.requestTimes.set(r.candidateId, now);
      return {
        requestId: r.requestId,
        key: r.candidateId,
        value: encodePlannedRequest(r, {
          shortlistSize: planned.selection.shortlist.length,
          criterion: ctx.config.scoring.criterion,
          leaseExpiresAt,
          time: new Date(now).toISOString(),
        }),
      };
    });
  if (requests.length === 0) return;
  out.push({
    type: 'emit',
    event: { type: 'requests', count: requests.length, version: state.served.version },
  });
  sendRequests(state, requests, out);
}

/** Sends requests; they are unconfirmed until the broker confirms them. */
export function sendRequests(
  state: DaemonState,
  requests: readonly UnconfirmedRequest[],
  out: Effect[],
): void {
  for (const r of requests) state.unconfirmedRequests.set(r.requestId, r);
  out.push({ type: 'send-requests', requests });
}

export function onRequestsSent(
  state: DaemonState,
  input: Extract<Input, { type: 'requests-sent' }>,
  now: number,
  out: Effect[],
): void {
  for (const id of input.requestIds) state.unconfirmedRequests.delete(id);
  // Counted once the broker has them: a request withdrawn after a failed send never was.
  out.push({ type: 'emit', event: { type: 'requests-published', count: input.requestIds.length } });
  brokerAnswered(state, now, out);
}

export function onRequestsFailed(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'requests-failed' }>,
  now: number,
  out: Effect[],
): void {
  for (const id of input.requestIds) state.unconfirmedRequests.delete(id);
  // Nobody will answer a request that was never published: its candidates go back to the pool
  // now, not when the lease ends (hours by default), and are asked again later.
  const withdrawn = poolReducer(
    state.labeling.pool,
    { type: 'requests-withdrawn', requestIds: input.requestIds },
    ctx.labeling.pool,
  ).effects.filter((e) => e.type === 'request-withdrawn');
  for (const e of withdrawn) state.requestTimes.delete(e.id);
  out.push({
    type: 'emit',
    event: { type: 'publish-failed', what: 'requests', withdrawn: withdrawn.length, err: input.error },
  });
  brokerFailed(state, 'request send failed', now, out);
}
