import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  InvalidSelectionInputError,
  rankByScore,
  samplingProbabilities,
  selectForLabeling,
} from '../../../src/core/select.js';
import { createRng } from '../../../src/core/rng.js';

/** Pool scores with many ties (small integers) or any finite values. */
const scoresArb = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 60 }),
  fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { maxLength: 60 }),
);

function isCode(code: string) {
  return (e: unknown) => e instanceof InvalidSelectionInputError && e.code === code && e.retryable === false;
}

void describe('selectForLabeling', () => {
  void it('refuses bad input with named errors', () => {
    assert.throws(() => selectForLabeling([1, NaN], 1, { seed: 1 }), isCode('BAD_SCORE'));
    assert.throws(() => selectForLabeling([1, Infinity], 1, { seed: 1 }), isCode('BAD_SCORE'));
    for (const b of [-1, 1.5, NaN]) {
      assert.throws(() => selectForLabeling([1, 2], b, { seed: 1 }), isCode('BAD_BATCH_SIZE'));
    }
    for (const omega of [0.5, 0, NaN, Infinity]) {
      assert.throws(() => selectForLabeling([1, 2], 1, { seed: 1, omega }), isCode('BAD_OMEGA'));
    }
    assert.throws(() => selectForLabeling([1, 2], 1), isCode('MISSING_SEED'));
    assert.throws(
      () => selectForLabeling([1, 2], 1, { seed: 1, rng: createRng(1) }),
      isCode('AMBIGUOUS_RANDOMNESS'),
    );
    assert.throws(() => selectForLabeling([1, 2], 1, { seed: 0.5 }), isCode('BAD_SEED'));
    // Randomness off needs no seed.
    assert.doesNotThrow(() => selectForLabeling([1, 2], 1, { randomness: false }));
  });

  void it('with randomness off takes the top b in rank order, ties by index', () => {
    const r = selectForLabeling([0.1, 0.9, 0.5, 0.9, 0.2, 0.5], 3, { randomness: false });
    assert.deepEqual(r.indices, [1, 3, 2]);
    assert.deepEqual(r.ranks, [0, 1, 2]);
    assert.deepEqual(r.probabilities, [1, 1, 1]);
    assert.deepEqual(r.takenBy, ['rank', 'rank', 'rank']);
    assert.deepEqual(r.shortlist, [1, 3, 2, 5, 4, 0]);
  });

  void it('keeps the top ceil(omega * b) as the shortlist, the whole pool if smaller', () => {
    const scores = Array.from({ length: 100 }, (_, i) => i % 10);
    assert.equal(selectForLabeling(scores, 4, { seed: 1 }).shortlist.length, 20);
    assert.equal(selectForLabeling(scores, 4, { seed: 1, omega: 2.5 }).shortlist.length, 10);
    assert.equal(selectForLabeling(scores, 10, { seed: 1, omega: 1.1 }).shortlist.length, 11);
    assert.equal(selectForLabeling(scores.slice(0, 7), 4, { seed: 1 }).shortlist.length, 7);
    assert.deepEqual(selectForLabeling(scores, 1, { seed: 1 }).shortlist, [9, 19, 29, 39, 49]);
  });

  void it('computes Eq. 4 sampling probabilities', () => {
    const r = selectForLabeling([1, 5, 2, 4, 3, 0, 0], 1, { seed: 3 });
    assert.deepEqual(r.shortlist, [1, 3, 4, 2, 0]);
    // a' = (a - 1) / (5 - 1) = [1, 0.75, 0.5, 0.25, 0], summing to 2.5.
    const expected = [0.4, 0.3, 0.2, 0.1, 0];
    r.shortlistProbabilities.forEach((s, i) => assert.ok(Math.abs(s - (expected[i] as number)) < 1e-12));
    assert.deepEqual(samplingProbabilities([2, 2, 2, 2]), [0.25, 0.25, 0.25, 0.25]);
    assert.deepEqual(samplingProbabilities([]), []);
  });

  void it('returns exactly min(b, n) distinct indices, consistent with the ranking', () => {
    fc.assert(
      fc.property(
        scoresArb,
        fc.integer({ min: 0, max: 25 }),
        fc.double({ min: 1, max: 6, noNaN: true }),
        fc.boolean(),
        fc.integer(),
        (scores, b, omega, randomness, seed) => {
          const r = selectForLabeling(scores, b, { omega, randomness, seed });
          const take = Math.min(b, scores.length);
          assert.equal(r.indices.length, take);
          assert.equal(new Set(r.indices).size, take);
          const ranking = rankByScore(scores);
          assert.deepEqual(r.shortlist, ranking.slice(0, r.shortlist.length));
          assert.ok(r.shortlist.length >= take);
          r.indices.forEach((idx, i) => {
            assert.equal(ranking[r.ranks[i] as number], idx);
            assert.ok((r.ranks[i] as number) < r.shortlist.length);
            const p = r.probabilities[i] as number;
            assert.ok(p > 0 && p <= 1);
            if (r.takenBy[i] === 'draw') assert.equal(p, r.shortlistProbabilities[r.ranks[i] as number]);
            else assert.equal(p, 1);
          });
          if (!randomness) assert.deepEqual(r.indices, ranking.slice(0, take));
          if (r.shortlist.length > 0) {
            const sum = r.shortlistProbabilities.reduce((a, c) => a + c, 0);
            assert.ok(Math.abs(sum - 1) < 1e-9);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  void it('gives the same draw for the same seed, and different draws for different seeds', () => {
    const scores = Array.from({ length: 200 }, (_, i) => Math.sin(i) + 1);
    const draw = (seed: number) => selectForLabeling(scores, 10, { seed }).indices;
    assert.deepEqual(draw(5), draw(5));
    assert.deepEqual(draw(5), selectForLabeling(scores, 10, { rng: createRng(5) }).indices);
    const distinct = new Set(Array.from({ length: 20 }, (_, seed) => draw(seed).join(',')));
    assert.ok(distinct.size >= 18, `only ${distinct.size} distinct draws from 20 seeds`);
  });

  void it('advances a given rng, so consecutive selections differ', () => {
    const scores = Array.from({ length: 200 }, (_, i) => (i * 37) % 101);
    const rng = createRng(11);
    const a = selectForLabeling(scores, 10, { rng }).indices;
    const b = selectForLabeling(scores, 10, { rng }).indices;
    assert.notDeepEqual(a, b);
  });

  void it('draws uniformly over the shortlist when its first and last scores are equal', () => {
    const scores = [7, 7, 7, 7, 7, 7, 7, 7, 7, 7];
    const rng = createRng(2024);
    const counts = new Array<number>(10).fill(0);
    const draws = 10000;
    for (let t = 0; t < draws; t++) {
      const r = selectForLabeling(scores, 1, { rng });
      assert.deepEqual(r.probabilities, [0.2]);
      counts[r.indices[0] as number]! += 1;
    }
    // Ties keep index order: the shortlist is pool indices 0..4.
    assert.deepEqual(counts.slice(5), [0, 0, 0, 0, 0]);
    for (const c of counts.slice(0, 5)) assert.ok(Math.abs(c - 2000) < 200, `count ${c}`);
  });

  void it('takes the rest by rank when fewer candidates with s > 0 remain than are needed', () => {
    // Shortlist of 6; only two candidates are above the last shortlisted score.
    const r = selectForLabeling([10, 9, 0, 0, 0, 0, 0], 3, { seed: 1, omega: 2 });
    assert.deepEqual(r.indices, [0, 1, 2]);
    assert.deepEqual(r.takenBy, ['rank', 'rank', 'rank']);
    assert.deepEqual(r.probabilities, [1, 1, 1]);
    // Exactly as many with s > 0 as needed: the outcome is certain, so it is taken by rank too.
    const exact = selectForLabeling([10, 9, 8, 0, 0, 0, 0, 0], 3, { seed: 1, omega: 2 });
    assert.deepEqual(exact.indices, [0, 1, 2]);
    assert.deepEqual(exact.takenBy, ['rank', 'rank', 'rank']);
    // One more with s > 0 than needed: every pick is a draw, and the s = 0 candidates are never drawn.
    const drawn = selectForLabeling([10, 9, 8, 7, 0, 0, 0, 0], 3, { seed: 1, omega: 2 });
    assert.deepEqual(drawn.takenBy, ['draw', 'draw', 'draw']);
    assert.ok(drawn.indices.every((i) => i <= 3));
    // Omega 1 leaves no room for chance: the top b, by rank.
    const scores = [3, 1, 4, 1, 5, 9, 2, 6];
    assert.deepEqual(
      selectForLabeling(scores, 3, { seed: 9, omega: 1 }).indices,
      selectForLabeling(scores, 3, { randomness: false }).indices,
    );
  });

  void it('selects the whole pool when b exceeds it, and nothing for b = 0', () => {
    const r = selectForLabeling([0.3, 0.1, 0.2], 5, { seed: 1 });
    assert.deepEqual([...r.indices].sort(), [0, 1, 2]);
    assert.deepEqual(selectForLabeling([0.3, 0.1], 0, { seed: 1 }).indices, []);
    assert.deepEqual(selectForLabeling([], 3, { seed: 1 }).indices, []);
  });

  void it('draws with frequencies that follow s', () => {
    // s = [0.4, 0.3, 0.2, 0.1, 0] for the top five of these scores.
    const scores = [1, 5, 2, 4, 3, 0, 0];
    const s = [0.4, 0.3, 0.2, 0.1];
    const rng = createRng(77);
    const draws = 20000;
    const counts = new Map<number, number>();
    for (let t = 0; t < draws; t++) {
      const idx = selectForLabeling(scores, 1, { rng }).indices[0] as number;
      counts.set(idx, (counts.get(idx) ?? 0) + 1);
    }
    assert.equal(counts.get(0), undefined, 'the last shortlisted candidate has s = 0');
    const observed = [1, 3, 4, 2].map((i) => counts.get(i) ?? 0);
    const chi2 = observed.reduce(
      (acc, o, i) => acc + (o - draws * (s[i] as number)) ** 2 / (draws * (s[i] as number)),
      0,
    );
    assert.ok(chi2 < 16.27, `chi-square ${chi2} (3 df, p = 0.001 cut-off 16.27)`);
  });

  void it('renormalises after each draw (inclusion probabilities of a two-draw selection)', () => {
    const scores = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
    const first = selectForLabeling(scores, 2, { seed: 1 });
    const s = first.shortlistProbabilities;
    // P(j included) = s_j + sum_{i != j} s_i * s_j / (1 - s_i).
    const inclusion = s.map(
      (sj, j) => sj + s.reduce((acc, si, i) => (i === j ? acc : acc + (si * sj) / (1 - si)), 0),
    );
    const rng = createRng(4242);
    const draws = 10000;
    const counts = new Array<number>(s.length).fill(0);
    for (let t = 0; t < draws; t++) {
      for (const rank of selectForLabeling(scores, 2, { rng }).ranks) counts[rank]! += 1;
    }
    counts.forEach((c, j) => {
      const expected = draws * (inclusion[j] as number);
      assert.ok(Math.abs(c - expected) <= 4 * Math.sqrt(expected) + 1, `rank ${j}: ${c} vs ${expected}`);
    });
  });
});

void describe('selectForLabeling with inter-diversity', () => {
  /** One feature vector per pool index: `groupOf[i]` picks one of a few orthogonal directions. */
  const groupFeatures = (groupOf: readonly number[], dims = 4): Map<number, number[]> =>
    new Map(groupOf.map((g, i) => [i, Array.from({ length: dims }, (_, k) => (k === g % dims ? 1 : 0))]));

  void it('refuses a bad strength or missing features', () => {
    assert.throws(
      () => selectForLabeling([1, 2], 1, { seed: 1, interDiversity: -1 }),
      isCode('BAD_INTER_DIVERSITY'),
    );
    assert.throws(
      () => selectForLabeling([1, 2], 1, { seed: 1, interDiversity: NaN }),
      isCode('BAD_INTER_DIVERSITY'),
    );
    assert.throws(
      () => selectForLabeling([3, 2, 1], 1, { seed: 1, interDiversity: 1 }),
      isCode('MISSING_FEATURES'),
    );
    assert.throws(
      () =>
        selectForLabeling([3, 2, 1], 1, {
          seed: 1,
          interDiversity: 1,
          features: new Map([
            [0, [1, 0]],
            [1, [1, 0, 0]],
            [2, [0, 1]],
          ]),
        }),
      isCode('MISSING_FEATURES'),
    );
  });

  void it('strength 0 is Eq. 4 as is, draw for draw', () => {
    fc.assert(
      fc.property(scoresArb, fc.integer({ min: 0, max: 12 }), fc.integer(), (scores, b, seed) => {
        const plain = selectForLabeling(scores, b, { seed });
        const zero = selectForLabeling(scores, b, { seed, interDiversity: 0, features: new Map() });
        assert.deepEqual(zero, plain);
      }),
    );
  });

  void it('never repeats, honours b, and the same seed gives the same draw', () => {
    fc.assert(
      fc.property(
        scoresArb,
        fc.integer({ min: 0, max: 12 }),
        fc.integer(),
        fc.double({ min: 0.1, max: 8, noNaN: true }),
        fc.boolean(),
        (scores, b, seed, beta, randomness) => {
          const features = groupFeatures(scores.map((_, i) => (i * 7) % 5));
          const options = { interDiversity: beta, features, randomness, ...(randomness ? { seed } : {}) };
          const a = selectForLabeling(scores, b, options);
          assert.equal(a.indices.length, Math.min(b, scores.length));
          assert.equal(new Set(a.indices).size, a.indices.length);
          for (const i of a.indices) assert.ok(a.shortlist.includes(i));
          for (const p of a.probabilities) assert.ok(p > 0 && p <= 1);
          assert.deepEqual(selectForLabeling(scores, b, options), a);
        },
      ),
    );
  });

  void it('ranked: takes the best of each near-duplicate group before a second of any', () => {
    // Scores fall with the index; indices 0-3 are one group (identical features), 4-5 another, 6-7 a third.
    const scores = [10, 9.9, 9.8, 9.7, 5, 4.9, 3, 2.9];
    const features = groupFeatures([0, 0, 0, 0, 1, 1, 2, 2]);
    const plain = selectForLabeling(scores, 3, { randomness: false, omega: 8 / 3 });
    assert.deepEqual(plain.indices, [0, 1, 2]);
    const diverse = selectForLabeling(scores, 3, {
      randomness: false,
      omega: 8 / 3,
      interDiversity: 1,
      features,
    });
    assert.deepEqual(diverse.indices, [0, 4, 6]);
    assert.deepEqual(diverse.ranks, [0, 4, 6]);
  });

  void it('drawn: exact duplicates of a chosen candidate are not drawn while others remain', () => {
    const scores = Array.from({ length: 40 }, (_, i) => 40 - i);
    const groupOf = scores.map((_, i) => i % 4); // 4 groups of 10 identical feature vectors
    const features = groupFeatures(groupOf);
    for (let seed = 0; seed < 200; seed++) {
      const sel = selectForLabeling(scores, 4, { seed, omega: 10, interDiversity: 2, features });
      assert.deepEqual(new Set(sel.indices.map((i) => groupOf[i])).size, 4, `seed ${seed}`);
      // Without inter-diversity some seed draws two of one group.
    }
    const collides = Array.from({ length: 200 }, (_, seed) =>
      selectForLabeling(scores, 4, { seed, omega: 10 }),
    ).some((sel) => new Set(sel.indices.map((i) => groupOf[i])).size < 4);
    assert.ok(collides);
  });

  void it('falls back to rank order once only duplicates of chosen candidates remain', () => {
    const scores = [4, 3, 2, 1, 0.5];
    const features = groupFeatures([0, 0, 0, 0, 0]);
    const sel = selectForLabeling(scores, 3, { seed: 5, omega: 5 / 3, interDiversity: 1, features });
    assert.equal(sel.takenBy[0], 'draw');
    assert.deepEqual(sel.takenBy.slice(1), ['rank', 'rank']);
    assert.equal(new Set(sel.indices).size, 3);
  });
});
