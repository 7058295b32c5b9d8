import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  emptyPool,
  getCandidate,
  outstandingRequests,
  poolBytes,
  poolCandidates,
  poolReducer,
  poolSize,
  pressure,
  requestedCount,
  rescoreOrder,
  restorePool,
  selectionInput,
  unscoredCount,
  type NewCandidate,
  type PoolConfig,
  type PoolEffect,
  type PoolEvent,
  type PoolState,
  type ScoreUpdate,
} from '../../../src/core/pool.js';

/** Versions are 'v<n>', ordered by n. */
const byNumber = (a: string, b: string): number => Number(a.slice(1)) - Number(b.slice(1));

const config: PoolConfig = {
  maxCandidates: 5,
  maxBytes: 1000,
  ttlMs: 10_000,
  leaseMs: 1_000,
  highWatermark: 0.8,
  lowWatermark: 0.4,
  compareVersions: byNumber,
};

function cand(id: string, arrivedAtMs = 0, bytes = 10): NewCandidate<string> {
  return {
    id,
    source: { topic: 'candidates', partition: 0, offset: 0 },
    arrivedAtMs,
    bytes,
    payload: `img-${id}`,
  };
}

function score(id: string, value: number, version = 'v1'): ScoreUpdate {
  return {
    id,
    value,
    entropy: value,
    diversity: 0,
    dominantClass: 0,
    meanProbs: [0.5, 0.5],
    modelVersion: version,
    scoredAtMs: 0,
  };
}

/** Applies events in order; returns the state and all effects. */
function run<T>(state: PoolState<T>, events: PoolEvent<T>[], cfg: PoolConfig = config) {
  const effects: PoolEffect<T>[] = [];
  for (const e of events) effects.push(...poolReducer(state, e, cfg).effects);
  return { state, effects };
}

const types = (effects: PoolEffect<unknown>[]) => effects.map((e) => e.type);

void describe('poolReducer: arrival', () => {
  void it('admits a candidate and treats a known id as a duplicate no-op', () => {
    const { state, effects } = run(emptyPool<string>(), [
      { type: 'candidate-arrived', candidate: cand('a'), now: 0 },
      { type: 'candidate-arrived', candidate: { ...cand('a'), payload: 'other' }, now: 1 },
    ]);
    assert.deepEqual(effects, [
      { type: 'admitted', id: 'a' },
      { type: 'duplicate', id: 'a' },
    ]);
    assert.equal(poolSize(state), 1);
    assert.equal(getCandidate(state, 'a')?.payload, 'img-a');
    assert.equal(getCandidate(state, 'a')?.state, 'pooled');
  });

  void it('refuses a candidate already past its TTL, too large, or with bad bytes', () => {
    const { effects, state } = run(emptyPool<string>(), [
      { type: 'candidate-arrived', candidate: cand('old', 0), now: 10_000 },
      { type: 'candidate-arrived', candidate: cand('big', 10_000, 1001), now: 10_000 },
      { type: 'candidate-arrived', candidate: cand('neg', 10_000, -1), now: 10_000 },
    ]);
    assert.deepEqual(effects, [
      { type: 'refused', id: 'old', reason: 'expired' },
      { type: 'refused', id: 'big', reason: 'too-large' },
      { type: 'refused', id: 'neg', reason: 'invalid-bytes' },
    ]);
    assert.equal(poolSize(state), 0);
  });
});

