import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DEFAULT_SCORE_OPTIONS,
  InvalidScoreInputError,
  patchDiversity,
  patchDiversityClosedForm,
  resolveScoreOptions,
  scoreCandidate,
  type ScoreOptions,
} from '../../../src/core/score.js';
import { createRng } from '../../../src/core/rng.js';

const EPS = 1e-6;

function close(actual: number, expected: number, tol = 1e-9): void {
  assert.ok(
    Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `expected ${actual} to be within ${tol} of ${expected}`,
  );
}

/** Binary rows [1 - x, x] from the probabilities x of class 1. */
function binary(xs: readonly number[]): number[][] {
  return xs.map((x) => [1 - x, x]);
}

/** A probability row over `classes` classes from raw non-negative weights (uniform if all zero). */
const row = (classes: number): fc.Arbitrary<number[]> =>
  fc
    .array(fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })), {
      minLength: classes,
      maxLength: classes,
    })
    .map((w) => {
      const s = w.reduce((a, b) => a + b, 0);
      return s === 0 ? w.map(() => 1 / classes) : w.map((v) => v / s);
    });

/** A patch probability matrix: 1..24 patches over 2..6 classes. */
const matrix: fc.Arbitrary<number[][]> = fc
  .integer({ min: 2, max: 6 })
  .chain((classes) => fc.array(row(classes), { minLength: 1, maxLength: 24 }));

/** A matrix whose values are multiples of 1/16, so every sum is exact whatever the order. */
const dyadicMatrix: fc.Arbitrary<number[][]> = fc.integer({ min: 2, max: 5 }).chain((classes) =>
  fc.array(
    fc
      .array(fc.integer({ min: 0, max: 16 }), { minLength: classes - 1, maxLength: classes - 1 })
      .map((cuts) => {
        const sorted = [0, ...cuts.sort((a, b) => a - b), 16];
        return sorted.slice(1).map((c, y) => (c - (sorted[y] as number)) / 16);
      }),
    { minLength: 1, maxLength: 20 },
  ),
);

const options: fc.Arbitrary<ScoreOptions> = fc.record({
  alpha: fc.double({ min: 0.01, max: 1, noNaN: true }),
  majority: fc.boolean(),
  lambdaEntropy: fc.double({ min: 0, max: 3, noNaN: true }),
  lambdaDiversity: fc.double({ min: 0, max: 3, noNaN: true }),
});

