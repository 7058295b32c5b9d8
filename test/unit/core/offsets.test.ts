import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  checkpointCommits,
  checkpointPositions,
  committable,
  done,
  emptyOffsets,
  inFlightCount,
  InvalidOffsetError,
  markCommitted,
  ownedPartitions,
  restoreOffsets,
  revoke,
  setCommitted,
  track,
  trackDone,
  type OffsetsState,
} from '../../../src/core/offsets.js';

const m = (offset: number, partition = 0, topic = 'candidates') => ({ topic, partition, offset });

function trackAll(s: OffsetsState, offsets: number[], partition = 0): OffsetsState {
  for (const o of offsets) track(s, m(o, partition));
  return s;
}

void describe('offset tracking', () => {
  void it('commits up to the first unfinished message, with out-of-order completion', () => {
    const s = trackAll(emptyOffsets(), [10, 11, 12, 13]);
    assert.deepEqual(committable(s), []);
    done(s, m(12));
    assert.deepEqual(committable(s), [], '10 is not done: nothing can be committed');
    done(s, m(10));
    assert.deepEqual(committable(s), [m(11)]);
    done(s, m(11));
    assert.deepEqual(committable(s), [m(13)]);
    done(s, m(13));
    assert.deepEqual(committable(s), [m(14)]);
    assert.equal(inFlightCount(s), 0);
  });

  void it('handles gaps in offsets (compaction, transaction markers)', () => {
    const s = trackAll(emptyOffsets(), [5, 9, 20]);
    done(s, m(5));
    done(s, m(20));
    assert.deepEqual(committable(s), [m(9)]);
    done(s, m(9));
    assert.deepEqual(committable(s), [m(21)]);
  });

  void it('lists a partition only when its offset moved past the last commit', () => {
    const s = trackAll(emptyOffsets(), [0, 1]);
    done(s, m(0));
    const c = committable(s);
    assert.deepEqual(c, [m(1)]);
    markCommitted(s, c);
    assert.deepEqual(committable(s), []);
    done(s, m(1));
    assert.deepEqual(committable(s), [m(2)]);
    // A stale acknowledgement never moves the commit back.
    markCommitted(s, [m(0)]);
    assert.equal(s.partitions.values().next().value?.committed, 1);
  });

  void it('tracks partitions independently', () => {
    const s = emptyOffsets();
    trackAll(s, [0, 1], 0);
    trackAll(s, [7], 1);
    track(s, m(3, 0, 'feedback'));
    done(s, m(0, 0));
    done(s, m(7, 1));
    assert.deepEqual(committable(s), [m(1, 0), m(8, 1)]);
    assert.equal(ownedPartitions(s).length, 3);
    assert.equal(inFlightCount(s, { topic: 'candidates', partition: 0 }), 1);
  });

  void it('never commits a revoked partition, and ignores late completions for it', () => {
    const s = trackAll(emptyOffsets(), [0, 1, 2]);
    done(s, m(0));
    revoke(s, [{ topic: 'candidates', partition: 0 }]);
    assert.deepEqual(committable(s), []);
    done(s, m(1));
    markCommitted(s, [m(2)]);
    assert.deepEqual(committable(s), []);
    assert.deepEqual(ownedPartitions(s), []);
    // Owned again later: starts afresh from what it is given.
    track(s, m(50));
    done(s, m(50));
    assert.deepEqual(committable(s), [m(51)]);
  });

  void it('a redelivered message is pending again and holds the commit back', () => {
    const s = trackAll(emptyOffsets(), [0, 1, 2]);
    done(s, m(0));
    done(s, m(1));
    track(s, m(1));
    assert.deepEqual(committable(s), [m(1)]);
    done(s, m(1));
    assert.deepEqual(committable(s), [m(2)]);
  });

  void it('refuses offsets that are not non-negative safe integers', () => {
    for (const bad of [-1, 1.5, NaN, 2 ** 53]) {
      assert.throws(
        () => track(emptyOffsets(), m(bad)),
        (e: unknown) => e instanceof InvalidOffsetError && e.code === 'INVALID_OFFSET',
      );
    }
  });

  void it('checkpoint positions: where the state’s effects end, and back', () => {
    const s = trackAll(emptyOffsets(), [10, 11, 12]);
    trackAll(s, [4], 1);
    done(s, m(10));
    done(s, m(12));
    markCommitted(s, [m(3, 1)]);
    const positions = checkpointPositions(s);
    assert.deepEqual(positions, [
      { topic: 'candidates', partition: 0, position: 11, committed: null },
      { topic: 'candidates', partition: 1, position: 4, committed: 3 },
    ]);
    const r = restoreOffsets(positions);
    assert.deepEqual(checkpointPositions(r), positions);
    // Partition 1's checkpoint is past its last commit (3, say a commit that failed in an outage):
    // that position is committed at once, not only once a message past it is done. Partition 0
    // was never committed by this owner: nothing is known of Kafka's offset, nothing is committed.
    assert.deepEqual(committable(r), [m(4, 1)]);
    markCommitted(r, [m(4, 1)]);
    assert.deepEqual(committable(r), []);
    // Consumption resumes at the position.
    track(r, m(11));
    done(r, m(11));
    assert.deepEqual(committable(r), [m(12)]);
  });

  void it('compacts a long run of completed offsets', () => {
    const s = emptyOffsets();
    for (let o = 0; o < 50_000; o++) {
      track(s, m(o));
      if (o >= 3) done(s, m(o - 3));
    }
    const t = s.partitions.values().next().value;
    assert.ok(t !== undefined && t.order.length - t.head === 3);
    assert.ok(t.order.length < 5_000);
    assert.deepEqual(committable(s), [m(49_997)]);
  });
});

