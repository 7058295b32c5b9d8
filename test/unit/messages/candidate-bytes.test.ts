/**
 * The byte-level fast path of candidate parsing must never disagree with the standard path (UTF-8,
 * JSON.parse, the schema, base64 through a string): whatever it returns, the standard path returns
 * too, for any bytes, key and limits; and it does take the common case (else it saves nothing).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DEFAULT_MESSAGE_LIMITS,
  encodeCandidate,
  parseCandidate,
  type Candidate,
  type MessageLimits,
} from '../../../src/messages/candidate.js';
import { fastParseCandidateBytes } from '../../../src/messages/candidate-bytes.js';
import { isIsoTime, isoTimeSchema, type MessageKey } from '../../../src/messages/common.js';

const id = fc.stringMatching(/^[A-Za-z0-9._:-]{1,40}$/);
const time = fc
  .date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const refs = fc.option(
  fc.dictionary(
    fc.constantFrom('study', 'series', 'instance', 'frame', 'x.y-z_1'),
    // No quote or backslash: JSON escapes them, and the fast path leaves escapes to JSON.parse.
    fc.stringMatching(/^[\x20\x21\x23-\x5b\x5d-\x7e]{1,40}$/),
    { minKeys: 1 },
  ),
  { nil: undefined },
);

/** A valid candidate: patches or an image, of any dtype, small. */
const candidate: fc.Arbitrary<Candidate> = fc
  .record({
    id,
    time,
    refs,
    kind: fc.constantFrom('image', 'patches'),
    dtype: fc.constantFrom('uint8', 'uint16', 'float32'),
    dims: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 4, maxLength: 4 }),
    seed: fc.integer(),
  })
  .map(({ id, time, refs, kind, dtype, dims, seed }) => {
    const shape = kind === 'image' ? dims.slice(1) : dims;
    const n = shape.reduce((a, b) => a * b, 1);
    const values = Array.from({ length: n }, (_, i) => Math.abs(Math.imul(seed ^ i, 2654435761)) % 65536);
    const data =
      dtype === 'uint8'
        ? Uint8Array.from(values, (v) => v & 255)
        : dtype === 'uint16'
          ? Uint16Array.from(values)
          : Float32Array.from(values, (v) => v / 65535);
    return {
      id,
      sourceRefs: { ...refs },
      time,
      content: { kind, dtype, shape, data } as Candidate['content'],
    };
  });

