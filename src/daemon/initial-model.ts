/** The model served before any version is promoted: M0 with a seeded head of the task's classes. */
import { deriveSeed } from '../core/rng.js';
import { outputClasses, replaceHead } from '../model/cnn.js';
import { loadModelFromPath, serializeModel, type ModelArtifact } from '../model/model-store.js';

export interface InitialModel {
  version: string;
  artifact: ModelArtifact;
  holdoutAuc: number | null;
}

/**
 * Loads M0 (checking its sha256) and, when its head has another number of classes than the task,
 * replaces the head by a fresh one seeded from `seed`. The version name says which.
 */
export async function initialModel(m0Path: string, numClasses: number, seed: number): Promise<InitialModel> {
  const { model } = await loadModelFromPath(m0Path).catch((cause: unknown) => {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new Error(
      `The pre-trained model M0 could not be loaded (${why}): set ACFT_MODEL_M0_PATH to a tfjs LayersModel directory (model.json + weights), or rebuild the default with npx acft pretrain.`,
      { cause },
    );
  });
  try {
    if (outputClasses(model) === numClasses) {
      return { version: 'm0', artifact: await serializeModel(model), holdoutAuc: null };
    }
    const adapted = replaceHead(model, numClasses, deriveSeed('head', seed));
    const artifact = await serializeModel(adapted);
    adapted.dispose();
    return { version: `m0-head${numClasses}-s${seed}`, artifact, holdoutAuc: null };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
