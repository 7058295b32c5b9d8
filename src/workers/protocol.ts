/** The messages between the model services and their workers (types only). */
import type { BatchScores } from '../model/scoring.js';
import type { io } from '@tensorflow/tfjs-core';
import type { ScoreOptions } from '../core/score.js';
import type { FineTuneOptions } from '../model/fine-tune.js';
import type { FineTuneDepth } from '../model/fine-tune-depth.js';
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
  /** Scoring workers: where models are cut for the feature cache (absent: never). */
  cutDepth?: FineTuneDepth;
  /** Niceness the worker thread takes (Linux only: there it is per thread); absent or 0: none. */
  nice?: number;
}

/** What a model worker reports when ready. */
export interface ModelWorkerInfo {
  /** The tfjs backend the worker initialized ('wasm', 'tensorflow', ...). */
  backend: string;
  /** The niceness the worker thread runs at, or why it could not take the one asked for. */
  nice?: number | { error: string };
}

/** A scoring worker's answer: the batch's scores (one entry per candidate), and by what. */
export interface WorkerScores extends BatchScores {
  version: string;
  patches: number;
  /** With `returnFeatures`: every patch's activations at the cut, [patches x featureSize]. */
  features?: Float32Array;
}

export type ScoringWorkerApi = {
  /**
   * Loads a model version; the previous one stays if this one cannot be loaded. `cut` is where the
   * worker cuts it (the worker's `cutDepth`), null when it does not.
   */
  setModel: RpcMethod<
    ModelArtifact & { version: string },
    { version: string; cut: { layer: string; featureSize: number } | null }
  >;
  /** Makes the patches and scores them; `returnFeatures` also returns their features at the cut. */
  score: RpcMethod<
    { batch: PackedCandidates; recipe: PatchRecipe; scoreOptions: ScoreOptions; returnFeatures?: boolean },
    WorkerScores
  >;
  /** Scores candidates from their cached features at the cut: only the layers above it run. */
  scoreFeatures: RpcMethod<
    { features: Float32Array; candidates: number; m: number; scoreOptions: ScoreOptions },
    WorkerScores
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
