/**
 * Patch generation by data augmentation (DESIGN.md, "Candidates and patches").
 *
 * A candidate is one image (optionally with a region of interest, ROI). Its m patches are made by
 * scaling, translating, mirroring and rotating that image. Everything here is pure typed-array
 * code and deterministic: the same image, spec, candidate id and seed always give the same bytes.
 *
 * Geometry conventions (all documented here once, and relied upon by the tests):
 * - Images are row-major, channels interleaved: pixel (row y, column x, channel c) is at
 *   `(y * width + x) * channels + c`. Pixel (x, y) covers the unit square [x, x+1) x [y, y+1), so
 *   its centre is at (x + 0.5, y + 0.5).
 * - The source region is the ROI, or the whole image when there is none. Its side is
 *   `side = max(roi.width, roi.height)`; a patch always looks at a square window (the aspect ratio
 *   is kept, never stretched).
 * - Scale f: the window is `f * side` wide and centred on the ROI centre; f > 1 zooms out. Window
 *   pixels that fall outside the IMAGE are 0 (pixels outside the ROI but inside the image are real
 *   context and are sampled).
 * - Translation (tx, ty), fractions of `side`: the CONTENT moves by (tx * side, ty * side) source
 *   pixels, +x to the right and +y downwards (the window moves the opposite way).
 * - The window is resampled to `size x size` output pixels with bilinear interpolation (pixel
 *   centres aligned; at scale 1, no translation and size = side the samples hit pixel centres
 *   exactly, so the identity patch equals the normalised image).
 * - Then the patch is mirrored horizontally (flip: column x -> size-1-x), and then rotated
 *   counter-clockwise as displayed (row 0 at the top) by 0, 90, 180 or 270 degrees.
 * - Output values are float32 in [0, 1]: Uint8Array input is divided by 255, Uint16Array by 65535,
 *   Float32Array is taken as is (it must already be in [0, 1]; values are not clamped).
 *
 * Sampling of the m patches: the grid is scales x translations(y) x translations(x) x flips x
 * rotations (see `enumerateAugmentations` for the order). With `includeIdentity` (default), patch
 * 0 is the identity (scale 1, no translation, no flip, no rotation; it is rendered even if the
 * grid does not contain it) and the other patches are a seeded shuffle of the grid WITHOUT the
 * identity; otherwise all patches come from a seeded shuffle of the whole grid. The shuffle is
 * seeded by `deriveSeed('patches', candidateId, seed)` (rng.ts), so it differs between candidates and is reproducible.
 * If m exceeds the number of distinct augmentations available, the sequence repeats cyclically
 * (patch j is augmentation order[j % order.length]), so some patches are exact duplicates.
 */

import { createRng, deriveSeed, shuffleInPlace } from './rng.js';

export type Rotation = 0 | 90 | 180 | 270;

export const ROTATIONS: readonly Rotation[] = [0, 90, 180, 270];

export interface AugmentationSpec {
  /** Output patch side in pixels. Default: the ROI side (max of its width and height), rounded. */
  size?: number;
  /** Window side as a multiple of the ROI side; > 1 zooms out. Default [1, 1.2, 1.5]. */
  scales?: readonly number[];
  /** Translations as fractions of the ROI side, applied in x and in y. Default [-0.1, 0, 0.1]. */
  translations?: readonly number[];
  /** Include horizontally mirrored patches. Default false. */
  flips?: boolean;
  /** Rotations (degrees, counter-clockwise as displayed). Default [0]. */
  rotations?: readonly Rotation[];
  /** Patches per candidate. Default: the grid size (every augmentation once). */
  m?: number;
  /** Patch 0 is the un-augmented image. Default true. */
  includeIdentity?: boolean;
}

/** A spec with every default filled in (except `size`, which may depend on the image). */
export interface ResolvedAugmentationSpec {
  size: number | undefined;
  scales: readonly number[];
  translations: readonly number[];
  flips: boolean;
  rotations: readonly Rotation[];
  m: number;
  includeIdentity: boolean;
}

/** One point of the augmentation grid. */
export interface Augmentation {
  scale: number;
  tx: number;
  ty: number;
  flip: boolean;
  rotation: Rotation;
}

export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