void describe('poolReducer: scores', () => {
  void it('keeps the freshest score by the caller’s version order and ignores stale, unknown, invalid', () => {
    const s = emptyPool<string>();
    run(s, [{ type: 'candidate-arrived', candidate: cand('a'), now: 0 }]);
    const { effects } = run(s, [
      { type: 'scored', scores: [score('a', 0.3, 'v2')] },
      { type: 'scored', scores: [score('a', 0.9, 'v1')] }, // older version: ignored
      { type: 'scored', scores: [score('a', 0.5, 'v10')] }, // 'v10' > 'v2' by the caller's order
      { type: 'scored', scores: [score('a', 0.6, 'v10')] }, // same version: replaces
      { type: 'scored', scores: [score('zz', 0.6, 'v10'), score('a', NaN, 'v11')] },
    ]);
    assert.deepEqual(effects, [
      { type: 'score-ignored', id: 'a', modelVersion: 'v1', reason: 'stale' },
      { type: 'score-ignored', id: 'zz', modelVersion: 'v10', reason: 'unknown' },
      { type: 'score-ignored', id: 'a', modelVersion: 'v11', reason: 'invalid' },
    ]);
    assert.equal(getCandidate(s, 'a')?.score?.value, 0.6);
    assert.equal(getCandidate(s, 'a')?.score?.modelVersion, 'v10');
  });

  void it('does not alias the caller’s score arrays', () => {
    const s = emptyPool<string>();
    const probs = [0.2, 0.8];
    run(s, [
      { type: 'candidate-arrived', candidate: cand('a'), now: 0 },
      { type: 'scored', scores: [{ ...score('a', 1), meanProbs: probs }] },
    ]);
    probs[0] = 99;
    assert.deepEqual(getCandidate(s, 'a')?.score?.meanProbs, [0.2, 0.8]);
  });
});

void describe('poolReducer: eviction', () => {
  void it('evicts the lowest score first, ties oldest first, never the unscored', () => {
    const s = emptyPool<string>();
    run(s, [
      { type: 'candidate-arrived', candidate: cand('a', 0), now: 0 },
      { type: 'candidate-arrived', candidate: cand('b', 1), now: 1 },
      { type: 'candidate-arrived', candidate: cand('c', 2), now: 2 },
      { type: 'candidate-arrived', candidate: cand('d', 3), now: 3 },
      { type: 'candidate-arrived', candidate: cand('e', 4), now: 4 }, // stays unscored
      { type: 'scored', scores: [score('a', 0.9), score('b', 0.2), score('c', 0.2), score('d', 0.5)] },
    ]);
    const r = run(s, [
      { type: 'candidate-arrived', candidate: cand('f', 5), now: 5 },
      { type: 'candidate-arrived', candidate: cand('g', 6), now: 6 },
      { type: 'scored', scores: [score('f', 0.01), score('g', 0.01)] },
      { type: 'candidate-arrived', candidate: cand('h', 7), now: 7 },
    ]);
    assert.deepEqual(
      r.effects.filter((e) => e.type === 'evicted'),
      [
        { type: 'evicted', id: 'b', score: 0.2 }, // b and c tie at 0.2; b is older
        { type: 'evicted', id: 'c', score: 0.2 },
        { type: 'evicted', id: 'f', score: 0.01 },
      ],
    );
    assert.ok(getCandidate(s, 'e') !== undefined, 'the unscored candidate stays');
    assert.equal(poolSize(s), 5);
  });

  void it('uses the freshest score: a rescored candidate moves in the eviction order', () => {
    const s = emptyPool<string>();
    run(s, [
      ...['a', 'b', 'c', 'd', 'e'].map((id, i): PoolEvent<string> => ({
        type: 'candidate-arrived',
        candidate: cand(id, i),
        now: i,
      })),
      { type: 'scored', scores: ['a', 'b', 'c', 'd', 'e'].map((id, i) => score(id, i)) },
      { type: 'scored', scores: [score('a', 10, 'v2')] },
    ]);
    const r = run(s, [{ type: 'candidate-arrived', candidate: cand('f', 9), now: 9 }]);
    assert.deepEqual(r.effects[0], { type: 'evicted', id: 'b', score: 1 });
  });

  void it('refuses an arrival when only unscored or requested candidates could make room', () => {
    const s = emptyPool<string>();
    run(s, [
      ...['a', 'b', 'c', 'd', 'e'].map((id): PoolEvent<string> => ({
        type: 'candidate-arrived',
        candidate: cand(id),
        now: 0,
      })),
      { type: 'scored', scores: [score('a', 0.1)] },
      { type: 'requests-issued', requests: [{ candidateId: 'a', requestId: 'r1' }], now: 0 },
    ]);
    const r = run(s, [{ type: 'candidate-arrived', candidate: cand('f'), now: 1 }]);
    assert.deepEqual(r.effects, [{ type: 'refused', id: 'f', reason: 'pool-full' }]);
    assert.equal(poolSize(s), 5);
  });

  void it('bounds bytes as well as count, evicting as many as needed', () => {
    const s = emptyPool<string>();
    const cfg = { ...config, maxCandidates: 100, maxBytes: 100 };
    run(
      s,
      [
        { type: 'candidate-arrived', candidate: cand('a', 0, 30), now: 0 },
        { type: 'candidate-arrived', candidate: cand('b', 0, 30), now: 0 },
        { type: 'candidate-arrived', candidate: cand('c', 0, 30), now: 0 },
        { type: 'scored', scores: [score('a', 1), score('b', 2), score('c', 3)] },
      ],
      cfg,
    );
    const r = run(s, [{ type: 'candidate-arrived', candidate: cand('d', 0, 60), now: 0 }], cfg);
    assert.deepEqual(types(r.effects), ['evicted', 'evicted', 'admitted']);
    assert.equal(poolBytes(s), 90);
  });

  void it('an evict event enforces lowered bounds', () => {
    const s = emptyPool<string>();
    run(s, [
      ...['a', 'b', 'c'].map((id): PoolEvent<string> => ({
        type: 'candidate-arrived',
        candidate: cand(id),
        now: 0,
      })),
      { type: 'scored', scores: [score('a', 3), score('b', 1), score('c', 2)] },
    ]);
    const r = run(s, [{ type: 'evict', now: 0 }], { ...config, maxCandidates: 1 });
    assert.deepEqual(
      r.effects.map((e) => (e.type === 'evicted' ? e.id : e.type)),
      ['b', 'c'],
    );
  });
});

