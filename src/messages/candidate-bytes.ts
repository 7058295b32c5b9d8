/**
 * The intake's fast path for candidates: reads the common candidate message straight from the raw
 * Kafka bytes. It makes no UTF-8 text of the value and no JSON object tree, and it decodes the
 * tensor's base64 from the bytes into its typed array in one pass. At intake the standard path
 * (UTF-8 decoding, `JSON.parse`, the schema, then base64 through a string) was a third of the
 * daemon's main-thread time.
 *
 * It only saves time and never decides anything: it returns undefined whenever it is not sure, and
 * {@link parseCandidate} then runs the standard path, which accepts or refuses and explains why.
 * It gives up on any byte outside printable ASCII, an escape in a string, a number that is not a
 * plain positive integer, `true`/`false`/`null`, a key it does not expect or sees twice, an ROI or
 * augmentation spec, base64 that is not canonical, and on every refusal. What it returns, the
 * standard path returns too (a property test holds it to that).
 */
import { OPAQUE_ID_PATTERN, isIsoTime, type MessageKey } from './common.js';
import type { Candidate, MessageLimits } from './candidate-rules.js';
import {
  CANDIDATE_SCHEMA,
  IDENTIFIER_KEY_PATTERN,
  MAX_SOURCE_REFS,
  SOURCE_REF_KEY,
} from './candidate-rules.js';
import { base64Length, DTYPE_BYTES, type PixelData, type PixelDtype } from './tensor.js';

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const EQUALS = 0x3d;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Base64 value of each byte of the standard alphabet; -1 for every other byte. */
const BASE64 = new Int8Array(256).fill(-1);
for (let v = 0; v < 64; v++) BASE64[ALPHABET.charCodeAt(v)] = v;
/** The 12 bits of each pair of base64 bytes (first byte << 8 | second); -1 if either is not base64. */
const BASE64_PAIRS = new Int16Array(65536).fill(-1);
for (let a = 0; a < 64; a++) {
  for (let b = 0; b < 64; b++)
    BASE64_PAIRS[(ALPHABET.charCodeAt(a) << 8) | ALPHABET.charCodeAt(b)] = (a << 6) | b;
}

/** Bytes allowed in an opaque id (see OPAQUE_ID_PATTERN). */
const ID_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) ID_BYTE[c] = OPAQUE_ID_PATTERN.test(String.fromCharCode(c)) ? 1 : 0;

const bytesOf = (names: readonly string[]): Buffer[] => names.map((n) => Buffer.from(n, 'latin1'));
const SCHEMA_BYTES = Buffer.from(CANDIDATE_SCHEMA, 'latin1');
const TOP_KEYS = bytesOf(['schema', 'id', 'time', 'sourceRefs', 'patches', 'image']);
const [SCHEMA, ID, TIME, SOURCE_REFS, PATCHES, IMAGE] = [0, 1, 2, 3, 4, 5];
const TENSOR_KEYS = bytesOf(['dtype', 'shape', 'data']);
const [DTYPE, SHAPE, DATA] = [0, 1, 2];
const DTYPES: readonly PixelDtype[] = ['uint8', 'uint16', 'float32'];
const DTYPE_NAMES = bytesOf(DTYPES);

/**
 * sourceRefs keys already found valid, as bytes and as the string: a stream repeats the same few
 * keys, which are then neither sliced nor matched against the patterns again.
 */
const knownRefKeys: { bytes: Buffer; key: string }[] = [];
const MAX_KNOWN_REF_KEYS = 64;

/** Node's Buffer has the latin1 reader that `toString('latin1', start, end)` ends in. */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/** A forward reader of a JSON value's bytes; `failed` once it met what the fast path gives up on. */
class Reader {
  i = 0;
  failed = false;
  constructor(readonly b: Latin1Buffer) {}

  skipSpace(): void {
    const b = this.b;
    let i = this.i;
    for (let x = b[i]; x === 0x20 || x === 0x0a || x === 0x0d || x === 0x09; x = b[i]) i++;
    this.i = i;
  }

