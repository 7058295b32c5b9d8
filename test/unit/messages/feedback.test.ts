import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeFeedback,
  FEEDBACK_SCHEMA,
  feedbackSource,
  MessageEncodeError,
  parseFeedback,
} from '../../../src/messages/index.js';

const valid = {
  schema: FEEDBACK_SCHEMA,
  candidateId: 'cand-1',
  label: 1,
  annotatorId: 'rad-07',
  time: '2025-01-31T12:05:00Z',
  requestId: 'req-42',
  source: 'requested',
};

function parse(message: unknown, numClasses = 2, key?: string | null) {
  return parseFeedback(JSON.stringify(message), { numClasses, ...(key !== undefined ? { key } : {}) });
}

void describe('parseFeedback', () => {
  void it('accepts a valid answer to a request, and unsolicited feedback without requestId/source', () => {
    const r = parse(valid, 2, 'cand-1');
    assert.ok(r.ok);
    assert.deepEqual(r.value, valid);
    const { requestId: _r, source: _s, ...bare } = valid;
    const u = parse(bare);
    assert.ok(u.ok);
    assert.equal(feedbackSource(u.value), 'unsolicited');
    assert.equal(feedbackSource({ requestId: 'r' }), 'requested');
    assert.equal(feedbackSource({ source: 'cad-closed-loop' }), 'cad-closed-loop');
  });

  void it("'unknown-class' for a label outside 0..K-1", () => {
    for (const [label, k] of [
      [2, 2],
      [-1, 2],
      [10, 10],
    ] as const) {
      const r = parse({ ...valid, label }, k);
      assert.ok(!r.ok);
      assert.equal(r.reason, 'unknown-class');
      assert.match(r.error, /label/);
    }
    assert.ok(parse({ ...valid, label: 9 }, 10).ok);
  });

  void it("'schema' for a fractional or missing label, a bad annotator id, a bad source", () => {
    for (const bad of [
      { ...valid, label: 0.5 },
      { ...valid, label: '1' },
      { ...valid, label: undefined },
      { ...valid, annotatorId: 'Dr. Jane Doe' },
      { ...valid, source: 'guess' },
      { ...valid, time: 'yesterday' },
    ]) {
      const r = parse(bad);
      assert.ok(!r.ok);
      assert.equal(r.reason, 'schema');
    }
  });

  void it("'invalid-json', 'oversized' and 'key-mismatch'", () => {
    const j = parseFeedback('{label: 1}', { numClasses: 2 });
    assert.ok(!j.ok && j.reason === 'invalid-json');
    const o = parseFeedback(JSON.stringify(valid), { numClasses: 2, maxPayloadBytes: 10 });
    assert.ok(!o.ok && o.reason === 'oversized');
    const k = parse(valid, 2, 'cand-9');
    assert.ok(!k.ok && k.reason === 'key-mismatch');
  });
});

void describe('encodeFeedback', () => {
  void it('fills in the schema and round-trips', () => {
    const { schema: _s, ...rest } = valid;
    const r = parseFeedback(encodeFeedback({ ...rest, source: 'requested' }), { numClasses: 2 });
    assert.ok(r.ok);
    assert.deepEqual(r.value, valid);
  });

  void it('throws MessageEncodeError for an invalid message', () => {
    const { schema: _s, ...rest } = valid;
    assert.throws(
      () => encodeFeedback({ ...rest, source: 'requested', label: Number.NaN }),
      MessageEncodeError,
    );
  });
});
