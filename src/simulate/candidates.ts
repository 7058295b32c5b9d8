/**
 * The candidates the simulated hospital streams: images of a task's pool split, in a seeded order,
 * each one an `acft.candidate/v1` message keyed by its stable task id (e.g. `fmnist-6-00123`).
 *
 * Source references are synthetic DICOM-style UIDs under the `2.25` root (UUID-derived UIDs,
 * DICOM PS3.5 B.2): `2.25.` followed by a decimal 128-bit number taken from a SHA-256 of the
 * candidate id. They are opaque, stable, different for study, series and instance, and hold
 * nothing that looks like a name or another patient identifier (not even the candidate id).
 */
import { createHash } from 'node:crypto';
import { createRng, deriveSeed, shuffleInPlace } from '../core/rng.js';
import { generatePatches, resolveAugmentationSpec, type AugmentationSpec } from '../core/patches.js';
import { imageAt } from '../data/image-set.js';
import type { Split, Task } from '../data/task.js';
import type { Candidate, SourceRefs } from '../messages/index.js';

/** How a candidate carries its pixels. */
export type CandidateMode = 'image' | 'patches';

export const CANDIDATE_MODES: readonly CandidateMode[] = ['image', 'patches'];

/** The root of UUID-derived DICOM UIDs. */
export const UUID_UID_ROOT = '2.25';

function uid(kind: string, candidateId: string): string {
  const digest = createHash('sha256').update(`acft-simulate\u0000${kind}\u0000${candidateId}`).digest();
  // 128 bits, as a UUID-derived UID holds: at most 39 digits, so the UID stays within 64 characters.
  const value = digest.subarray(0, 16).reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
  return `${UUID_UID_ROOT}.${value.toString()}`;
}

/** Synthetic, opaque study/series/instance UIDs of a candidate (see the module comment). */
export function syntheticSourceRefs(candidateId: string): SourceRefs {
  return {
    study: uid('study', candidateId),
    series: uid('series', candidateId),
    instance: uid('instance', candidateId),
  };
}

/**
 * The order in which the pool is streamed: positions into `split`, shuffled by a seed of its own
 * (the same seed always streams the same candidates in the same order).
 */
export function streamOrder(split: Split, seed: number): number[] {
  const order = Array.from({ length: split.ids.length }, (_, i) => i);
  return shuffleInPlace(order, createRng(deriveSeed('simulate-stream', seed)));
}

/** Options of {@link buildCandidate}. */
export interface BuildCandidateOptions {
  /** 'image' (default): the 28x28x1 image; the daemon makes the patches with its own preset. */
  mode?: CandidateMode;
  /** 'patches' mode: how the patches are made (the daemon's augmentation, to compare like with like). */
  augmentation?: AugmentationSpec;
  /** 'patches' mode: the patch seed (the daemon's `scoring.patchSeed`). Default 1. */
  patchSeed?: number;
  /** Detection time. Default now. */
  time?: Date;
}

/** Float patch values in [0, 1] as bytes (the smaller wire form; bilinear values are rounded). */
function toBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.round(Math.min(1, Math.max(0, values[i]!)) * 255);
  return out;
}

/**
 * The candidate at `position` of `split` of `task`, as a decoded {@link Candidate} ready for
 * `encodeCandidate`: its stable id, synthetic source references, and its pixels as uint8, either
 * the image `[h, w, c]` or its m patches `[m, size, size, c]`.
 */
export function buildCandidate(
  task: Task,
  split: Split,
  position: number,
  options: BuildCandidateOptions = {},
): Candidate {
  const id = split.ids[position];
  const index = split.indices[position];
  if (id === undefined || index === undefined) {
    throw new RangeError(`position ${position} is outside the split (0..${split.ids.length - 1})`);
  }
  const set = task.set;
  const image = imageAt(set, index);
  const time = (options.time ?? new Date()).toISOString();
  const sourceRefs = syntheticSourceRefs(id);
  if ((options.mode ?? 'image') === 'image') {
    return {
      id,
      sourceRefs,
      time,
      content: {
        kind: 'image',
        dtype: 'uint8',
        shape: [set.height, set.width, set.channels],
        // A copy: the image is a view into the whole set's buffer, which must not go on the wire.
        data: Uint8Array.from(image),
      },
    };
  }
  const spec = options.augmentation ?? {};
  const m = resolveAugmentationSpec(spec).m;
  const patches = generatePatches(
    image,
    { height: set.height, width: set.width, channels: set.channels },
    spec,
    { candidateId: id, seed: options.patchSeed ?? 1 },
  );
  const size = Math.round(Math.sqrt(patches.length / (m * set.channels)));
  return {
    id,
    sourceRefs,
    time,
    content: {
      kind: 'patches',
      dtype: 'uint8',
      shape: [m, size, size, set.channels],
      data: toBytes(patches),
    },
  };
}
