/**
 * A scoring worker thread: its own tfjs backend and model version. Makes each candidate's patches
 * from its compact image and scores a batch in one pass. Started by {@link ScoringService}; calls
 * run one at a time, so a model swap applies to the calls after it.
 *
 * With a `cutDepth` (the fine-tuning depth), each model is split at its cut: a full score runs the
 * trunk and then the top, and can return the features at the cut for the service's cache; a
 * rescore from cached features runs the top only.
 */
import { workerData } from 'node:worker_threads';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, tf } from '../model/backend.js';
import { splitModel, type SplitModel } from '../model/fine-tune-depth.js';
import {
  predictFromFeatures,
  predictProbs,
  predictThroughCut,
  scorePatchProbabilities,
  type BatchScores,
} from '../model/scoring.js';
import { writePatches } from './candidate-batch.js';
import { loadArtifact, lowerThreadPriority, modelPatchShape } from './model-input.js';
import type { ModelWorkerData, ModelWorkerInfo, ScoringWorkerApi, WorkerScores } from './protocol.js';
import { serveRpc, transferred, type Transferred } from './worker-host.js';

const data = workerData as ModelWorkerData;
const info = await initBackend(data.backend);
const nice = lowerThreadPriority(data.nice);
let current: { version: string; model: tfl.LayersModel; split: SplitModel | null } | undefined;

/**
 * The patch buffer, reused from call to call (calls run one at a time, and each call's input
 * tensor is disposed before it returns). A fresh buffer of megabytes per call cost more than
 * the patch making itself once two workers ran side by side: with it, two workers scored 1.5x
 * one; without, 1.85x (`npm run bench:throughput`).
 */
let scratch = new Float32Array(0);

function patchBuffer(values: number): Float32Array {
  if (scratch.length < values) scratch = new Float32Array(values);
  return scratch.subarray(0, values);
}

function reply(
  version: string,
  r: BatchScores,
  patches: number,
  features?: Float32Array,
): Transferred<WorkerScores> {
  const arrays: ArrayBufferView[] = [r.score, r.entropy, r.diversity, r.dominantClass, r.meanProbs];
  if (features !== undefined) arrays.push(features);
  return transferred(
    {
      version,
      score: r.score,
      entropy: r.entropy,
      diversity: r.diversity,
      dominantClass: r.dominantClass,
      meanProbs: r.meanProbs,
      numClasses: r.numClasses,
      patches,
      ...(features !== undefined ? { features } : {}),
    },
    // Fresh arrays of this call's own, so moving them is safe.
    arrays.map((a) => a.buffer as ArrayBuffer),
  );
}

serveRpc<ScoringWorkerApi>(
  {
    async setModel({ version, topology, weightSpecs, weights }) {
      const model = await loadArtifact({ topology, weightSpecs, weights });
      const split = data.cutDepth === undefined ? null : splitModel(model, data.cutDepth);
      current?.model.dispose();
      current = { version, model, split };
      return {
        version,
        cut: split === null ? null : { layer: split.cut.cutLayer, featureSize: split.featureSize },
      };
    },

    async score({ batch, recipe, scoreOptions, returnFeatures }) {
      if (current === undefined) throw new Error('no model version has been set');
      const { version, model, split } = current;
      const n = batch.entries.length;
      const patchShape = modelPatchShape(model);
      const [h, w, c] = patchShape;
      const count = n * recipe.m;
      const patches = patchBuffer(count * h * w * c);
      writePatches(batch, 0, n, recipe, patchShape, patches);
      const x = tf.tensor4d(patches, [count, h, w, c]);
      const owned: tf.Tensor[] = [x];
      try {
        if (split !== null) {
          const { features, probs } = predictThroughCut(split, x);
          owned.push(features, probs);
          const r = await scorePatchProbabilities(probs, recipe.m, scoreOptions);
          const f = returnFeatures === true ? Float32Array.from(await features.data()) : undefined;
          return reply(version, r, count, f);
        }
        const probs = predictProbs(model, x);
        owned.push(probs);
        return reply(version, await scorePatchProbabilities(probs, recipe.m, scoreOptions), count);
      } finally {
        tf.dispose(owned);
      }
    },

    async scoreFeatures({ features, candidates, m, scoreOptions }) {
      if (current === undefined) throw new Error('no model version has been set');
      const { version, split } = current;
      if (split === null) throw new Error(`model version ${version} has no cut: it cannot score features`);
      const count = candidates * m;
      if (features.length !== count * split.featureSize) {
        throw new RangeError(
          `features hold ${features.length} values, ${candidates} candidates x ${m} patches x ${split.featureSize} need ${count * split.featureSize}`,
        );
      }
      const f = tf.tensor2d(features, [count, split.featureSize]);
      try {
        const probs = predictFromFeatures(split, f);
        try {
          return reply(version, await scorePatchProbabilities(probs, m, scoreOptions), count);
        } finally {
          probs.dispose();
        }
      } finally {
        f.dispose();
      }
    },
  },
  { backend: info.name, ...(nice !== undefined ? { nice } : {}) } satisfies ModelWorkerInfo,
);