void describe('poolReducer: time, requests and labels', () => {
  void it('expires pooled candidates after the TTL on a tick', () => {
    const s = emptyPool<string>();
    run(s, [
      { type: 'candidate-arrived', candidate: cand('a', 0), now: 0 },
      { type: 'candidate-arrived', candidate: cand('b', 5_000), now: 5_000 },
    ]);
    assert.deepEqual(run(s, [{ type: 'tick', now: 9_999 }]).effects, []);
    assert.deepEqual(run(s, [{ type: 'tick', now: 10_000 }]).effects, [{ type: 'expired', id: 'a' }]);
    // An arrival applies the clock too.
    assert.deepEqual(
      run(s, [{ type: 'candidate-arrived', candidate: cand('c', 15_000), now: 15_000 }]).effects,
      [
        { type: 'expired', id: 'b' },
        { type: 'admitted', id: 'c' },
      ],
    );
  });

  void it('marks requested candidates, refuses a second request while outstanding, and expires leases', () => {
    const s = emptyPool<string>();
    run(s, [
      { type: 'candidate-arrived', candidate: cand('a', 0), now: 0 },
      { type: 'scored', scores: [score('a', 1)] },
    ]);
    const r1 = run(s, [
      {
        type: 'requests-issued',
        requests: [
          { candidateId: 'a', requestId: 'r1' },
          { candidateId: 'a', requestId: 'r1' },
          { candidateId: 'zz', requestId: 'r2' },
        ],
        now: 100,
      },
    ]);
    assert.deepEqual(r1.effects, [
      { type: 'requested', id: 'a', requestId: 'r1', leaseUntilMs: 1100 },
      { type: 'request-refused', id: 'a', requestId: 'r1', reason: 'outstanding' },
      { type: 'request-refused', id: 'zz', requestId: 'r2', reason: 'unknown' },
    ]);
    assert.deepEqual(outstandingRequests(s), [
      { candidateId: 'a', requestId: 'r1', issuedAtMs: 100, leaseUntilMs: 1100 },
    ]);
    assert.deepEqual(selectionInput(s).ids, [], 'a requested candidate is not selectable');
    assert.deepEqual(run(s, [{ type: 'tick', now: 1099 }]).effects, []);
    assert.deepEqual(run(s, [{ type: 'tick', now: 1100 }]).effects, [
      { type: 'lease-expired', id: 'a', requestId: 'r1' },
    ]);
    assert.equal(getCandidate(s, 'a')?.state, 'pooled');
    assert.equal(getCandidate(s, 'a')?.request, undefined);
    assert.equal(requestedCount(s), 0);
    assert.deepEqual(selectionInput(s).ids, ['a']);
    // It can be requested again.
    assert.deepEqual(
      types(
        run(s, [{ type: 'requests-issued', requests: [{ candidateId: 'a', requestId: 'r3' }], now: 1200 }])
          .effects,
      ),
      ['requested'],
    );
  });

  void it('does not expire a requested candidate by TTL until its lease ends', () => {
    const s = emptyPool<string>();
    const cfg = { ...config, leaseMs: 20_000 };
    run(
      s,
      [
        { type: 'candidate-arrived', candidate: cand('a', 0), now: 0 },
        { type: 'requests-issued', requests: [{ candidateId: 'a', requestId: 'r1' }], now: 1 },
      ],
      cfg,
    );
    assert.deepEqual(run(s, [{ type: 'tick', now: 15_000 }], cfg).effects, []);
    assert.deepEqual(run(s, [{ type: 'tick', now: 20_001 }], cfg).effects, [
      { type: 'lease-expired', id: 'a', requestId: 'r1' },
      { type: 'expired', id: 'a' },
    ]);
    assert.equal(poolSize(s), 0);
  });

  void it('withdraws requests that were never published: the candidates are pooled again at once', () => {
    const s = emptyPool<string>();
    run(s, [
      { type: 'candidate-arrived', candidate: cand('a'), now: 0 },
      { type: 'candidate-arrived', candidate: cand('b'), now: 0 },
      { type: 'scored', scores: [score('a', 0.9), score('b', 0.8)] },
      {
        type: 'requests-issued',
        requests: [
          { candidateId: 'a', requestId: 'r1' },
          { candidateId: 'b', requestId: 'r2' },
        ],
        now: 100,
      },
    ]);
    assert.equal(requestedCount(s), 2);
    const r = run(s, [{ type: 'requests-withdrawn', requestIds: ['r1', 'unknown'] }]);
    assert.deepEqual(r.effects, [{ type: 'request-withdrawn', id: 'a', requestId: 'r1' }]);
    assert.equal(requestedCount(s), 1);
    assert.equal(getCandidate(s, 'a')?.state, 'pooled');
    assert.equal(getCandidate(s, 'a')?.request, undefined);
    assert.deepEqual(
      outstandingRequests(s).map((x) => x.requestId),
      ['r2'],
    );
    // A second withdrawal is a no-op; the old lease of r1 no longer expires anything.
    assert.deepEqual(run(s, [{ type: 'requests-withdrawn', requestIds: ['r1'] }]).effects, []);
    assert.deepEqual(run(s, [{ type: 'tick', now: 1_200 }]).effects, [
      { type: 'lease-expired', id: 'b', requestId: 'r2' },
    ]);
    // Pooled again, it can be asked for anew.
    assert.deepEqual(
      run(s, [{ type: 'requests-issued', requests: [{ candidateId: 'a', requestId: 'r3' }], now: 1_300 }])
        .effects,
      [{ type: 'requested', id: 'a', requestId: 'r3', leaseUntilMs: 2_300 }],
    );
  });

  void it('labeled removes the candidate and hands it over; discard removes it', () => {
    const s = emptyPool<string>();
    run(s, [
      { type: 'candidate-arrived', candidate: cand('a', 0, 7), now: 0 },
      { type: 'candidate-arrived', candidate: cand('b', 0, 7), now: 0 },
      { type: 'requests-issued', requests: [{ candidateId: 'a', requestId: 'r1' }], now: 1 },
    ]);
    const r = run(s, [
      { type: 'labeled', id: 'a' },
      { type: 'labeled', id: 'a' },
      { type: 'discard', id: 'b', reason: 'poison' },
    ]);
    const first = r.effects[0];
    assert.ok(first?.type === 'labeled');
    assert.equal(first.candidate.payload, 'img-a');
    assert.equal(first.candidate.request?.requestId, 'r1');
    assert.deepEqual(r.effects.slice(1), [
      { type: 'not-in-pool', id: 'a' },
      { type: 'discarded', id: 'b', reason: 'poison' },
    ]);
    assert.equal(poolSize(s), 0);
    assert.equal(poolBytes(s), 0);
    assert.equal(requestedCount(s), 0);
  });
});

