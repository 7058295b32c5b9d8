import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../src/model/backend.js';
import { buildCnn } from '../../../src/model/cnn.js';
import { classBalanceWeights, fineTune } from '../../../src/model/fine-tune.js';
import { createRng } from '../../../src/core/rng.js';

before(async () => {
  await initBackend();
});

/** Two separable classes: bright upper half vs bright lower half, with noise. */
function toyData(n: number, seed: number) {
  const rng = createRng(seed);
  const patches = new Float32Array(n * 28 * 28);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = i % 2;
    labels[i] = y;
    for (let r = 0; r < 28; r++) {
      for (let c = 0; c < 28; c++) {
        const bright = y === 0 ? r < 14 : r >= 14;
        patches[i * 784 + r * 28 + c] = (bright ? 0.8 : 0.1) + rng.next() * 0.1;
      }
    }
  }
  return { patches, labels, count: n, patchShape: [28, 28, 1] as [number, number, number] };
}

describe('fine-tuning', () => {
  it('learns a separable toy task, loss decreasing, without leaking tensors', async () => {
    const model = buildCnn({
      height: 28,
      width: 28,
      channels: 1,
      numClasses: 2,
      seed: 2,
      filters: [4, 8],
      denseUnits: 16,
    });
    const data = toyData(64, 1);
    const before = tf.memory().numTensors;
    const result = await fineTune(model, data, { epochs: 4, batchSize: 16, learningRate: 1e-3, seed: 1 });
    assert.equal(tf.memory().numTensors, before);
    assert.equal(result.epochLosses.length, 4);
    assert.ok(result.epochLosses.at(-1)! < result.epochLosses[0]!, `losses ${result.epochLosses.join(', ')}`);
    const x = tf.tensor4d(data.patches, [64, 28, 28, 1]);
    const acc = tf.tidy(() => {
      const pred = tf.argMax(model.predict(x) as tf.Tensor, 1);
      return tf.mean(tf.cast(tf.equal(pred, tf.tensor1d(data.labels, 'int32')), 'float32')).dataSync()[0]!;
    });
    assert.ok(acc > 0.9, `accuracy ${acc}`);
    x.dispose();
    model.dispose();
  });

  it('is deterministic for a seed', async () => {
    const run = async () => {
      const model = buildCnn({
        height: 28,
        width: 28,
        channels: 1,
        numClasses: 2,
        seed: 2,
        filters: [4, 8],
        denseUnits: 16,
      });
      const r = await fineTune(model, toyData(32, 3), {
        epochs: 2,
        batchSize: 8,
        seed: 5,
        optimizer: 'sgd-momentum',
        learningRate: 0.01,
      });
      model.dispose();
      return r.epochLosses;
    };
    assert.deepEqual(await run(), await run());
  });

  it('gives the head 10x the learning rate of the body (one SGD step, same gradients)', async () => {
    const step = async (headLearningRateMultiplier: number) => {
      const model = buildCnn({
        height: 28,
        width: 28,
        channels: 1,
        numClasses: 2,
        seed: 2,
        filters: [4, 8],
        denseUnits: 16,
        dropout: 0,
      });
      const body0 = model.getLayer('conv1').getWeights()[0]!.clone();
      const head0 = model.getLayer('head').getWeights()[0]!.clone();
      await fineTune(model, toyData(16, 4), {
        epochs: 1,
        batchSize: 16,
        learningRate: 1e-3,
        headLearningRateMultiplier,
        optimizer: 'sgd-momentum',
      });
      const delta = (a: tf.Tensor, b: tf.Tensor) =>
        tf.tidy(() => tf.sum(tf.abs(tf.sub(a, b))).dataSync()[0]!);
      const out = {
        body: delta(body0, model.getLayer('conv1').getWeights()[0]!),
        head: delta(head0, model.getLayer('head').getWeights()[0]!),
      };
      tf.dispose([body0, head0]);
      model.dispose();
      return out;
    };
    const one = await step(1);
    const ten = await step(10);
    assert.ok(one.body > 0 && one.head > 0);
    assert.ok(Math.abs(ten.body / one.body - 1) < 1e-3, `body ratio ${ten.body / one.body}`);
    assert.ok(Math.abs(ten.head / one.head - 10) < 1e-2, `head ratio ${ten.head / one.head}`);
  });

  it('rejects labels outside the model classes', async () => {
    const model = buildCnn({
      height: 28,
      width: 28,
      channels: 1,
      numClasses: 2,
      seed: 2,
      filters: [4, 8],
      denseUnits: 16,
    });
    const data = toyData(4, 1);
    data.labels[0] = 5;
    await assert.rejects(fineTune(model, data), /label 5/);
    model.dispose();
  });

  it('computes class-balanced weights n / (K n_k)', () => {
    assert.deepEqual(classBalanceWeights(Int32Array.from([0, 0, 0, 1]), 2), [4 / 6, 2]);
    assert.deepEqual(classBalanceWeights(Int32Array.from([1, 1]), 3), [0, 1, 0]);
  });
});
