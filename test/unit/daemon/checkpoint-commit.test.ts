import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkpointPositions,
  done,
  emptyOffsets,
  markCommitted,
  track,
  trackDone,
} from '../../../src/core/offsets.js';
import type { PartitionOffset } from '../../../src/core/offsets.js';
import { checkpointThenCommit } from '../../../src/daemon/checkpoint-commit.js';

const m = (offset: number, partition = 0) => ({ topic: 'candidates', partition, offset });

void describe('checkpointThenCommit', () => {
  void it('commits what the written snapshot holds while the intake moves on during the write', async () => {
    const live = emptyOffsets();
    for (let o = 0; o < 5; o++) trackDone(live, m(o));
    const snapshot = { offsets: checkpointPositions(live) };
    const order: string[] = [];
    const committed: PartitionOffset[][] = [];
    await checkpointThenCommit(snapshot, {
      write: async () => {
        order.push('write');
        // The event loop turns while the file is written: more messages are taken.
        await new Promise((r) => setImmediate(r));
        for (let o = 5; o < 50; o++) trackDone(live, m(o));
      },
      written: () => order.push('written'),
      commit: (offsets) => {
        order.push('commit');
        committed.push([...offsets]);
        markCommitted(live, offsets);
        return Promise.resolve();
      },
      live: () => live,
    });
    assert.deepEqual(order, ['write', 'written', 'commit']);
    assert.deepEqual(committed, [[m(5)]]);
  });

  void it('commits nothing when the write fails', async () => {
    const live = emptyOffsets();
    trackDone(live, m(0));
    let commits = 0;
    await assert.rejects(
      checkpointThenCommit(
        { offsets: checkpointPositions(live) },
        {
          write: () => Promise.reject(new Error('ENOSPC')),
          commit: () => {
            commits++;
            return Promise.resolve();
          },
          live: () => live,
        },
      ),
      /ENOSPC/,
    );
    assert.equal(commits, 0);
  });

  void it('commits no further than a message pending at the snapshot, done during the write', async () => {
    const live = emptyOffsets();
    track(live, m(0));
    trackDone(live, m(1));
    const snapshot = { offsets: checkpointPositions(live) };
    let committed: readonly PartitionOffset[] = [];
    await checkpointThenCommit(snapshot, {
      write: () => {
        done(live, m(0));
        return Promise.resolve();
      },
      commit: (offsets) => {
        committed = offsets;
        return Promise.resolve();
      },
      live: () => live,
    });
    // The snapshot had 0 pending: its position is 0, nothing past the (absent) commit to send.
    assert.deepEqual(committed, [m(0)]);
  });
});
