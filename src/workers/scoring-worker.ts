/**
 * A scoring worker thread: its own tfjs backend and model version. Makes each candidate's patches
 * from its compact image and scores a batch in one pass (scoreCandidatesBatch). Started by
 * {@link ScoringService}; calls run one at a time, so a model swap applies to the calls after it.
 */
import { workerData } from 'node:worker_threads';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, tf } from '../model/backend.js';
import { scoreCandidatesBatch } from '../model/scoring.js';
import { writePatches } from './candidate-batch.js';
import { loadArtifact, modelPatchShape } from './model-input.js';
import type { ModelWorkerData, ModelWorkerInfo, ScoringWorkerApi } from './protocol.js';
import { serveRpc, transferred } from './worker-host.js';

const info = await initBackend((workerData as ModelWorkerData).backend);
let current: { version: string; model: tfl.LayersModel } | undefined;

serveRpc<ScoringWorkerApi>(
  {
    async setModel({ version, topology, weightSpecs, weights }) {
      const model = await loadArtifact({ topology, weightSpecs, weights });
      current?.model.dispose();
      current = { version, model };
      return { version };
    },

    async score({ batch, recipe, scoreOptions }) {
      if (current === undefined) throw new Error('no model version has been set');
      const { version, model } = current;
      const n = batch.entries.length;
      const patchShape = modelPatchShape(model);
      const [h, w, c] = patchShape;
      const patches = new Float32Array(n * recipe.m * h * w * c);
      writePatches(batch, 0, n, recipe, patchShape, patches);
      const x = tf.tensor4d(patches, [n * recipe.m, h, w, c]);
      let r;
      try {
        r = await scoreCandidatesBatch(model, x, recipe.m, scoreOptions);
      } finally {
        x.dispose();
      }
      return transferred(
        {
          version,
          score: r.score,
          entropy: r.entropy,
          diversity: r.diversity,
          dominantClass: r.dominantClass,
          meanProbs: r.meanProbs,
          numClasses: r.numClasses,
          patches: n * recipe.m,
        },
        // Fresh arrays of scoreCandidatesBatch's own, so moving them is safe.
        [r.score, r.entropy, r.diversity, r.dominantClass, r.meanProbs].map((a) => a.buffer as ArrayBuffer),
      );
    },
  },
  { backend: info.name } satisfies ModelWorkerInfo,
);
