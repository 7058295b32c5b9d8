/** The messages between the model services and their workers (types only). */
import type { io } from '@tensorflow/tfjs-core';
import type { ScoreOptions } from '../core/score.js';
import type { FineTuneOptions } from '../model/fine-tune.js';
import type { BackendRequest } from '../model/backend.js';
import type { PackedCandidates, PatchRecipe } from './candidate-batch.js';
import type { RpcMethod } from './worker-host.js';

/** A model in memory, as `serializeModel` gives it. */
export interface ModelArtifact {
  topology: object;
  weightSpecs: io.WeightsManifestEntry[];
  weights: Uint8Array;
}

/** What every model worker gets as `workerData`. */
export interface ModelWorkerData {
  backend: BackendRequest | undefined;
}

/** What a model worker reports when ready. */
export interface ModelWorkerInfo {
  /** The tfjs backend the worker initialized ('wasm', 'tensorflow', ...). */
  backend: string;
}

export type ScoringWorkerApi = {
  /** Loads a model version; the previous one stays if this one cannot be loaded. */
  setModel: RpcMethod<ModelArtifact & { version: string }, { version: string }>;
  score: RpcMethod<
    { batch: PackedCandidates; recipe: PatchRecipe; scoreOptions: ScoreOptions },
    {
      version: string;
      score: Float32Array;
      entropy: Float32Array;
      diversity: Float32Array;
      dominantClass: Int32Array;
      meanProbs: Float32Array;
      numClasses: number;
      patches: number;
    }
  >;
};

export type TrainingWorkerApi = {
  train: RpcMethod<
    {
      parent: ModelArtifact;
      m0: ModelArtifact | undefined;
      startFrom: 'M0' | 'previous';
      numClasses: number;
      train: { batch: PackedCandidates; labels: Int32Array };
      holdout: { batch: PackedCandidates; labels: Int32Array };
      recipe: PatchRecipe;
      fineTune: Partial<FineTuneOptions>;
    },
    {
      artifact: ModelArtifact & { sha256: string };
      holdoutAuc: number | null;
      parentHoldoutAuc: number | null;
      seconds: number;
      epochLosses: number[];
      trainPatches: number;
    }
  >;
};
