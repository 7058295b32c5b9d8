/**
 * Fine-tuning depth (Tajbakhsh et al. 2016): only the top `depth` weight layers are fine-tuned;
 * everything below the cut stays as it came (from M0). The cut is what makes rescoring cheap: the
 * activations at the cut do not change from one version to the next, so they can be cached per
 * pooled patch and a new version scored by running only the layers above it.
 *
 * The cut sits at the input of the lowest fine-tuned weight layer, moved down over any Dropout
 * layer just below it, so that dropout stays in the part that trains. Only a linear chain of
 * layers (a Sequential model, or a functional one whose every layer has one input: acft's CNN and
 * its re-headed copies) can be cut; another topology is fine-tuned whole and never cached.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** How many weight layers, counted from the output, fine-tuning trains; 'all' trains every one. */
export type FineTuneDepth = number | 'all';

/** A layer as the cut sees it: its name, whether it has weights, and its class. */
export interface CutLayer {
  name: string;
  weighted: boolean;
  className: string;
}

/** Where a model is cut for a depth. */
export interface LayerCut {
  /** Index (in the chain of non-input layers) of the last layer below the cut. */
  cutIndex: number;
  /** Name of that layer: its output is the cached feature. */
  cutLayer: string;
  /** Weight layers below the cut: frozen in fine-tuning. */
  frozen: string[];
}

/** Checks a depth; throws a RangeError naming it. */
export function checkFineTuneDepth(depth: FineTuneDepth): void {
  if (depth !== 'all' && (!Number.isInteger(depth) || depth < 1)) {
    throw new RangeError(`fine-tuning depth must be 'all' or a positive integer, got ${String(depth)}`);
  }
}

/**
 * The cut of a chain of layers (input layers excluded) for `depth`, or null when nothing is frozen
 * (depth 'all', or at least the number of weight layers).
 */
export function planCut(layers: readonly CutLayer[], depth: FineTuneDepth): LayerCut | null {
  checkFineTuneDepth(depth);
  if (depth === 'all') return null;
  const weighted = layers.flatMap((l, i) => (l.weighted ? [i] : []));
  if (depth >= weighted.length) return null;
  let cutIndex = weighted[weighted.length - depth]! - 1;
  while (cutIndex >= 0 && layers[cutIndex]!.className === 'Dropout') cutIndex--;
  if (cutIndex < 0) return null;
  return {
    cutIndex,
    cutLayer: layers[cutIndex]!.name,
    frozen: layers.slice(0, cutIndex + 1).flatMap((l) => (l.weighted ? [l.name] : [])),
  };
}

interface TopologyLayer {
  class_name?: unknown;
  name?: unknown;
  config?: { name?: unknown };
}

/**
 * The layer chain of a serialized model (its model.json `modelTopology`), input layers left out;
 * a layer is weighted when a weight spec is named `<layer>/...`. Null when the topology is not a
 * Sequential or functional model this module can read.
 */
export function topologyLayers(
  topology: object,
  weightSpecs: readonly tf.io.WeightsManifestEntry[],
): CutLayer[] | null {
  const t = topology as { class_name?: unknown; config?: { layers?: unknown } | unknown[] };
  const raw = Array.isArray(t.config) ? t.config : (t.config as { layers?: unknown } | undefined)?.layers;
  if (!Array.isArray(raw)) return null;
  const owners = new Set(weightSpecs.map((w) => w.name.split('/')[0]));
  const out: CutLayer[] = [];
  for (const l of raw as TopologyLayer[]) {
    const className = typeof l.class_name === 'string' ? l.class_name : '';
    const name = typeof l.name === 'string' ? l.name : l.config?.name;
    if (typeof name !== 'string') return null;
    if (className === 'InputLayer') continue;
    out.push({ name, className, weighted: owners.has(name) });
  }
  return out;
}

/** Byte size of one weight spec's data (float32 / int32: 4, bool / uint8: 1). */
function specBytes(spec: tf.io.WeightsManifestEntry): number {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  return size * (spec.dtype === 'bool' ? 1 : 4);
}

/**
 * A fingerprint of what lies below the cut: the frozen layers' names and weights (sha256). Two
 * versions with the same fingerprint give the same features at the cut, so cached features stay
 * valid across them. Null when the model has no cut at this depth (or cannot be read).
 */
