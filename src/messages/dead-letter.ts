/**
 * `acft.dead-letter/v1` (topic `dead-letter`): a message the daemon could not use, with where it
 * came from, why (a {@link DeadLetterReason}), the error, and a truncated, sanitised copy of the
 * payload for diagnosis. The original stays on its topic at `source.offset` for its retention.
 *
 * No patient identifiers are copied: when the payload is JSON it is re-serialised WITHOUT any
 * `sourceRefs` and without keys that look like identifiers (see {@link IDENTIFIER_KEY_PATTERN}),
 * long strings (tensor data) are elided, and the result is cut to the byte limit. A payload that
 * is not JSON is kept as a prefix that ends before the first `sourceRefs`, `patient` or `birth`.
 */
import { isUtf8 } from 'node:buffer';
import { z } from 'zod';
import { IDENTIFIER_KEY_PATTERN } from './candidate.js';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  OPAQUE_ID_PATTERN,
  encodeWith,
  isoTimeSchema,
  keyAsString,
  parseWith,
  readJson,
  truncateText,
  type MessageKey,
  type MessageValue,
  valueByteLength,
} from './common.js';
import { DEAD_LETTER_REASONS, type DeadLetterReason, type ParseResult } from './reasons.js';

export const DEAD_LETTER_SCHEMA = 'acft.dead-letter/v1';

/** Default bytes of the payload copied into a dead-letter message. */
export const DEFAULT_DEAD_LETTER_PAYLOAD_BYTES = 4096;

/** Longest error text kept, in characters. */
export const MAX_DEAD_LETTER_ERROR_CHARS = 2000;

/** Strings longer than this (e.g. base64 tensor data) are elided from a sanitised JSON payload. */
const MAX_KEPT_STRING = 128;
const MAX_KEPT_ITEMS = 64;
const MAX_DEPTH = 8;
/** Above this size a payload is not parsed for sanitising; its text prefix is kept instead. */
const MAX_SANITISE_BYTES = 4 * 1024 * 1024;
const TEXT_CUT = /sourcerefs|patient|birth/i;

export const deadLetterPayloadSchema = z.object({
  /** 'utf8': `data` is text (JSON when `sanitized`); 'base64': a prefix of a binary payload. */
  encoding: z.enum(['utf8', 'base64']),
  data: z.string(),
  /** Size of the original payload in bytes (0 for no value). */
  bytes: z.int().min(0),
  /** True when `data` is not the whole (sanitised) payload. */
  truncated: z.boolean(),
  /** True when the payload was JSON and was re-serialised without identifiers and long strings. */
  sanitized: z.boolean(),
});

export type DeadLetterPayload = z.infer<typeof deadLetterPayloadSchema>;

export const deadLetterMessageSchema = z.object({
  schema: z.literal(DEAD_LETTER_SCHEMA),
  source: z.object({
    topic: z.string().min(1).max(249),
    partition: z.int().min(0),
    /** Kafka offsets are 64-bit: a decimal string. */
    offset: z.string().regex(/^\d{1,20}$/, 'must be a decimal offset'),
    /** The Kafka key when it was a valid opaque id; null when absent or not a valid id. */
    key: z.string().regex(OPAQUE_ID_PATTERN).nullable().optional(),
  }),
  reason: z.enum(DEAD_LETTER_REASONS),
  error: z.string().max(MAX_DEAD_LETTER_ERROR_CHARS),
  payload: deadLetterPayloadSchema,
  time: isoTimeSchema,
});

export type DeadLetterMessage = z.infer<typeof deadLetterMessageSchema>;

/** What the pipeline knows about a message it is dead-lettering. */
export interface DeadLetterInput {
  source: { topic: string; partition: number; offset: string | number | bigint; key?: MessageKey };
  reason: DeadLetterReason;
  /** The parse error string, or what was thrown (its message is used). */
  error: unknown;
  /** The raw Kafka value. */
  payload: MessageValue;
  /** Default: now. */
  time?: Date | string;
  /** Bytes of the sanitised payload kept; default {@link DEFAULT_DEAD_LETTER_PAYLOAD_BYTES}. */
  maxPayloadBytes?: number;
}