void describe('scoreCandidate', () => {
  void it('uses the documented defaults', () => {
    assert.deepEqual(
      { ...DEFAULT_SCORE_OPTIONS },
      { alpha: 0.25, majority: true, lambdaEntropy: 1, lambdaDiversity: 0, epsilon: 1e-6 },
    );
    assert.deepEqual(resolveScoreOptions({ alpha: 0.5 }), { ...DEFAULT_SCORE_OPTIONS, alpha: 0.5 });
  });

  void it('computes a small binary example by hand', () => {
    const probs = [
      [0.5, 0.5],
      [0.9, 0.1],
      [0.2, 0.8],
      [0.6, 0.4],
    ];
    const r = scoreCandidate(probs, { alpha: 0.5, lambdaEntropy: 2, lambdaDiversity: 3 });
    assert.equal(r.dominantClass, 0);
    assert.deepEqual(
      r.meanProbs.map((v) => Number(v.toFixed(12))),
      [0.55, 0.45],
    );
    // k = ceil(0.5 * 4) = 2: the two patches most confident in class 0, most confident first.
    assert.deepEqual(r.keptPatches, [1, 3]);
    const entropy =
      -(0.9 * Math.log(0.9) + 0.1 * Math.log(0.1) + 0.6 * Math.log(0.6) + 0.4 * Math.log(0.4)) / 2;
    const diversity = (0.9 - 0.6) * Math.log(0.9 / 0.6) + (0.1 - 0.4) * Math.log(0.1 / 0.4);
    close(r.entropy, entropy);
    close(r.diversity, diversity);
    close(r.score, 2 * entropy + 3 * diversity);
  });

  void it('keeps k = max(1, ceil(alpha * m)) patches', () => {
    const m = (n: number) => binary(Array.from({ length: n }, (_, j) => j / n));
    assert.equal(scoreCandidate(m(11)).keptPatches.length, 3);
    assert.equal(scoreCandidate(m(1)).keptPatches.length, 1);
    assert.equal(scoreCandidate(m(8), { alpha: 0.01 }).keptPatches.length, 1);
    assert.equal(scoreCandidate(m(8), { alpha: 1 }).keptPatches.length, 8);
    // 0.1 * 30 is 3.0000000000000004 in floating point: still 3 patches.
    assert.equal(scoreCandidate(m(30), { alpha: 0.1 }).keptPatches.length, 3);
    assert.deepEqual(scoreCandidate(m(5), { majority: false }).keptPatches, [0, 1, 2, 3, 4]);
  });

  void it('breaks ties: first class for the dominant class, patch order for majority selection', () => {
    const probs = [
      [0.5, 0.5],
      [0.5, 0.5],
      [0.5, 0.5],
      [0.5, 0.5],
    ];
    const r = scoreCandidate(probs, { alpha: 0.5 });
    assert.equal(r.dominantClass, 0);
    assert.deepEqual(r.keptPatches, [0, 1]);
    const threeClass = [
      [0.7, 0.2, 0.1],
      [0.6, 0.1, 0.3],
      [0.7, 0.3, 0.0],
      [0.7, 0.0, 0.3],
    ];
    assert.deepEqual(scoreCandidate(threeClass, { alpha: 0.5 }).keptPatches, [0, 2]);
  });

  void it('clamps probabilities inside logarithms only', () => {
    const r = scoreCandidate(
      [
        [1, 0],
        [0, 1],
      ],
      { majority: false, lambdaDiversity: 1 },
    );
    assert.equal(r.entropy, 0);
    // Each class contributes (1 - 0) * (ln 1 - ln eps).
    close(r.diversity, -2 * Math.log(EPS));
    close(r.score, r.diversity);
    const larger = scoreCandidate(
      [
        [1, 0],
        [0, 1],
      ],
      { majority: false, lambdaEntropy: 0, lambdaDiversity: 1, epsilon: 1e-3 },
    );
    close(larger.diversity, -2 * Math.log(1e-3));
  });

  void it('accepts float error of a softmax but refuses bad input with a named error', () => {
    assert.doesNotThrow(() =>
      scoreCandidate([
        [1 + 1e-7, -1e-7],
        [0.3, 0.7],
      ]),
    );
    const bad: [unknown, string][] = [
      [[], 'EMPTY'],
      [[[]], 'TOO_FEW_CLASSES'],
      [[[1]], 'TOO_FEW_CLASSES'],
      [[[0.5, 0.5], [1]], 'NOT_RECTANGULAR'],
      [[[0.5, NaN]], 'BAD_PROBABILITY'],
      [[[0.5, Infinity]], 'BAD_PROBABILITY'],
      [[[1.1, -0.1]], 'BAD_PROBABILITY'],
      [[[-0.01, 1.01]], 'BAD_PROBABILITY'],
    ];
    for (const [probs, code] of bad) {
      assert.throws(
        () => scoreCandidate(probs as number[][]),
        (e: unknown) => e instanceof InvalidScoreInputError && e.code === code && e.retryable === false,
        JSON.stringify(probs),
      );
    }
    for (const o of [{ alpha: 0 }, { alpha: 1.5 }, { alpha: NaN }, { epsilon: 0 }, { lambdaEntropy: NaN }]) {
      assert.throws(
        () => scoreCandidate([[0.5, 0.5]], o),
        (e: unknown) => e instanceof InvalidScoreInputError && e.code === 'BAD_OPTION',
      );
    }
  });

  void it('bounds entropy by [0, ln |Y|] and keeps diversity >= 0', () => {
    fc.assert(
      fc.property(matrix, options, (probs, opts) => {
        const classes = (probs[0] as number[]).length;
        const r = scoreCandidate(probs, opts);
        assert.ok(r.entropy >= 0, `entropy ${r.entropy}`);
        assert.ok(r.entropy <= Math.log(classes) + 1e-9, `entropy ${r.entropy} > ln ${classes}`);
        assert.ok(r.diversity >= 0, `diversity ${r.diversity}`);
        close(
          r.score,
          (opts.lambdaEntropy ?? 1) * r.entropy + (opts.lambdaDiversity ?? 0) * r.diversity,
          1e-12,
        );
      }),
      { numRuns: 200 },
    );
  });

  void it('computes the same diversity by the closed form as by the literal pairwise sum', () => {
    fc.assert(
      fc.property(matrix, (probs) => {
        const pairwise = patchDiversity(probs, EPS);
        const closed = patchDiversityClosedForm(probs, EPS);
        assert.ok(Math.abs(pairwise - closed) <= 1e-9 * Math.max(1, pairwise), `${pairwise} vs ${closed}`);
      }),
      { numRuns: 200 },
    );
  });

  void it('does not depend on the order of the patches', () => {
    const permuted = (probs: number[][]) =>
      fc.tuple(fc.constant(probs), fc.shuffledSubarray(probs, { minLength: probs.length }));
    // Without majority selection, for any matrix (up to float summation order).
    fc.assert(
      fc.property(matrix.chain(permuted), options, ([probs, shuffled], opts) => {
        const a = scoreCandidate(probs, { ...opts, majority: false });
        const b = scoreCandidate(shuffled, { ...opts, majority: false });
        close(a.entropy, b.entropy);
        close(a.diversity, b.diversity);
        close(a.score, b.score);
      }),
      { numRuns: 150 },
    );
    // With majority selection, when patches tied on the dominant class are identical (otherwise
    // the stable sort legitimately keeps different patches). Dyadic values make sums exact.
    fc.assert(
      fc.property(dyadicMatrix.chain(permuted), options, ([probs, shuffled], opts) => {
        const dominant = scoreCandidate(probs).dominantClass;
        fc.pre(
          probs.every((p) =>
            probs.every((q) => p[dominant] !== q[dominant] || p.every((v, y) => v === q[y])),
          ),
        );
        const a = scoreCandidate(probs, { ...opts, majority: true });
        const b = scoreCandidate(shuffled, { ...opts, majority: true });
        assert.equal(a.dominantClass, b.dominantClass);
        close(a.entropy, b.entropy);
        close(a.diversity, b.diversity);
        close(a.score, b.score);
      }),
      { numRuns: 150 },
    );
  });

  void it('with alpha = 1 equals majority selection off', () => {
    fc.assert(
      fc.property(matrix, options, (probs, opts) => {
        const on = scoreCandidate(probs, { ...opts, majority: true, alpha: 1 });
        const off = scoreCandidate(probs, { ...opts, majority: false });
        assert.deepEqual(
          [...on.keptPatches].sort((a, b) => a - b),
          off.keptPatches,
        );
        close(on.entropy, off.entropy);
        close(on.diversity, off.diversity);
        close(on.score, off.score);
      }),
      { numRuns: 150 },
    );
  });
});

