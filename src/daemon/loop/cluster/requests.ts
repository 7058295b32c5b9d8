/**
 * The coordinator's selection (scale-out): it tops the outstanding requests up to `b` (less the
 * new labels of this window) from the merged shortlists, and writes each request with its
 * `requested` ledger entry in one transaction of its writer (a coordinator that takes over sees
 * both or neither; a fenced one publishes neither). Model versions go out through the same writer.
 * A write the broker refuses because another instance took over steps this one down.
 */
import { newLabelsSinceWindow, isLabeled } from '../../../core/labels.js';
import { bookRequest, expireRequests, isOutstanding } from '../../../core/ledger.js';
import { deriveSeed } from '../../../core/rng.js';
import { mergeShortlists, planMergedRequests } from '../../../core/shortlist.js';
import { encodeLedgerMessage } from '../../../messages/index.js';
import type { OutboxEntry } from '../../outbox.js';
import { encodePlannedRequest } from '../../request-message.js';
import type { Effect, Input } from '../io.js';
import { serveIfNewer } from '../serving.js';
import type { DaemonState, LoopContext } from '../state.js';
import { onElection } from './election.js';
import { isCoordinator } from './versions.js';
import type { ClusterState } from './state.js';

export function clusterMaybeRequest(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  const c = state.cluster as ClusterState;
  if (!isCoordinator(state) || c.requesting) return;
  const { selection } = ctx.config;
  expireRequests(c.book, now);
  const labels = state.labeling.labels;
  const need = selection.b - newLabelsSinceWindow(labels) - c.book.size;
  if (need <= 0) return;
  const merged = mergeShortlists(c.shortlists.values(), {
    nowMs: now,
    maxAgeMs: ctx.config.cluster.shortlistMaxAgeMs,
    exclude: (id) => isLabeled(labels, id) || isOutstanding(c.book, id, now),
  });
  if (merged.length === 0) return;
  const planned = planMergedRequests(merged, {
    b: need,
    omega: selection.omega,
    randomness: selection.randomness,
    seed: deriveSeed(selection.seed, 'select', labels.windowSeq, state.requestRound++),
    windowSeq: labels.windowSeq,
  });
  if (planned.requests.length === 0) return;
  const leaseUntilMs = now + selection.leaseMs;
  for (const r of planned.requests)
    bookRequest(c.book, {
      candidateId: r.candidateId,
      requestId: r.requestId,
      modelVersion: r.modelVersion,
      issuedAtMs: now,
      leaseUntilMs,
    });
  c.requesting = true;
  out.push(requestsWrite(c, ctx, planned, now, leaseUntilMs));
}

/**
 * The `requested` ledger entries and the labeling requests of one selection, as one write of the
 * coordinator's transaction.
 */
function requestsWrite(
  c: ClusterState,
  ctx: LoopContext,
  planned: ReturnType<typeof planMergedRequests>,
  now: number,
  leaseUntilMs: number,
): Extract<Effect, { type: 'coordinator-write' }> {
  const t = ctx.config.kafka.topics;
  const issuedAt = new Date(now).toISOString();
  const leaseExpiresAt = new Date(leaseUntilMs).toISOString();
  return {
    type: 'coordinator-write',
    term: c.election.term,
    what: 'requests',
    keys: planned.requests.map((r) => r.candidateId),
    count: planned.requests.length,
    ...(planned.requests[0] ? { version: planned.requests[0].modelVersion } : {}),
    topics: [
      {
        topic: t.ledger,
        messages: planned.requests.map((r) => ({
          key: r.candidateId,
          value: encodeLedgerMessage({
            schema: 'acft.ledger/v1',
            kind: 'requested',
            candidateId: r.candidateId,
            requestId: r.requestId,
            modelVersion: r.modelVersion,
            issuedAt,
            leaseExpiresAt,
            writer: c.instanceId,
          }),
        })),
      },
      {
        topic: t.labelingRequests,
        messages: planned.requests.map((r) => ({
          key: r.candidateId,
          value: encodePlannedRequest(r, {
            shortlistSize: planned.selection.shortlist.length,
            criterion: ctx.config.scoring.criterion,
            leaseExpiresAt,
            time: issuedAt,
          }),
        })),
      },
    ],
  };
}

/** The outbox's durable versions, written by the coordinator (one write at a time). */
export function publishAsCoordinator(
  state: DaemonState,
  entries: readonly OutboxEntry[],
  out: Effect[],
): void {
  const c = state.cluster as ClusterState;
  out.push({
    type: 'coordinator-write',
    term: c.election.term,
    what: 'versions',
    keys: entries.map((e) => e.key),
    count: entries.length,
    topics: entries.map((e) => ({ topic: e.topic, messages: [{ key: e.key, value: e.value }] })),
  });
}

export function onCoordinatorWritten(
  state: DaemonState,
  input: Extract<Input, { type: 'coordinator-written' }>,
  out: Effect[],
): void {
  const c = state.cluster as ClusterState;
  if (input.what === 'versions') {
    for (const key of input.keys) {
      state.publishedVersions.add(key);
      const model = state.servedOncePublished.get(key);
      state.servedOncePublished.delete(key);
      if (model !== undefined) serveIfNewer(state, model, out);
    }
    state.outbox = state.outbox.filter((o) => !input.keys.includes(o.entry.key));
    for (const o of state.outbox) o.sending = false;
    return;
  }
  c.requesting = false;
  out.push({ type: 'emit', event: { type: 'requests-published', count: input.count } });
  out.push({
    type: 'emit',
    event: { type: 'requests', count: input.count, version: input.version ?? state.served.version },
  });
}

export function onCoordinatorWriteFailed(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'coordinator-write-failed' }>,
  out: Effect[],
): void {
  const c = state.cluster as ClusterState;
  if (input.what === 'versions') for (const o of state.outbox) o.sending = false;
  else {
    c.requesting = false;
    for (const id of input.keys) c.book.delete(id);
  }
  if (input.fenced || input.writerLost) {
    // A newer term of this instance has a writer of its own: nothing to step down from.
    const current = c.election.owns && c.election.term === input.term;
    // A write that failed only because its term's writer was already closed (the first of its
    // writes was refused, or the term ended) says nothing new: that term's end is logged once.
    if (!input.fenced && !current) return;
    out.push({
      type: 'emit',
      event: {
        type: input.fenced ? 'coordinator-fenced' : 'coordinator-writer-lost',
        term: input.term,
        instance: c.instanceId,
        err: input.error,
      },
    });
    onElection(state, ctx, { type: 'writer-lost', term: input.term }, input.now, out);
    // The group may still give this instance the partition (kafkajs says nothing when the broker
    // fenced it without a rebalance): leaving and joining again makes a new term.
    if (current) out.push({ type: 'rejoin-election' });
  } else if (input.what === 'requests') {
    out.push({ type: 'emit', event: { type: 'publish-failed', what: 'requests', err: input.error } });
  } else {
    out.push({ type: 'emit', event: { type: 'publish-failed', what: 'version', err: input.error } });
  }
}
