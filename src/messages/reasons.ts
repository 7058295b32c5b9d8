/**
 * Why a message went to dead-letter, and the result type every `parse*` function returns.
 *
 * A bad message is an expected outcome, not an exception (STYLE.md, habit 4): parsing never
 * throws; it returns `{ ok: false, reason, error }` and the pipeline routes the message to the
 * dead-letter topic with that reason.
 */

/** Every dead-letter reason code, in a fixed order (for metrics labels and docs). */
export const DEAD_LETTER_REASONS = [
  'invalid-json',
  'schema',
  'tensor-shape',
  'tensor-dtype',
  'tensor-data',
  'oversized',
  'limit-exceeded',
  'unknown-class',
  'unknown-candidate',
  'poison',
  'key-mismatch',
  'shape-mismatch',
] as const;

/** Why a message was dead-lettered. */
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/** One line per reason, for people (docs, metric help texts). */
export const DEAD_LETTER_REASON_DESCRIPTIONS: Readonly<Record<DeadLetterReason, string>> = Object.freeze({
  'invalid-json': 'The value is empty, not UTF-8, or not JSON.',
  schema: 'The JSON does not match the message schema (missing or mistyped field, bad id, bad time).',
  'tensor-shape': 'A tensor shape has the wrong rank or a dimension that is not a positive integer.',
  'tensor-dtype': "A tensor dtype is not 'uint8', 'uint16' or 'float32'.",
  'tensor-data':
    'Tensor data is not strict base64 of product(shape) x bytes(dtype) bytes, or holds floats that are not finite or outside [0, 1].',
  oversized: 'The raw message value is larger than the configured maximum payload size.',
  'limit-exceeded':
    'Within the payload size, but over a configured limit: patches per candidate, image side, channels.',
  'unknown-class': 'A label (or dominant class) outside 0..K-1 for the configured number of classes K.',
  'unknown-candidate': 'Feedback for a candidate that did not arrive within the pending-feedback time.',
  poison: 'The message passed validation but processing it threw (e.g. inside scoring).',
  'key-mismatch': "The Kafka key is missing or differs from the message's candidate id.",
  'shape-mismatch':
    "A valid candidate whose patches the model cannot take: another height, width or channel count than the served model's input (ACFT_MODEL_M0_PATH), or an image its patches cannot be cut from.",
});

/** Whether `value` is one of {@link DEAD_LETTER_REASONS}. */
export function isDeadLetterReason(value: unknown): value is DeadLetterReason {
  return typeof value === 'string' && (DEAD_LETTER_REASONS as readonly string[]).includes(value);
}

/** A message that parsed and validated. */
export interface ParseSuccess<T> {
  readonly ok: true;
  readonly value: T;
}

/** A message that did not: the reason code and a one-line error naming the field at fault. */
export interface ParseFailure {
  readonly ok: false;
  readonly reason: DeadLetterReason;
  /** Names fields and expectations; never echoes source references or other payload values. */
  readonly error: string;
}

/** What every `parse*` function returns; it never throws. */
export type ParseResult<T> = ParseSuccess<T> | ParseFailure;

/** A successful {@link ParseResult}. */
export function parsed<T>(value: T): ParseSuccess<T> {
  return { ok: true, value };
}

/** A failed {@link ParseResult}. */
export function rejected(reason: DeadLetterReason, error: string): ParseFailure {
  return { ok: false, reason, error };
}

/**
 * Thrown by the `encode*` functions when asked to encode an invalid message: that is a bug in the
 * producing code (the daemon must never publish what its own consumers would dead-letter).
 */
export class MessageEncodeError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'MESSAGE_INVALID';
  /** Encoding the same value fails the same way. */
  readonly retryable = false;
  override readonly name = 'MessageEncodeError';
}
