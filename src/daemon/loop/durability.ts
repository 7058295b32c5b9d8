/**
 * What makes the loop's progress durable, in order: a checkpoint (the state's snapshot with the
 * outbox, the unconfirmed requests, the unsent dead letters and the M0 it was built on), then the
 * commit of exactly the positions that snapshot records (core/offsets.ts: checkpointCommits), then the model
 * versions that checkpoint holds are published. One checkpoint at a time; a window's end asks for
 * one at once. Scale-out writes no checkpoint: its progress is durable once a message is
 * processed (labels are in the ledger), and it commits what is processed, below any feedback still
 * waiting for its candidate.
 */
import { checkpointCommits, committable, markCommitted } from '../../core/offsets.js';
import { toSnapshot } from '../../core/checkpoint-state.js';
import { withDeadLetters } from '../dead-letters.js';
import { withLineage } from '../lineage.js';
import { withOutbox, withUnconfirmedRequests } from '../outbox.js';
import { encodeStored } from '../stored-candidate.js';
import { brokerAnswered, brokerFailed } from './broker.js';
import { publishAsCoordinator } from './cluster/requests.js';
import { clusterCommits, isCoordinator } from './cluster/versions.js';
import type { Effect, Input } from './io.js';
import type { DaemonState, LoopContext } from './state.js';

/** On the clock: a checkpoint when one is due and none is in flight. */
export function checkpointIfDue(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  const due = now - state.checkpoint.lastAtMs >= ctx.config.state.checkpointIntervalMs;
  if ((due || state.checkpoint.wanted) && !state.checkpoint.inFlight) startCheckpoint(state, ctx, now, out);
}

/** A checkpoint as soon as possible (after the one in flight, if any). */
export function requestCheckpoint(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  state.checkpoint.wanted = true;
  if (!state.checkpoint.inFlight) startCheckpoint(state, ctx, now, out);
}

function startCheckpoint(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  state.checkpoint.wanted = false;
  state.checkpoint.lastAtMs = now;
  if (state.cluster) {
    // The outbox is durable as it is: the state is rebuilt from the topics.
    for (const o of state.outbox) o.durable = true;
    const commits = clusterCommits(state, committable(state.offsets));
    if (commits.length > 0) {
      state.checkpoint.inFlight = true;
      out.push({ type: 'commit', offsets: commits });
    }
    publishOutbox(state, ctx, out);
    return;
  }
  const snapshot = toSnapshot(
    {
      pool: state.labeling.pool,
      labels: state.labeling.labels,
      offsets: state.offsets,
      servedVersion: state.served.version,
    },
    { encodePayload: encodeStored },
  );
  const outbox = state.outbox.map((o) => o.entry);
  const file = withLineage(
    withDeadLetters(
      withUnconfirmedRequests(withOutbox(snapshot, outbox), state.unconfirmedRequests.values()),
      state.deadLetters,
    ),
    ctx.m0.version,
  );
  state.checkpoint.inFlight = true;
  state.checkpoint.positions = snapshot.offsets;
  out.push({ type: 'checkpoint', file, outbox });
}

export function onCheckpointWritten(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'checkpoint-written' }>,
  out: Effect[],
): void {
  for (const o of state.outbox) if (input.durable.includes(o.entry)) o.durable = true;
  out.push({ type: 'emit', event: { type: 'checkpoint', seconds: input.seconds } });
  // Exactly what the written snapshot records, of partitions still owned, past the last commit.
  const commits = checkpointCommits(state.checkpoint.positions, state.offsets);
  state.checkpoint.positions = [];
  if (commits.length > 0) out.push({ type: 'commit', offsets: commits });
  else checkpointDone(state, ctx, input.now, out);
  publishOutbox(state, ctx, out);
}

export function onCheckpointFailed(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'checkpoint-failed' }>,
  now: number,
  out: Effect[],
): void {
  state.checkpoint.positions = [];
  out.push({ type: 'emit', event: { type: 'checkpoint-failed', err: input.error } });
  checkpointDone(state, ctx, now, out);
}

export function onCommitted(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'committed' }>,
  now: number,
  out: Effect[],
): void {
  state.offsets = markCommitted(state.offsets, input.offsets);
  out.push({ type: 'emit', event: { type: 'offsets-committed', offsets: [...input.offsets] } });
  brokerAnswered(state, now, out);
  checkpointDone(state, ctx, now, out);
}

export function onCommitFailed(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'commit-failed' }>,
  now: number,
  out: Effect[],
): void {
  if (input.refused) {
    // The group refused it (this member's session ended): the brokers answered.
    out.push({ type: 'emit', event: { type: 'commit-refused', err: input.error } });
    brokerAnswered(state, now, out);
  } else {
    out.push({ type: 'emit', event: { type: 'checkpoint-failed', err: input.error } });
    brokerFailed(state, 'offset commit failed', now, out);
  }
  checkpointDone(state, ctx, now, out);
}

/** The checkpoint (and its commit) ended: the next one, if one was asked for meanwhile. */
function checkpointDone(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  state.checkpoint.inFlight = false;
  if (state.checkpoint.wanted) startCheckpoint(state, ctx, now, out);
  if (state.draining && !state.checkpoint.inFlight) out.push({ type: 'drained' });
}

/** Whether a checkpoint is written or committing now. */
export function checkpointInFlight(state: DaemonState): boolean {
  return state.checkpoint.inFlight;
}

/**
 * Publishes the outbox's durable messages whose versions are not on their topic yet (one send at
 * a time). Scale-out: a coordinator that stepped down leaves the version to its successor, whose
 * retried window derives the same version id and reuses the stored artifact.
 */
export function publishOutbox(state: DaemonState, _ctx: LoopContext, out: Effect[]): void {
  if (state.outbox.some((o) => o.sending)) return;
  state.outbox = state.outbox.filter(
    (o) => !(o.durable && (state.publishedVersions.has(o.entry.key) || !isCoordinator(state))),
  );
  const ready = state.outbox.filter((o) => o.durable);
  if (ready.length === 0) return;
  for (const o of ready) o.sending = true;
  // Scale-out: in the coordinator's transaction, refused if another instance took over.
  if (state.cluster)
    publishAsCoordinator(
      state,
      ready.map((o) => o.entry),
      out,
    );
  else out.push({ type: 'publish-versions', entries: ready.map((o) => o.entry) });
}

export function onVersionsPublished(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'versions-published' }>,
  now: number,
  out: Effect[],
): void {
  for (const key of input.keys) state.publishedVersions.add(key);
  state.outbox = state.outbox.filter((o) => !input.keys.includes(o.entry.key));
  // A send that stopped part-way reports what it sent: the rest is sent again.
  for (const o of state.outbox) o.sending = false;
  brokerAnswered(state, now, out);
  publishOutbox(state, ctx, out);
}

export function onVersionsFailed(
  state: DaemonState,
  input: Extract<Input, { type: 'versions-failed' }>,
  now: number,
  out: Effect[],
): void {
  for (const o of state.outbox) o.sending = false;
  out.push({ type: 'emit', event: { type: 'publish-failed', what: 'version', err: input.error } });
  brokerFailed(state, 'version publication failed', now, out);
}
