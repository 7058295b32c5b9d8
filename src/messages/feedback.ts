/**
 * `acft.feedback/v1` (topic `feedback`, key: the candidate id): a radiologist's label for one
 * candidate. It may answer a labeling request (`requestId`), or come unasked: a closed-loop CAD
 * deployment confirms or dismisses every detection, and that is free feedback.
 */
import { z } from 'zod';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  candidateIdSchema,
  checkKey,
  encodeWith,
  isoTimeSchema,
  opaqueIdSchema,
  parseWith,
  type MessageKey,
  type MessageValue,
} from './common.js';
import { parsed, rejected, type ParseResult } from './reasons.js';

export const FEEDBACK_SCHEMA = 'acft.feedback/v1';

/** Where a label came from. */
export const FEEDBACK_SOURCES = ['requested', 'unsolicited', 'cad-closed-loop'] as const;
export type FeedbackSource = (typeof FEEDBACK_SOURCES)[number];

export const feedbackMessageSchema = z.object({
  schema: z.literal(FEEDBACK_SCHEMA),
  candidateId: candidateIdSchema,
  /** Class index 0..K-1; the range is checked against K when parsing ('unknown-class'). */
  label: z.int(),
  /** Opaque id of the annotator; never a name. */
  annotatorId: opaqueIdSchema,
  time: isoTimeSchema,
  /** The labeling request this answers, if any. */
  requestId: opaqueIdSchema.optional(),
  /** Absent: 'requested' when requestId is set, else 'unsolicited'. */
  source: z.enum(FEEDBACK_SOURCES).optional(),
});

export type FeedbackMessage = z.infer<typeof feedbackMessageSchema>;

/** Options of {@link parseFeedback}. */
export interface FeedbackParseOptions {
  /** K, the number of classes: labels must be in 0..K-1. */
  numClasses: number;
  /** Default 1 MiB. */
  maxPayloadBytes?: number;
  /** The Kafka key; must equal candidateId. Leave out when the value did not come from Kafka. */
  key?: MessageKey;
}

/** Parses and validates a feedback message; never throws. */
export function parseFeedback(
  value: MessageValue,
  options: FeedbackParseOptions,
): ParseResult<FeedbackMessage> {
  const result = parseWith(
    feedbackMessageSchema,
    value,
    options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
  );
  if (!result.ok) return result;
  const f = result.value;
  const key = checkKey(options.key, f.candidateId);
  if (!key.ok) return key;
  if (f.label < 0 || f.label >= options.numClasses) {
    return rejected('unknown-class', `label: ${f.label} is not a class index 0..${options.numClasses - 1}`);
  }
  return parsed(f);
}

/** Where a feedback message came from, with the default filled in. */
export function feedbackSource(f: Pick<FeedbackMessage, 'requestId' | 'source'>): FeedbackSource {
  return f.source ?? (f.requestId !== undefined ? 'requested' : 'unsolicited');
}

/**
 * Serialises a feedback message (`schema` may be left out).
 *
 * @throws MessageEncodeError when it is invalid.
 */
export function encodeFeedback(
  message: Omit<FeedbackMessage, 'schema'> & { schema?: typeof FEEDBACK_SCHEMA },
): string {
  return encodeWith(feedbackMessageSchema, 'feedback', { ...message, schema: FEEDBACK_SCHEMA });
}
