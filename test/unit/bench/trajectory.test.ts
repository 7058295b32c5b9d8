import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { initBackend } from '../../../src/model/backend.js';
import { buildCnn } from '../../../src/model/cnn.js';
import { createRng } from '../../../src/core/rng.js';
import { STRATEGY_CODES } from '../../../src/core/strategies.js';
import { runTrajectory, type CandidateSet, type PreparedData } from '../../../src/bench/trajectory.js';
import { PAPER_POLICY, POLICIES, parseCriterion } from '../../../src/bench/policy.js';
import { DEFAULT_FINE_TUNE } from '../../../src/model/fine-tune.js';

const SIDE = 12;
let m0: LayersModel;
before(async () => {
  await initBackend();
  m0 = buildCnn({
    height: SIDE,
    width: SIDE,
    channels: 1,
    numClasses: 10,
    seed: 1,
    filters: [4, 4],
    denseUnits: 8,
  });
});

/** Candidates of two classes (bright top vs bright bottom), m noisy patches each, 1:3. */
function candidates(n: number, m: number, seed: number): CandidateSet {
  const rng = createRng(seed);
  const per = m * SIDE * SIDE;
  const patches = new Float32Array(n * per);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = i % 4 === 0 ? 1 : 0;
    labels[i] = y;
    for (let j = 0; j < m; j++) {
      for (let r = 0; r < SIDE; r++) {
        for (let c = 0; c < SIDE; c++) {
          const bright = y === 0 ? r < SIDE / 2 : r >= SIDE / 2;
          patches[i * per + j * SIDE * SIDE + r * SIDE + c] = (bright ? 0.6 : 0.2) + rng.next() * 0.4;
        }
      }
    }
  }
  return { ids: Array.from({ length: n }, (_, i) => `c${i}`), labels, patches, count: n };
}

describe('one trajectory of Algorithm 1', () => {
  const data: PreparedData = {
    numClasses: 2,
    m: 4,
    patchShape: [SIDE, SIDE, 1],
    pool: candidates(48, 4, 1),
    evaluation: candidates(24, 4, 2),
    evaluationSplit: 'validation',
  };
  const base = {
    criterion: parseCriterion('entropy+majority+random'),
    b: 6,
    steps: 3,
    omega: 2,
    alpha: 0.25,
    seed: 11,
    fineTune: { ...DEFAULT_FINE_TUNE, epochs: 1, batchSize: 16 },
    scoreChunk: 10,
  };

  for (const strategy of STRATEGY_CODES) {
    it(`${strategy}: b labels per step, the curve has a point per step, no tensors leak`, async () => {
      const tensorsBefore = tf.memory().numTensors;
      const result = await runTrajectory(m0, data, {
        ...base,
        strategy,
        policy: PAPER_POLICY,
        policyName: 'paper',
      });
      assert.equal(tf.memory().numTensors, tensorsBefore);
      assert.deepEqual(
        result.curve.map((p) => p.labels),
        [0, 6, 12, 18],
      );
      for (const s of result.steps) {
        assert.equal(s.q, 6);
        assert.equal(
          s.classCountsInQ.reduce((a, b) => a + b, 0),
          6,
        );
        assert.ok(s.auc >= 0 && s.auc <= 1);
        assert.equal(s.selection, strategy === 'RFT(LQ)' ? 'random' : 'active');
        if (strategy === 'RFT(LQ)') assert.equal(s.patchesScored, 0);
        else assert.equal(s.patchesScored, (48 - (s.labels - 6)) * 4, 'scores every unlabeled candidate');
        if (strategy !== 'ACFT(HQ)') assert.equal(s.h, 0);
        const expectedTrain = strategy === 'ACFT(Q)' ? 6 : strategy === 'ACFT(HQ)' ? 6 + s.h : s.labels;
        assert.equal(s.trainCandidates, expectedTrain);
      }
      assert.ok(Number.isFinite(result.alc));
    });
  }

  it('is reproducible for a seed', async () => {
    const cfg = { ...base, strategy: 'ACFT(HQ)' as const, policy: POLICIES.replay!, policyName: 'replay' };
    const a = await runTrajectory(m0, data, cfg);
    const b = await runTrajectory(m0, data, cfg);
    assert.deepEqual(
      a.curve.map((p) => p.auc),
      b.curve.map((p) => p.auc),
    );
    assert.deepEqual(
      a.steps.map((s) => s.classCountsInQ),
      b.steps.map((s) => s.classCountsInQ),
    );
  });

  it('random warm-up steps select at random, then actively', async () => {
    const result = await runTrajectory(m0, data, {
      ...base,
      strategy: 'ACFT(HQ)',
      policy: { ...PAPER_POLICY, randomWarmupSteps: 2 },
      policyName: 'warm',
    });
    assert.deepEqual(
      result.steps.map((s) => s.selection),
      ['random', 'random', 'active'],
    );
  });

  it('inter-diversity selects b distinct candidates per step, reproducibly, without leaking tensors', async () => {
    const cfg = {
      ...base,
      strategy: 'ACFT(HQ)' as const,
      policy: POLICIES['inter-4']!,
      policyName: 'inter-4',
    };
    const tensorsBefore = tf.memory().numTensors;
    const a = await runTrajectory(m0, data, cfg);
    assert.equal(tf.memory().numTensors, tensorsBefore);
    for (const s of a.steps) {
      assert.equal(s.q, 6);
      assert.equal(s.selection, 'active');
    }
    const b = await runTrajectory(m0, data, cfg);
    assert.deepEqual(
      a.steps.map((s) => s.classCountsInQ),
      b.steps.map((s) => s.classCountsInQ),
    );
  });
});
