/**
 * A new assignment of the main group in scale-out (src/daemon/loop/broker.ts, cluster/assignment.ts):
 * a partition kept is not rebuilt; a partition gained is; and a member that rejoined under a new id
 * (its session ended while it was frozen) takes every partition as gained, because another member
 * may have pooled, labeled and committed its messages meanwhile (the fencing test found a woken
 * instance waiting forever for candidates its successor had read).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveConfig } from '../../../src/config/index.js';
import { labelingConfigOf } from '../../../src/config/derive.js';
import { ownedPartitions, trackDone } from '../../../src/core/offsets.js';
import { onAssigned } from '../../../src/daemon/loop/broker.js';
import { emptyClusterState } from '../../../src/daemon/loop/cluster/state.js';
import type { Effect } from '../../../src/daemon/loop/io.js';
import { emptyState, type LoopContext } from '../../../src/daemon/loop/state.js';

const config = resolveConfig({});
const topics = config.kafka.topics;
const ctx = { config, labeling: labelingConfigOf(config, () => 0) } as unknown as LoopContext;
const served = { version: 'm0-000000000000', artifact: {} as never, holdoutAuc: null, publishedAtMs: 0 };
const owned = [
  { topic: topics.candidates, partition: 1 },
  { topic: topics.feedback, partition: 1 },
];

function assignedTwice(rejoined: boolean): { out: Effect[]; tracked: number } {
  const state = emptyState(served, 0, emptyClusterState('a', topics.candidates));
  onAssigned(state, ctx, { type: 'assigned', owned, rejoined: false, now: 1 }, []);
  state.offsets = trackDone(state.offsets, { topic: topics.candidates, partition: 1, offset: 7 });
  const out: Effect[] = [];
  onAssigned(state, ctx, { type: 'assigned', owned, rejoined, now: 2 }, out);
  return { out, tracked: ownedPartitions(state.offsets).length };
}

const rewinds = (out: Effect[]) => out.flatMap((e) => (e.type === 'rewind' ? [e.partitions] : []));

void describe('scale-out assignments', () => {
  void it('the same partitions again, same member: nothing is rebuilt, the offsets are kept', () => {
    const { out, tracked } = assignedTwice(false);
    assert.deepEqual(rewinds(out), []);
    assert.equal(tracked, 1);
  });

  void it('the same partitions under a new member id: every one is rebuilt from the group, offsets dropped', () => {
    const { out, tracked } = assignedTwice(true);
    assert.deepEqual(rewinds(out), [[1]]);
    assert.equal(tracked, 0, 'what it tracked before is not its to commit');
  });
});
