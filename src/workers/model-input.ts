/** Shared helpers of the model workers (they run inside worker threads, with tfjs). */
import os from 'node:os';
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
 * Lowers the calling worker thread's CPU priority to `nice` (0-19), so that when the cores are
 * busy the daemon's event loop (intake, feedback, Kafka heartbeats) runs first and the model work
 * takes what is left. Only on Linux, where niceness is per thread (setpriority(2), "BUGS"); elsewhere
 * it would renice the whole process, so nothing is done. Returns the niceness now in effect, or why
 * it could not be set; undefined when none was asked for.
 */
export function lowerThreadPriority(nice: number | undefined): number | { error: string } | undefined {
  if (nice === undefined || nice === 0) return undefined;
  if (process.platform !== 'linux') return { error: `niceness is per process on ${process.platform}` };
  try {
    // Never raised: a thread already nicer than asked stays so.
    if (os.getPriority() < nice) os.setPriority(nice);
    return os.getPriority();
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Rebuilds a model from an artifact. The weights are copied first: they may be a view into a
 * SharedArrayBuffer, which tfjs' loaders do not take.
 */
export function loadArtifact(artifact: ModelArtifact): Promise<tfl.LayersModel> {
  return deserializeModel(artifact.topology, artifact.weightSpecs, new Uint8Array(artifact.weights));
}