/** Ways to write the same or nearly the same JSON text differently. */
type Edit = (text: string, pick: number) => string;
const EDITS: Record<string, Edit> = {
  none: (t) => t,
  indented: (t) => JSON.stringify(JSON.parse(t), null, 2),
  spaced: (t) => ` \n${t.replace(/":/g, '" : ').replace(/,"/g, ' ,\t"')}\r\n`,
  reordered: (t) => {
    const o = JSON.parse(t) as Record<string, unknown>;
    return JSON.stringify(Object.fromEntries(Object.entries(o).reverse()));
  },
  'duplicate key': (t) => t.replace('{"schema"', '{"id":"dup","schema"'),
  'duplicate tensor key': (t) => t.replace('"dtype":', '"shape":[1,1,1],"dtype":'),
  'float dimension': (t) => t.replace(/"shape":\[(\d+)/, '"shape":[$1.0'),
  'exponent dimension': (t) => t.replace(/"shape":\[(\d+)/, '"shape":[$1e0'),
  'leading zero': (t) => t.replace(/"shape":\[(\d+)/, '"shape":[0$1'),
  'negative dimension': (t) => t.replace(/"shape":\[(\d+)/, '"shape":[-$1'),
  'escaped id': (t) => t.replace(/"id":"(.)/, '"id":"\\u0041$1'),
  'escaped key': (t) => t.replace('"time"', '"t\\u0069me"'),
  'non-ascii ref': (t) => t.replace('"sourceRefs":{', '"sourceRefs":{"note":"é",'),
  'identifier ref': (t) => t.replace('"sourceRefs":{', '"sourceRefs":{"patientName":"1",'),
  'proto ref': (t) => t.replace('"sourceRefs":{', '"sourceRefs":{"__proto__":"1",'),
  'constructor ref': (t) => t.replace('"sourceRefs":{', '"sourceRefs":{"constructor":"1",'),
  'empty ref': (t) => t.replace('"sourceRefs":{', '"sourceRefs":{"empty":"",'),
  bom: (t) => `\ufeff${t}`,
  'trailing text': (t) => `${t} x`,
  'trailing object': (t) => `${t}{}`,
  roi: (t) => t.replace('"dtype":', '"roi":{"x":0,"y":0,"width":1,"height":1},"dtype":'),
  'null refs': (t) => t.replace(/"sourceRefs":\{[^}]*\}/, '"sourceRefs":null'),
  'url-safe data': (t) => t.replace(/"data":"([^"]*?)[+/]/, (_m, p: string) => `"data":"${p}-`),
  'non-canonical data': (t) =>
    t.replace(/([A-Za-z0-9+/])(=+)"/, (_m, c: string, pad: string) => {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      return `${alphabet[(alphabet.indexOf(c) + 1) % 64]}${pad}"`;
    }),
  'padding inside data': (t) => t.replace(/"data":"(....)/, '"data":"AA=='),
  'space in data': (t) => t.replace(/"data":"(..)/, '"data":"$1 '),
  'schema v2': (t) => t.replace('acft.candidate/v1', 'acft.candidate/v2'),
  literal: (t) => t.replace('"sourceRefs":', '"flag":true,"sourceRefs":'),
  'one byte': (t, pick) => {
    const bytes = Buffer.from(t, 'utf8');
    bytes[pick % bytes.length] = (pick >>> 8) & 255;
    return bytes.toString('latin1');
  },
};

/** The message bytes, a key, and limits: valid, edited, or with one byte changed. */
const input = fc
  .record({
    candidate,
    edit: fc.constantFrom(...Object.keys(EDITS)),
    pick: fc.nat(),
    key: fc.constantFrom('id', 'undefined', 'null', 'string', 'other', 'longer'),
    tight: fc.boolean(),
    keep: fc.boolean(),
  })
  .map(({ candidate, edit, pick, key, tight, keep }) => {
    const text = EDITS[edit]!(encodeCandidate(candidate), pick);
    // 'one byte' works on bytes: latin1 keeps them as they are.
    const value = edit === 'one byte' ? Buffer.from(text, 'latin1') : Buffer.from(text, 'utf8');
    const keys: Record<string, MessageKey> = {
      id: Buffer.from(candidate.id),
      undefined: undefined,
      null: null,
      string: candidate.id,
      other: Buffer.from(`${candidate.id}x`),
      longer: Buffer.from(candidate.id.slice(1)),
    };
    const limits: MessageLimits = tight
      ? { maxPayloadBytes: 400, maxPatches: 3, maxImageSide: 3, maxChannels: 2 }
      : DEFAULT_MESSAGE_LIMITS;
    return { value, key: keys[key], limits, edit, keep };
  });

describe('fastParseCandidateBytes', () => {
  it('returns only what the standard path returns, for any bytes, key and limits', () => {
    const taken = new Map<string, number>();
    fc.assert(
      fc.property(input, ({ value, key, limits, edit, keep }) => {
        const fast = fastParseCandidateBytes(value, limits, key, keep);
        if (fast === undefined) return;
        taken.set(edit, (taken.get(edit) ?? 0) + 1);
        const slow = parseCandidate(value, { limits, key, fastPath: false, keepSourceRefs: keep });
        assert.ok(
          slow.ok,
          `the fast path took what the standard path refuses (${edit}): ${value.toString('latin1')}`,
        );
        assert.deepEqual(fast, slow.value);
        assert.equal(
          Object.getPrototypeOf(fast.content.data),
          Object.getPrototypeOf(slow.value.content.data),
        );
      }),
      { numRuns: 8000, seed: 71 },
    );
    // It takes the texts that only look different, and gives up on what it does not handle.
    for (const edit of ['none', 'indented', 'spaced', 'reordered', 'constructor ref']) {
      assert.ok((taken.get(edit) ?? 0) > 20, `the fast path took ${taken.get(edit) ?? 0} '${edit}' messages`);
    }
    for (const edit of ['duplicate key', 'float dimension', 'escaped id', 'bom', 'non-ascii ref', 'roi']) {
      assert.equal(taken.get(edit), undefined, `the fast path took a '${edit}' message`);
    }
  });

  it('parseCandidate gives the same results with and without it', () => {
    fc.assert(
      fc.property(input, ({ value, key, limits, keep }) => {
        assert.deepEqual(
          parseCandidate(value, { limits, key, keepSourceRefs: keep }),
          parseCandidate(value, { limits, key, fastPath: false, keepSourceRefs: keep }),
        );
      }),
      { numRuns: 3000, seed: 72 },
    );
  });

  it('takes every valid candidate without escapes, whatever its dtype, kind and source references', () => {
    fc.assert(
      fc.property(candidate, (c) => {
        const value = Buffer.from(encodeCandidate(c));
        assert.deepEqual(fastParseCandidateBytes(value, DEFAULT_MESSAGE_LIMITS, Buffer.from(c.id)), c);
      }),
      { numRuns: 1000, seed: 73 },
    );
  });

  it('checks the source references without keeping them when asked', () => {
    const c = fc.sample(candidate, { numRuns: 1, seed: 76 })[0]!;
    const value = Buffer.from(encodeCandidate({ ...c, sourceRefs: { study: '1.2.3' } }));
    const withoutRefs = { ...c, sourceRefs: {} };
    assert.deepEqual(fastParseCandidateBytes(value, DEFAULT_MESSAGE_LIMITS, undefined, false), withoutRefs);
    assert.deepEqual(parseCandidate(value, { limits: DEFAULT_MESSAGE_LIMITS, keepSourceRefs: false }), {
      ok: true,
      value: withoutRefs,
    });
    const bad = Buffer.from(value.toString().replace('"study"', '"patientName"'));
    const refused = parseCandidate(bad, { limits: DEFAULT_MESSAGE_LIMITS, keepSourceRefs: false });
    assert.equal(refused.ok, false, 'an identifier-like key is refused all the same');
  });

  it('reads a plain Uint8Array as it reads a Buffer', () => {
    const c = fc.sample(candidate, { numRuns: 1, seed: 74 })[0]!;
    const bytes = new Uint8Array(Buffer.from(encodeCandidate(c)));
    assert.deepEqual(fastParseCandidateBytes(bytes, DEFAULT_MESSAGE_LIMITS, undefined), c);
  });
});

describe('isIsoTime', () => {
  it('answers as the time schema does', () => {
    const times = fc.oneof(
      time,
      fc.string({ maxLength: 30 }),
      fc.constantFrom(
        '2025-01-31T12:00:00+05:30',
        '2025-01-31T12:00:00',
        '2025-13-01T00:00:00Z',
        '2025-02-30T00:00:00Z',
        '2024-02-29T00:00:00Z',
        '2023-02-29T00:00:00Z',
        '2025-01-31T12:00:00.123456Z',
        '2025-01-31 12:00:00Z',
      ),
      time.map((t) => t.replace('Z', '+01:00')),
      time.map((t) => `${t} `),
    );
    fc.assert(
      fc.property(times, (t) => {
        assert.equal(isIsoTime(t), isoTimeSchema.safeParse(t).success, t);
      }),
      { numRuns: 3000, seed: 75 },
    );
  });
});
