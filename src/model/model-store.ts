/**
 * Model artifacts on disk: any tfjs LayersModel directory (model.json + weight shards) can be
 * loaded, and acft's own versions are saved as `<root>/<version>/{model.json,weights.bin}` with
 * the sha256 of the weights recorded in model.json and checked on every load.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** A model version's record, stored beside its weights in model.json under `acft`. */
export interface ModelVersionMeta {
  version: string;
  parent: string | null;
  createdAt: string;
  /** Free-form provenance (strategy, counts, metrics, task...). */
  info: Record<string, unknown>;
}

export interface StoredModel {
  dir: string;
  modelJsonPath: string;
  sha256: string;
  bytes: number;
  meta: ModelVersionMeta;
}

/** Raised when an artifact is missing, malformed, or fails its checksum. */
export class ModelArtifactError extends Error {
  constructor(
    message: string,
    readonly code: 'missing' | 'malformed' | 'checksum' | 'non-finite',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ModelArtifactError';
  }
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

interface ModelJson {
  modelTopology: object;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  acft?: ModelVersionMeta & { sha256: string };
}

function toBytes(data: ArrayBuffer | ArrayBuffer[]): Uint8Array {
  if (Array.isArray(data)) {
    const total = data.reduce((s, b) => s + b.byteLength, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const b of data) {
      out.set(new Uint8Array(b), at);
      at += b.byteLength;
    }
    return out;
  }
  return new Uint8Array(data);
}

/** Serialises a model to its topology, weight specs and one weights buffer (in memory). */
export async function serializeModel(model: tfl.LayersModel): Promise<ModelArtifact> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler((artifacts) => {
      captured = artifacts;
      return Promise.resolve({
        modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' },
      });
    }),
  );
  if (!captured?.modelTopology || !captured.weightSpecs || !captured.weightData) {
    throw new ModelArtifactError('model produced no topology or weights', 'malformed');
  }
  return {
    topology: captured.modelTopology,
    weightSpecs: captured.weightSpecs,
    weights: toBytes(captured.weightData),
  };
}

/** Rebuilds a LayersModel from in-memory artifacts, refusing non-finite weights. */
export async function deserializeModel(
  topology: object,
  weightSpecs: tf.io.WeightsManifestEntry[],
  weights: Uint8Array,
): Promise<tfl.LayersModel> {
  const buffer = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel(
      tf.io.fromMemory({ modelTopology: topology, weightSpecs, weightData: buffer }),
    );
  } catch (cause) {
    throw new ModelArtifactError(`cannot rebuild the model: ${(cause as Error).message}`, 'malformed', {
      cause,
    });
  }
  const finite = tf.tidy(() =>
    model.getWeights().every((w) => w.dtype !== 'float32' || tf.all(tf.isFinite(w)).dataSync()[0] === 1),
  );
  if (!finite) {
    model.dispose();
    throw new ModelArtifactError('model weights contain NaN or Infinity', 'non-finite');
  }
  return model;
}

async function writeFileDurably(file: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Loads a tfjs LayersModel from a directory or a model.json path (weights shards as listed in
 * its manifest). If the model.json carries an acft sha256 (or `expectedSha256` is given), the
 * weights must match it.
 */
export async function loadModelFromPath(
  modelPath: string,
  expectedSha256?: string,
): Promise<{ model: tfl.LayersModel; sha256: string; meta: ModelVersionMeta | undefined }> {
  const jsonPath = modelPath.endsWith('.json') ? modelPath : path.join(modelPath, 'model.json');
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as ModelJson;
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'malformed';
    throw new ModelArtifactError(`cannot read model file ${jsonPath}: ${(cause as Error).message}`, code, {
      cause,
    });
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new ModelArtifactError(
      `${jsonPath} is not a tfjs LayersModel (no modelTopology/weightsManifest)`,
      'malformed',
    );
  }
  const dir = path.dirname(jsonPath);
  const shards: Uint8Array[] = [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      try {
        shards.push(new Uint8Array(await readFile(path.join(dir, p))));
      } catch (cause) {
        throw new ModelArtifactError(`missing weight shard ${p} of ${jsonPath}`, 'missing', { cause });
      }
    }
    specs.push(...group.weights);
  }
  const weights = toBytes(
    shards.map((s) => s.buffer.slice(s.byteOffset, s.byteOffset + s.byteLength) as ArrayBuffer),
  );
  const sha256 = sha256Hex(weights);
  const expected = expectedSha256 ?? json.acft?.sha256;
  if (expected !== undefined && expected !== sha256) {
    throw new ModelArtifactError(
      `weights of ${jsonPath} have sha256 ${sha256}, expected ${expected}: refusing a corrupt or altered model`,
      'checksum',
    );
  }
  const expectedBytes = specs.reduce((s, spec) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    return s + n * (spec.dtype === 'float32' || spec.dtype === 'int32' ? 4 : 1);
  }, 0);
  if (expectedBytes !== weights.byteLength) {
    throw new ModelArtifactError(
      `weights of ${jsonPath} hold ${weights.byteLength} bytes, the manifest needs ${expectedBytes} (truncated?)`,
      'malformed',
    );
  }
  const model = await deserializeModel(json.modelTopology, specs, weights);
  return { model, sha256, meta: json.acft };
}