  /** Consumes `byte` after optional white space; false if it is not there. */
  take(byte: number): boolean {
    this.skipSpace();
    if (this.b[this.i] !== byte) return false;
    this.i++;
    return true;
  }

  /** After a member or an element: true on a comma, false on `close` (or, with `failed`, anything else). */
  more(close: number): boolean {
    this.skipSpace();
    const x = this.b[this.i++];
    if (x === COMMA) return true;
    if (x !== close) this.failed = true;
    return false;
  }

  /**
   * A string of printable ASCII (0x20-0x7e, no escape): returns where its text starts and moves
   * past its closing quote (the text ends at `i - 1`); -1 for anything else.
   */
  plainString(): number {
    if (!this.take(QUOTE)) return -1;
    const b = this.b;
    const start = this.i;
    let i = start;
    for (let x = b[i]; x !== QUOTE; x = b[++i]) {
      if (x === undefined || x < 0x20 || x > 0x7e || x === 0x5c) return -1;
    }
    this.i = i + 1;
    return start;
  }

  string(): string | undefined {
    const start = this.plainString();
    return start < 0 ? undefined : this.b.latin1Slice(start, this.i - 1);
  }

  /** The string just read equals `expected`. */
  lastStringIs(start: number, expected: Buffer): boolean {
    const b = this.b;
    if (this.i - 1 - start !== expected.length) return false;
    for (let k = 0; k < expected.length; k++) if (b[start + k] !== expected[k]) return false;
    return true;
  }

  /** A member's key (and its colon): its index in `keys`, or -1 for another key or no key. */
  key(keys: readonly Buffer[]): number {
    const start = this.plainString();
    if (start < 0 || !this.take(COLON)) return -1;
    for (let k = 0; k < keys.length; k++) if (this.lastKeyIs(start, keys[k]!)) return k;
    return -1;
  }

  private lastKeyIs(start: number, expected: Buffer): boolean {
    // The colon and any white space before it follow the closing quote: compare the text itself.
    const b = this.b;
    if (b[start + expected.length] !== QUOTE) return false;
    for (let k = 0; k < expected.length; k++) if (b[start + k] !== expected[k]) return false;
    return true;
  }

  /** A positive integer of at most 9 digits, as JSON writes it; -1 for anything else. */
  positiveInteger(): number {
    this.skipSpace();
    const b = this.b;
    const start = this.i;
    let i = start;
    let x = b[i]!;
    if (!(x >= 0x31 && x <= 0x39)) return -1;
    let n = 0;
    while (x >= 0x30 && x <= 0x39) {
      n = n * 10 + (x - 0x30);
      if (++i - start > 9) return -1;
      x = b[i]!;
    }
    // A fraction or an exponent: JSON.parse may still read an integer; leave it to it.
    if (x === 0x2e || x === 0x65 || x === 0x45) return -1;
    this.i = i;
    return n;
  }
}

function dimensions(r: Reader): number[] | undefined {
  if (!r.take(OPEN_BRACKET)) return undefined;
  const dims: number[] = [];
  do {
    const d = r.positiveInteger();
    if (d < 0) return undefined;
    dims.push(d);
  } while (r.more(CLOSE_BRACKET));
  return r.failed ? undefined : dims;
}

interface RawTensor {
  dtype: PixelDtype;
  shape: number[];
  /** Where the base64 text lies: [dataStart, dataEnd). */
  dataStart: number;
  dataEnd: number;
}

/** `{ dtype, shape, data }` and nothing else; data is only located here, decoded later. */
function tensor(r: Reader): RawTensor | undefined {
  let dtype: PixelDtype | undefined;
  let shape: number[] | undefined;
  let dataStart = -1;
  let dataEnd = -1;
  if (!r.take(OPEN_BRACE)) return undefined;
  do {
    const k = r.key(TENSOR_KEYS);
    if (k === DTYPE && dtype === undefined) {
      const start = r.plainString();
      if (start < 0) return undefined;
      for (let d = 0; d < DTYPES.length && dtype === undefined; d++) {
        if (r.lastStringIs(start, DTYPE_NAMES[d]!)) dtype = DTYPES[d];
      }
      if (dtype === undefined) return undefined;
    } else if (k === SHAPE && shape === undefined) {
      shape = dimensions(r);
      if (shape === undefined) return undefined;
    } else if (k === DATA && dataStart < 0) {
      // Located only: every byte is checked against the base64 alphabet when decoding.
      if (!r.take(QUOTE)) return undefined;
      dataStart = r.i;
      dataEnd = r.b.indexOf(QUOTE, dataStart);
      if (dataEnd < 0) return undefined;
      r.i = dataEnd + 1;
    } else {
      return undefined;
    }
  } while (r.more(CLOSE_BRACE));
  if (r.failed || dtype === undefined || shape === undefined || dataStart < 0) return undefined;
  return { dtype, shape, dataStart, dataEnd };
}