void describe('pressure', () => {
  const cfg = { ...config, maxCandidates: 10, maxBytes: 1_000_000 };
  void it('pauses on unscored build-up (pinned) with hysteresis, and counts bytes', () => {
    const s = emptyPool<string>();
    for (let i = 0; i < 8; i++)
      run(s, [{ type: 'candidate-arrived', candidate: cand(`c${i}`), now: 0 }], cfg);
    assert.equal(pressure(s, cfg), 'pause');
    run(s, [{ type: 'scored', scores: [0, 1, 2].map((i) => score(`c${i}`, i)) }], cfg);
    assert.equal(pressure(s, cfg), 'hold'); // 5 pinned: between 4 and 8
    run(s, [{ type: 'scored', scores: [3].map((i) => score(`c${i}`, i)) }], cfg);
    assert.equal(pressure(s, cfg), 'resume');
    // A full pool of scored candidates does not stop intake (they can be evicted) ...
    run(s, [{ type: 'scored', scores: [4, 5, 6, 7].map((i) => score(`c${i}`, i)) }], cfg);
    assert.equal(pressure(s, cfg), 'resume');
    // ... unless the whole pool is measured.
    assert.equal(pressure(s, { ...cfg, backpressureOn: 'total' }), 'pause');
    const bytesCfg = { ...cfg, maxBytes: 100 };
    const b = emptyPool<string>();
    run(
      b,
      [{ type: 'candidate-arrived', candidate: cand('big', 0, 85) }].map(
        (e) => ({ ...e, now: 0 }) as PoolEvent<string>,
      ),
      bytesCfg,
    );
    assert.equal(pressure(b, bytesCfg), 'pause');
  });

  void it('counts requested candidates as pinned, once', () => {
    const s = emptyPool<string>();
    for (let i = 0; i < 5; i++)
      run(s, [{ type: 'candidate-arrived', candidate: cand(`c${i}`), now: 0 }], cfg);
    run(
      s,
      [
        {
          type: 'requests-issued',
          requests: [0, 1, 2, 3, 4].map((i) => ({ candidateId: `c${i}`, requestId: `r${i}` })),
          now: 0,
        },
      ],
      cfg,
    );
    assert.equal(unscoredCount(s), 5);
    assert.equal(pressure(s, cfg), 'hold'); // 5 pinned, not 10
  });
});