/** The longest prefix of `bytes` that is at most `max` bytes and does not split a UTF-8 character. */
function utf8Prefix(bytes: Buffer, max: number): Buffer {
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

function sanitizeJson(value: unknown, depth: number): unknown {
  if (typeof value === 'string') {
    return value.length > MAX_KEPT_STRING ? `<${value.length} characters elided>` : value;
  }
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '<nested too deep>';
  if (Array.isArray(value)) {
    const kept = value.slice(0, MAX_KEPT_ITEMS).map((v) => sanitizeJson(v, depth + 1));
    if (value.length > MAX_KEPT_ITEMS) kept.push(`<${value.length - MAX_KEPT_ITEMS} more items elided>`);
    return kept;
  }
  // No prototype: a '__proto__' key from JSON.parse stays a plain key.
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(value)) {
    if (k === 'sourceRefs' || IDENTIFIER_KEY_PATTERN.test(k)) continue;
    out[k] = sanitizeJson(v, depth + 1);
  }
  return out;
}

/**
 * The payload part of a dead-letter message: sanitised (see the module comment) and cut to
 * `maxBytes` bytes.
 */
export function sanitizeDeadLetterPayload(
  value: MessageValue,
  maxBytes = DEFAULT_DEAD_LETTER_PAYLOAD_BYTES,
): DeadLetterPayload {
  if (value === null || value === undefined) {
    return { encoding: 'utf8', data: '', bytes: 0, truncated: false, sanitized: false };
  }
  const bytes = valueByteLength(value);
  if (bytes <= MAX_SANITISE_BYTES) {
    const json = readJson(value, MAX_SANITISE_BYTES);
    if (json.ok) {
      const text = Buffer.from(JSON.stringify(sanitizeJson(json.value, 0)) ?? 'null', 'utf8');
      const kept = utf8Prefix(text, maxBytes);
      return {
        encoding: 'utf8',
        data: kept.toString('utf8'),
        bytes,
        truncated: kept.length < text.length,
        sanitized: true,
      };
    }
  }
  const raw =
    typeof value === 'string'
      ? Buffer.from(value, 'utf8')
      : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const isText = typeof value === 'string' || isUtf8(raw);
  const prefix = isText ? utf8Prefix(raw, maxBytes) : raw.subarray(0, maxBytes);
  // The cut starts at an ASCII letter, so it never splits a UTF-8 character.
  const cut = TEXT_CUT.exec(prefix.toString('latin1'));
  const kept = cut === null ? prefix : prefix.subarray(0, cut.index);
  return {
    encoding: isText ? 'utf8' : 'base64',
    data: isText ? kept.toString('utf8') : kept.toString('base64'),
    bytes,
    truncated: kept.length < raw.length,
    sanitized: false,
  };
}

/** Builds the dead-letter message for a message the pipeline could not use. */
export function createDeadLetter(input: DeadLetterInput): DeadLetterMessage {
  const { source } = input;
  const key = keyAsString(source.key);
  const error =
    typeof input.error === 'string'
      ? input.error
      : input.error instanceof Error
        ? `${input.error.name}: ${input.error.message}`
        : String(input.error);
  const time =
    input.time instanceof Date ? input.time.toISOString() : (input.time ?? new Date().toISOString());
  return {
    schema: DEAD_LETTER_SCHEMA,
    source: {
      topic: source.topic,
      partition: source.partition,
      offset: String(source.offset),
      ...(key === undefined ? {} : { key: key !== null && OPAQUE_ID_PATTERN.test(key) ? key : null }),
    },
    reason: input.reason,
    error: truncateText(error, MAX_DEAD_LETTER_ERROR_CHARS),
    payload: sanitizeDeadLetterPayload(input.payload, input.maxPayloadBytes),
    time,
  };
}

/** Options of {@link parseDeadLetter}. */
export interface DeadLetterParseOptions {
  /** Default 1 MiB. */
  maxPayloadBytes?: number;
}

/** Parses and validates a dead-letter message (for tools that read the topic); never throws. */
export function parseDeadLetter(
  value: MessageValue,
  options: DeadLetterParseOptions = {},
): ParseResult<DeadLetterMessage> {
  const result = parseWith(
    deadLetterMessageSchema,
    value,
    options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
  );
  return result;
}

/**
 * Serialises a dead-letter message.
 *
 * @throws MessageEncodeError when it is invalid.
 */
export function encodeDeadLetter(message: DeadLetterMessage): string {
  return encodeWith(deadLetterMessageSchema, 'dead-letter', message);
}
