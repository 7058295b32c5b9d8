/**
 * Pieces shared by the message schemas: ids, times, reading a raw Kafka value as JSON within a
 * byte limit, checking the Kafka key, and turning zod issues into one-line errors.
 */
import { z } from 'zod';
import { MessageEncodeError, parsed, rejected, type ParseResult } from './reasons.js';

/** A raw Kafka message value: kafkajs gives a Buffer (a Uint8Array) or null (a tombstone). */
export type MessageValue = string | Uint8Array | null | undefined;

/** A raw Kafka message key. */
export type MessageKey = string | Uint8Array | null | undefined;

/** Characters allowed in opaque ids (candidate, request, annotator, model version). */
export const OPAQUE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * An opaque id: 1 to 128 characters from `A-Z a-z 0-9 . _ : -`. Ids are logged and used as Kafka
 * keys, so they must never be names or other patient identifiers.
 */
export const opaqueIdSchema = z
  .string()
  .regex(OPAQUE_ID_PATTERN, 'must be 1 to 128 characters from A-Z a-z 0-9 . _ : -');

/** A candidate id (an {@link opaqueIdSchema}); also the Kafka key of candidates and feedback. */
export const candidateIdSchema = opaqueIdSchema;

/**
 * An ISO 8601 date-time with a time zone (`Z` or `+hh:mm`), e.g. `2025-01-31T12:00:00.000Z`.
 * A local time without a zone is refused: it means different instants on different machines.
 */
export const isoTimeSchema = z.iso.datetime({
  offset: true,
  message: 'must be an ISO 8601 date-time with a time zone, e.g. 2025-01-31T12:00:00.000Z',
});

/**
 * The answer of {@link isoTimeSchema} for a string, from the pattern zod checks it against (zod keeps
 * it on the schema), else from the schema itself. A unit test holds the two to the same answers.
 */
const ISO_TIME = (isoTimeSchema as unknown as { _zod?: { pattern?: unknown } })._zod?.pattern;
export const isIsoTime: (time: string) => boolean =
  ISO_TIME instanceof RegExp && !ISO_TIME.global && !ISO_TIME.sticky
    ? (time) => ISO_TIME.test(time)
    : (time) => isoTimeSchema.safeParse(time).success;

/** Default maximum size of a raw message value: 1 MiB, Kafka's default message size. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Size of a raw value in bytes (UTF-8 for strings). */
export function valueByteLength(value: string | Uint8Array): number {
  return typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.byteLength;
}

/**
 * Reads a raw value as JSON. The byte length is checked first, so an oversized value is refused
 * before it is decoded or parsed.
 */
export function readJson(value: MessageValue, maxPayloadBytes: number): ParseResult<unknown> {
  if (value === null || value === undefined) return rejected('invalid-json', 'message has no value');
  // A string's UTF-8 length is at least its length in UTF-16 code units: refuse huge ones cheaply.
  if (typeof value === 'string' && value.length > maxPayloadBytes) {
    return rejected('oversized', `message value exceeds the ${maxPayloadBytes}-byte limit`);
  }
  const bytes = valueByteLength(value);
  if (bytes > maxPayloadBytes) {
    return rejected('oversized', `message value is ${bytes} bytes, over the ${maxPayloadBytes}-byte limit`);
  }
  if (bytes === 0) return rejected('invalid-json', 'message value is empty');
  let text: string;
  if (typeof value === 'string') {
    text = value;
  } else {
    try {
      text = utf8.decode(value);
    } catch {
      return rejected('invalid-json', 'message value is not valid UTF-8');
    }
  }
  try {
    return parsed(JSON.parse(text) as unknown);
  } catch (err) {
    // V8's message quotes the text around the error, which may hold what must not be logged:
    // keep only the position.
    const position = /at position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
    return rejected(
      'invalid-json',
      position === undefined
        ? 'message value is not JSON'
        : `message value is not JSON (at position ${position})`,
    );
  }
}

/** A Kafka key as a string; undefined stays undefined (not checked), null stays null (no key). */
export function keyAsString(key: MessageKey): string | null | undefined {
  if (key === undefined || key === null) return key;
  if (typeof key === 'string') return key;
  try {
    return utf8.decode(key);
  } catch {
    return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
  }
}

/**
 * Checks that the Kafka key equals the candidate id. `key === undefined` means "not from Kafka,
 * do not check"; `null` means the message had no key, which is a mismatch: candidates and their
 * feedback are keyed by candidate id so that they land on matching partitions.
 */
export function checkKey(key: MessageKey, candidateId: string): ParseResult<void> {
  const k = keyAsString(key);
  if (k === undefined) return parsed(undefined);
  if (k === null)
    return rejected('key-mismatch', `message has no key; expected the candidate id '${candidateId}'`);
  if (k !== candidateId) {
    const shown = OPAQUE_ID_PATTERN.test(k) ? `'${k}'` : 'a key that is not a valid id';
    return rejected('key-mismatch', `message key ${shown} differs from the candidate id '${candidateId}'`);
  }
  return parsed(undefined);
}

/** `patches.shape[0]`-style rendering of an issue path; `(root)` for the empty path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

/** One line from zod issues: the first `max` issues as `path: message`, joined by '; '. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], max = 3): string {
  const shown = issues.slice(0, max).map((i) => `${formatPath(i.path)}: ${i.message}`);
  const more = issues.length > max ? `; and ${issues.length - max} more` : '';
  return shown.join('; ') + more;
}

/** Cuts a string to at most `max` characters, marking the cut. */
export function truncateText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * Validates an outgoing message with its schema and serialises it.
 *
 * @throws MessageEncodeError when the message is invalid (a bug in the producer).
 */
export function encodeWith<S extends z.ZodType>(schema: S, kind: string, message: unknown): string {
  const result = schema.safeParse(message);
  if (!result.success) {
    throw new MessageEncodeError(`invalid ${kind} message: ${describeIssues(result.error.issues)}`, {
      cause: result.error,
    });
  }
  return JSON.stringify(result.data);
}

/**
 * Reads a raw value as JSON (size first) and validates it against `schema`; a mismatch is the
 * 'schema' reason. The counterpart of {@link encodeWith}.
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: MessageValue,
  maxPayloadBytes: number,
): ParseResult<z.output<S>> {
  const json = readJson(value, maxPayloadBytes);
  if (!json.ok) return json;
  const result = schema.safeParse(json.value);
  if (!result.success) return rejected('schema', describeIssues(result.error.issues));
  return parsed(result.data);
}