void describe('selectionInput and rescoreOrder', () => {
  void it('lists pooled scored candidates with their freshest scores, in admission order', () => {
    const s = emptyPool<string>();
    run(s, [
      ...['a', 'b', 'c', 'd'].map((id): PoolEvent<string> => ({
        type: 'candidate-arrived',
        candidate: cand(id),
        now: 0,
      })),
      { type: 'scored', scores: [score('a', 0.1), score('b', 0.2), score('d', 0.4)] },
      { type: 'scored', scores: [score('a', 0.7, 'v2')] },
      { type: 'requests-issued', requests: [{ candidateId: 'b', requestId: 'r' }], now: 0 },
    ]);
    const input = selectionInput(s);
    assert.deepEqual(input.ids, ['a', 'd']);
    assert.deepEqual(input.scores, [0.7, 0.4]);
    assert.deepEqual(
      input.candidates.map((c) => c.id),
      ['a', 'd'],
    );
  });

  void it('orders rescoring: unscored, then highest previous score first, requested last', () => {
    const s = emptyPool<string>();
    run(s, [
      ...['a', 'b', 'c', 'd', 'e'].map((id): PoolEvent<string> => ({
        type: 'candidate-arrived',
        candidate: cand(id),
        now: 0,
      })),
      { type: 'scored', scores: [score('a', 0.1), score('b', 0.9), score('c', 0.5), score('e', 0.95)] },
      { type: 'scored', scores: [score('c', 0.5, 'v2')] },
      { type: 'requests-issued', requests: [{ candidateId: 'e', requestId: 'r' }], now: 0 },
    ]);
    assert.deepEqual(rescoreOrder(s, 'v2', byNumber), ['d', 'b', 'a', 'e']);
    assert.deepEqual(rescoreOrder(s, 'v1', byNumber), ['d']);
    // Without a version order, any other version needs rescoring.
    assert.deepEqual(rescoreOrder(s, 'v1'), ['d', 'c']);
  });
});

