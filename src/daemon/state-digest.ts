/**
 * A short summary of a checkpoint's state (what must come back after a restart): the labeled set
 * with its labels and hold-out split, the pool, the outstanding requests, the window count. The
 * daemon logs it when it restores; fault tests compute it from the checkpoint file they saw before
 * the crash and compare.
 */
import { createHash } from 'node:crypto';
import type { CheckpointSnapshot } from '../core/checkpoint-state.js';

export interface StateDigest {
  readonly labeled: number;
  readonly holdout: number;
  readonly pool: number;
  readonly outstanding: number;
  readonly windowSeq: number;
  /** sha256 (16 hex digits) of the sorted (id, label, held out), pool ids and (id, request id). */
  readonly sha: string;
}

export function stateDigest(snapshot: Pick<CheckpointSnapshot, 'pool' | 'labels'>): StateDigest {
  const labeled = snapshot.labels.records.map((r) => `${r.id}:${r.label}:${r.heldOut ? 'h' : 't'}`).sort();
  const pool = snapshot.pool.candidates.map((c) => c.id).sort();
  const outstanding = snapshot.pool.candidates
    .filter((c) => c.request !== undefined)
    .map((c) => `${c.id}:${c.request?.requestId}`)
    .sort();
  const sha = createHash('sha256')
    .update(JSON.stringify([labeled, pool, outstanding, snapshot.labels.windowSeq]))
    .digest('hex')
    .slice(0, 16);
  return {
    labeled: labeled.length,
    holdout: snapshot.labels.records.filter((r) => r.heldOut).length,
    pool: pool.length,
    outstanding: outstanding.length,
    windowSeq: snapshot.labels.windowSeq,
    sha,
  };
}
