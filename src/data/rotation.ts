/**
 * The rotation pretext task (Gidaris et al. 2018) for self-supervised pre-training on unlabeled
 * images: every image is shown at 0, 90, 180 and 270 degrees and the model learns to tell which.
 * No class label is used; the labels of the made set are the rotations.
 */
import type { ImageSet } from './image-set.js';

/** Class names of the pretext set: the rotation of each copy. */
export const ROTATION_CLASS_NAMES = ['0deg', '90deg', '180deg', '270deg'] as const;

/**
 * Rotates a square image (height = width, channels interleaved) by `quarterTurns` x 90 degrees
 * clockwise into `out` (a new array when not given).
 */
export function rotateSquare(
  image: Uint8Array,
  side: number,
  channels: number,
  quarterTurns: number,
  out: Uint8Array = new Uint8Array(image.length),
): Uint8Array {
  if (image.length !== side * side * channels) {
    throw new RangeError(`image has ${image.length} values, expected ${side}x${side}x${channels}`);
  }
  const k = ((quarterTurns % 4) + 4) % 4;
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      // Clockwise: the output pixel (r, c) comes from the source pixel below.
      const [sr, sc] =
        k === 0
          ? [r, c]
          : k === 1
            ? [side - 1 - c, r]
            : k === 2
              ? [side - 1 - r, side - 1 - c]
              : [c, side - 1 - r];
      for (let ch = 0; ch < channels; ch++) {
        out[(r * side + c) * channels + ch] = image[(sr * side + sc) * channels + ch] as number;
      }
    }
  }
  return out;
}

/**
 * The pretext set of `indices` of `set`: four copies of each image (0, 90, 180, 270 degrees),
 * labeled 0..3 by rotation, image-major (all four copies of one image, then the next). Source
 * labels are not read. `sourceIndex` keeps each copy's source image index.
 */
export function rotationPretextSet(set: ImageSet, indices: readonly number[]): ImageSet {
  if (set.height !== set.width) {
    throw new RangeError(
      `the rotation pretext needs square images, ${set.name} is ${set.height}x${set.width}`,
    );
  }
  const size = set.height * set.width * set.channels;
  const count = indices.length * 4;
  const images = new Uint8Array(count * size);
  const labels = new Int32Array(count);
  const sourceIndex = new Int32Array(count);
  indices.forEach((idx, i) => {
    if (!Number.isInteger(idx) || idx < 0 || idx >= set.count) {
      throw new RangeError(`image index ${idx} out of range 0..${set.count - 1} in ${set.name}`);
    }
    const image = set.images.subarray(idx * size, (idx + 1) * size);
    for (let k = 0; k < 4; k++) {
      const j = i * 4 + k;
      rotateSquare(image, set.height, set.channels, k, images.subarray(j * size, (j + 1) * size));
      labels[j] = k;
      sourceIndex[j] = idx;
    }
  });
  return {
    name: `${set.name}-rotation`,
    idPrefix: `${set.idPrefix}-rot`,
    source: set.source,
    height: set.height,
    width: set.width,
    channels: set.channels,
    classNames: [...ROTATION_CLASS_NAMES],
    images,
    labels,
    sourceIndex,
    count,
    rejected: [],
  };
}
