import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { safeInstanceId } from '../../../src/daemon/adapters/kafka-cluster.js';
import { capCommits } from '../../../src/daemon/loop/cluster/versions.js';

void describe('cluster helpers', () => {
  void it('holds feedback commits below the earliest feedback still waiting for its candidate', () => {
    const commits = [
      { topic: 'f', partition: 0, offset: 50 },
      { topic: 'f', partition: 1, offset: 9 },
      { topic: 'c', partition: 0, offset: 70 },
    ];
    const waiting = [
      { topic: 'f', partition: 0, offset: 30 },
      { topic: 'f', partition: 0, offset: 12 },
      { topic: 'f', partition: 1, offset: 20 },
    ];
    assert.deepEqual(capCommits(commits, waiting), [
      { topic: 'f', partition: 0, offset: 12 },
      { topic: 'f', partition: 1, offset: 9 },
      { topic: 'c', partition: 0, offset: 70 },
    ]);
    assert.deepEqual(capCommits(commits, []), commits);
  });

  void it('makes an opaque id of any instance name', () => {
    assert.equal(safeInstanceId('host.example-12'), 'host.example-12');
    assert.equal(safeInstanceId('héllo world/1'), 'h-llo-world-1');
    assert.equal(safeInstanceId(''), 'instance');
    assert.equal(safeInstanceId('x'.repeat(300)).length, 128);
  });
});
