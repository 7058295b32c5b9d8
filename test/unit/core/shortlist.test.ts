import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { emptyPool, poolReducer, type PoolConfig, type PoolState } from '../../../src/core/pool.js';
import {
  mergeShortlists,
  planMergedRequests,
  shortlistOf,
  type Shortlist,
  type ShortlistEntry,
} from '../../../src/core/shortlist.js';
import { planRequests } from '../../../src/core/windows.js';

const poolConfig: PoolConfig = {
  maxCandidates: 10_000,
  maxBytes: 1e12,
  ttlMs: 1e12,
  leaseMs: 1000,
  highWatermark: 0.9,
  lowWatermark: 0.5,
  compareVersions: () => 0,
};

const id = (i: number) => `c${String(i).padStart(4, '0')}`;

/** A pool holding candidates `indices` with their scores. */
function poolOf(indices: readonly number[], scores: readonly number[]): PoolState<null> {
  const pool = emptyPool<null>();
  for (const i of indices) {
    poolReducer(
      pool,
      {
        type: 'candidate-arrived',
        candidate: {
          id: id(i),
          source: { topic: 't', partition: 0, offset: i },
          arrivedAtMs: 0,
          bytes: 1,
          payload: null,
        },
        now: 0,
      },
      poolConfig,
    );
  }
  poolReducer(
    pool,
    {
      type: 'scored',
      scores: indices.map((i) => ({
        id: id(i),
        value: scores[i] as number,
        entropy: 0,
        diversity: 0,
        dominantClass: 0,
        meanProbs: [0.5, 0.5],
        modelVersion: 'v1',
        scoredAtMs: 0,
      })),
    },
    poolConfig,
  );
  return pool;
}

function entry(candidateId: string, value: number): ShortlistEntry {
  return {
    candidateId,
    score: {
      value,
      entropy: 0,
      diversity: 0,
      dominantClass: 0,
      meanProbs: [0.5, 0.5],
      modelVersion: 'v1',
      scoredAtMs: 0,
    },
  };
}

void describe('shortlists', () => {
  void it('an instance offers its top ω·b pooled, scored, unrequested candidates, highest first', () => {
    const pool = poolOf([0, 1, 2, 3, 4], [0.1, 0.9, 0.5, 0.9, 0.3]);
    poolReducer(
      pool,
      { type: 'requests-issued', now: 0, requests: [{ candidateId: id(1), requestId: 'r' }] },
      poolConfig,
    );
    assert.deepEqual(
      shortlistOf(pool, 3).map((e) => [e.candidateId, e.score.value]),
      [
        [id(3), 0.9],
        [id(2), 0.5],
        [id(4), 0.3],
      ],
    );
    assert.deepEqual(shortlistOf(pool, 0), []);
  });

  void it('merging drops stale lists and excluded candidates; the newest list wins a duplicate', () => {
    const lists: Shortlist[] = [
      { instanceId: 'a', sentAtMs: 1000, entries: [entry('x', 0.5), entry('y', 0.4), entry('gone', 0.9)] },
      { instanceId: 'b', sentAtMs: 1500, entries: [entry('x', 0.7), entry('z', 0.6)] },
      { instanceId: 'old', sentAtMs: 0, entries: [entry('w', 1)] },
    ];
    const merged = mergeShortlists(lists, { nowMs: 2000, maxAgeMs: 1500, exclude: (c) => c === 'gone' });
    assert.deepEqual(
      merged.map((e) => [e.candidateId, e.score.value]),
      [
        ['x', 0.7],
        ['z', 0.6],
        ['y', 0.4],
      ],
    );
  });

  void it('merged shortlists of a split pool select what one instance owning it all selects', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 12 }),
        fc.double({ min: 1, max: 6, noNaN: true }),
        fc.boolean(),
        fc.nat(1000),
        (raw, instances, b, omega, randomness, seed) => {
          const scores = raw.map((s) => s / 4);
          const all = scores.map((_, i) => i);
          const single = planRequests(poolOf(all, scores), {
            b,
            omega,
            randomness,
            seed,
            windowSeq: 0,
            now: 0,
          });
          const size = Math.ceil(omega * b);
          const lists = Array.from({ length: instances }, (_, k) => ({
            instanceId: `i${k}`,
            sentAtMs: 0,
            entries: shortlistOf(
              poolOf(
                all.filter((i) => i % instances === k),
                scores,
              ),
              size,
            ),
          }));
          const merged = mergeShortlists(lists, { nowMs: 0, maxAgeMs: 1000, exclude: () => false });
          const planned = planMergedRequests(merged, {
            b,
            omega,
            randomness,
            seed,
            windowSeq: 0,
          });
          assert.deepEqual(
            planned.requests.map((r) => [r.requestId, r.drawProbability, r.takenBy]),
            single.requests.map((r) => [r.requestId, r.drawProbability, r.takenBy]),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
