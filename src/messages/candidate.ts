/**
 * `acft.candidate/v1` (topic `candidates`, key: the candidate id): one CAD detection to score and
 * perhaps to have labeled. It carries either its m patches, or one image (plus an optional region
 * of interest and augmentation spec) from which the daemon makes the patches.
 *
 * `sourceRefs` are OPAQUE ids that let the hospital find the detection again (e.g. DICOM
 * study/series/instance UIDs). They must never hold names or other patient identifiers; keys that
 * look like identifiers are refused, and the daemon never logs sourceRefs nor copies them into
 * dead-letter messages.
 */
import { z } from 'zod';
import { resolveAugmentationSpec } from '../core/patches.js';
import {
  candidateIdSchema,
  checkKey,
  OPAQUE_ID_PATTERN,
  DEFAULT_MAX_PAYLOAD_BYTES,
  describeIssues,
  encodeWith,
  isIsoTime,
  isoTimeSchema,
  readJson,
  type MessageKey,
  type MessageValue,
} from './common.js';
import { fastParseCandidateBytes } from './candidate-bytes.js';
import {
  CANDIDATE_SCHEMA,
  IDENTIFIER_KEY_PATTERN,
  MAX_SOURCE_REFS,
  SOURCE_REF_KEY,
  SOURCE_REF_VALUE,
  type Candidate,
  type CandidateImage,
  type CandidatePatches,
  type MessageLimits,
} from './candidate-rules.js';
import { MessageEncodeError, parsed, rejected, type DeadLetterReason, type ParseResult } from './reasons.js';
import {
  decodeTensorData,
  dimensionSchema,
  dtypeOf,
  elementCount,
  encodeTensorData,
  pixelDtypeSchema,
  type PixelDtype,
} from './tensor.js';

export { CANDIDATE_SCHEMA, IDENTIFIER_KEY_PATTERN, MAX_SOURCE_REFS };
export type { Candidate, CandidateImage, CandidatePatches, MessageLimits } from './candidate-rules.js';

/** The defaults of the daemon's configuration (`limits.*`). */
export const DEFAULT_MESSAGE_LIMITS: Readonly<MessageLimits> = Object.freeze({
  maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
  maxPatches: 64,
  maxImageSide: 512,
  maxChannels: 4,
});

/**
 * Opaque references to where the candidate came from, e.g. `{ study, series, instance }` UIDs.
 * Keys: a letter then up to 63 of `A-Z a-z 0-9 _ . -`; values: 1 to 256 printable ASCII characters.
 */
export const sourceRefsSchema = z
  .record(
    z.string().regex(SOURCE_REF_KEY, 'keys must be a letter then up to 63 of A-Z a-z 0-9 _ . -'),
    // The message never echoes the value: it may be exactly what must not be logged.
    z.string().regex(SOURCE_REF_VALUE, 'must be 1 to 256 printable ASCII characters'),
  )
  .superRefine((refs, ctx) => {
    const keys = Object.keys(refs);
    if (keys.length > MAX_SOURCE_REFS) {
      ctx.addIssue({ code: 'custom', message: `at most ${MAX_SOURCE_REFS} references, got ${keys.length}` });
    }
    for (const key of keys) {
      if (IDENTIFIER_KEY_PATTERN.test(key)) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'looks like a patient identifier; sourceRefs hold opaque ids only',
        });
      }
    }
  });

export type { SourceRefs } from './candidate-rules.js';

export const roiSchema = z.object({
  x: z.number(),
  y: z.number(),
  width: z.number().positive(),
  height: z.number().positive(),
});

const ROTATION = z.literal([0, 90, 180, 270]);

/** The fields of {@link AugmentationSpec}; lists hold at most 16 values. */
export const augmentationSchema = z.object({
  size: z.int().positive().optional(),
  scales: z.array(z.number().positive().max(16)).min(1).max(16).optional(),
  translations: z.array(z.number().min(-1).max(1)).min(1).max(16).optional(),
  flips: z.boolean().optional(),
  rotations: z.array(ROTATION).min(1).max(4).optional(),
  m: z.int().positive().optional(),
  includeIdentity: z.boolean().optional(),
});

/** `patches`: m patches of h x w pixels with c channels. */
export const patchesTensorSchema = z.object({
  dtype: pixelDtypeSchema,
  shape: z.tuple([dimensionSchema, dimensionSchema, dimensionSchema, dimensionSchema]),
  data: z.string(),
});

/** `image`: one h x w image with c channels, and how to make patches from it. */
export const imageTensorSchema = z.object({
  dtype: pixelDtypeSchema,
  shape: z.tuple([dimensionSchema, dimensionSchema, dimensionSchema]),
  data: z.string(),
  roi: roiSchema.optional(),
  augmentation: augmentationSchema.optional(),
});

