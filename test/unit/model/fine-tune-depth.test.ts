import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../../src/model/backend.js';
import { buildCnn, replaceHead } from '../../../src/model/cnn.js';
import { fineTune } from '../../../src/model/fine-tune.js';
import {
  applyLayers,
  planCut,
  splitModel,
  topologyLayers,
  trunkFingerprint,
  type CutLayer,
} from '../../../src/model/fine-tune-depth.js';
import { deserializeModel, serializeModel } from '../../../src/model/model-store.js';
import { createRng } from '../../../src/core/rng.js';

before(async () => {
  await initBackend();
});

const small = (seed: number, numClasses = 2) =>
  buildCnn({ height: 28, width: 28, channels: 1, numClasses, seed, filters: [4, 8], denseUnits: 16 });

function toyData(n: number, seed: number) {
  const rng = createRng(seed);
  const patches = Float32Array.from({ length: n * 784 }, () => rng.next());
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  return { patches, labels, count: n, patchShape: [28, 28, 1] as [number, number, number] };
}

/** Every weight of the model by layer/weight name, copied out. */
function weightsByName(model: ReturnType<typeof small>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const layer of model.layers) {
    layer.getWeights().forEach((w, i) => out.set(`${layer.name}/${i}`, Float32Array.from(w.dataSync())));
  }
  return out;
}

const CHAIN: CutLayer[] = [
  { name: 'conv1', weighted: true, className: 'Conv2D' },
  { name: 'pool1', weighted: false, className: 'MaxPooling2D' },
  { name: 'conv2', weighted: true, className: 'Conv2D' },
  { name: 'pool2', weighted: false, className: 'MaxPooling2D' },
  { name: 'flatten', weighted: false, className: 'Flatten' },
  { name: 'features', weighted: true, className: 'Dense' },
  { name: 'dropout', weighted: false, className: 'Dropout' },
  { name: 'head', weighted: true, className: 'Dense' },
];

void describe('planCut', () => {
  void it('cuts below the lowest fine-tuned weight layer, under any dropout just below it', () => {
    assert.deepEqual(planCut(CHAIN, 1), {
      cutIndex: 5,
      cutLayer: 'features',
      frozen: ['conv1', 'conv2', 'features'],
    });
    assert.deepEqual(planCut(CHAIN, 2), { cutIndex: 4, cutLayer: 'flatten', frozen: ['conv1', 'conv2'] });
    assert.deepEqual(planCut(CHAIN, 3), { cutIndex: 1, cutLayer: 'pool1', frozen: ['conv1'] });
  });

  void it('freezes nothing at depth all or at least the number of weight layers', () => {
    assert.equal(planCut(CHAIN, 'all'), null);
    assert.equal(planCut(CHAIN, 4), null);
    assert.equal(planCut(CHAIN, 9), null);
  });

  void it('refuses a depth that is not all or a positive integer', () => {
    assert.throws(() => planCut(CHAIN, 0), RangeError);
    assert.throws(() => planCut(CHAIN, 1.5), RangeError);
  });

  void it('reads the same chain from a saved Sequential model and from a re-headed functional one', async () => {
    const model = small(1, 10);
    const a = await serializeModel(model);
    assert.deepEqual(topologyLayers(a.topology, a.weightSpecs), CHAIN);
    const reheaded = replaceHead(model, 2, 5);
    const b = await serializeModel(reheaded);
    assert.deepEqual(topologyLayers(b.topology, b.weightSpecs), CHAIN);
    model.dispose();
  });
});

void describe('fine-tuning depth', () => {
  for (const depth of [1, 2, 3] as const) {
    void it(`at depth ${depth} leaves the frozen layers' weights bit for bit, and trains the others`, async () => {
      const model = small(3);
      const frozen = new Set(planCut(CHAIN, depth)!.frozen);
      const before = weightsByName(model);
      await fineTune(model, toyData(32, 2), { epochs: 2, batchSize: 16, seed: 1, depth });
      const after = weightsByName(model);
      for (const [name, w] of before) {
        const layer = name.split('/')[0]!;
        const same = w.every((v, i) => v === after.get(name)![i]);
        if (frozen.has(layer)) assert.ok(same, `${name} changed although frozen at depth ${depth}`);
        else assert.ok(!same, `${name} did not change although trained at depth ${depth}`);
      }
      model.dispose();
    });
  }

  void it('keeps the frozen layers fingerprint across versions fine-tuned at that depth', async () => {
    const model = small(4);
    const v0 = await serializeModel(model);
    await fineTune(model, toyData(32, 3), { epochs: 1, batchSize: 16, seed: 1, depth: 2 });
    const v1 = await serializeModel(model);
    assert.equal(trunkFingerprint(v0, 2)!.fingerprint, trunkFingerprint(v1, 2)!.fingerprint);
    // The dense feature layer was trained: the depth-1 trunk (which includes it) differs.
    assert.notEqual(trunkFingerprint(v0, 1)!.fingerprint, trunkFingerprint(v1, 1)!.fingerprint);
    assert.equal(trunkFingerprint(v1, 'all'), null);
    model.dispose();
  });

  void it('refuses a depth on a model whose layers are not a chain', async () => {
    const input = tfl.input({ shape: [4] });
    const a = tfl.layers.dense({ units: 3, name: 'a' }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.dense({ units: 3, name: 'b' }).apply(input) as tfl.SymbolicTensor;
    const sum = tfl.layers.add().apply([a, b]) as tfl.SymbolicTensor;
    const out = tfl.layers
      .dense({ units: 2, activation: 'softmax', name: 'head' })
      .apply(sum) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    assert.equal(splitModel(model, 1), null);
    await assert.rejects(
      fineTune(
        model,
        { patches: new Float32Array(8), labels: Int32Array.from([0, 1]), count: 2, patchShape: [4, 1, 1] },
        { depth: 1 },
      ),
      /chain/,
    );
    model.dispose();
  });
});

void describe('splitModel', () => {
  void it('trunk then top gives what the whole model predicts (to 1e-6)', async () => {
    const artifact = await serializeModel(small(5));
    const model = await deserializeModel(artifact.topology, artifact.weightSpecs, artifact.weights);
    const x = tf.tensor4d(toyData(6, 4).patches, [6, 28, 28, 1]);
    for (const depth of [1, 2, 3]) {
      const split = splitModel(model, depth)!;
      const features = applyLayers(split.trunk, x);
      assert.equal(features.size / 6, split.featureSize);
      const viaCut = applyLayers(split.top, features);
      const whole = model.predict(x) as tf.Tensor;
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(viaCut, whole))).dataSync()[0]!);
      assert.ok(diff <= 1e-6, `depth ${depth}: max difference ${diff}`);
      tf.dispose([features, viaCut, whole]);
    }
    x.dispose();
    model.dispose();
  });
});
