/** Shared helpers of the model workers (they run inside worker threads, with tfjs). */
import type * as tfl from '@tensorflow/tfjs-layers';
import { deserializeModel } from '../model/model-store.js';
import type { ModelArtifact } from './protocol.js';

/** The [height, width, channels] a model takes. */
export function modelPatchShape(model: tfl.LayersModel): [number, number, number] {
  const shape = model.inputs[0]?.shape;
  const [, h, w, c] = shape ?? [];
  if (shape?.length !== 4 || typeof h !== 'number' || typeof w !== 'number' || typeof c !== 'number') {
    throw new Error(
      `the model's input must be [batch, height, width, channels], got ${JSON.stringify(shape)}`,
    );
  }
  return [h, w, c];
}

/**
 * Rebuilds a model from an artifact. The weights are copied first: they may be a view into a
 * SharedArrayBuffer, which tfjs' loaders do not take.
 */
export function loadArtifact(artifact: ModelArtifact): Promise<tfl.LayersModel> {
  return deserializeModel(artifact.topology, artifact.weightSpecs, new Uint8Array(artifact.weights));
}
