/**
 * `acft.labeling-request/v1` (topic `labeling-requests`): the daemon asks for one candidate's
 * label, and records why (model version, scores, rank, draw probability), so every request can be
 * audited. The radiologist's answer comes back as feedback carrying the same `requestId`.
 */
import type { PooledScore } from '../core/pool.js';
import { z } from 'zod';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  candidateIdSchema,
  encodeWith,
  isoTimeSchema,
  opaqueIdSchema,
  parseWith,
  type MessageValue,
} from './common.js';
import { parsed, rejected, type ParseResult } from './reasons.js';

export const LABELING_REQUEST_SCHEMA = 'acft.labeling-request/v1';

/** Most classes a probability vector may hold. */
export const MAX_CLASSES = 1000;

const probability = z.number().min(0).max(1);

/** The candidate's worthiness as computed by the model version that asked (core/score.ts). */
export const requestScoresSchema = z
  .object({
    /** a = lambda1 * entropy + lambda2 * diversity. */
    score: z.number(),
    entropy: z.number().min(0),
    diversity: z.number().min(0),
    /** argmax of meanProbs. */
    dominantClass: z.int().min(0),
    /** The candidate's prediction: the mean of its patch probabilities, one per class. */
    meanProbs: z.array(probability).min(2).max(MAX_CLASSES),
  })
  .superRefine((s, ctx) => {
    if (s.dominantClass >= s.meanProbs.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['dominantClass'],
        message: `must be below the number of classes (${s.meanProbs.length})`,
      });
    }
  });

/** A candidate's scores as the messages carry them (labeling requests, shortlists). */
export type RequestScores = z.infer<typeof requestScoresSchema>;

/** A pooled candidate's score as the messages carry it. */
export function requestScoresOf(s: Omit<PooledScore, 'modelVersion' | 'scoredAtMs'>): RequestScores {
  return {
    score: s.value,
    entropy: s.entropy,
    diversity: s.diversity,
    dominantClass: s.dominantClass,
    meanProbs: [...s.meanProbs],
  };
}

/** The pooled score a message's scores stand for, by `modelVersion` at `scoredAtMs`. */
export function pooledScoreOf(s: RequestScores, modelVersion: string, scoredAtMs: number): PooledScore {
  return {
    value: s.score,
    entropy: s.entropy,
    diversity: s.diversity,
    dominantClass: s.dominantClass,
    meanProbs: s.meanProbs,
    modelVersion,
    scoredAtMs,
  };
}

export const labelingRequestMessageSchema = z.object({
  schema: z.literal(LABELING_REQUEST_SCHEMA),
  requestId: opaqueIdSchema,
  candidateId: candidateIdSchema,
  /** The model version whose scores made the request. */
  modelVersion: opaqueIdSchema,
  scores: requestScoresSchema,
  /** 0-based rank of the candidate in the pool by score (descending). */
  rank: z.int().min(0),
  /** Its sampling probability within the shortlist (1 when taken by rank). */
  drawProbability: probability,
  /** Size of the shortlist (ceil(omega * b), or the pool if smaller) it was drawn from. */
  shortlistSize: z.int().positive(),
  /** Whether it was drawn at random or taken by rank. */
  takenBy: z.enum(['draw', 'rank']).optional(),
  criterion: z.enum(['entropy', 'diversity']),
  /** When the request lapses unanswered and the candidate returns to the pool. */
  leaseExpiresAt: isoTimeSchema,
  time: isoTimeSchema,
});

export type LabelingRequestMessage = z.infer<typeof labelingRequestMessageSchema>;

/** Options of {@link parseLabelingRequest}. */
export interface LabelingRequestParseOptions {
  /** When given: meanProbs must have K entries ('schema') and dominantClass < K ('unknown-class'). */
  numClasses?: number;
  /** Default 1 MiB. */
  maxPayloadBytes?: number;
}

/** Parses and validates a labeling request; never throws. */
export function parseLabelingRequest(
  value: MessageValue,
  options: LabelingRequestParseOptions = {},
): ParseResult<LabelingRequestMessage> {
  const result = parseWith(
    labelingRequestMessageSchema,
    value,
    options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
  );
  if (!result.ok) return result;
  const r = result.value;
  const k = options.numClasses;
  if (k !== undefined) {
    if (r.scores.dominantClass >= k) {
      return rejected(
        'unknown-class',
        `scores.dominantClass: ${r.scores.dominantClass} is not a class index 0..${k - 1}`,
      );
    }
    if (r.scores.meanProbs.length !== k) {
      return rejected(
        'schema',
        `scores.meanProbs: expected ${k} class probabilities, got ${r.scores.meanProbs.length}`,
      );
    }
  }
  return parsed(r);
}

/**
 * Serialises a labeling request (`schema` may be left out).
 *
 * @throws MessageEncodeError when it is invalid.
 */
export function encodeLabelingRequest(
  message: Omit<LabelingRequestMessage, 'schema'> & { schema?: typeof LABELING_REQUEST_SCHEMA },
): string {
  return encodeWith(labelingRequestMessageSchema, 'labeling request', {
    ...message,
    schema: LABELING_REQUEST_SCHEMA,
  });
}
