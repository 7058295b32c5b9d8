/**
 * Candidates on their way to a model worker: packed on the main thread into ONE buffer (one copy,
 * then transferred, never structured-cloned element by element), and turned into float32 patches
 * in the worker, where the augmentation runs off the event loop.
 *
 * Why one packed buffer: structured cloning a typed array copies its whole underlying buffer, so a
 * view into a large pool buffer would send the whole pool; and transferring the caller's own
 * buffers would detach the pool's images. Packing copies exactly the candidates' bytes (a compact
 * image is small; the patches, m times larger, are made in the worker).
 */
import {
  generatePatches,
  patchSide,
  type AugmentationSpec,
  type PatchSourceImage,
  type Roi,
} from '../core/patches.js';

/** The pixel types a candidate's image or patches may come in. */
export type PixelArray = Uint8Array | Uint16Array | Float32Array;

/**
 * One candidate to score or train on: its compact image (plus an optional ROI), from which the
 * worker makes the m patches, or its m patches already made. If both are given, the patches are
 * used. Integer pixels are normalized like images (uint8 / 255, uint16 / 65535).
 */
export interface ScoringInput {
  id: string;
  /** The image, row-major with interleaved channels, shape [height, width, channels]. */
  image?: { data: PixelArray; shape: [number, number, number] };
  roi?: Roi;
  /** Ready patches, shape [m, height, width, channels]. */
  patches?: { data: PixelArray; shape: [number, number, number, number] };
}

/** How patches are made from images. `m` wins over `augmentation.m`, which must agree if set. */
export interface PatchRecipe {
  m: number;
  augmentation: AugmentationSpec;
  seed: number;
}

type PixelType = 'uint8' | 'uint16' | 'float32';

interface PackedEntry {
  id: string;
  source: 'image' | 'patches';
  dtype: PixelType;
  /** Byte offset into the packed buffer. */
  offset: number;
  /** Number of elements. */
  length: number;
  shape: number[];
  roi?: Roi;
}

/** Candidates packed for a worker: one transferable buffer and an index into it. */
export interface PackedCandidates {
  buffer: ArrayBuffer;
  entries: PackedEntry[];
}

/** A candidate that cannot be scored or trained on as given; names the candidate. */
export class InvalidCandidateError extends Error {
  readonly code = 'invalid-candidate';
  readonly retryable = false;
  constructor(
    message: string,
    readonly candidateId: string | undefined,
  ) {
    super(message);
    this.name = 'InvalidCandidateError';
  }
}

function pixelType(data: unknown): PixelType | undefined {
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Float32Array) return 'float32';
  return undefined;
}

function checkShape(id: string, what: string, shape: unknown, rank: number): number[] {
  if (
    !Array.isArray(shape) ||
    shape.length !== rank ||
    shape.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 1)
  ) {
    throw new InvalidCandidateError(
      `candidate '${id}': ${what} shape must be ${rank} positive integers, got ${JSON.stringify(shape)}`,
      id,
    );
  }
  return shape as number[];
}

/** Checks the recipe; throws a RangeError naming the bad field. */
export function checkRecipe(recipe: PatchRecipe): void {
  if (!Number.isInteger(recipe.m) || recipe.m < 1) {
    throw new RangeError(`m (patches per candidate) must be a positive integer, got ${recipe.m}`);
  }
  if (recipe.augmentation.m !== undefined && recipe.augmentation.m !== recipe.m) {
    throw new RangeError(`augmentation.m (${recipe.augmentation.m}) differs from m (${recipe.m})`);
  }
  if (!Number.isSafeInteger(recipe.seed))
    throw new RangeError(`seed must be a safe integer, got ${recipe.seed}`);
}

/**
 * Validates `candidates` (shapes, pixel types, patch count m) and copies their pixels into one
 * fresh buffer, 8-byte aligned per candidate. The caller's arrays are neither kept nor detached.
 */