/** A valid sourceRefs key (see SOURCE_REF_KEY and IDENTIFIER_KEY_PATTERN), or undefined. */
function refKey(r: Reader): string | undefined {
  const start = r.plainString();
  if (start < 0) return undefined;
  for (const known of knownRefKeys) if (r.lastStringIs(start, known.bytes)) return known.key;
  const key = r.b.latin1Slice(start, r.i - 1);
  if (!SOURCE_REF_KEY.test(key) || IDENTIFIER_KEY_PATTERN.test(key)) return undefined;
  if (knownRefKeys.length < MAX_KNOWN_REF_KEYS) knownRefKeys.push({ bytes: Buffer.from(key, 'latin1'), key });
  return key;
}

/** The references, or (`keep` false) {} once they are found valid; undefined if not sure. */
function sourceRefs(r: Reader, keep: boolean): Record<string, string> | undefined {
  const refs: Record<string, string> = {};
  const keys: string[] = [];
  if (!r.take(OPEN_BRACE)) return undefined;
  if (r.take(CLOSE_BRACE)) return refs;
  do {
    const key = refKey(r);
    if (key === undefined || !r.take(COLON) || keys.length === MAX_SOURCE_REFS || keys.includes(key)) {
      return undefined;
    }
    keys.push(key);
    const start = r.plainString();
    const length = r.i - 1 - start;
    if (start < 0 || length === 0 || length > 256) return undefined;
    if (keep) refs[key] = r.b.latin1Slice(start, r.i - 1);
  } while (r.more(CLOSE_BRACE));
  return r.failed ? undefined : refs;
}

/** Decodes canonical, padded standard base64 into `out`; false if the text is anything else. */
function decodeBase64(b: Buffer, start: number, end: number, out: Uint8Array): boolean {
  const length = end - start;
  if (length === 0 || length % 4 !== 0) return false;
  const padding = b[end - 1] === EQUALS ? (b[end - 2] === EQUALS ? 2 : 1) : 0;
  if ((length / 4) * 3 - padding !== out.length) return false;
  const full = end - (padding > 0 ? 4 : 0);
  let o = 0;
  let i = start;
  for (; i < full; i += 4) {
    const hi = BASE64_PAIRS[(b[i]! << 8) | b[i + 1]!]!;
    const lo = BASE64_PAIRS[(b[i + 2]! << 8) | b[i + 3]!]!;
    if ((hi | lo) < 0) return false;
    out[o++] = hi >> 4;
    out[o++] = ((hi & 15) << 4) | (lo >> 8);
    out[o++] = lo & 255;
  }
  if (padding === 0) return true;
  const hi = BASE64_PAIRS[(b[i]! << 8) | b[i + 1]!]!;
  if (hi < 0) return false;
  out[o++] = hi >> 4;
  // The bits a canonical encoding leaves unused are zero.
  if (padding === 2) return (hi & 15) === 0;
  const v2 = BASE64[b[i + 2]!]!;
  if (v2 < 0) return false;
  out[o] = ((hi & 15) << 4) | (v2 >> 2);
  return (v2 & 3) === 0;
}

