import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CANDIDATE_SCHEMA,
  DEFAULT_MESSAGE_LIMITS,
  encodeCandidate,
  parseCandidate,
  type Candidate,
  type DeadLetterReason,
  type MessageLimits,
  type ParseResult,
} from '../../../src/messages/index.js';
import { MessageEncodeError } from '../../../src/messages/reasons.js';

const limits: MessageLimits = { ...DEFAULT_MESSAGE_LIMITS };

function b64(bytes: ArrayBufferView): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function patchesMessage(over: Record<string, unknown> = {}): Record<string, unknown> {
  const data = new Uint8Array(2 * 3 * 3 * 1).map((_, i) => i * 7);
  return {
    schema: CANDIDATE_SCHEMA,
    id: 'cand-1',
    sourceRefs: { study: '1.2.840.113619.2.1', series: '1.2.3', instance: '1.2.3.4' },
    time: '2025-01-31T12:00:00.000Z',
    patches: { dtype: 'uint8', shape: [2, 3, 3, 1], data: b64(data) },
    ...over,
  };
}

function imageMessage(image: Record<string, unknown> = {}): Record<string, unknown> {
  const data = new Uint16Array(4 * 5 * 1).map((_, i) => i * 1000);
  return {
    schema: CANDIDATE_SCHEMA,
    id: 'cand-2',
    time: '2025-01-31T12:00:00+01:00',
    image: { dtype: 'uint16', shape: [4, 5, 1], data: b64(data), ...image },
  };
}

function parse(
  message: unknown,
  opts: { limits?: MessageLimits; key?: string | null } = {},
): ParseResult<Candidate> {
  return parseCandidate(typeof message === 'string' ? message : JSON.stringify(message), {
    limits: opts.limits ?? limits,
    ...(opts.key !== undefined ? { key: opts.key } : {}),
  });
}

function assertRejected(result: ParseResult<unknown>, reason: DeadLetterReason, pattern?: RegExp): void {
  assert.equal(result.ok, false, `expected a '${reason}' rejection`);
  if (result.ok) return;
  assert.equal(result.reason, reason, result.error);
  if (pattern) assert.match(result.error, pattern);
}

void describe('parseCandidate: valid messages', () => {
  void it('decodes carried patches into a Uint8Array', () => {
    const r = parse(patchesMessage(), { key: 'cand-1' });
    assert.ok(r.ok, r.ok ? '' : r.error);
    const c = r.value;
    assert.equal(c.id, 'cand-1');
    assert.equal(c.time, '2025-01-31T12:00:00.000Z');
    assert.deepEqual(c.sourceRefs, { study: '1.2.840.113619.2.1', series: '1.2.3', instance: '1.2.3.4' });
    assert.equal(c.content.kind, 'patches');
    assert.deepEqual(c.content.shape, [2, 3, 3, 1]);
    assert.ok(c.content.data instanceof Uint8Array);
    assert.ok(!Buffer.isBuffer(c.content.data));
    assert.equal(c.content.data[5], 35);
  });

  void it('decodes an image with its ROI and augmentation spec into a Uint16Array', () => {
    const roi = { x: 1, y: 0, width: 3, height: 4 };
    const augmentation = { scales: [1, 1.2], translations: [0, 0.1], flips: true, rotations: [0, 90], m: 8 };
    const r = parse(imageMessage({ roi, augmentation }));
    assert.ok(r.ok, r.ok ? '' : r.error);
    const content = r.value.content;
    assert.equal(content.kind, 'image');
    if (content.kind !== 'image') return;
    assert.ok(content.data instanceof Uint16Array);
    assert.equal(content.data[3], 3000);
    assert.deepEqual(content.roi, roi);
    assert.deepEqual(content.augmentation, augmentation);
    assert.deepEqual(r.value.sourceRefs, {});
  });

  void it('decodes float32 patches in [0, 1] (little-endian)', () => {
    const data = new Float32Array([0, 0.25, 0.5, 1]);
    const r = parse(patchesMessage({ patches: { dtype: 'float32', shape: [1, 2, 2, 1], data: b64(data) } }));
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.ok(r.value.content.data instanceof Float32Array);
    assert.deepEqual([...r.value.content.data], [0, 0.25, 0.5, 1]);
  });

  void it('accepts a Buffer value and ignores unknown fields', () => {
    const r = parseCandidate(Buffer.from(JSON.stringify({ ...patchesMessage(), extra: 1 })), { limits });
    assert.ok(r.ok);
  });
});

