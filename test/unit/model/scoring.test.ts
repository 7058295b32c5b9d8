import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { initBackend } from '../../../src/model/backend.js';
import { scoreCandidate, type ScoreOptions } from '../../../src/core/score.js';
import {
  featureModel,
  meanCandidateFeatures,
  scoreProbabilityTensor,
  scoreCandidatesBatch,
} from '../../../src/model/scoring.js';
import { buildCnn } from '../../../src/model/cnn.js';
import { createRng } from '../../../src/core/rng.js';

before(async () => {
  await initBackend();
});

/** Random softmax rows: m patches x k classes, sharp or flat depending on the temperature. */
function randomProbs(
  rng: ReturnType<typeof createRng>,
  m: number,
  k: number,
  temperature: number,
): number[][] {
  return Array.from({ length: m }, () => {
    const logits = Array.from({ length: k }, () => (rng.next() * 2 - 1) * temperature);
    const max = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - max));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
}

function tensorScores(batch: number[][][], options: ScoreOptions) {
  const t = tf.tensor3d(batch);
  const out = scoreProbabilityTensor(t, options);
  const res = {
    score: Array.from(out.score.dataSync()),
    entropy: Array.from(out.entropy.dataSync()),
    diversity: Array.from(out.diversity.dataSync()),
    dominant: Array.from(out.dominantClass.dataSync()),
  };
  tf.dispose([t, out.score, out.entropy, out.diversity, out.dominantClass, out.meanProbs]);
  return res;
}

describe('batched tensor scoring agrees with scoreCandidate', () => {
  const settings: { name: string; options: ScoreOptions }[] = [
    { name: 'entropy, majority', options: { lambdaEntropy: 1, lambdaDiversity: 0, majority: true } },
    { name: 'entropy, all patches', options: { lambdaEntropy: 1, lambdaDiversity: 0, majority: false } },
    { name: 'diversity, majority', options: { lambdaEntropy: 0, lambdaDiversity: 1, majority: true } },
    { name: 'diversity, all patches', options: { lambdaEntropy: 0, lambdaDiversity: 1, majority: false } },
    {
      name: 'both, alpha 0.5',
      options: { lambdaEntropy: 0.7, lambdaDiversity: 0.3, majority: true, alpha: 0.5 },
    },
  ];
  for (const { name, options } of settings) {
    it(`${name}: to 1e-4 on random candidates (binary and 10-class)`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 1_000_000 }),
          fc.integer({ min: 1, max: 24 }),
          fc.constantFrom(2, 3, 10),
          fc.constantFrom(0.5, 3, 12),
          (seed, m, k, temperature) => {
            const rng = createRng(seed);
            const batch = Array.from({ length: 6 }, () => randomProbs(rng, m, k, temperature));
            const got = tensorScores(batch, options);
            batch.forEach((probs, i) => {
              const ref = scoreCandidate(probs, options);
              const tol = 1e-4 * Math.max(1, Math.abs(ref.score));
              assert.ok(Math.abs(got.score[i]! - ref.score) <= tol, `score ${got.score[i]} vs ${ref.score}`);
              assert.ok(Math.abs(got.entropy[i]! - ref.entropy) <= 1e-4 * Math.max(1, ref.entropy));
              assert.ok(Math.abs(got.diversity[i]! - ref.diversity) <= 1e-4 * Math.max(1, ref.diversity));
              assert.equal(got.dominant[i], ref.dominantClass);
            });
          },
        ),
        { numRuns: 40, seed: 42 },
      );
    });
  }

  it('scores a CNN batch in one pass and agrees with per-candidate reference on its predictions', async () => {
    const model = buildCnn({ height: 28, width: 28, channels: 1, numClasses: 2, seed: 3 });
    const rng = createRng(9);
    const n = 5;
    const m = 8;
    const data = Float32Array.from({ length: n * m * 28 * 28 }, () => rng.next());
    const x = tf.tensor4d(data, [n * m, 28, 28, 1]);
    const batch = await scoreCandidatesBatch(model, x, m, { majority: true, alpha: 0.25 });
    const probs = model.predict(x) as tf.Tensor2D;
    const rows = await probs.array();
    for (let i = 0; i < n; i++) {
      const ref = scoreCandidate(rows.slice(i * m, (i + 1) * m), { majority: true, alpha: 0.25 });
      assert.ok(Math.abs(batch.score[i]! - ref.score) < 1e-4);
      assert.ok(Math.abs(batch.meanProbs[i * 2]! - ref.meanProbs[0]!) < 1e-5);
    }
    tf.dispose([x, probs]);
    model.dispose();
  });

  it('rejects a patch count that is not a multiple of m', async () => {
    const model = buildCnn({ height: 28, width: 28, channels: 1, numClasses: 2, seed: 3 });
    const x = tf.zeros([7, 28, 28, 1]) as tf.Tensor4D;
    await assert.rejects(scoreCandidatesBatch(model, x, 3), /not a multiple/);
    x.dispose();
    model.dispose();
  });

  it("features: the head's input, averaged over each candidate's patches", async () => {
    const model = buildCnn({ height: 28, width: 28, channels: 1, numClasses: 2, seed: 3, denseUnits: 16 });
    const rng = createRng(4);
    const m = 3;
    const n = 4;
    const x = tf.tensor4d(
      Float32Array.from({ length: n * m * 28 * 28 }, () => rng.next()),
      [n * m, 28, 28, 1],
    );
    const features = featureModel(model);
    const { values, dim } = await meanCandidateFeatures(features, x, m);
    assert.equal(dim, 16);
    assert.equal(values.length, n * dim);
    const perPatch = (features.predict(x) as tf.Tensor2D).arraySync();
    // The head applied to the features gives the model's prediction.
    const head = model.getLayer('head');
    const viaHead = (head.apply(tf.tensor2d(perPatch)) as tf.Tensor2D).arraySync();
    const direct = (model.predict(x) as tf.Tensor2D).arraySync();
    viaHead.forEach((row, i) => row.forEach((v, k) => assert.ok(Math.abs(v - direct[i]![k]!) < 1e-5)));
    for (let c = 0; c < n; c++) {
      for (let k = 0; k < dim; k++) {
        let mean = 0;
        for (let j = 0; j < m; j++) mean += perPatch[c * m + j]![k]! / m;
        assert.ok(Math.abs(mean - values[c * dim + k]!) < 1e-5);
      }
    }
    x.dispose();
    model.dispose();
  });
});
