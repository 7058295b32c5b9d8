/**
 * The constants of `acft.candidate/v1` that both readers of a candidate share: the schema
 * (candidate.ts) and the byte-level fast path (candidate-bytes.ts).
 */

export const CANDIDATE_SCHEMA = 'acft.candidate/v1';

/** Keys of `sourceRefs` that suggest a patient identifier rather than an opaque reference. */
export const IDENTIFIER_KEY_PATTERN = /patient|name|birth|dob|mrn|ssn|address|phone|e-?mail/i;

/** A `sourceRefs` key: a letter then up to 63 of `A-Z a-z 0-9 _ . -`. */
export const SOURCE_REF_KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** A `sourceRefs` value: 1 to 256 printable ASCII characters. */
export const SOURCE_REF_VALUE = /^[\x20-\x7e]{1,256}$/;

/** At most this many source references per candidate. */
export const MAX_SOURCE_REFS = 16;
