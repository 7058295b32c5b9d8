/**
 * The model served before any version is promoted: M0 with a seeded head of the task's classes,
 * and its identity.
 *
 * Identity: M0's version id is `m0-` and 12 hex digits of a hash of its topology, its weights and
 * the head it was given. Every version fine-tuned from it derives its id from its parent's
 * (windows.ts `windowId`), so a lineage is tied to the weights it started from: another M0 (other
 * weights, another input shape) is another lineage, and its versions are never served in place of
 * this one's (see the daemon's start-up).
 */
import { createHash } from 'node:crypto';
import { deriveSeed } from '../core/rng.js';
import { outputClasses, replaceHead } from '../model/cnn.js';
import {
  deserializeModel,
  loadModelFromPath,
  serializeModel,
  type ModelArtifact,
} from '../model/model-store.js';
import { modelPatchShape } from '../workers/model-input.js';

/** A patch shape: height, width, channels. */
export type PatchShape = readonly [number, number, number];

export interface InitialModel {
  /** `m0-<12 hex digits>`: the id of M0 as served, which every version of its lineage descends from. */
  version: string;
  artifact: ModelArtifact;
  holdoutAuc: number | null;
  /** The patches the model takes. */
  inputShape: PatchShape;
}

/** The id of M0 as served: a hash of its topology and weights, and of the head it was given. */
export function m0VersionId(
  topology: object,
  weightsSha256: string,
  head: { numClasses: number; seed: number } | null,
): string {
  const hash = createHash('sha256')
    .update(JSON.stringify(topology))
    .update('\n')
    .update(weightsSha256)
    .update(head === null ? '' : `\nhead:${head.numClasses}:${head.seed}`)
    .digest('hex');
  return `m0-${hash.slice(0, 12)}`;
}

/**
 * Loads M0 (checking its sha256) and, when its head has another number of classes than the task,
 * replaces the head by a fresh one seeded from `seed`. The version id says which M0 and which head.
 */
export async function initialModel(m0Path: string, numClasses: number, seed: number): Promise<InitialModel> {
  const { model, sha256 } = await loadModelFromPath(m0Path).catch((cause: unknown) => {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new Error(
      `The pre-trained model M0 could not be loaded (${why}): set ACFT_MODEL_M0_PATH to a tfjs LayersModel directory (model.json + weights), or rebuild the default with npx acft pretrain.`,
      { cause },
    );
  });
  try {
    const inputShape = modelPatchShape(model);
    const source = await serializeModel(model);
    if (outputClasses(model) === numClasses) {
      model.dispose();
      return {
        version: m0VersionId(source.topology, sha256, null),
        artifact: source,
        holdoutAuc: null,
        inputShape,
      };
    }
    // The new head shares M0's lower layers: disposing it disposes them (and so M0).
    const adapted = replaceHead(model, numClasses, deriveSeed('head', seed));
    const artifact = await serializeModel(adapted);
    adapted.dispose();
    return {
      version: m0VersionId(source.topology, sha256, { numClasses, seed }),
      artifact,
      holdoutAuc: null,
      inputShape,
    };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** The patches a serialized model takes (its input's height, width and channels). */
export async function artifactInputShape(artifact: ModelArtifact): Promise<PatchShape> {
  const model = await deserializeModel(artifact.topology, artifact.weightSpecs, artifact.weights);
  try {
    return modelPatchShape(model);
  } finally {
    model.dispose();
  }
}

/** `28x28x1`, for messages. */
export function formatShape(shape: readonly number[]): string {
  return shape.join('x');
}