void describe('parseCandidate: every reason code from a crafted bad input', () => {
  void it("'invalid-json' for non-JSON, empty, null and non-UTF-8 values", () => {
    assertRejected(parse('{"schema": "acft.candidate/v1", '), 'invalid-json', /not JSON/);
    assertRejected(parseCandidate('', { limits }), 'invalid-json');
    assertRejected(parseCandidate(null, { limits }), 'invalid-json', /no value/);
    assertRejected(
      parseCandidate(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), { limits }),
      'invalid-json',
      /UTF-8/,
    );
  });

  void it("'schema' for missing and mistyped fields, naming the field", () => {
    const { id: _id, ...noId } = patchesMessage();
    assertRejected(parse(noId), 'schema', /^id: /);
    assertRejected(parse(patchesMessage({ schema: 'acft.candidate/v2' })), 'schema', /schema/);
    assertRejected(parse(patchesMessage({ id: 'has spaces' })), 'schema', /id: must be 1 to 128/);
    assertRejected(parse(patchesMessage({ id: 'x'.repeat(129) })), 'schema', /id:/);
    assertRejected(
      parse(patchesMessage({ time: '2025-01-31 12:00' })),
      'schema',
      /time: must be an ISO 8601/,
    );
    assertRejected(parse(patchesMessage({ time: '2025-01-31T12:00:00' })), 'schema', /time:/);
    assertRejected(parse([1, 2]), 'schema');
  });

  void it("'schema' when neither or both of patches and image are given", () => {
    const { patches: _p, ...neither } = patchesMessage();
    assertRejected(parse(neither), 'schema', /exactly one of 'patches' and 'image'/);
    const both = { ...patchesMessage(), image: (imageMessage() as { image: unknown }).image };
    assertRejected(parse(both), 'schema', /exactly one/);
  });

  void it("'schema' for sourceRefs that look like patient identifiers, without echoing values", () => {
    const r = parse(patchesMessage({ sourceRefs: { study: '1.2', patientName: 'DOE^JANE' } }));
    assertRejected(r, 'schema', /sourceRefs\.patientName: looks like a patient identifier/);
    assert.ok(!r.ok && !r.error.includes('DOE'));
    const bad = parse(patchesMessage({ sourceRefs: { 'Jane Doe': '1.2' } }));
    assertRejected(bad, 'schema', /sourceRefs/);
    assert.ok(!bad.ok && !bad.error.includes('Jane'));
    const badValue = parse(patchesMessage({ sourceRefs: { study: 'Jane\nDoe' } }));
    assertRejected(badValue, 'schema');
    assert.ok(!badValue.ok && !badValue.error.includes('Jane'));
  });

  void it("'schema' for an ROI outside the image or an invalid augmentation spec", () => {
    assertRejected(parse(imageMessage({ roi: { x: 3, y: 0, width: 3, height: 2 } })), 'schema', /image\.roi/);
    assertRejected(
      parse(imageMessage({ augmentation: { scales: [1, 1] } })),
      'schema',
      /scales holds 1 twice/,
    );
    assertRejected(parse(imageMessage({ augmentation: { rotations: [45] } })), 'schema', /rotations/);
  });

  void it("'tensor-dtype' for an unknown dtype", () => {
    const m = patchesMessage();
    const patches = { ...(m.patches as object), dtype: 'int8' };
    assertRejected(parse({ ...m, patches }), 'tensor-dtype', /patches\.dtype/);
    assertRejected(parse(imageMessage({ dtype: 'float64' })), 'tensor-dtype', /image\.dtype/);
  });

  void it("'tensor-shape' for a wrong rank or a bad dimension", () => {
    const m = patchesMessage();
    const withShape = (shape: unknown): unknown => ({ ...m, patches: { ...(m.patches as object), shape } });
    assertRejected(parse(withShape([2, 3, 3])), 'tensor-shape', /patches\.shape/);
    assertRejected(parse(withShape([2, 3, 3, 0])), 'tensor-shape', /patches\.shape\[3\]/);
    assertRejected(parse(withShape([2, 3, 3.5, 1])), 'tensor-shape');
    assertRejected(parse(imageMessage({ shape: [4, 5, 1, 1] })), 'tensor-shape', /image\.shape/);
  });

  void it("'tensor-data' for a wrong length, bad base64, NaN or out-of-range floats", () => {
    const m = patchesMessage();
    const withPatches = (p: object): unknown => ({ ...m, patches: { ...(m.patches as object), ...p } });
    // 18 bytes expected; 17 or 30 given.
    assertRejected(
      parse(withPatches({ data: b64(new Uint8Array(17)) })),
      'tensor-data',
      /decodes to 17 bytes/,
    );
    assertRejected(
      parse(withPatches({ data: b64(new Uint8Array(30)) })),
      'tensor-data',
      /expected 24 \(2x3x3x1 uint8 needs 18 bytes\)/,
    );
    // The shape disagrees with the data: 2x3x3x2 needs 36 bytes.
    assertRejected(parse(withPatches({ shape: [2, 3, 3, 2] })), 'tensor-data');
    assertRejected(parse(withPatches({ data: '!'.repeat(24) })), 'tensor-data', /base64/);
    assertRejected(parse(withPatches({ data: b64(new Uint8Array(18)).replace(/A/g, '-') })), 'tensor-data');
    // What Node's own decoder would take: the URL-safe alphabet, white space, a stray character.
    const good = b64(Uint8Array.from({ length: 18 }, (_, i) => 250 - i * 9));
    assert.ok(/[+/]/.test(good), `the fixture ${good} uses '+' or '/'`);
    const urlSafe = good.replace(/\+/g, '-').replace(/\//g, '_');
    assertRejected(parse(withPatches({ data: urlSafe })), 'tensor-data', /standard padded base64/);
    assertRejected(parse(withPatches({ data: ` ${good.slice(1)}` })), 'tensor-data', /base64/);
    assertRejected(parse(withPatches({ data: `${good.slice(0, 5)}*${good.slice(6)}` })), 'tensor-data');
    // The same data is accepted as given.
    assert.equal(parse(withPatches({ data: good })).ok, true);
    const floats = (values: number[]): object => ({
      dtype: 'float32',
      shape: [1, 1, values.length, 1],
      data: b64(new Float32Array(values)),
    });
    assertRejected(parse(withPatches(floats([0.5, Number.NaN]))), 'tensor-data', /value 1 is NaN/);
    assertRejected(parse(withPatches(floats([Infinity, 0]))), 'tensor-data');
    assertRejected(parse(withPatches(floats([0.5, 1.5]))), 'tensor-data', /\[0, 1\]/);
    assertRejected(parse(withPatches(floats([-0.1]))), 'tensor-data');
    assertRejected(parse(imageMessage({ data: b64(new Uint16Array(19)) })), 'tensor-data');
  });

  void it("'oversized' for a value over maxPayloadBytes, before parsing it", () => {
    const small = { ...limits, maxPayloadBytes: 100 };
    assertRejected(parse(patchesMessage(), { limits: small }), 'oversized', /100-byte limit/);
    // Over the limit and not even JSON: the size is checked first.
    assertRejected(parseCandidate(Buffer.alloc(101, 0x20), { limits: small }), 'oversized');
    assertRejected(parseCandidate('x'.repeat(101), { limits: small }), 'oversized');
    // Multi-byte characters count as their UTF-8 bytes.
    assertRejected(parseCandidate('é'.repeat(60), { limits: small }), 'oversized');
  });

  void it("'limit-exceeded' for too many patches, too big an image, too many channels, before decoding", () => {
    const many = new Uint8Array(65);
    const tooMany = patchesMessage({ patches: { dtype: 'uint8', shape: [65, 1, 1, 1], data: b64(many) } });
    assertRejected(parse(tooMany), 'limit-exceeded', /65 patches, over the limit of 64/);
    // A shape that claims a huge tensor is refused without allocating it (data is short).
    const huge = patchesMessage({
      patches: { dtype: 'float32', shape: [64, 100000, 100000, 4], data: 'AAAA' },
    });
    assertRejected(parse(huge), 'limit-exceeded', /height 100000/);
    assertRejected(parse(imageMessage({ shape: [4, 513, 1] })), 'limit-exceeded', /width 513/);
    assertRejected(parse(imageMessage({ shape: [4, 5, 5] })), 'limit-exceeded', /5 channels/);
    assertRejected(parse(imageMessage({ augmentation: { m: 65 } })), 'limit-exceeded', /65 patches/);
    // The grid of this spec is 16 x 16^2 x 2 x 4 = 32768 patches when m is left out.
    const scales = Array.from({ length: 16 }, (_, i) => 1 + i / 10);
    const translations = Array.from({ length: 16 }, (_, i) => -0.5 + i / 20);
    const grid = { scales, translations, flips: true, rotations: [0, 90, 180, 270] };
    assertRejected(parse(imageMessage({ augmentation: grid })), 'limit-exceeded', /32768 patches/);
    assertRejected(parse(imageMessage({ augmentation: { size: 1024 } })), 'limit-exceeded', /size/);
  });

  void it("'key-mismatch' when the Kafka key is missing or differs from the id", () => {
    assertRejected(
      parse(patchesMessage(), { key: 'cand-2' }),
      'key-mismatch',
      /'cand-2' differs from the candidate id 'cand-1'/,
    );
    assertRejected(parse(patchesMessage(), { key: null }), 'key-mismatch', /no key/);
    const r = parseCandidate(JSON.stringify(patchesMessage()), { limits, key: Buffer.from('cand-1') });
    assert.ok(r.ok);
  });
});

