import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeLabelingRequest,
  LABELING_REQUEST_SCHEMA,
  MessageEncodeError,
  parseLabelingRequest,
} from '../../../src/messages/index.js';

const valid = {
  schema: LABELING_REQUEST_SCHEMA,
  requestId: 'req-42',
  candidateId: 'cand-1',
  modelVersion: 'v3-9f1c2e',
  scores: { score: 0.69, entropy: 0.69, diversity: 0.01, dominantClass: 0, meanProbs: [0.52, 0.48] },
  rank: 3,
  drawProbability: 0.08,
  shortlistSize: 125,
  takenBy: 'draw',
  criterion: 'entropy',
  leaseExpiresAt: '2025-01-31T16:00:00Z',
  time: '2025-01-31T12:00:00Z',
};

void describe('parseLabelingRequest', () => {
  void it('accepts a valid request', () => {
    const r = parseLabelingRequest(JSON.stringify(valid), { numClasses: 2 });
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.deepEqual(r.value, valid);
  });

  void it("'schema' for NaN-like values, negative ranks, probabilities outside [0, 1]", () => {
    for (const bad of [
      { ...valid, rank: -1 },
      { ...valid, drawProbability: 1.5 },
      { ...valid, scores: { ...valid.scores, score: null } },
      { ...valid, scores: { ...valid.scores, meanProbs: [0.5] } },
      { ...valid, scores: { ...valid.scores, dominantClass: 2 } },
      { ...valid, criterion: 'random' },
      { ...valid, leaseExpiresAt: undefined },
    ]) {
      const r = parseLabelingRequest(JSON.stringify(bad));
      assert.ok(!r.ok);
      assert.equal(r.reason, 'schema');
    }
  });

  void it("checks K when given: 'unknown-class' for dominantClass, 'schema' for meanProbs length", () => {
    const three = { ...valid, scores: { ...valid.scores, dominantClass: 2, meanProbs: [0.2, 0.3, 0.5] } };
    assert.ok(parseLabelingRequest(JSON.stringify(three)).ok);
    const r = parseLabelingRequest(JSON.stringify(three), { numClasses: 2 });
    assert.ok(!r.ok && r.reason === 'unknown-class');
    const wide = { ...valid, scores: { ...valid.scores, meanProbs: [0.2, 0.3, 0.5] } };
    const w = parseLabelingRequest(JSON.stringify(wide), { numClasses: 2 });
    assert.ok(!w.ok && w.reason === 'schema');
  });

  void it('encodes (filling in the schema) and refuses NaN scores', () => {
    const { schema: _s, ...rest } = valid;
    const encoded = encodeLabelingRequest({ ...rest, takenBy: 'draw', criterion: 'entropy' });
    assert.deepEqual(JSON.parse(encoded), valid);
    assert.throws(
      () =>
        encodeLabelingRequest({
          ...rest,
          takenBy: 'draw',
          criterion: 'entropy',
          scores: { ...valid.scores, entropy: Number.NaN },
        }),
      MessageEncodeError,
    );
  });
});
