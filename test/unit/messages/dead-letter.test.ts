import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CANDIDATE_SCHEMA,
  createDeadLetter,
  DEAD_LETTER_REASON_DESCRIPTIONS,
  DEAD_LETTER_REASONS,
  DEFAULT_MESSAGE_LIMITS,
  encodeDeadLetter,
  isDeadLetterReason,
  parseCandidate,
  parseDeadLetter,
  sanitizeDeadLetterPayload,
  type DeadLetterReason,
} from '../../../src/messages/index.js';

const source = { topic: 'acft.candidates', partition: 2, offset: '1234', key: 'cand-1' };
const secret = 'DOE^JANE';

const candidateWithRefs = JSON.stringify({
  schema: CANDIDATE_SCHEMA,
  id: 'cand-1',
  sourceRefs: { study: '1.2.3', patientName: secret },
  patientName: secret,
  time: '2025-01-31T12:00:00Z',
  patches: { dtype: 'uint8', shape: [1, 40, 40, 1], data: Buffer.alloc(1600).toString('base64') },
});

void describe('dead-letter reasons', () => {
  void it('lists every reason once, each with a description', () => {
    assert.equal(new Set(DEAD_LETTER_REASONS).size, DEAD_LETTER_REASONS.length);
    for (const r of DEAD_LETTER_REASONS) {
      assert.ok(isDeadLetterReason(r));
      assert.ok(DEAD_LETTER_REASON_DESCRIPTIONS[r].length > 10);
    }
    assert.ok(!isDeadLetterReason('other'));
  });
});

void describe('createDeadLetter', () => {
  void it('records the source, reason and error, and round-trips through encode/parse', () => {
    const parsed = parseCandidate(candidateWithRefs, { limits: DEFAULT_MESSAGE_LIMITS });
    assert.ok(!parsed.ok);
    const dl = createDeadLetter({
      source,
      reason: parsed.reason,
      error: parsed.error,
      payload: Buffer.from(candidateWithRefs),
      time: new Date('2025-01-31T12:00:01Z'),
    });
    assert.equal(dl.reason, 'schema');
    assert.deepEqual(dl.source, source);
    assert.equal(dl.time, '2025-01-31T12:00:01.000Z');
    const back = parseDeadLetter(encodeDeadLetter(dl));
    assert.deepEqual(back, { ok: true, value: dl });
  });

  void it('strips sourceRefs and identifier-like keys from a JSON payload and elides tensor data', () => {
    const dl = createDeadLetter({ source, reason: 'schema', error: 'x', payload: candidateWithRefs });
    assert.ok(!dl.payload.data.includes(secret));
    assert.ok(!dl.payload.data.includes('sourceRefs'));
    assert.ok(dl.payload.sanitized);
    assert.equal(dl.payload.bytes, Buffer.byteLength(candidateWithRefs));
    const kept = JSON.parse(dl.payload.data) as { id: string; patches: { data: string } };
    assert.equal(kept.id, 'cand-1');
    assert.match(kept.patches.data, /characters elided/);
  });

  void it('cuts a non-JSON payload before any sourceRefs, and truncates to the byte limit', () => {
    const broken = candidateWithRefs.slice(0, 120);
    const dl = createDeadLetter({ source, reason: 'invalid-json', error: 'x', payload: broken });
    assert.ok(!dl.payload.sanitized);
    assert.ok(dl.payload.truncated);
    assert.ok(!dl.payload.data.includes(secret));
    assert.ok(!dl.payload.data.includes('sourceRefs'));
    const long = createDeadLetter({
      source,
      reason: 'oversized',
      error: 'x',
      payload: 'é'.repeat(5000),
      maxPayloadBytes: 101,
    });
    assert.equal(long.payload.encoding, 'utf8');
    assert.ok(Buffer.byteLength(long.payload.data) <= 101);
    assert.equal(long.payload.data, 'é'.repeat(50));
    assert.ok(long.payload.truncated);
  });

  void it('keeps a binary payload as a base64 prefix, and an absent one as empty', () => {
    const binary = sanitizeDeadLetterPayload(new Uint8Array([0xff, 0xfe, 0, 1, 2]), 3);
    assert.deepEqual(binary, {
      encoding: 'base64',
      data: Buffer.from([0xff, 0xfe, 0]).toString('base64'),
      bytes: 5,
      truncated: true,
      sanitized: false,
    });
    assert.deepEqual(sanitizeDeadLetterPayload(null), {
      encoding: 'utf8',
      data: '',
      bytes: 0,
      truncated: false,
      sanitized: false,
    });
  });

  void it("produces the pipeline's own reasons ('poison', 'unknown-candidate') from what was thrown", () => {
    const reasons: DeadLetterReason[] = ['poison', 'unknown-candidate'];
    for (const reason of reasons) {
      const dl = createDeadLetter({
        source: { ...source, offset: 99n },
        reason,
        error: new RangeError('boom'),
        payload: '{}',
      });
      assert.equal(dl.reason, reason);
      assert.equal(dl.error, 'RangeError: boom');
      assert.equal(dl.source.offset, '99');
      assert.ok(parseDeadLetter(encodeDeadLetter(dl)).ok);
    }
  });

  void it('drops a key that is not a valid id and truncates long errors', () => {
    const dl = createDeadLetter({
      source: { ...source, key: 'Jane Doe' },
      reason: 'key-mismatch',
      error: 'e'.repeat(5000),
      payload: '{}',
    });
    assert.equal(dl.source.key, null);
    assert.ok(dl.error.length <= 2000);
    const none = createDeadLetter({
      source: { topic: 't', partition: 0, offset: 0 },
      reason: 'schema',
      error: 'e',
      payload: '{}',
    });
    assert.equal('key' in none.source, false);
  });
});