void describe('encodeCandidate', () => {
  void it('round-trips patches and images', () => {
    for (const m of [patchesMessage(), imageMessage({ roi: { x: 0, y: 0, width: 2, height: 2 } })]) {
      const first = parse(m);
      assert.ok(first.ok);
      const again = parse(encodeCandidate(first.value));
      assert.ok(again.ok);
      assert.deepEqual(again.value, first.value);
    }
  });

  void it('refuses data that does not match its dtype or shape, or floats outside [0, 1]', () => {
    const base: Candidate = {
      id: 'c',
      sourceRefs: {},
      time: '2025-01-01T00:00:00Z',
      content: { kind: 'patches', dtype: 'uint16', shape: [1, 1, 2, 1], data: new Uint8Array(2) },
    };
    assert.throws(() => encodeCandidate(base), MessageEncodeError);
    const short: Candidate = {
      ...base,
      content: { ...base.content, dtype: 'uint8', data: new Uint8Array(3) },
    };
    assert.throws(() => encodeCandidate(short), /holds 3 values/);
    const hot: Candidate = {
      ...base,
      content: { ...base.content, dtype: 'float32', data: new Float32Array([0, 2]) },
    };
    assert.throws(() => encodeCandidate(hot), /\[0, 1\]/);
    assert.throws(
      () =>
        encodeCandidate({
          ...base,
          id: 'bad id',
          content: { ...base.content, dtype: 'uint8', data: new Uint8Array(2) },
        }),
      /id/,
    );
  });
});

void describe('parseCandidate: speed', () => {
  void it('decodes a 24x28x28x1 uint8 patch tensor (~19 KB) in well under a millisecond on average', () => {
    const pixels = new Uint8Array(24 * 28 * 28).map((_, i) => (i * 31) & 0xff);
    const value = Buffer.from(
      JSON.stringify(
        patchesMessage({ patches: { dtype: 'uint8', shape: [24, 28, 28, 1], data: b64(pixels) } }),
      ),
    );
    assert.ok(value.length > 18_000 && value.length < 30_000);
    const first = parseCandidate(value, { limits, key: 'cand-1' });
    assert.ok(first.ok);
    assert.deepEqual(first.value.content.data, pixels);
    const n = 500;
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const r = parseCandidate(value, { limits, key: 'cand-1' });
      if (!r.ok) assert.fail(r.error);
    }
    const meanMs = (performance.now() - start) / n;
    // Typically ~0.1 ms; the bound leaves room for slow CI machines.
    assert.ok(meanMs < 2, `mean parse time ${meanMs.toFixed(3)} ms`);
  });
});
