/**
 * What both readers of `acft.candidate/v1` share, the schema (candidate.ts) and the byte-level
 * fast path (candidate-bytes.ts): its constants and the types of what they read. (Here, so that
 * neither imports the other.)
 */
import type { AugmentationSpec, Roi } from '../core/patches.js';
import type { PixelData, PixelDtype } from './tensor.js';

export const CANDIDATE_SCHEMA = 'acft.candidate/v1';

/** Keys of `sourceRefs` that suggest a patient identifier rather than an opaque reference. */
export const IDENTIFIER_KEY_PATTERN = /patient|name|birth|dob|mrn|ssn|address|phone|e-?mail/i;

/** A `sourceRefs` key: a letter then up to 63 of `A-Z a-z 0-9 _ . -`. */
export const SOURCE_REF_KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** A `sourceRefs` value: 1 to 256 printable ASCII characters. */
export const SOURCE_REF_VALUE = /^[\x20-\x7e]{1,256}$/;

/** At most this many source references per candidate. */
export const MAX_SOURCE_REFS = 16;

/** Opaque references of a candidate (keys and values as SOURCE_REF_KEY and SOURCE_REF_VALUE allow). */
export type SourceRefs = Record<string, string>;

/** Limits on what one candidate may carry; beyond them a candidate is dead-lettered. */
export interface MessageLimits {
  /** Maximum raw message size ('oversized'). */
  maxPayloadBytes: number;
  /** Maximum patches per candidate, carried or generated ('limit-exceeded'). */
  maxPatches: number;
  /** Maximum image (and patch) height, width and generated patch size, in pixels ('limit-exceeded'). */
  maxImageSide: number;
  /** Maximum channels per pixel ('limit-exceeded'). */
  maxChannels: number;
}

/** Patches carried by the candidate: `shape` is [m, height, width, channels], row-major. */
export interface CandidatePatches {
  kind: 'patches';
  dtype: PixelDtype;
  shape: [number, number, number, number];
  data: PixelData;
}

/** An image carried by the candidate: `shape` is [height, width, channels], row-major. */
export interface CandidateImage {
  kind: 'image';
  dtype: PixelDtype;
  shape: [number, number, number];
  data: PixelData;
  /** Region of interest in pixels; it lies within the image. Absent: the whole image. */
  roi?: Roi;
  /** How to make the patches; absent: the daemon's configured preset. */
  augmentation?: AugmentationSpec;
}

/** A decoded, validated candidate. Pixel data is a typed array of the tensor's dtype. */
export interface Candidate {
  id: string;
  /** Opaque references; never log them. Empty when the message had none. */
  sourceRefs: SourceRefs;
  /** ISO 8601 time of the detection. */
  time: string;
  content: CandidatePatches | CandidateImage;
}
