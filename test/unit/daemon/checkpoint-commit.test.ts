/**
 * The commit rule in the loop's step (src/daemon/loop/durability.ts): a checkpoint records the
 * positions of its snapshot; once it is written, exactly those positions are committed, never the
 * live offsets, which moved on while the file was written (issue 14: candidates lost under
 * SIGKILL). A failed write commits nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveConfig } from '../../../src/config/index.js';
import { labelingConfigOf } from '../../../src/config/derive.js';
import { done, track, trackDone } from '../../../src/core/offsets.js';
import {
  onCommitFailed,
  onCheckpointFailed,
  onCheckpointWritten,
  requestCheckpoint,
} from '../../../src/daemon/loop/durability.js';
import type { Effect } from '../../../src/daemon/loop/io.js';
import { emptyState, type DaemonState, type LoopContext } from '../../../src/daemon/loop/state.js';

const m = (offset: number, partition = 0) => ({ topic: 'candidates', partition, offset });
const config = resolveConfig({});
const served = { version: 'm0-000000000000', artifact: {} as never, holdoutAuc: null, publishedAtMs: 0 };
const ctx = {
  config,
  labeling: labelingConfigOf(config, () => 0),
  m0: served,
  tickMs: 500,
} as unknown as LoopContext;

function commits(out: Effect[]): unknown[] {
  return out.flatMap((e) => (e.type === 'commit' ? [e.offsets] : []));
}

function checkpoint(state: DaemonState): Effect[] {
  const out: Effect[] = [];
  requestCheckpoint(state, ctx, 1_000, out);
  assert.equal(out.filter((e) => e.type === 'checkpoint').length, 1, 'a checkpoint is written');
  assert.deepEqual(commits(out), [], 'nothing is committed before it is written');
  return out;
}

/** The checkpoint's file is written: what the step does next. */
function written(state: DaemonState): Effect[] {
  const out: Effect[] = [];
  onCheckpointWritten(
    state,
    ctx,
    { type: 'checkpoint-written', durable: [], seconds: 0.01, now: 1_100 },
    out,
  );
  return out;
}

void describe('checkpoint then commit (the step)', () => {
  void it('commits what the written snapshot holds while the intake moved on during the write', () => {
    const state = emptyState(served, 0);
    for (let o = 0; o < 5; o++) state.offsets = trackDone(state.offsets, m(o));
    checkpoint(state);
    // The event loop turns while the file is written: more messages are taken.
    for (let o = 5; o < 50; o++) state.offsets = trackDone(state.offsets, m(o));
    const out = written(state);
    assert.deepEqual(commits(out), [[m(5)]]);
  });

  void it('commits nothing when the write fails', () => {
    const state = emptyState(served, 0);
    state.offsets = trackDone(state.offsets, m(0));
    checkpoint(state);
    const out: Effect[] = [];
    onCheckpointFailed(
      state,
      ctx,
      { type: 'checkpoint-failed', error: new Error('ENOSPC'), now: 1_100 },
      1_100,
      out,
    );
    assert.deepEqual(commits(out), []);
  });

  void it('commits no further than a message pending at the snapshot, done during the write', () => {
    const state = emptyState(served, 0);
    state.offsets = track(state.offsets, m(0));
    state.offsets = trackDone(state.offsets, m(1));
    checkpoint(state);
    state.offsets = done(state.offsets, m(0));
    const out = written(state);
    // The snapshot had 0 pending: its position is 0 (not 2, though 0 is done by now).
    assert.deepEqual(commits(out), [[m(0)]]);
  });

  void it('a commit the group refused (the session ended) is a warning, not a failure of the brokers', () => {
    const state = emptyState(served, 0);
    state.offsets = trackDone(state.offsets, m(0));
    checkpoint(state);
    written(state);
    const events = (refused: boolean): string[] => {
      const out: Effect[] = [];
      onCommitFailed(
        state,
        ctx,
        { type: 'commit-failed', error: new Error('x'), refused, now: 1_200 },
        1_200,
        out,
      );
      return out.flatMap((e) => (e.type === 'emit' ? [e.event.type] : []));
    };
    const refused = events(true);
    assert.ok(refused.includes('commit-refused'));
    assert.ok(!refused.includes('checkpoint-failed'));
    assert.ok(!refused.includes('broker-outage'));
    assert.ok(events(false).includes('checkpoint-failed'));
  });
});