export function packCandidates(candidates: readonly ScoringInput[], m: number): PackedCandidates {
  const entries: PackedEntry[] = [];
  const sources: PixelArray[] = [];
  let bytes = 0;
  for (const c of candidates) {
    const id: unknown = c?.id;
    if (typeof id !== 'string') throw new InvalidCandidateError('candidate id must be a string', undefined);
    let entry: PackedEntry;
    let data: PixelArray;
    if (c.patches !== undefined) {
      const shape = checkShape(id, 'patches', c.patches.shape, 4);
      if (shape[0] !== m) {
        throw new InvalidCandidateError(`candidate '${id}': has ${shape[0]} patches, expected m = ${m}`, id);
      }
      data = c.patches.data;
      entry = { id, source: 'patches', dtype: 'float32', offset: 0, length: 0, shape };
    } else if (c.image !== undefined) {
      const shape = checkShape(id, 'image', c.image.shape, 3);
      data = c.image.data;
      entry = { id, source: 'image', dtype: 'float32', offset: 0, length: 0, shape };
      if (c.roi !== undefined) entry.roi = { ...c.roi };
    } else {
      throw new InvalidCandidateError(`candidate '${id}' has neither an image nor patches`, id);
    }
    const dtype = pixelType(data);
    if (dtype === undefined) {
      throw new InvalidCandidateError(
        `candidate '${id}': pixels must be a Uint8Array, Uint16Array or Float32Array`,
        id,
      );
    }
    const expected = entry.shape.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      throw new InvalidCandidateError(
        `candidate '${id}': ${entry.source} has ${data.length} values, its shape [${entry.shape.join(', ')}] needs ${expected}`,
        id,
      );
    }
    entry.dtype = dtype;
    entry.length = data.length;
    entry.offset = bytes;
    bytes += Math.ceil(data.byteLength / 8) * 8;
    entries.push(entry);
    sources.push(data);
  }
  const buffer = new ArrayBuffer(bytes);
  entries.forEach((e, i) => {
    const src = sources[i]!;
    new Uint8Array(buffer, e.offset, src.byteLength).set(
      new Uint8Array(src.buffer, src.byteOffset, src.byteLength),
    );
  });
  return { buffer, entries };
}

function view(packed: PackedCandidates, e: PackedEntry): PixelArray {
  switch (e.dtype) {
    case 'uint8':
      return new Uint8Array(packed.buffer, e.offset, e.length);
    case 'uint16':
      return new Uint16Array(packed.buffer, e.offset, e.length);
    case 'float32':
      return new Float32Array(packed.buffer, e.offset, e.length);
  }
}

/**
 * Writes the m patches of candidates [from, to) of `packed` into `out` (candidate-major, each
 * patch `patchSize` = h*w*c values), making them from the images where needed. Every candidate's
 * patches must have the model's patch size; an error names the candidate that does not.
 */
export function writePatches(
  packed: PackedCandidates,
  from: number,
  to: number,
  recipe: PatchRecipe,
  patchShape: readonly [number, number, number],
  out: Float32Array,
): void {
  const [h, w, c] = patchShape;
  const perCandidate = recipe.m * h * w * c;
  if (out.length < (to - from) * perCandidate) throw new RangeError('patch buffer too small');
  const spec: AugmentationSpec = { ...recipe.augmentation, m: recipe.m };
  for (let i = from; i < to; i++) {
    const e = packed.entries[i];
    if (e === undefined) throw new RangeError(`no candidate ${i} in the batch`);
    const at = (i - from) * perCandidate;
    const data = view(packed, e);
    if (e.source === 'patches') {
      const [, ph, pw, pc] = e.shape;
      if (ph !== h || pw !== w || pc !== c) {
        throw new InvalidCandidateError(
          `candidate '${e.id}': patches are ${ph}x${pw}x${pc}, the model takes ${h}x${w}x${c}`,
          e.id,
        );
      }
      const scale = e.dtype === 'uint8' ? 1 / 255 : e.dtype === 'uint16' ? 1 / 65535 : 1;
      if (scale === 1) out.set(data, at);
      else for (let k = 0; k < data.length; k++) out[at + k] = data[k]! * scale;
    } else {
      const [height, width, channels] = e.shape as [number, number, number];
      const shape = { height, width, channels };
      const roi = e.roi !== undefined ? { roi: e.roi } : {};
      try {
        const side = patchSide(shape, spec, e.roi);
        if (side !== h || side !== w || channels !== c) {
          throw new InvalidCandidateError(
            `candidate '${e.id}': its patches are ${side}x${side}x${channels}, the model takes ${h}x${w}x${c} ` +
              `(set augmentation.size, or the ROI)`,
            e.id,
          );
        }
        // Straight into the batch's buffer: no buffer of the candidate's own.
        generatePatches(
          data as PatchSourceImage,
          shape,
          spec,
          { candidateId: e.id, seed: recipe.seed, ...roi },
          out,
          at,
        );
      } catch (cause) {
        if (cause instanceof InvalidCandidateError) throw cause;
        const err = new InvalidCandidateError(
          `candidate '${e.id}': cannot make its patches: ${(cause as Error).message}`,
          e.id,
        );
        err.cause = cause;
        throw err;
      }
    }
  }
}
