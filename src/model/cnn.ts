/**
 * The CNN architectures acft trains by default, and the head surgery that adapts a pre-trained
 * model (M0) to a target task with another number of classes.
 */
import * as tfl from '@tensorflow/tfjs-layers';

/** Shape and size of the small default CNN (28x28 grey patches, as in MNIST/Fashion-MNIST). */
export interface CnnSpec {
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  /** Filters of the two convolution blocks. */
  filters?: [number, number];
  /** Units of the penultimate dense layer (the feature layer). */
  denseUnits?: number;
  dropout?: number;
  /** Seed of every weight initialiser. */
  seed: number;
}

/** Name of the classification layer; fine-tuning gives it the larger learning rate. */
export const HEAD_LAYER_NAME = 'head';

function headLayer(numClasses: number, seed: number): tfl.layers.Layer {
  return tfl.layers.dense({
    units: numClasses,
    activation: 'softmax',
    name: HEAD_LAYER_NAME,
    kernelInitializer: tfl.initializers.glorotUniform({ seed }),
  });
}

/** Builds the default small CNN: two conv/pool blocks, one dense feature layer, a softmax head. */
export function buildCnn(spec: CnnSpec): tfl.LayersModel {
  const [f1, f2] = spec.filters ?? [16, 32];
  const seed = spec.seed;
  const init = (k: number) => tfl.initializers.heNormal({ seed: seed + k });
  return tfl.sequential({
    name: 'acft_cnn',
    layers: [
      tfl.layers.conv2d({
        inputShape: [spec.height, spec.width, spec.channels],
        filters: f1,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(1),
        name: 'conv1',
      }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }),
      tfl.layers.conv2d({
        filters: f2,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(2),
        name: 'conv2',
      }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({
        units: spec.denseUnits ?? 64,
        activation: 'relu',
        kernelInitializer: init(3),
        name: 'features',
      }),
      tfl.layers.dropout({ rate: spec.dropout ?? 0.25, seed: seed + 4, name: 'dropout' }),
      headLayer(spec.numClasses, seed + 5),
    ],
  });
}

/** Number of classes a model predicts (the size of its output). */
export function outputClasses(model: tfl.LayersModel): number {
  const shape = model.outputs[0]?.shape;
  const k = shape?.[shape.length - 1];
  if (typeof k !== 'number') throw new Error('model output has no static class dimension');
  return k;
}

/**
 * Replaces the softmax head of a pre-trained model with a freshly initialised one of
 * `numClasses` units (seeded), keeping every layer below it. The returned model shares the
 * lower layers' weights with `model`: clone (load again) first if both must live on.
 */
export function replaceHead(model: tfl.LayersModel, numClasses: number, seed: number): tfl.LayersModel {
  const layers = model.layers;
  const last = layers[layers.length - 1];
  if (last === undefined || last.name !== HEAD_LAYER_NAME) {
    throw new Error(`cannot replace the head: the last layer is not named '${HEAD_LAYER_NAME}'`);
  }
  const below = layers[layers.length - 2];
  if (below === undefined) throw new Error('cannot replace the head of a one-layer model');
  const input = model.inputs[0];
  if (input === undefined) throw new Error('model has no input');
  const features = below.output as tfl.SymbolicTensor;
  const output = headLayer(numClasses, seed).apply(features) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output, name: model.name });
}