function pixels(b: Buffer, t: RawTensor, elements: number): PixelData | undefined {
  const width = DTYPE_BYTES[t.dtype];
  if (t.dataEnd - t.dataStart !== base64Length(elements * width)) return undefined;
  const buffer = new ArrayBuffer(elements * width);
  const bytes = new Uint8Array(buffer);
  if (!decodeBase64(b, t.dataStart, t.dataEnd, bytes)) return undefined;
  if (t.dtype === 'uint8') return bytes;
  if (t.dtype === 'uint16') return new Uint16Array(buffer);
  const floats = new Float32Array(buffer);
  for (let k = 0; k < floats.length; k++) {
    const v = floats[k]!;
    if (!(v >= 0 && v <= 1)) return undefined;
  }
  return floats;
}

/** The Kafka key equals the id (undefined: not checked). */
function keyMatches(key: MessageKey, id: string): boolean {
  if (key === undefined) return true;
  if (key === null) return false;
  if (typeof key === 'string') return key === id;
  if (key.length !== id.length) return false;
  for (let k = 0; k < id.length; k++) if (key[k] !== id.charCodeAt(k)) return false;
  return true;
}

function withinLimits(kind: 'patches' | 'image', shape: number[], limits: MessageLimits): boolean {
  const patches = kind === 'patches';
  if (shape.length !== (patches ? 4 : 3)) return false;
  const at = patches ? 1 : 0;
  if (patches && shape[0]! > limits.maxPatches) return false;
  return (
    shape[at]! <= limits.maxImageSide &&
    shape[at + 1]! <= limits.maxImageSide &&
    shape[at + 2]! <= limits.maxChannels
  );
}

/**
 * The candidate in `value` as {@link parseCandidate} would return it, or undefined when the fast
 * path is not sure (then the standard path decides).
 */
export function fastParseCandidateBytes(
  value: Uint8Array,
  limits: MessageLimits,
  key: MessageKey,
  keepSourceRefs = true,
): Candidate | undefined {
  if (!LITTLE_ENDIAN || value.byteLength === 0 || value.byteLength > limits.maxPayloadBytes) return undefined;
  const b = (
    Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  ) as Latin1Buffer;
  if (typeof b.latin1Slice !== 'function') return undefined;
  const r = new Reader(b);
  let schema = false;
  let id: string | undefined;
  let time: string | undefined;
  let refs: Record<string, string> | undefined;
  let kind: 'patches' | 'image' | undefined;
  let t: RawTensor | undefined;
  if (!r.take(OPEN_BRACE)) return undefined;
  do {
    const k = r.key(TOP_KEYS);
    if (k === SCHEMA && !schema) {
      const start = r.plainString();
      schema = start >= 0 && r.lastStringIs(start, SCHEMA_BYTES);
      if (!schema) return undefined;
    } else if (k === ID && id === undefined) {
      const start = r.plainString();
      const end = r.i - 1;
      if (start < 0 || end === start || end - start > 128) return undefined;
      for (let x = start; x < end; x++) if (ID_BYTE[b[x]!] === 0) return undefined;
      id = b.latin1Slice(start, end);
    } else if (k === TIME && time === undefined) {
      time = r.string();
      if (time === undefined || !isIsoTime(time)) return undefined;
    } else if (k === SOURCE_REFS && refs === undefined) {
      refs = sourceRefs(r, keepSourceRefs);
      if (refs === undefined) return undefined;
    } else if ((k === PATCHES || k === IMAGE) && kind === undefined) {
      kind = k === PATCHES ? 'patches' : 'image';
      t = tensor(r);
      if (t === undefined) return undefined;
    } else {
      return undefined;
    }
  } while (r.more(CLOSE_BRACE));
  if (
    r.failed ||
    !schema ||
    id === undefined ||
    time === undefined ||
    kind === undefined ||
    t === undefined
  ) {
    return undefined;
  }
  // Nothing but white space may follow the object.
  r.skipSpace();
  if (r.i !== b.length || !keyMatches(key, id) || !withinLimits(kind, t.shape, limits)) return undefined;
  let elements = 1;
  for (const d of t.shape) elements *= d;
  const data = pixels(b, t, elements);
  if (data === undefined) return undefined;
  const content = { kind, dtype: t.dtype, shape: t.shape, data } as Candidate['content'];
  return { id, sourceRefs: refs ?? {}, time, content };
}
