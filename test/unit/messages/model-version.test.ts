import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeModelVersion, MODEL_VERSION_SCHEMA, parseModelVersion } from '../../../src/messages/index.js';

const valid = {
  schema: MODEL_VERSION_SCHEMA,
  version: 'v4-1a2b3c',
  parent: 'v3-9f1c2e',
  strategy: 'ACFT(HQ)',
  status: 'promoted',
  counts: { q: 25, h: 3, labeled: 100, holdout: 24 },
  trainedOn: ['cand-1', 'cand-2'],
  metrics: { holdoutAuc: 0.91, parentHoldoutAuc: 0.88, holdoutAccuracy: 0.9, trainLoss: null },
  artifact: { location: 'acft-data/models/v4-1a2b3c', sha256: 'a'.repeat(64) },
  windowStartedAt: '2025-01-31T11:00:00Z',
  time: '2025-01-31T11:02:00Z',
};

void describe('parseModelVersion', () => {
  void it('accepts promoted and rejected versions, a null parent and null AUCs', () => {
    assert.deepEqual(parseModelVersion(JSON.stringify(valid)), { ok: true, value: valid });
    const first = {
      ...valid,
      parent: null,
      status: 'rejected',
      metrics: { holdoutAuc: null, parentHoldoutAuc: null },
    };
    assert.ok(parseModelVersion(JSON.stringify(first)).ok);
  });

  void it("'schema' for an unknown strategy, a bad sha256, negative counts, AUC > 1, a bad id", () => {
    for (const bad of [
      { ...valid, strategy: 'ACFT(XX)' },
      { ...valid, artifact: { ...valid.artifact, sha256: 'A'.repeat(64) } },
      { ...valid, counts: { ...valid.counts, h: -1 } },
      { ...valid, metrics: { ...valid.metrics, holdoutAuc: 1.2 } },
      { ...valid, metrics: { ...valid.metrics, extra: 'text' } },
      { ...valid, trainedOn: ['ok', 'not ok'] },
      { ...valid, status: 'pending' },
    ]) {
      const r = parseModelVersion(JSON.stringify(bad));
      assert.ok(!r.ok);
      assert.equal(r.reason, 'schema');
    }
  });

  void it('encodes and round-trips', () => {
    const { schema: _s, ...rest } = valid;
    const r = parseModelVersion(encodeModelVersion({ ...rest, strategy: 'ACFT(HQ)', status: 'promoted' }));
    assert.deepEqual(r, { ok: true, value: valid });
  });
});
