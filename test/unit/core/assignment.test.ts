import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { coPartitionedAssignment } from '../../../src/core/assignment.js';

void describe('co-partitioned assignment', () => {
  void it('gives partition p of every topic to one member', () => {
    const a = coPartitionedAssignment(['m-b', 'm-a'], { candidates: [0, 1, 2], feedback: [2, 1, 0] });
    assert.deepEqual(a, {
      'm-a': { candidates: [0, 2], feedback: [0, 2] },
      'm-b': { candidates: [1], feedback: [1] },
    });
  });

  void it('assigns every partition exactly once, the same whatever the member order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 12 }),
        (members, n) => {
          const partitions = Array.from({ length: n }, (_, p) => p);
          const a = coPartitionedAssignment(members, { c: partitions, f: partitions });
          assert.deepEqual(
            a,
            coPartitionedAssignment([...members].reverse(), { c: partitions, f: partitions }),
          );
          const owners = new Map<number, string>();
          for (const [m, topics] of Object.entries(a)) {
            for (const p of topics['c'] ?? []) owners.set(p, m);
            assert.deepEqual(topics['c'] ?? [], topics['f'] ?? []);
          }
          assert.equal(owners.size, n);
          const counts = Object.values(a).map((t) => t['c']?.length ?? 0);
          assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, 'balanced');
        },
      ),
    );
  });
});