/** A serialized model: what {@link serializeModel} returns and a worker hands back. */
export interface ModelArtifact {
  topology: object;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weights: Uint8Array;
}

/**
 * Writes serialized artifacts as a tfjs LayersModel directory (model.json + weights.bin),
 * atomically: a temp directory (each file fsynced) renamed into place.
 */
export async function saveArtifactToDir(
  artifact: ModelArtifact,
  dir: string,
  meta: ModelVersionMeta,
): Promise<StoredModel> {
  const { topology, weightSpecs, weights } = artifact;
  const sha256 = sha256Hex(weights);
  const json: ModelJson = {
    modelTopology: topology,
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
    convertedBy: null,
    weightsManifest: [{ paths: ['weights.bin'], weights: weightSpecs }],
    acft: { ...meta, sha256 },
  };
  const parent = path.dirname(dir);
  await mkdir(parent, { recursive: true });
  const tmp = path.join(parent, `.${path.basename(dir)}.tmp-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    await writeFileDurably(path.join(tmp, 'weights.bin'), weights);
    await writeFileDurably(path.join(tmp, 'model.json'), JSON.stringify(json));
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (cause) {
    await rm(tmp, { recursive: true, force: true });
    throw cause;
  }
  return { dir, modelJsonPath: path.join(dir, 'model.json'), sha256, bytes: weights.byteLength, meta };
}

/** Writes a model as a tfjs LayersModel directory (model.json + weights.bin), atomically. */
export async function saveModelToDir(
  model: tfl.LayersModel,
  dir: string,
  meta: ModelVersionMeta,
): Promise<StoredModel> {
  return saveArtifactToDir(await serializeModel(model), dir, meta);
}

/** Reads a stored model's artifacts without building a model (for handing to workers). */
export async function loadArtifactFromPath(
  modelPath: string,
  expectedSha256?: string,
): Promise<{ artifact: ModelArtifact; sha256: string; meta: ModelVersionMeta | undefined }> {
  const { model, sha256, meta } = await loadModelFromPath(modelPath, expectedSha256);
  try {
    return { artifact: await serializeModel(model), sha256, meta };
  } finally {
    model.dispose();
  }
}

/** A directory of model versions, one sub-directory each. */
export class ModelStore {
  constructor(readonly root: string) {}

  dirOf(version: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(version)) throw new Error(`invalid model version id '${version}'`);
    return path.join(this.root, version);
  }

  save(model: tfl.LayersModel, meta: ModelVersionMeta): Promise<StoredModel> {
    return saveModelToDir(model, this.dirOf(meta.version), meta);
  }

  saveArtifact(artifact: ModelArtifact, meta: ModelVersionMeta): Promise<StoredModel> {
    return saveArtifactToDir(artifact, this.dirOf(meta.version), meta);
  }

  load(version: string, expectedSha256?: string) {
    return loadModelFromPath(this.dirOf(version), expectedSha256);
  }

  /** Versions present on disk (complete ones: temp directories are ignored), oldest first. */
  async list(): Promise<ModelVersionMeta[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return [];
    }
    const metas: ModelVersionMeta[] = [];
    for (const name of names) {
      if (name.startsWith('.')) continue;
      try {
        const json = JSON.parse(
          await readFile(path.join(this.root, name, 'model.json'), 'utf8'),
        ) as ModelJson;
        if (json.acft) metas.push(json.acft);
      } catch {
        // Not a version directory (or unreadable): listing skips it; loading it would report why.
      }
    }
    return metas.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }
}
