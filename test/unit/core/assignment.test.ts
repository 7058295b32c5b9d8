import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { coPartitionedAssignment, coordinationOwner } from '../../../src/core/assignment.js';

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

void describe('coordination owner', () => {
  void it('keeps the partition with a holder that is still the member it was', () => {
    const owner = coordinationOwner([
      { memberId: 'a-1', heldAs: null },
      { memberId: 'z-1', heldAs: 'z-1' },
    ]);
    assert.equal(owner, 'z-1', 'a newcomer sorting first does not take the role');
  });

  void it('ignores the hold of a member dropped from the group and back under a new id', () => {
    const owner = coordinationOwner([
      { memberId: 'a-2', heldAs: 'a-1' },
      { memberId: 'b-1', heldAs: 'b-1' },
    ]);
    assert.equal(owner, 'b-1');
    assert.equal(
      coordinationOwner([
        { memberId: 'c-2', heldAs: 'c-1' },
        { memberId: 'b-2', heldAs: null },
      ]),
      'b-2',
    );
  });

  void it('gives the partition to exactly one member, whatever the order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.option(fc.string({ minLength: 1, maxLength: 4 })), { minLength: 6, maxLength: 6 }),
        (ids, holds) => {
          const members = ids.map((memberId, i) => ({ memberId, heldAs: holds[i] ?? null }));
          const owner = coordinationOwner(members);
          assert.ok(owner !== undefined && ids.includes(owner));
          assert.equal(coordinationOwner([...members].reverse()), owner);
          const holders = members.filter((m) => m.heldAs === m.memberId);
          if (holders.length > 0) assert.ok(holders.some((m) => m.memberId === owner));
        },
      ),
    );
  });
});
