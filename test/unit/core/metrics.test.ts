import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  alc,
  annotationSaving,
  binaryAuc,
  InvalidMetricInputError,
  labelsToReach,
  macroAuc,
  meanStd,
  type CurvePoint,
} from '../../../src/core/metrics.js';

/** AUC by its definition: over all (positive, negative) pairs, 1 if the positive scores higher, 1/2 on ties. */
function pairwiseAuc(scores: readonly number[], labels: readonly boolean[]): number {
  let wins = 0;
  let pairs = 0;
  scores.forEach((sp, i) => {
    if (!labels[i]) return;
    scores.forEach((sn, j) => {
      if (labels[j]) return;
      pairs++;
      wins += sp > sn ? 1 : sp === sn ? 0.5 : 0;
    });
  });
  return wins / pairs;
}

/** Scores with many ties, and labels of both classes. */
const scoredLabels = fc
  .array(
    fc.tuple(
      fc.integer({ min: 0, max: 5 }).map((v) => v / 5),
      fc.boolean(),
    ),
    { minLength: 2, maxLength: 60 },
  )
  .filter((pairs) => pairs.some(([, l]) => l) && pairs.some(([, l]) => !l));

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

void describe('binaryAuc', () => {
  void it('computes a hand example with ties', () => {
    // Pairs (positive, negative): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4, 0.4>0.1, 0.4=0.4 -> 4.5 / 6.
    assert.equal(binaryAuc([0.1, 0.4, 0.35, 0.8, 0.4], [0, 0, 1, 1, 1]), 0.75);
    assert.equal(binaryAuc([0.1, 0.4, 0.35, 0.8, 0.4], [false, false, true, true, true]), 0.75);
  });

  void it('is 1 when perfect, 0 when reversed and 0.5 when all tied', () => {
    assert.equal(binaryAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
    assert.equal(binaryAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
    assert.equal(binaryAuc([0.5, 0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1, 1]), 0.5);
  });

  void it('is NaN when a class is absent', () => {
    assert.ok(Number.isNaN(binaryAuc([0.1, 0.2], [1, 1])));
    assert.ok(Number.isNaN(binaryAuc([0.1, 0.2], [0, 0])));
    assert.ok(Number.isNaN(binaryAuc([], [])));
  });

  void it('refuses malformed input', () => {
    const code = (c: string) => (e: unknown) => e instanceof InvalidMetricInputError && e.code === c;
    assert.throws(() => binaryAuc([0.1], [0, 1]), code('LENGTH_MISMATCH'));
    assert.throws(() => binaryAuc([0.1, NaN], [0, 1]), code('BAD_SCORE'));
    assert.throws(() => binaryAuc([0.1, 0.2], [0, 2 as 1]), code('BAD_LABEL'));
  });

  void it('matches the pairwise definition, and AUC(s) + AUC(-s) = 1', () => {
    fc.assert(
      fc.property(scoredLabels, (pairs) => {
        const scores = pairs.map(([s]) => s);
        const labels = pairs.map(([, l]) => l);
        const auc = binaryAuc(scores, labels);
        close(auc, pairwiseAuc(scores, labels), 1e-9);
        close(
          auc +
            binaryAuc(
              scores.map((s) => -s),
              labels,
            ),
          1,
          1e-9,
        );
      }),
      { numRuns: 200 },
    );
  });
});

void describe('macroAuc', () => {
  void it('equals binaryAuc on column 1 for two classes', () => {
    fc.assert(
      fc.property(scoredLabels, (pairs) => {
        const probs = pairs.map(([s]) => [1 - s, s]);
        const labels = pairs.map(([, l]) => (l ? 1 : 0));
        assert.equal(
          macroAuc(probs, labels),
          binaryAuc(
            probs.map((r) => r[1] as number),
            labels.map((l) => l === 1),
          ),
        );
      }),
      { numRuns: 100 },
    );
  });

  void it('averages one-vs-rest AUCs over the classes present', () => {
    const probs = [
      [0.7, 0.2, 0.1],
      [0.2, 0.5, 0.3],
      [0.1, 0.3, 0.6],
      [0.4, 0.4, 0.2],
      [0.3, 0.3, 0.4],
    ];
    const labels = [0, 1, 2, 1, 0];
    const ovr = [0, 1, 2].map((c) =>
      pairwiseAuc(
        probs.map((r) => r[c] as number),
        labels.map((l) => l === c),
      ),
    );
    close(macroAuc(probs, labels), (ovr[0]! + ovr[1]! + ovr[2]!) / 3);
    // Class 1 absent: averaged over classes 0 and 2 only.
    const labels02 = [0, 2, 2, 0, 0];
    const ovr02 = [0, 2].map((c) =>
      pairwiseAuc(
        probs.map((r) => r[c] as number),
        labels02.map((l) => l === c),
      ),
    );
    close(macroAuc(probs, labels02), (ovr02[0]! + ovr02[1]!) / 2);
    assert.ok(Number.isNaN(macroAuc(probs, [1, 1, 1, 1, 1])));
    assert.throws(() => macroAuc(probs, [0, 1, 3, 1, 0]), InvalidMetricInputError);
    assert.throws(() => macroAuc(probs, [0, 1]), InvalidMetricInputError);
  });
});

void describe('learning curves', () => {
  const curve: CurvePoint[] = [
    { labels: 10, auc: 0.6 },
    { labels: 20, auc: 0.8 },
    { labels: 30, auc: 0.75 },
    { labels: 40, auc: 0.9 },
  ];

  void it('alc is the trapezoidal area divided by the range of labels', () => {
    const points = [
      { labels: 0, auc: 0.5 },
      { labels: 10, auc: 0.7 },
      { labels: 30, auc: 0.9 },
    ];
    // (10 * 0.6 + 20 * 0.8) / 30
    close(alc(points), 22 / 30);
    close(alc([points[2]!, points[0]!, points[1]!]), 22 / 30);
    assert.equal(alc([{ labels: 50, auc: 0.83 }]), 0.83);
    assert.throws(() => alc([]), InvalidMetricInputError);
    assert.throws(() => alc([points[0]!, points[0]!]), InvalidMetricInputError);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.nat(1000), { minLength: 2 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (xs, v) => {
          close(alc(xs.map((labels) => ({ labels, auc: v }))), v, 1e-12);
        },
      ),
      { numRuns: 50 },
    );
  });

  void it('labelsToReach is the first measured point at or above the target', () => {
    assert.equal(labelsToReach(curve, 0.75), 20);
    assert.equal(labelsToReach(curve, 0.8), 20);
    assert.equal(labelsToReach(curve, 0.85), 40);
    assert.equal(labelsToReach(curve, 0.5), 10);
    assert.equal(labelsToReach(curve, 0.95), Infinity);
    assert.equal(labelsToReach([...curve].reverse(), 0.75), 20);
  });

  void it('annotationSaving compares the labels needed to reach the target', () => {
    const random: CurvePoint[] = [
      { labels: 20, auc: 0.6 },
      { labels: 50, auc: 0.75 },
      { labels: 100, auc: 0.82 },
    ];
    close(annotationSaving(curve, random, 0.8), 1 - 20 / 100);
    close(annotationSaving(curve, random, 0.75), 1 - 20 / 50);
    assert.ok(Number.isNaN(annotationSaving(curve, random, 0.85)));
    assert.equal(annotationSaving(random, curve, 0.85), -Infinity);
    assert.equal(annotationSaving(random, random, 0.75), 0);
  });
});

void describe('meanStd', () => {
  void it('gives the mean and the sample standard deviation', () => {
    const r = meanStd([2, 4, 4, 4, 5, 5, 7, 9]);
    assert.equal(r.mean, 5);
    assert.equal(r.n, 8);
    close(r.std, Math.sqrt(32 / 7));
    assert.deepEqual(meanStd([3]), { mean: 3, std: 0, n: 1 });
    const empty = meanStd([]);
    assert.ok(Number.isNaN(empty.mean) && Number.isNaN(empty.std) && empty.n === 0);
  });
});