void describe("scoreCandidate on the paper's Table 1 patterns (binary, 11 patches)", () => {
  // Probability of class 1 of each patch, as in the paper's Table 1.
  const patterns: Record<string, number[]> = {
    A: [0.4, 0.4, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.6, 0.6], // piled up at 0.5
    B: [0.0, 0.1, 0.2, 0.3, 0.4, 0.4, 0.6, 0.7, 0.8, 1.0, 1.0], // spread widely
    C: [0.0, 0.0, 0.0, 0.1, 0.1, 0.9, 0.9, 1.0, 1.0, 1.0, 1.0], // split between both ends
    D: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.1, 0.1, 0.1], // confidently 0
    E: [0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], // confidently 1
    F: [0.0, 0.1, 0.7, 0.8, 0.8, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0], // confident with outliers
  };
  patterns.G = (patterns.F as number[]).map((x) => 1 - x).reverse();

  const criteria: Record<string, ScoreOptions> = {
    entropy: { majority: false, lambdaEntropy: 1, lambdaDiversity: 0 },
    'entropy+majority': { majority: true, alpha: 0.25, lambdaEntropy: 1, lambdaDiversity: 0 },
    diversity: { majority: false, lambdaEntropy: 0, lambdaDiversity: 1 },
    'diversity+majority': { majority: true, alpha: 0.25, lambdaEntropy: 0, lambdaDiversity: 1 },
  };
  const expectedFirst: Record<string, string> = {
    entropy: 'A',
    'entropy+majority': 'A',
    diversity: 'C',
    'diversity+majority': 'B',
  };

  function scoresOf(pats: Record<string, number[]>, opts: ScoreOptions): Record<string, number> {
    return Object.fromEntries(
      Object.entries(pats).map(([name, xs]) => [name, scoreCandidate(binary(xs), opts).score]),
    );
  }

  function strictFirst(scores: Record<string, number>): string {
    const ranked = Object.entries(scores).sort((a, b) => b[1] - a[1]);
    const [first, second] = ranked;
    assert.ok(first && second && first[1] > second[1], `no strict first choice in ${JSON.stringify(scores)}`);
    return first[0];
  }

  for (const [criterion, opts] of Object.entries(criteria)) {
    void it(`${criterion} prefers pattern ${expectedFirst[criterion]}`, () => {
      assert.equal(strictFirst(scoresOf(patterns, opts)), expectedFirst[criterion]);
    });
  }

  void it('scores the confident patterns D and E low on every criterion', () => {
    for (const [criterion, opts] of Object.entries(criteria)) {
      const s = scoresOf(patterns, opts);
      const d = s.D as number;
      const e = s.E as number;
      close(d, e); // mirror images of each other
      const others = ['B', 'C', 'F', 'G'].map((k) => s[k] as number);
      // Below (or tied with) every pattern with spread; only A, the uncertain-but-consistent
      // pattern, can score lower, and only on diversity without majority.
      for (const o of others) assert.ok(d <= o + 1e-12, `${criterion}: D ${d} > ${o}`);
      if (criterion !== 'diversity') assert.ok(d <= (s.A as number) + 1e-12, `${criterion}: D above A`);
      assert.ok(
        d < (s[expectedFirst[criterion] as string] as number),
        `${criterion}: D not below the first choice`,
      );
    }
  });

  void it('keeps the same first choices when the patterns are jittered', () => {
    const rng = createRng(20210101);
    for (let trial = 0; trial < 20; trial++) {
      const jittered = Object.fromEntries(
        Object.entries(patterns).map(([name, xs]) => [
          name,
          xs.map((x) => Math.min(1, Math.max(0, x + (rng.next() - 0.5) * 0.02))),
        ]),
      );
      for (const [criterion, opts] of Object.entries(criteria)) {
        assert.equal(
          strictFirst(scoresOf(jittered, opts)),
          expectedFirst[criterion],
          `${criterion}, trial ${trial}`,
        );
      }
    }
  });
});