export function trunkFingerprint(
  artifact: { topology: object; weightSpecs: readonly tf.io.WeightsManifestEntry[]; weights: Uint8Array },
  depth: FineTuneDepth,
): { cut: LayerCut; fingerprint: string } | null {
  if (depth === 'all') return null;
  const layers = topologyLayers(artifact.topology, artifact.weightSpecs);
  if (layers === null) return null;
  const cut = planCut(layers, depth);
  if (cut === null) return null;
  const frozen = new Set(cut.frozen);
  const hash = createHash('sha256');
  hash.update(JSON.stringify(layers.slice(0, cut.cutIndex + 1)));
  let offset = 0;
  for (const spec of artifact.weightSpecs) {
    const bytes = specBytes(spec);
    if (frozen.has(spec.name.split('/')[0]!)) {
      hash.update(spec.name);
      hash.update(artifact.weights.subarray(offset, offset + bytes));
    }
    offset += bytes;
  }
  return { cut, fingerprint: hash.digest('hex') };
}

/** A model split at its cut: the layers below (trunk) and above (top), applied in order. */
export interface SplitModel {
  cut: LayerCut;
  trunk: tfl.layers.Layer[];
  top: tfl.layers.Layer[];
  /** Values per patch at the cut. */
  featureSize: number;
}

/** The model's layers as a chain (input layers left out), or null when it is not a chain. */
export function modelChain(model: tfl.LayersModel): tfl.layers.Layer[] | null {
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  for (let i = 0; i < layers.length; i++) {
    const nodes = layers[i]!.inboundNodes;
    if (nodes.length !== 1 || nodes[0]!.inboundLayers.length !== 1) return null;
    const from = nodes[0]!.inboundLayers[0]!;
    if (i > 0 && from !== layers[i - 1]) return null;
    if (i === 0 && from.getClassName() !== 'InputLayer') return null;
  }
  const output = layers.at(-1)?.output;
  if (output === undefined || output !== model.outputs[0]) return null;
  return layers;
}

function cutLayersOf(chain: readonly tfl.layers.Layer[]): CutLayer[] {
  return chain.map((l) => ({ name: l.name, className: l.getClassName(), weighted: l.weights.length > 0 }));
}

/** Splits `model` at the cut for `depth`; null when nothing is frozen or the model is not a chain. */
export function splitModel(model: tfl.LayersModel, depth: FineTuneDepth): SplitModel | null {
  if (depth === 'all') return null;
  const chain = modelChain(model);
  if (chain === null) return null;
  const cut = planCut(cutLayersOf(chain), depth);
  if (cut === null) return null;
  const shape = chain[cut.cutIndex]!.outputShape as (number | null)[];
  const featureSize = shape.slice(1).reduce<number>((a, b) => a * (b ?? NaN), 1);
  if (!Number.isInteger(featureSize)) return null;
  return {
    cut,
    trunk: chain.slice(0, cut.cutIndex + 1),
    top: chain.slice(cut.cutIndex + 1),
    featureSize,
  };
}

/** Runs `layers` in order on `x` (inference: dropout off). The caller disposes the result. */
export function applyLayers(layers: readonly tfl.layers.Layer[], x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => layers.reduce((t, layer) => layer.apply(t) as tf.Tensor, x));
}

/**
 * Names of the variables fine-tuning must leave alone at `depth` (the weight layers below the
 * cut). Empty when nothing is frozen. A model that is not a chain cannot be cut: a depth other than
 * 'all' then throws, rather than silently training every layer.
 */
export function frozenVariableNames(model: tfl.LayersModel, depth: FineTuneDepth): Set<string> {
  checkFineTuneDepth(depth);
  if (depth === 'all') return new Set();
  const chain = modelChain(model);
  if (chain === null) {
    throw new RangeError(`fine-tuning depth ${depth} needs a model whose layers form a chain`);
  }
  const cut = planCut(cutLayersOf(chain), depth);
  if (cut === null) return new Set();
  const frozen = new Set(cut.frozen);
  return new Set(
    chain
      .filter((l) => frozen.has(l.name))
      .flatMap((l) => l.trainableWeights.map((v) => (v.read() as tf.Variable).name)),
  );
}
