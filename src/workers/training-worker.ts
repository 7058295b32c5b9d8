/**
 * The training worker thread: one fine-tuning job at a time, entirely here (patch making, the
 * training loop, holdout evaluation, serialization, sha256), so the daemon's event loop stays free.
 * Started by {@link TrainingService}.
 */
import { workerData } from 'node:worker_threads';
import type * as tfl from '@tensorflow/tfjs-layers';
import { macroAuc } from '../core/metrics.js';
import { deriveSeed } from '../core/rng.js';
import { initBackend, tf } from '../model/backend.js';
import { HEAD_LAYER_NAME, outputClasses, replaceHead } from '../model/cnn.js';
import { fineTune } from '../model/fine-tune.js';
import { serializeModel, sha256Hex } from '../model/model-store.js';
import { predictProbs } from '../model/scoring.js';
import { writePatches, type PackedCandidates, type PatchRecipe } from './candidate-batch.js';
import { loadArtifact, modelPatchShape } from './model-input.js';
import type { ModelWorkerData, ModelWorkerInfo, TrainingWorkerApi } from './protocol.js';
import { serveRpc, transferred } from './worker-host.js';

const info = await initBackend((workerData as ModelWorkerData).backend);

/** Candidates per prediction chunk of the holdout evaluation. */
const EVAL_PATCHES = 4096;

/**
 * Macro AUC of `model` on the holdout (candidate prediction = mean patch probabilities), or null
 * when the holdout lacks a class of the model (or is empty).
 */
async function holdoutAuc(
  model: tfl.LayersModel,
  batch: PackedCandidates,
  labels: Int32Array,
  recipe: PatchRecipe,
): Promise<number | null> {
  const k = outputClasses(model);
  const present = new Set(labels);
  for (let y = 0; y < k; y++) if (!present.has(y)) return null;
  const patchShape = modelPatchShape(model);
  const [h, w, c] = patchShape;
  const n = batch.entries.length;
  const per = Math.max(1, Math.floor(EVAL_PATCHES / recipe.m));
  const rows: number[][] = [];
  const buffer = new Float32Array(Math.min(n, per) * recipe.m * h * w * c);
  for (let from = 0; from < n; from += per) {
    const to = Math.min(n, from + per);
    const count = (to - from) * recipe.m;
    writePatches(batch, from, to, recipe, patchShape, buffer);
    const x = tf.tensor4d(buffer.subarray(0, count * h * w * c), [count, h, w, c]);
    const mean = tf.tidy(() => tf.mean(tf.reshape(predictProbs(model, x), [to - from, recipe.m, k]), 1));
    const flat = await mean.data();
    tf.dispose([x, mean]);
    for (let i = 0; i < to - from; i++) rows.push(Array.from(flat.subarray(i * k, (i + 1) * k)));
  }
  const auc = macroAuc(rows, Array.from(labels));
  return Number.isNaN(auc) ? null : auc;
}

serveRpc<TrainingWorkerApi>(
  {
    async train(job) {
      const started = performance.now();
      const { recipe, numClasses } = job;
      const parent = await loadArtifact(job.parent);
      const toDispose: tfl.LayersModel[] = [parent];
      try {
        const parentClasses = outputClasses(parent);
        const parentHoldoutAuc =
          parentClasses === numClasses
            ? await holdoutAuc(parent, job.holdout.batch, job.holdout.labels, recipe)
            : null;

        let model: tfl.LayersModel;
        if (job.startFrom === 'previous') {
          if (parentClasses !== numClasses) {
            throw new RangeError(
              `the parent model predicts ${parentClasses} classes, the job has ${numClasses}: ` +
                `continuing from it needs the same classes (start from M0 instead)`,
            );
          }
          model = parent;
        } else {
          if (job.m0 === undefined) throw new RangeError("startFrom 'M0' needs the m0 artifact");
          const m0 = await loadArtifact(job.m0);
          toDispose.push(m0);
          if (outputClasses(m0) === numClasses) {
            model = m0;
          } else {
            // The new model shares every layer below the head with m0; m0's own head is then
            // disposed with the `headWeights` below, the rest with the new model.
            model = replaceHead(m0, numClasses, deriveSeed('head', recipe.seed));
            toDispose.splice(toDispose.indexOf(m0), 1, model);
            const oldHead = m0.getLayer(HEAD_LAYER_NAME).getWeights();
            tf.dispose(oldHead);
          }
        }

        const patchShape = modelPatchShape(model);
        const [h, w, c] = patchShape;
        const n = job.train.batch.entries.length;
        const count = n * recipe.m;
        const patches = new Float32Array(count * h * w * c);
        writePatches(job.train.batch, 0, n, recipe, patchShape, patches);
        const labels = new Int32Array(count);
        job.train.labels.forEach((y, i) => labels.fill(y, i * recipe.m, (i + 1) * recipe.m));
        const ft = await fineTune(
          model,
          { patches, labels, count, patchShape },
          { ...job.fineTune, seed: job.fineTune.seed ?? deriveSeed('fine-tune', recipe.seed) },
        );

        const auc = await holdoutAuc(model, job.holdout.batch, job.holdout.labels, recipe);
        const { topology, weightSpecs, weights } = await serializeModel(model);
        const sha256 = sha256Hex(weights);
        const owned = weights.byteOffset === 0 && weights.byteLength === weights.buffer.byteLength;
        const out = owned ? weights : weights.slice();
        return transferred(
          {
            artifact: { topology, weightSpecs, weights: out, sha256 },
            holdoutAuc: auc,
            parentHoldoutAuc,
            seconds: (performance.now() - started) / 1000,
            epochLosses: ft.epochLosses,
            trainPatches: count,
          },
          [out.buffer as ArrayBuffer],
        );
      } finally {
        for (const m of new Set(toDispose)) m.dispose();
      }
    },
  },
  { backend: info.name } satisfies ModelWorkerInfo,
);