void describe('pool under a flood', () => {
  void it('takes 100,000 candidates into a pool bounded at 10,000, within bounds and with bounded indexes', () => {
    const cfg: PoolConfig = { ...config, maxCandidates: 10_000, maxBytes: 10_000 * 400, ttlMs: Infinity };
    const s = emptyPool<null>();
    let evicted = 0;
    let x = 12345;
    for (let i = 0; i < 100_000; i++) {
      const id = `c${i}`;
      const a = poolReducer(
        s,
        {
          type: 'candidate-arrived',
          candidate: {
            id,
            source: { topic: 't', partition: i % 8, offset: i },
            arrivedAtMs: i,
            bytes: 300,
            payload: null,
          },
          now: i,
        },
        cfg,
      );
      for (const e of a.effects) if (e.type === 'evicted') evicted++;
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      poolReducer(s, { type: 'scored', scores: [score(id, x / 2 ** 32)] }, cfg);
      if (i % 20_000 === 0) {
        // a model version lands: part of the pool is rescored
        const ids = rescoreOrder(s, `v${2 + i}`, byNumber).slice(0, 2_000);
        poolReducer(s, { type: 'scored', scores: ids.map((cid) => score(cid, 0.5, `v${2 + i}`)) }, cfg);
      }
      assert.ok(poolSize(s) <= 10_000);
    }
    assert.equal(poolSize(s), 10_000);
    assert.equal(evicted, 90_000);
    assert.ok(poolBytes(s) <= cfg.maxBytes);
    // The internal indexes stay O(pool), not O(arrivals).
    assert.ok(s.evictHeap.size <= 2 * 10_000 + 64 + 2_000);
    assert.ok(s.expiryHeap.size <= 2 * 10_000 + 64);
  });

  void it('without scoring, refuses arrivals once full and asks for a pause', () => {
    const cfg: PoolConfig = { ...config, maxCandidates: 10_000, maxBytes: 1e12, ttlMs: Infinity };
    const s = emptyPool<null>();
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      const r = poolReducer(
        s,
        {
          type: 'candidate-arrived',
          candidate: {
            id: `c${i}`,
            source: { topic: 't', partition: 0, offset: i },
            arrivedAtMs: i,
            bytes: 1,
            payload: null,
          },
          now: i,
        },
        cfg,
      );
      if (r.effects.some((e) => e.type === 'refused')) refused++;
    }
    assert.equal(refused, 10_000);
    assert.equal(pressure(s, cfg), 'pause');
  });
});