/** The wire form of a candidate (tensor data still base64). */
export const candidateMessageSchema = z
  .object({
    schema: z.literal(CANDIDATE_SCHEMA),
    id: candidateIdSchema,
    sourceRefs: sourceRefsSchema.optional(),
    time: isoTimeSchema,
    patches: patchesTensorSchema.optional(),
    image: imageTensorSchema.optional(),
  })
  .superRefine((c, ctx) => {
    if ((c.patches === undefined) === (c.image === undefined)) {
      ctx.addIssue({ code: 'custom', message: "needs exactly one of 'patches' and 'image'" });
    }
  });

/** The wire form of a candidate. */
export type CandidateMessage = z.infer<typeof candidateMessageSchema>;

const CANDIDATE_KEYS = new Set(['schema', 'id', 'sourceRefs', 'time', 'patches', 'image']);
const TENSOR_KEYS = new Set(['dtype', 'shape', 'data']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Keys of `o` all in `allowed`? (zod would strip the others: that case is left to zod.) */
function onlyKeys(o: Record<string, unknown>, allowed: ReadonlySet<string>): boolean {
  for (const k in o) if (!allowed.has(k)) return false;
  return true;
}

function fastDims(v: unknown, rank: number): number[] | undefined {
  if (!Array.isArray(v) || v.length !== rank) return undefined;
  for (const d of v) if (!Number.isSafeInteger(d) || (d as number) <= 0) return undefined;
  return (v as number[]).slice();
}

/** A bare `{ dtype, shape, data }` tensor (no ROI, no augmentation), or undefined. */
function fastTensor(
  v: unknown,
  rank: number,
): { dtype: PixelDtype; shape: number[]; data: string } | undefined {
  if (!isPlainObject(v) || !onlyKeys(v, TENSOR_KEYS)) return undefined;
  const { dtype, shape, data } = v;
  if (dtype !== 'uint8' && dtype !== 'uint16' && dtype !== 'float32') return undefined;
  if (typeof data !== 'string') return undefined;
  const dims = fastDims(shape, rank);
  return dims === undefined ? undefined : { dtype, shape: dims, data };
}

function fastSourceRefs(v: unknown): Record<string, string> | undefined {
  if (!isPlainObject(v)) return undefined;
  const out: Record<string, string> = {};
  let n = 0;
  for (const key in v) {
    const value = v[key];
    if (++n > MAX_SOURCE_REFS || typeof value !== 'string') return undefined;
    if (!SOURCE_REF_KEY.test(key) || IDENTIFIER_KEY_PATTERN.test(key) || !SOURCE_REF_VALUE.test(value)) {
      return undefined;
    }
    out[key] = value;
  }
  return out;
}

/**
 * The common case of {@link candidateMessageSchema}, checked by hand: every field present is
 * valid, there is no unknown key, and the tensor carries neither ROI nor augmentation. Returns
 * what the schema returns, or undefined whenever it is not sure (then the schema decides, and
 * explains a refusal). It only saves time: a property test holds it to the schema (accepts only
 * what the schema accepts, with the same result). Zod's object machinery was a fifth of the
 * daemon's main-thread time at intake.
 */
export function fastCandidateMessage(v: unknown): CandidateMessage | undefined {
  if (!isPlainObject(v) || !onlyKeys(v, CANDIDATE_KEYS)) return undefined;
  if (v.schema !== CANDIDATE_SCHEMA) return undefined;
  const { id, time } = v;
  if (typeof id !== 'string' || !OPAQUE_ID_PATTERN.test(id)) return undefined;
  if (typeof time !== 'string' || !isIsoTime(time)) return undefined;
  let sourceRefs: Record<string, string> | undefined;
  if (v.sourceRefs !== undefined) {
    sourceRefs = fastSourceRefs(v.sourceRefs);
    if (sourceRefs === undefined) return undefined;
  }
  const base = {
    schema: CANDIDATE_SCHEMA,
    id,
    ...(sourceRefs !== undefined ? { sourceRefs } : {}),
    time,
  } as const;
  if (v.patches !== undefined) {
    if (v.image !== undefined) return undefined;
    const t = fastTensor(v.patches, 4);
    return t === undefined ? undefined : { ...base, patches: t as NonNullable<CandidateMessage['patches']> };
  }
  const t = fastTensor(v.image, 3);
  return t === undefined ? undefined : { ...base, image: t as NonNullable<CandidateMessage['image']> };
}

/** The message as {@link candidateMessageSchema} parses it: the fast path first, else the schema. */
export function safeParseCandidateMessage(
  v: unknown,
): { success: true; data: CandidateMessage } | { success: false; error: z.ZodError } {
  const fast = fastCandidateMessage(v);
  if (fast !== undefined) return { success: true, data: fast };
  return candidateMessageSchema.safeParse(v);
}

/** Options of {@link parseCandidate}. */
export interface CandidateParseOptions {
  limits: MessageLimits;
  /** The Kafka key; must equal the id. Leave out (undefined) when the value did not come from Kafka. */
  key?: MessageKey;
  /**
   * Try the byte-level fast path first (candidate-bytes.ts) when the value is bytes; default true.
   * It gives the same results; false runs only the standard path (for the tests that compare them).
   */
  fastPath?: boolean;
  /**
   * Return the source references (default true). False: they are still checked (a message with bad
   * ones is refused all the same), but the result's `sourceRefs` is {}, for a consumer that has no
   * use for them (the daemon) and so never holds them.
   */
  keepSourceRefs?: boolean;
}

function schemaReason(issues: readonly z.core.$ZodIssue[]): DeadLetterReason {
  let reason: DeadLetterReason | undefined;
  for (const issue of issues) {
    const [top, field] = issue.path;
    const tensor = top === 'patches' || top === 'image';
    if (tensor && field === 'dtype') reason ??= 'tensor-dtype';
    else if (tensor && field === 'shape') reason ??= 'tensor-shape';
    else return 'schema';
  }
  return reason ?? 'schema';
}

/** A sourceRefs key that is not a well-formed key might be anything: it is not echoed. */
function hideSourceRefKeys(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  const [top, key, ...rest] = issue.path;
  if (top !== 'sourceRefs' || typeof key !== 'string' || SOURCE_REF_KEY.test(key)) return issue;
  return { ...issue, path: [top, '<key>', ...rest] };
}

function checkLimits(c: CandidateMessage, limits: MessageLimits): ParseResult<void> {
  const tensor = c.patches ?? c.image;
  if (tensor === undefined) return rejected('schema', "needs exactly one of 'patches' and 'image'");
  const field = c.patches !== undefined ? 'patches' : 'image';
  const dims = tensor.shape;
  const [height, width, channels] = c.patches !== undefined ? dims.slice(1) : dims;
  if (c.patches !== undefined && c.patches.shape[0] > limits.maxPatches) {
    return rejected(
      'limit-exceeded',
      `patches.shape[0]: ${c.patches.shape[0]} patches, over the limit of ${limits.maxPatches}`,
    );
  }
  for (const [name, v] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (v !== undefined && v > limits.maxImageSide) {
      return rejected(
        'limit-exceeded',
        `${field}.shape: ${name} ${v} is over the limit of ${limits.maxImageSide} pixels`,
      );
    }
  }
  if (channels !== undefined && channels > limits.maxChannels) {
    return rejected(
      'limit-exceeded',
      `${field}.shape: ${channels} channels, over the limit of ${limits.maxChannels}`,
    );
  }
  return parsed(undefined);
}

function checkImageExtras(
  image: NonNullable<CandidateMessage['image']>,
  limits: MessageLimits,
): ParseResult<void> {
  const [h, w] = image.shape;
  const roi = image.roi;
  if (roi !== undefined && (roi.x < 0 || roi.y < 0 || roi.x + roi.width > w || roi.y + roi.height > h)) {
    return rejected('schema', `image.roi: must lie within the ${w}x${h} image`);
  }
  if (image.augmentation !== undefined) {
    let m: number;
    try {
      m = resolveAugmentationSpec(image.augmentation).m;
    } catch (err) {
      return rejected('schema', `image.augmentation: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (m > limits.maxPatches) {
      return rejected(
        'limit-exceeded',
        `image.augmentation: ${m} patches, over the limit of ${limits.maxPatches}`,
      );
    }
    const size = image.augmentation.size;
    if (size !== undefined && size > limits.maxImageSide) {
      return rejected(
        'limit-exceeded',
        `image.augmentation.size: ${size} is over the limit of ${limits.maxImageSide} pixels`,
      );
    }
  }
  return parsed(undefined);
}

/**
 * Parses and validates a candidate from a raw Kafka value; never throws.
 *
 * Order of checks: value size ('oversized'), JSON ('invalid-json'), schema ('schema',
 * 'tensor-dtype', 'tensor-shape'), Kafka key ('key-mismatch'), limits ('limit-exceeded'), then
 * the tensor bytes ('tensor-data'). Nothing large is allocated before the size checks pass.
 */
export function parseCandidate(value: MessageValue, options: CandidateParseOptions): ParseResult<Candidate> {
  const { limits } = options;
  if (options.fastPath !== false && value instanceof Uint8Array) {
    const fast = fastParseCandidateBytes(value, limits, options.key, options.keepSourceRefs ?? true);
    if (fast !== undefined) return parsed(fast);
  }
  const json = readJson(value, limits.maxPayloadBytes);
  if (!json.ok) return json;
  const result = safeParseCandidateMessage(json.value);
  if (!result.success) {
    const issues = result.error.issues;
    return rejected(schemaReason(issues), describeIssues(issues.map(hideSourceRefKeys)));
  }
  const c = result.data;
  const key = checkKey(options.key, c.id);
  if (!key.ok) return key;
  const limited = checkLimits(c, limits);
  if (!limited.ok) return limited;
  if (c.image !== undefined) {
    const extras = checkImageExtras(c.image, limits);
    if (!extras.ok) return extras;
  }

  let content: CandidatePatches | CandidateImage;
  if (c.patches !== undefined) {
    const { dtype, shape } = c.patches;
    const decoded = decodeTensorData('patches', dtype, shape, c.patches.data, 'unit');
    if (!decoded.ok) return rejected('tensor-data', decoded.error);
    content = { kind: 'patches', dtype, shape, data: decoded.data };
  } else if (c.image !== undefined) {
    const { dtype, shape, roi, augmentation } = c.image;
    // Float images must already be in [0, 1] (patches.ts does not rescale them).
    const decoded = decodeTensorData('image', dtype, shape, c.image.data, 'unit');
    if (!decoded.ok) return rejected('tensor-data', decoded.error);
    content = {
      kind: 'image',
      dtype,
      shape,
      data: decoded.data,
      ...(roi !== undefined ? { roi } : {}),
      ...(augmentation !== undefined ? { augmentation } : {}),
    };
  } else {
    return rejected('schema', "needs exactly one of 'patches' and 'image'");
  }
  const sourceRefs = options.keepSourceRefs === false ? {} : (c.sourceRefs ?? {});
  return parsed({ id: c.id, sourceRefs, time: c.time, content });
}

/**
 * The wire form of a decoded candidate (tensor data as base64).
 *
 * @throws MessageEncodeError when the data's array type or length does not match dtype and shape.
 */
export function toCandidateMessage(candidate: Candidate): CandidateMessage {
  const { content } = candidate;
  const actual = dtypeOf(content.data);
  if (actual !== content.dtype) {
    throw new MessageEncodeError(
      `invalid candidate message: ${content.kind}.data is ${actual ?? 'not a pixel array'}, dtype says ${content.dtype}`,
    );
  }
  if (content.data.length !== elementCount(content.shape)) {
    throw new MessageEncodeError(
      `invalid candidate message: ${content.kind}.data holds ${content.data.length} values, shape ${content.shape.join('x')} needs ${elementCount(content.shape)}`,
    );
  }
  if (content.data instanceof Float32Array) {
    const i = content.data.findIndex((v) => !(v >= 0 && v <= 1));
    if (i >= 0) {
      throw new MessageEncodeError(
        `invalid candidate message: ${content.kind}.data value ${i} is ${content.data[i]}; float32 values must be in [0, 1]`,
      );
    }
  }
  const data = encodeTensorData(content.data);
  const base = {
    schema: CANDIDATE_SCHEMA,
    id: candidate.id,
    sourceRefs: candidate.sourceRefs,
    time: candidate.time,
  } as const;
  if (content.kind === 'patches') {
    return { ...base, patches: { dtype: content.dtype, shape: content.shape, data } };
  }
  return {
    ...base,
    image: {
      dtype: content.dtype,
      shape: content.shape,
      data,
      ...(content.roi !== undefined ? { roi: content.roi } : {}),
      ...(content.augmentation !== undefined
        ? { augmentation: content.augmentation as z.infer<typeof augmentationSchema> }
        : {}),
    },
  };
}

/**
 * Serialises a candidate to its JSON wire form (the Kafka value).
 *
 * @throws MessageEncodeError when the candidate is invalid.
 */
export function encodeCandidate(candidate: Candidate): string {
  const message = toCandidateMessage(candidate);
  if (message.image !== undefined) {
    const unlimited = {
      maxPayloadBytes: Infinity,
      maxPatches: Infinity,
      maxImageSide: Infinity,
      maxChannels: Infinity,
    };
    const extras = checkImageExtras(message.image, unlimited);
    if (!extras.ok) throw new MessageEncodeError(`invalid candidate message: ${extras.error}`);
  }
  return encodeWith(candidateMessageSchema, 'candidate', message);
}