void describe('offset tracking properties', () => {
  type Op =
    | { kind: 'deliver'; partition: number; gap: number }
    | { kind: 'finish'; partition: number; pick: number }
    | { kind: 'processed'; partition: number; gap: number }
    | { kind: 'redelivered'; partition: number; pick: number }
    | { kind: 'commit' }
    | { kind: 'revoke'; partition: number };
  const partition = fc.integer({ min: 0, max: 2 });
  /** A new offset (`gap` past the last one) or one of the unfinished ones (`pick`), on a partition. */
  const onPartition = <K extends Op['kind']>(kind: K, which: 'gap' | 'pick') =>
    fc.record({
      kind: fc.constant(kind),
      partition,
      [which]: which === 'gap' ? fc.integer({ min: 1, max: 3 }) : fc.nat(),
    }) as unknown as fc.Arbitrary<Extract<Op, { kind: K }>>;
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: onPartition('deliver', 'gap') },
    { weight: 4, arbitrary: onPartition('finish', 'pick') },
    { weight: 3, arbitrary: onPartition('processed', 'gap') },
    { weight: 1, arbitrary: onPartition('redelivered', 'pick') },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('commit' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('revoke' as const), partition }) },
  );

  void it('random interleavings never make an offset committable past an unfinished message', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 120 }), (ops) => {
        const s = emptyOffsets();
        // The model: per partition, the next offset to deliver, the unfinished ones, the delivered ones.
        const next = [0, 0, 0];
        const unfinished = [new Set<number>(), new Set<number>(), new Set<number>()];
        const delivered = [new Set<number>(), new Set<number>(), new Set<number>()];
        const lastCommit: (number | null)[] = [null, null, null];
        for (const op of ops) {
          if (op.kind === 'deliver') {
            const o = (next[op.partition] as number) + op.gap - 1;
            next[op.partition] = o + 1;
            track(s, m(o, op.partition));
            unfinished[op.partition]?.add(o);
            delivered[op.partition]?.add(o);
          } else if (op.kind === 'processed') {
            // Delivered and finished in one step.
            const o = (next[op.partition] as number) + op.gap - 1;
            next[op.partition] = o + 1;
            trackDone(s, m(o, op.partition));
            delivered[op.partition]?.add(o);
          } else if (op.kind === 'redelivered') {
            // A message still in flight delivered again, and this time finished at once.
            const open = [...(unfinished[op.partition] as Set<number>)];
            const o = open[op.pick % Math.max(1, open.length)];
            if (o === undefined) continue;
            trackDone(s, m(o, op.partition));
            unfinished[op.partition]?.delete(o);
          } else if (op.kind === 'finish') {
            const open = [...(unfinished[op.partition] as Set<number>)];
            const o = open[op.pick % Math.max(1, open.length)];
            if (o === undefined) continue;
            done(s, m(o, op.partition));
            unfinished[op.partition]?.delete(o);
          } else if (op.kind === 'commit') {
            const c = committable(s);
            markCommitted(s, c);
            for (const x of c) lastCommit[x.partition] = x.offset;
          } else {
            revoke(s, [{ topic: 'candidates', partition: op.partition }]);
            // Re-owned later: the consumer restarts after the last delivered offset; earlier ones are gone.
            unfinished[op.partition] = new Set();
            delivered[op.partition] = new Set();
            lastCommit[op.partition] = null;
          }
          for (const c of committable(s)) {
            for (const o of unfinished[c.partition] as Set<number>) {
              assert.ok(o >= c.offset, `partition ${c.partition}: commit ${c.offset} passes unfinished ${o}`);
            }
            const lc = lastCommit[c.partition] ?? null;
            assert.ok(lc === null || c.offset > lc, 'never moves back');
            // Progress: the offset is the first unfinished one, or one past the last delivered one.
            const open = [...(unfinished[c.partition] as Set<number>)];
            const expected =
              open.length > 0 ? Math.min(...open) : Math.max(...(delivered[c.partition] as Set<number>)) + 1;
            assert.equal(c.offset, expected);
          }
        }
        // Liveness: once everything is finished, everything delivered is committable.
        for (let p = 0; p < 3; p++) for (const o of [...(unfinished[p] as Set<number>)]) done(s, m(o, p));
        for (const c of committable(s))
          assert.equal(c.offset, Math.max(...(delivered[c.partition] as Set<number>)) + 1);
      }),
      { numRuns: 500 },
    );
  });
});

