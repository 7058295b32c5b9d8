/**
 * The ledger in the loop (scale-out): every instance reads it in full, so that L is the same
 * everywhere and every instance knows the outstanding requests; each writes a `labeled` entry
 * (votes, label, pixels) when feedback it owns changes a candidate's votes, holding that feedback's
 * offset until the broker confirms the entry (a failed write is tried again on the clock).
 */
import { applyLabeledEntry, bookRequest, labeledEntry } from '../../../core/ledger.js';
import { isLabeled } from '../../../core/labels.js';
import { done, track, type PartitionOffset } from '../../../core/offsets.js';
import { getCandidate, poolReducer } from '../../../core/pool.js';
import { encodeLedgerMessage, type LabeledLedgerMessage } from '../../../messages/index.js';
import { decodeStored, encodeStored } from '../../stored-candidate.js';
import { applyLabelingEffects } from '../effects.js';
import type { OutMessage } from '../../ports.js';
import type { Effect, Input } from '../io.js';
import type { DaemonState, LoopContext } from '../state.js';
import type { ClusterState } from './state.js';

type Of<K extends Input['type']> = Extract<Input, { type: K }>;

export function onLedgerEntry(
  state: DaemonState,
  ctx: LoopContext,
  input: Of<'ledger-entry'>,
  out: Effect[],
): void {
  const c = state.cluster as ClusterState;
  const m = input.message;
  if (m.kind === 'labeled') {
    c.book.delete(m.candidateId);
    const effects = applyLabeledEntry(
      state.labeling,
      {
        candidateId: m.candidateId,
        label: m.label,
        heldOut: m.heldOut,
        votes: m.votes,
        source: m.source,
        payload: decodeStored(m.candidate as never),
      },
      input.now,
      ctx.labeling,
      c.late,
    );
    applyLabelingEffects(state, ctx, effects, input.now, out, true);
    return;
  }
  if (isLabeled(state.labeling.labels, m.candidateId)) return;
  bookRequest(c.book, {
    candidateId: m.candidateId,
    requestId: m.requestId,
    modelVersion: m.modelVersion,
    issuedAtMs: Date.parse(m.issuedAt),
    leaseUntilMs: Date.parse(m.leaseExpiresAt),
  });
  markRequested(state, ctx, m.candidateId, input.now);
}

/** Marks an owned, pooled candidate requested when the ledger holds a live request on it. */
export function markRequested(state: DaemonState, ctx: LoopContext, candidateId: string, now: number): void {
  const c = state.cluster as ClusterState;
  const entry = c.book.get(candidateId);
  const pooled = getCandidate(state.labeling.pool, candidateId);
  if (entry === undefined || entry.leaseUntilMs <= now || pooled?.state !== 'pooled') return;
  const step = poolReducer(
    state.labeling.pool,
    { type: 'requests-issued', now, requests: [{ candidateId, requestId: entry.requestId }] },
    ctx.labeling.pool,
  );
  // Label latency counts from the request's time.
  if (step.effects.some((e) => e.type === 'requested')) state.requestTimes.set(candidateId, entry.issuedAtMs);
}

/**
 * Writes the `labeled` entries not written yet (one write at a time); `hold` is a message whose
 * offset waits for them. Returns whether it is held.
 */
export function writeLedger(state: DaemonState, now: number, out: Effect[], hold?: PartitionOffset): boolean {
  const c = state.cluster as ClusterState;
  if (hold !== undefined) {
    state.offsets = track(state.offsets, hold);
    c.holds.push(hold);
  }
  if (c.ledgerWriting || c.unwritten.size === 0) return hold !== undefined;
  const time = new Date(now).toISOString();
  const ids: string[] = [];
  const messages: OutMessage[] = [];
  for (const id of c.unwritten) {
    const entry = labeledEntry(state.labeling.labels, id);
    const print = entry === undefined ? undefined : fingerprint(entry);
    if (entry === undefined || print === c.written.get(id)) {
      // Nothing (new) to write: an entry equal to this one is written or in flight.
      c.unwritten.delete(id);
      continue;
    }
    c.written.set(id, print as string);
    ids.push(id);
    const value: LabeledLedgerMessage = {
      schema: 'acft.ledger/v1',
      kind: 'labeled',
      candidateId: id,
      label: entry.label,
      heldOut: entry.heldOut,
      votes: [...entry.votes],
      source: { ...entry.source },
      candidate: encodeStored(entry.payload) as LabeledLedgerMessage['candidate'],
      writer: c.instanceId,
      time,
    };
    messages.push({ key: id, value: encodeLedgerMessage(value) });
  }
  if (messages.length === 0) {
    // Every held message's labels are on the ledger already.
    for (const h of c.holds.splice(0)) state.offsets = done(state.offsets, h);
    return false;
  }
  c.ledgerWriting = true;
  out.push({ type: 'write-ledger', messages, ids, holds: c.holds.splice(0) });
  return hold !== undefined;
}

/** Label, held-out and votes of an entry: two entries with the same fingerprint say the same. */
function fingerprint(entry: NonNullable<ReturnType<typeof labeledEntry>>): string {
  return JSON.stringify([entry.label, entry.heldOut, entry.votes]);
}

export function onLedgerWritten(state: DaemonState, input: Of<'ledger-written'>, out: Effect[]): void {
  const c = state.cluster as ClusterState;
  c.ledgerWriting = false;
  for (const id of input.ids) {
    // A candidate whose votes changed while its entry was in flight is written again.
    const entry = labeledEntry(state.labeling.labels, id);
    if (entry === undefined || fingerprint(entry) === c.written.get(id)) c.unwritten.delete(id);
  }
  for (const h of input.holds) state.offsets = done(state.offsets, h);
  if (c.unwritten.size > 0) writeLedger(state, input.now, out);
}

export function onLedgerWriteFailed(
  state: DaemonState,
  input: Of<'ledger-write-failed'>,
  out: Effect[],
): void {
  const c = state.cluster as ClusterState;
  c.ledgerWriting = false;
  c.holds.push(...input.holds);
  // Not written: forget what was in flight, so that the retry writes it.
  for (const id of input.ids) c.written.delete(id);
  out.push({ type: 'emit', event: { type: 'ledger-write-failed', err: input.error } });
  // The entries stay unwritten, their messages' offsets held: written again on the clock.
}
