/**
 * The brokers as the loop sees them: their health (broker-health.ts: answers and failures as
 * evidence, a probe when quiet, outages with their length, the exit after a long one), the
 * partitions the group gives, and the group's committed offsets read back at every assignment
 * (a single instance moves a partition to the state's position where they differ).
 */
import { checkpointPositions, ownedPartitions, revoke, setCommitted } from '../../core/offsets.js';
import { resumePendingClock } from '../../core/labels.js';
import type { HealthChange } from '../broker-health.js';
import type { Effect, Input } from './io.js';
import type { DaemonState, LoopContext } from './state.js';
import { onClusterAssignment } from './cluster/assignment.js';

/** A broker answered: an outage, if one was under way, ends (reported with its length). */
export function brokerAnswered(state: DaemonState, now: number, out: Effect[]): void {
  report(state.broker.answered(now), out);
}

/** A broker request failed: an outage starts, unless one is under way. */
export function brokerFailed(state: DaemonState, cause: string, now: number, out: Effect[]): void {
  if (state.draining) return;
  report(state.broker.failed(now, cause), out);
}

function report(change: HealthChange, out: Effect[]): void {
  if (change === null) return;
  out.push({
    type: 'emit',
    event:
      change.type === 'outage-started'
        ? { type: 'broker-outage', cause: change.cause }
        : { type: 'broker-outage-ended', durationMs: change.durationMs },
  });
}

/** On the clock: a probe when no broker answered for a while, and the exit after a long outage. */
export function watchBrokers(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  if (!state.probing && state.broker.needsProbe(now)) {
    state.probing = true;
    out.push({ type: 'probe-brokers' });
  }
  const since = state.broker.downSince;
  if (since === null || now - since <= ctx.config.kafka.outageExitAfterMs) return;
  const error = new Error(
    `Kafka brokers unreachable for more than ${ctx.config.kafka.outageExitAfterMs} ms: exiting so that the supervisor restarts acft`,
  );
  out.push({ type: 'emit', event: { type: 'outage', err: error } });
  out.push({ type: 'fatal', error });
}

/** The probe's outcome (or any other answer or failure reported by an adapter). */
export function onBrokerInput(
  state: DaemonState,
  input: Extract<Input, { type: 'broker-answered' | 'broker-failed' }>,
  out: Effect[],
): void {
  state.probing = false;
  if (input.type === 'broker-answered') brokerAnswered(state, input.now, out);
  else brokerFailed(state, input.cause, input.now, out);
}

/** The group gave this instance its partitions: forget the others, restart the clocks. */
export function onAssigned(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'assigned' }>,
  out: Effect[],
): void {
  const owned = new Set(input.owned.map((tp) => `${tp.topic}:${tp.partition}`));
  // In scale-out, a member that rejoined under a new id may find partitions it owned before that
  // another member read and committed meanwhile: it takes all of them as new.
  const fresh = input.rejoined && state.cluster !== undefined;
  const lost = ownedPartitions(state.offsets).filter(
    (tp) => fresh || !owned.has(`${tp.topic}:${tp.partition}`),
  );
  if (lost.length > 0) state.offsets = revoke(state.offsets, lost);
  resumePendingClock(state.labeling.labels, input.now);
  state.joined = true;
  brokerAnswered(state, input.now, out);
  out.push({ type: 'emit', event: { type: 'partitions-assigned', partitions: [...owned] } });
  if (state.cluster) onClusterAssignment(state, ctx, input, out);
  else if (checkpointPositions(state.offsets).some((p) => p.position !== null))
    out.push({ type: 'read-group-offsets' });
}

/**
 * Single instance: the state, not the group's commit, says where each partition's effects end. A
 * partition whose commit differs from the state's position is moved to that position (a commit
 * past it would skip messages the state never saw; one behind it is read again for nothing), and
 * its commit is set to what the broker holds, so that the next checkpoint commits the position
 * whatever an earlier run believed it had committed.
 */
export function onGroupOffsets(
  state: DaemonState,
  input: Extract<Input, { type: 'group-offsets' }>,
  out: Effect[],
): void {
  const seeks = [];
  for (const p of checkpointPositions(state.offsets)) {
    if (p.position === null) continue;
    const read = input.offsets.find((o) => o.topic === p.topic && o.partition === p.partition);
    if (read === undefined) continue;
    state.offsets = setCommitted(state.offsets, [read]);
    if (read.committed === p.position) continue;
    seeks.push({ topic: p.topic, partition: p.partition, offset: p.position });
    out.push({
      type: 'emit',
      event: {
        type: 'offsets-reconciled',
        topic: p.topic,
        partition: p.partition,
        committed: read.committed,
        position: p.position,
      },
    });
  }
  if (seeks.length > 0) out.push({ type: 'seek', offsets: seeks });
}

/**
 * The consumer crashed: the brokers' doing (an outage begins) or not; one kafkajs will not restart
 * (a non-retriable error) would leave the daemon consuming nothing, so it exits for its supervisor.
 */
export function onConsumerCrashed(
  state: DaemonState,
  input: Extract<Input, { type: 'consumer-crashed' }>,
  out: Effect[],
): void {
  out.push({ type: 'emit', event: { type: 'consumer-crash', err: input.error, restart: input.restart } });
  if (input.brokers) brokerFailed(state, 'consumer crashed', input.now, out);
  if (!input.restart && !state.draining)
    out.push({
      type: 'fatal',
      error: new Error('the Kafka consumer stopped after a non-retriable error', { cause: input.error }),
    });
}
