/**
 * What the pool keeps of a candidate: its pixels as one typed array (an image, or the patches it
 * came with) and what makes patches of it. Patches of images are made on demand by the scoring
 * and training workers, never stored.
 */
import { patchSide, type AugmentationSpec, type Roi } from '../core/patches.js';
import type { Json } from '../core/checkpoint-state.js';
import {
  ingestCandidate,
  type LabelingConfig,
  type LabelingState,
  type LabelingStep,
} from '../core/labels.js';
import type { SourceRef } from '../core/pool.js';
import {
  parseCandidate,
  parsed,
  type Candidate,
  type MessageKey,
  type MessageLimits,
  type ParseFailure,
  type ParseResult,
} from '../messages/index.js';
import type { ScoringInput } from '../workers/scoring-service.js';

type Pixels = Uint8Array | Uint16Array | Float32Array;

export interface StoredCandidate {
  kind: 'image' | 'patches';
  dtype: 'uint8' | 'uint16' | 'float32';
  shape: number[];
  data: Pixels;
  roi?: Roi;
  augmentation?: AugmentationSpec;
}

/**
 * Bytes per pooled candidate on top of its pixels (id strings, pool maps and heaps, the score and
 * its mean probabilities), so that `pool.maxBytes` bounds real memory: measured by
 * `npm run bench:daemon` as the heap growth from N to 2N pooled candidates minus their pixels
 * (about 600 to 1,100 bytes at N = 1,000 on Node 20), rounded up.
 */
export const CANDIDATE_OVERHEAD_BYTES = 1_200;

/**
 * What the pool keeps of a parsed candidate: its content as it is (the parser made it for this
 * message alone, and nothing changes it afterwards), without the id, time and source references.
 */
export function storeCandidate(c: Candidate): StoredCandidate {
  return c.content;
}

/** A candidate message as Kafka delivers it. */
export interface CandidateMessage {
  key: MessageKey | null;
  value: Buffer | null;
  /** The producer's timestamp, ms since the epoch, as a string. */
  timestamp: string;
}

/**
 * The daemon's intake of one candidate message: validated (source references checked, never
 * kept), stored, and handed to the pool or, if its label is known or awaited, to the label store.
 * It arrived at the producer's timestamp, or `now` if that is missing or in the future. A refused
 * message comes back as the parse failure, for its dead letter.
 */
export function takeCandidate(
  state: LabelingState<StoredCandidate>,
  message: CandidateMessage,
  source: SourceRef,
  now: number,
  limits: MessageLimits,
  labeling: LabelingConfig,
  /** Why a valid candidate cannot be used (its patches do not fit the model), if so. */
  refuse?: (stored: StoredCandidate) => ParseFailure | undefined,
): ParseResult<LabelingStep<StoredCandidate>> {
  const candidate = parseCandidate(message.value, {
    limits,
    // A message without a key is a 'key-mismatch', as docs/messages.md says: null is checked.
    key: message.key,
    keepSourceRefs: false,
  });
  if (!candidate.ok) return candidate;
  const { id } = candidate.value;
  const stored = storeCandidate(candidate.value);
  const refusal = refuse?.(stored);
  if (refusal !== undefined) return refusal;
  const produced = Number(message.timestamp);
  return parsed(
    ingestCandidate(
      state,
      {
        id,
        source,
        arrivedAtMs: Number.isFinite(produced) ? Math.min(produced, now) : now,
        bytes: storedBytes(stored, id),
        payload: stored,
      },
      now,
      labeling,
    ),
  );
}

/**
 * The height, width and channels of the patches made of a stored candidate: those it came with,
 * or those cut from its image by `augmentation` (its own, else the configured one). A string says
 * why none can be made (an ROI outside the image, an invalid spec).
 */
export function patchShapeOf(
  s: StoredCandidate,
  augmentation: AugmentationSpec,
): [number, number, number] | string {
  if (s.kind === 'patches') {
    const [, h, w, c] = s.shape as [number, number, number, number];
    return [h, w, c];
  }
  const [height, width, channels] = s.shape as [number, number, number];
  try {
    const side = patchSide({ height, width, channels }, augmentation, s.roi);
    return [side, side, channels];
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export function storedBytes(s: StoredCandidate, id: string): number {
  return s.data.byteLength + CANDIDATE_OVERHEAD_BYTES + 2 * id.length;
}

export function scoringInput(id: string, s: StoredCandidate): ScoringInput {
  if (s.kind === 'patches') {
    const [m, h, w, c] = s.shape as [number, number, number, number];
    return { id, patches: { data: s.data, shape: [m, h, w, c] } };
  }
  const [h, w, c] = s.shape as [number, number, number];
  return { id, image: { data: s.data, shape: [h, w, c] }, ...(s.roi ? { roi: s.roi } : {}) };
}

/** A key grouping candidates that share one patch recipe (the scoring services take one per call). */
export function recipeKey(s: StoredCandidate): string {
  return s.kind === 'patches' ? `patches:${s.shape[0]}` : `image:${JSON.stringify(s.augmentation ?? null)}`;
}

export function encodeStored(s: StoredCandidate): Json {
  return {
    kind: s.kind,
    dtype: s.dtype,
    shape: s.shape,
    data: Buffer.from(s.data.buffer, s.data.byteOffset, s.data.byteLength).toString('base64'),
    ...(s.roi ? { roi: { ...s.roi } } : {}),
    ...(s.augmentation ? { augmentation: JSON.parse(JSON.stringify(s.augmentation)) as Json } : {}),
  };
}

export function decodeStored(j: Json): StoredCandidate {
  const o = j as unknown as Omit<StoredCandidate, 'data'> & { data: string };
  const bytes = Buffer.from(o.data, 'base64');
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  const data: Pixels =
    o.dtype === 'uint8'
      ? copy
      : o.dtype === 'uint16'
        ? new Uint16Array(copy.buffer)
        : new Float32Array(copy.buffer);
  return { ...o, data };
}