export interface Roi {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PatchOptions {
  candidateId: string;
  seed: number;
  roi?: Roi;
}

export type PatchSourceImage = Float32Array | Uint8Array | Uint16Array;

export const DEFAULT_SCALES: readonly number[] = Object.freeze([1, 1.2, 1.5]);
export const DEFAULT_TRANSLATIONS: readonly number[] = Object.freeze([-0.1, 0, 0.1]);

export const IDENTITY_AUGMENTATION: Readonly<Augmentation> = Object.freeze({
  scale: 1,
  tx: 0,
  ty: 0,
  flip: false,
  rotation: 0,
});

/**
 * The paper's polyp setting: 24 patches per candidate drawn from 3 scales x translations by 10% of
 * the box (x and y) x 8 flips/rotations (a grid of 216).
 */
export const PAPER_POLYP_SPEC: Readonly<AugmentationSpec> = Object.freeze({
  scales: Object.freeze([1, 1.2, 1.5]),
  translations: Object.freeze([-0.1, 0, 0.1]),
  flips: true,
  rotations: Object.freeze([0, 90, 180, 270] as Rotation[]),
  m: 24,
  includeIdentity: true,
});

/**
 * For upright objects (clothing, digits): translations, scales and horizontal mirrors, no
 * rotations; 12 patches per candidate drawn from a grid of 3 x 9 x 2 = 54.
 */
export const UPRIGHT_SPEC: Readonly<AugmentationSpec> = Object.freeze({
  scales: Object.freeze([1, 1.2, 1.5]),
  translations: Object.freeze([-0.1, 0, 0.1]),
  flips: true,
  rotations: Object.freeze([0] as Rotation[]),
  m: 12,
  includeIdentity: true,
});

function fail(message: string): never {
  throw new RangeError(`augmentation spec: ${message}`);
}

function checkNumberList(name: string, values: unknown, positive: boolean): readonly number[] {
  if (!Array.isArray(values) || values.length === 0) fail(`${name} must be a non-empty array of numbers`);
  const seen = new Set<number>();
  for (const v of values as unknown[]) {
    if (typeof v !== 'number' || !Number.isFinite(v))
      fail(`${name} must hold finite numbers, got ${String(v)}`);
    if (positive && v <= 0) fail(`${name} must be > 0, got ${v}`);
    if (seen.has(v)) fail(`${name} holds ${v} twice (the grid must not repeat itself)`);
    seen.add(v);
  }
  return values as readonly number[];
}

/** Size of the augmentation grid: scales x translations^2 x (flips ? 2 : 1) x rotations. */
export function patchGridSize(spec: AugmentationSpec): number {
  const r = resolveAugmentationSpec(spec);
  return gridSizeOf(r);
}

function gridSizeOf(r: Omit<ResolvedAugmentationSpec, 'm'>): number {
  return r.scales.length * r.translations.length ** 2 * (r.flips ? 2 : 1) * r.rotations.length;
}

/** Validates a spec and fills in the defaults. Throws a RangeError with a clear message. */
export function resolveAugmentationSpec(spec: AugmentationSpec): ResolvedAugmentationSpec {
  if (typeof spec !== 'object' || spec === null) fail('must be an object');
  let size: number | undefined;
  if (spec.size !== undefined) {
    if (!Number.isInteger(spec.size) || spec.size < 1)
      fail(`size must be a positive integer, got ${spec.size}`);
    size = spec.size;
  }
  const scales = checkNumberList('scales', spec.scales ?? DEFAULT_SCALES, true);
  const translations = checkNumberList('translations', spec.translations ?? DEFAULT_TRANSLATIONS, false);
  const flips = spec.flips ?? false;
  if (typeof flips !== 'boolean') fail('flips must be a boolean');
  const rotations = spec.rotations ?? [0];
  if (!Array.isArray(rotations) || rotations.length === 0) fail('rotations must be a non-empty array');
  const seenRot = new Set<number>();
  for (const r of rotations as unknown[]) {
    if (r !== 0 && r !== 90 && r !== 180 && r !== 270)
      fail(`rotations must be among 0, 90, 180, 270 (degrees), got ${String(r)}`);
    if (seenRot.has(r)) fail(`rotations holds ${r} twice`);
    seenRot.add(r);
  }
  const includeIdentity = spec.includeIdentity ?? true;
  if (typeof includeIdentity !== 'boolean') fail('includeIdentity must be a boolean');
  const partial = { size, scales, translations, flips, rotations, includeIdentity };
  const m = spec.m ?? gridSizeOf(partial);
  if (!Number.isInteger(m) || m < 1) fail(`m (patches per candidate) must be a positive integer, got ${m}`);
  return { ...partial, m };
}

/**
 * Every augmentation of the grid, in a fixed order: scales (outermost), then ty, then tx, then
 * flip (false before true), then rotation (innermost), each in the order given by the spec.
 */
export function enumerateAugmentations(spec: AugmentationSpec): Augmentation[] {
  const r = resolveAugmentationSpec(spec);
  const out: Augmentation[] = [];
  const flips = r.flips ? [false, true] : [false];
  for (const scale of r.scales)
    for (const ty of r.translations)
      for (const tx of r.translations)
        for (const flip of flips)
          for (const rotation of r.rotations) out.push({ scale, tx, ty, flip, rotation });
  return out;
}

export function isIdentityAugmentation(a: Augmentation): boolean {
  return a.scale === 1 && a.tx === 0 && a.ty === 0 && !a.flip && a.rotation === 0;
}

/**
 * The augmentations of the m patches of one candidate, in patch order (see the module comment for
 * the sampling rule).
 */
export function selectAugmentations(
  spec: AugmentationSpec,
  candidateId: string,
  seed: number,
): Augmentation[] {
  const r = resolveAugmentationSpec(spec);
  const grid = enumerateAugmentations(r);
  const rest = r.includeIdentity ? grid.filter((a) => !isIdentityAugmentation(a)) : grid;
  shuffleInPlace(rest, createRng(deriveSeed('patches', candidateId, seed)));
  const order = r.includeIdentity ? [{ ...IDENTITY_AUGMENTATION }, ...rest] : rest;
  const out: Augmentation[] = [];
  for (let j = 0; j < r.m; j++) out.push({ ...order[j % order.length]! });
  return out;
}

function checkImage(image: PatchSourceImage, shape: ImageShape): void {
  const { height, width, channels } = shape;
  for (const [k, v] of [
    ['height', height],
    ['width', width],
    ['channels', channels],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new RangeError(`image shape: ${k} must be a positive integer, got ${v}`);
  }
  if (!(image instanceof Uint8Array || image instanceof Uint16Array || image instanceof Float32Array)) {
    throw new TypeError('image must be a Uint8Array, Uint16Array or Float32Array');
  }
  if (image.length !== height * width * channels) {
    throw new RangeError(
      `image has ${image.length} values, expected height*width*channels = ${height}*${width}*${channels} = ${height * width * channels}`,
    );
  }
}

function resolveRoi(shape: ImageShape, roi: Roi | undefined): Roi {
  if (roi === undefined) return { x: 0, y: 0, width: shape.width, height: shape.height };
  for (const [k, v] of Object.entries(roi) as [string, unknown][]) {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new RangeError(`roi.${k} must be a finite number`);
  }
  if (roi.width <= 0 || roi.height <= 0) throw new RangeError('roi width and height must be > 0');
  return roi;
}

function defaultSize(roi: Roi): number {
  return Math.max(1, Math.round(Math.max(roi.width, roi.height)));
}

/**
 * Renders one augmentation of the image into `out` (length size*size*channels) at `offset`.
 * Exported for tests and for callers that want one specific augmentation.
 */
export function renderAugmentation(
  image: PatchSourceImage,
  shape: ImageShape,
  aug: Augmentation,
  opts: { size?: number; roi?: Roi } = {},
  out?: Float32Array,
  offset = 0,
): Float32Array {
  checkImage(image, shape);
  const roi = resolveRoi(shape, opts.roi);
  const size = opts.size ?? defaultSize(roi);
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`size must be a positive integer, got ${size}`);
  const { height, width, channels } = shape;
  const plane = size * size * channels;
  const dst = out ?? new Float32Array(plane);
  if (offset < 0 || offset + plane > dst.length) throw new RangeError('output buffer too small');
  const norm = image instanceof Uint8Array ? 1 / 255 : image instanceof Uint16Array ? 1 / 65535 : 1;

  const side = Math.max(roi.width, roi.height);
  const windowSide = aug.scale * side;
  const step = windowSide / size;
  // Window's top-left corner in source coordinates; the content moves by +t*side, so the window
  // moves by -t*side.
  const left = roi.x + roi.width / 2 - windowSide / 2 - aug.tx * side;
  const top = roi.y + roi.height / 2 - windowSide / 2 - aug.ty * side;

  // 1. Resample (scale + translation) into a scratch patch.
  const tmp = aug.flip || aug.rotation !== 0 ? new Float32Array(plane) : dst;
  const base = tmp === dst ? offset : 0;
  for (let i = 0; i < size; i++) {
    const v = top + (i + 0.5) * step - 0.5;
    const y0 = Math.floor(v);
    const fy = v - y0;
    const y1 = y0 + 1;
    const wy0 = y0 >= 0 && y0 < height ? 1 - fy : 0;
    const wy1 = y1 >= 0 && y1 < height ? fy : 0;
    for (let j = 0; j < size; j++) {
      const u = left + (j + 0.5) * step - 0.5;
      const x0 = Math.floor(u);
      const fx = u - x0;
      const x1 = x0 + 1;
      const wx0 = x0 >= 0 && x0 < width ? 1 - fx : 0;
      const wx1 = x1 >= 0 && x1 < width ? fx : 0;
      const o = base + (i * size + j) * channels;
      const w00 = wy0 * wx0;
      const w01 = wy0 * wx1;
      const w10 = wy1 * wx0;
      const w11 = wy1 * wx1;
      for (let c = 0; c < channels; c++) {
        let s = 0;
        if (w00 !== 0) s += w00 * image[(y0 * width + x0) * channels + c]!;
        if (w01 !== 0) s += w01 * image[(y0 * width + x1) * channels + c]!;
        if (w10 !== 0) s += w10 * image[(y1 * width + x0) * channels + c]!;
        if (w11 !== 0) s += w11 * image[(y1 * width + x1) * channels + c]!;
        tmp[o + c] = s * norm;
      }
    }
  }
  if (tmp === dst) return dst;

  // 2. Mirror, then rotate, straight from the scratch patch into the destination.
  let work = tmp;
  if (aug.flip) work = flipPatchHorizontal(work, size, channels);
  if (aug.rotation !== 0) work = rotatePatch(work, size, channels, aug.rotation);
  dst.set(work, offset);
  return dst;
}

/** Horizontal mirror of one square patch [size, size, channels]: column x -> size-1-x. */
export function flipPatchHorizontal(patch: Float32Array, size: number, channels: number): Float32Array {
  checkPatch(patch, size, channels);
  const out = new Float32Array(patch.length);
  for (let i = 0; i < size; i++)
    for (let j = 0; j < size; j++) {
      const s = (i * size + j) * channels;
      const d = (i * size + (size - 1 - j)) * channels;
      for (let c = 0; c < channels; c++) out[d + c] = patch[s + c]!;
    }
  return out;
}

/**
 * Rotation of one square patch [size, size, channels] counter-clockwise as displayed (row 0 at
 * the top): for 90 degrees the top row becomes the left column (read bottom to top).
 */
export function rotatePatch(
  patch: Float32Array,
  size: number,
  channels: number,
  degrees: Rotation,
): Float32Array {
  checkPatch(patch, size, channels);
  const out = new Float32Array(patch.length);
  const n = size - 1;
  for (let i = 0; i < size; i++)
    for (let j = 0; j < size; j++) {
      let di: number;
      let dj: number;
      switch (degrees) {
        case 0:
          di = i;
          dj = j;
          break;
        case 90:
          di = n - j;
          dj = i;
          break;
        case 180:
          di = n - i;
          dj = n - j;
          break;
        case 270:
          di = j;
          dj = n - i;
          break;
        default:
          throw new RangeError(`rotation must be 0, 90, 180 or 270, got ${String(degrees)}`);
      }
      const s = (i * size + j) * channels;
      const d = (di * size + dj) * channels;
      for (let c = 0; c < channels; c++) out[d + c] = patch[s + c]!;
    }
  return out;
}

function checkPatch(patch: Float32Array, size: number, channels: number): void {
  if (patch.length !== size * size * channels)
    throw new RangeError(`patch has ${patch.length} values, expected ${size}*${size}*${channels}`);
}

/**
 * The side of the square patches {@link generatePatches} makes of an image of `shape` (the spec's
 * `size`, else the ROI's longer side). Throws, like generatePatches, on an invalid spec or ROI.
 */
export function patchSide(shape: ImageShape, spec: AugmentationSpec, roi?: Roi): number {
  return resolveAugmentationSpec(spec).size ?? defaultSize(resolveRoi(shape, roi));
}

/**
 * The m patches of one candidate as a float32 tensor buffer [m, size, size, channels] with values
 * in [0, 1]. Pure and deterministic in (image, shape, spec, candidateId, seed, roi).
 *
 * With `out`, the patches are written there from `offset` on (and `out` is returned) instead of
 * into a new buffer: a caller making many candidates' patches reuses one buffer.
 */
export function generatePatches(
  image: PatchSourceImage,
  shape: ImageShape,
  spec: AugmentationSpec,
  opts: PatchOptions,
  out?: Float32Array,
  offset = 0,
): Float32Array {
  checkImage(image, shape);
  if (typeof opts.candidateId !== 'string') throw new TypeError('candidateId must be a string');
  if (!Number.isSafeInteger(opts.seed)) throw new RangeError(`seed must be a safe integer, got ${opts.seed}`);
  const r = resolveAugmentationSpec(spec);
  const roi = resolveRoi(shape, opts.roi);
  const size = r.size ?? defaultSize(roi);
  const plane = size * size * shape.channels;
  const dst = out ?? new Float32Array(r.m * plane);
  if (!Number.isInteger(offset) || offset < 0 || offset + r.m * plane > dst.length) {
    throw new RangeError(`output buffer too small: ${r.m} patches of ${plane} values from offset ${offset}`);
  }
  const augs = selectAugmentations(r, opts.candidateId, opts.seed);
  augs.forEach((aug, k) => {
    renderAugmentation(image, shape, aug, { size, roi }, dst, offset + k * plane);
  });
  return dst;
}