void describe('commits of a written checkpoint', () => {
  void it("commit the snapshot's positions, not where the live offsets moved meanwhile", () => {
    const s = trackAll(emptyOffsets(), [0, 1, 2, 3]);
    for (const o of [0, 1, 2]) done(s, m(o));
    const positions = checkpointPositions(s);
    // While the checkpoint is written the intake goes on: 3..9 done, the live frontier at 10.
    done(s, m(3));
    for (let o = 4; o < 10; o++) trackDone(s, m(o));
    assert.deepEqual(committable(s), [m(10)]);
    assert.deepEqual(checkpointCommits(positions, s), [m(3)]);
  });

  void it('leaves out positions not past the last commit, and partitions no longer owned', () => {
    const s = trackAll(emptyOffsets(), [0, 1]);
    trackAll(s, [5], 1);
    done(s, m(0));
    done(s, m(5, 1));
    markCommitted(s, [m(6, 1)]);
    const positions = checkpointPositions(s);
    assert.deepEqual(checkpointCommits(positions, s), [m(1)]);
    revoke(s, [{ topic: 'candidates', partition: 0 }]);
    assert.deepEqual(checkpointCommits(positions, s), []);
  });

  void it('holds for any interleaving: never past a message not done when the snapshot was taken', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.nat(40)), { maxLength: 60 }),
        fc.array(fc.nat(40), { maxLength: 30 }),
        (steps, later) => {
          const s = emptyOffsets();
          for (const [isDone, o] of steps) (isDone ? done : track)(s, m(o));
          const positions = checkpointPositions(s);
          const pendingAtSnapshot = [...(s.partitions.values().next().value?.pending ?? [])];
          for (const o of later) trackDone(s, m(o));
          for (const c of checkpointCommits(positions, s))
            for (const p of pendingAtSnapshot)
              assert.ok(c.offset <= p, `commit ${c.offset} passes pending ${p}`);
        },
      ),
      { seed: 14, numRuns: 300 },
    );
  });

  void it("setCommitted takes the broker's word, back as well as forward", () => {
    const s = restoreOffsets([{ topic: 'candidates', partition: 0, position: 7, committed: 7 }]);
    setCommitted(s, [{ topic: 'candidates', partition: 0, committed: 5 }]);
    assert.deepEqual(checkpointCommits(checkpointPositions(s), s), [m(7)]);
    setCommitted(s, [{ topic: 'candidates', partition: 0, committed: null }]);
    assert.equal(s.partitions.values().next().value?.committed, null);
  });
});