void describe('pool properties', () => {
  const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
  const idArb = fc.constantFrom(...ids);
  // Mostly fresh arrivals and frequent scoring, so that the pool fills up and evicts.
  const ageArb = fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 500 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 12_000 }) },
  );
  const eventArb = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('arrive' as const),
        id: idArb,
        bytes: fc.integer({ min: 0, max: 400 }),
        age: ageArb,
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('score' as const),
        id: idArb,
        value: fc.integer({ min: 0, max: 5 }),
        version: fc.integer({ min: 1, max: 4 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('request' as const), ids: fc.array(idArb, { maxLength: 3 }) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('label' as const), id: idArb }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('withdraw' as const),
        back: fc.array(fc.integer({ min: 1, max: 6 }), { maxLength: 3 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('evict' as const) }) },
  );
  const stepArb = fc.record({ dt: fc.integer({ min: 0, max: 600 }), event: eventArb });
  const stepsArb = fc.array(stepArb, { minLength: 20, maxLength: 80 });

  void it('never exceeds its bounds, never evicts a requested or unscored candidate, and keeps its books', () => {
    fc.assert(
      fc.property(
        stepsArb,
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 400, max: 1500 }),
        (steps, maxCandidates, maxBytes) => {
          const cfg: PoolConfig = { ...config, maxCandidates, maxBytes, ttlMs: 5_000, leaseMs: 2_000 };
          const s = emptyPool<string>();
          let now = 0;
          let n = 0;
          for (const { dt, event: ev } of steps) {
            now += dt;
            const before = new Map(
              [...poolCandidates(s)].map((c) => [c.id, { state: c.state, scored: c.score !== undefined }]),
            );
            let event: PoolEvent<string>;
            switch (ev.kind) {
              case 'arrive':
                event = { type: 'candidate-arrived', candidate: cand(ev.id, now - ev.age, ev.bytes), now };
                break;
              case 'score':
                event = { type: 'scored', scores: [score(ev.id, ev.value, `v${ev.version}`)] };
                break;
              case 'request':
                event = {
                  type: 'requests-issued',
                  requests: ev.ids.map((id) => ({ candidateId: id, requestId: `r${n++}` })),
                  now,
                };
                break;
              case 'label':
                event = { type: 'labeled', id: ev.id };
                break;
              case 'withdraw':
                // Recent request ids (some outstanding, some not).
                event = { type: 'requests-withdrawn', requestIds: ev.back.map((k) => `r${n - k}`) };
                break;
              case 'tick':
                event = { type: 'tick', now };
                break;
              case 'evict':
                event = { type: 'evict', now };
                break;
            }
            const { effects } = poolReducer(s, event, cfg);
            // Bounds.
            assert.ok(poolSize(s) <= maxCandidates);
            assert.ok(poolBytes(s) <= maxBytes);
            // Books.
            const all = [...poolCandidates(s)];
            assert.equal(
              poolBytes(s),
              all.reduce((t, c) => t + c.bytes, 0),
            );
            assert.equal(requestedCount(s), all.filter((c) => c.state === 'requested').length);
            assert.equal(unscoredCount(s), all.filter((c) => c.score === undefined).length);
            for (const c of all) assert.equal(c.request !== undefined, c.state === 'requested');
            // Only evictable candidates are evicted; nothing requested expires by TTL.
            for (const e of effects) {
              // The clock runs first: a lease that ended in this event makes its candidate evictable.
              if (e.type === 'lease-expired')
                before.set(e.id, { state: 'pooled', scored: before.get(e.id)?.scored ?? false });
              if (e.type === 'evicted') {
                const b = before.get(e.id);
                assert.ok(
                  b !== undefined && b.state === 'pooled' && b.scored,
                  `evicted ${e.id} was ${JSON.stringify(b)}`,
                );
              }
            }
            // After a clocked event, no lease or TTL is overdue.
            if (event.type !== 'scored' && event.type !== 'labeled' && event.type !== 'requests-withdrawn') {
              for (const c of all) {
                if (c.request !== undefined) assert.ok(c.request.leaseUntilMs > now);
                else assert.ok(c.arrivedAtMs + cfg.ttlMs > now);
              }
            }
            // Selection never sees requested or unscored candidates.
            for (const c of selectionInput(s).candidates)
              assert.ok(c.state === 'pooled' && c.score !== undefined);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  void it('a restored pool behaves like the original', () => {
    fc.assert(
      fc.property(stepsArb, stepsArb, (first, second) => {
        const cfg: PoolConfig = { ...config, maxCandidates: 4, maxBytes: 900, ttlMs: 5_000, leaseMs: 2_000 };
        const toEvent = (ev: (typeof first)[number]['event'], now: number, k: number): PoolEvent<string> => {
          switch (ev.kind) {
            case 'arrive':
              return { type: 'candidate-arrived', candidate: cand(ev.id, now - ev.age, ev.bytes), now };
            case 'score':
              return { type: 'scored', scores: [score(ev.id, ev.value, `v${ev.version}`)] };
            case 'request':
              return {
                type: 'requests-issued',
                requests: ev.ids.map((id, j) => ({ candidateId: id, requestId: `r${k}-${j}` })),
                now,
              };
            case 'label':
              return { type: 'labeled', id: ev.id };
            case 'withdraw':
              return { type: 'requests-withdrawn', requestIds: ev.back.map((d) => `r${k - d}-0`) };
            case 'tick':
              return { type: 'tick', now };
            case 'evict':
              return { type: 'evict', now };
          }
        };
        const a = emptyPool<string>();
        let now = 0;
        first.forEach(({ dt, event }, k) => {
          now += dt;
          poolReducer(a, toEvent(event, now, k), cfg);
        });
        const b = restorePool([...poolCandidates(a)].reverse(), a.nextSeq);
        second.forEach(({ dt, event }, k) => {
          now += dt;
          const ea = poolReducer(a, toEvent(event, now, 100 + k), cfg).effects;
          const eb = poolReducer(b, toEvent(event, now, 100 + k), cfg).effects;
          assert.deepEqual(eb, ea);
        });
        assert.deepEqual([...poolCandidates(b)], [...poolCandidates(a)]);
      }),
      { numRuns: 200 },
    );
  });
});
