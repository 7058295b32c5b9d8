import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, truncate, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../src/model/backend.js';
import { buildCnn, outputClasses, replaceHead } from '../../../src/model/cnn.js';
import { ModelArtifactError, ModelStore, loadModelFromPath } from '../../../src/model/model-store.js';

before(async () => {
  await initBackend();
});

const meta = (version: string) => ({ version, parent: null, createdAt: new Date().toISOString(), info: {} });

async function withStore(fn: (store: ModelStore, root: string) => Promise<void>) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'acft-store-'));
  try {
    await fn(new ModelStore(root), root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

function sameWeights(a: tf.Tensor[], b: tf.Tensor[]): boolean {
  return (
    a.length === b.length &&
    a.every((t, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(t, b[i]!))).dataSync()[0]!) === 0)
  );
}

describe('model store', () => {
  it('round-trips a model with its sha256 and lists it', async () => {
    await withStore(async (store) => {
      const model = buildCnn({ height: 28, width: 28, channels: 1, numClasses: 3, seed: 1 });
      const saved = await store.save(model, meta('v1'));
      assert.match(saved.sha256, /^[0-9a-f]{64}$/);
      const loaded = await store.load('v1');
      assert.equal(loaded.sha256, saved.sha256);
      assert.ok(sameWeights(model.getWeights(), loaded.model.getWeights()));
      assert.deepEqual(
        (await store.list()).map((m) => m.version),
        ['v1'],
      );
      model.dispose();
      loaded.model.dispose();
    });
  });

  it('refuses a version whose weights do not match their sha256', async () => {
    await withStore(async (store, root) => {
      const model = buildCnn({ height: 28, width: 28, channels: 1, numClasses: 2, seed: 1 });
      await store.save(model, meta('v1'));
      const file = path.join(root, 'v1', 'weights.bin');
      const bytes = await readFile(file);
      bytes[100] = (bytes[100]! + 1) % 256;
      await writeFile(file, bytes);
      await assert.rejects(
        store.load('v1'),
        (e: unknown) => e instanceof ModelArtifactError && e.code === 'checksum',
      );
      await assert.rejects(store.load('v1', 'f'.repeat(64)), /sha256/);
      model.dispose();
    });
  });

  it('refuses truncated weights even without a recorded checksum', async () => {
    await withStore(async (store, root) => {
      const model = buildCnn({ height: 28, width: 28, channels: 1, numClasses: 2, seed: 1 });
      await store.save(model, meta('v1'));
      const jsonPath = path.join(root, 'v1', 'model.json');
      const json = JSON.parse(await readFile(jsonPath, 'utf8')) as Record<string, unknown>;
      delete json.acft;
      await writeFile(jsonPath, JSON.stringify(json));
      await truncate(path.join(root, 'v1', 'weights.bin'), 1000);
      await assert.rejects(loadModelFromPath(path.join(root, 'v1')), /truncated/);
      model.dispose();
    });
  });

  it('refuses NaN weights', async () => {
    await withStore(async (store) => {
      const model = buildCnn({ height: 28, width: 28, channels: 1, numClasses: 2, seed: 1 });
      const weights = model.getWeights();
      model.setWeights(weights.map((w, i) => (i === 0 ? tf.fill(w.shape, NaN) : w)));
      await store.save(model, meta('nan'));
      await assert.rejects(
        store.load('nan'),
        (e: unknown) => e instanceof ModelArtifactError && e.code === 'non-finite',
      );
      model.dispose();
    });
  });

  it('reports a missing model with a clear error', async () => {
    await assert.rejects(
      loadModelFromPath('/nonexistent/acft-model'),
      (e: unknown) => e instanceof ModelArtifactError && e.code === 'missing',
    );
  });

  it('replaces the head of a pre-trained model and keeps the layers below', () => {
    const m0 = buildCnn({ height: 28, width: 28, channels: 1, numClasses: 10, seed: 1 });
    const adapted = replaceHead(m0, 2, 5);
    assert.equal(outputClasses(adapted), 2);
    assert.ok(
      sameWeights([m0.getLayer('conv1').getWeights()[0]!], [adapted.getLayer('conv1').getWeights()[0]!]),
    );
    adapted.dispose();
  });
});
