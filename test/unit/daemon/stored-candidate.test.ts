/**
 * takeCandidate: the daemon's intake of one candidate message (the benchmark times the same
 * function alone).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { labelingConfigOf, resolveConfig } from '../../../src/config/index.js';
import { emptyLabels, type LabelingState } from '../../../src/core/labels.js';
import { emptyPool, getCandidate, poolSize } from '../../../src/core/pool.js';
import {
  patchShapeOf,
  storedBytes,
  takeCandidate,
  type StoredCandidate,
} from '../../../src/daemon/stored-candidate.js';
import { encodeCandidate, type Candidate } from '../../../src/messages/index.js';

const config = resolveConfig({ env: {} });
const labeling = labelingConfigOf(config, () => 0);
const source = { topic: 'candidates', partition: 2, offset: 17 };
const NOW = Date.parse('2026-11-26T12:00:00Z');

function candidate(id: string): Candidate {
  return {
    id,
    sourceRefs: { study: 'st-1' },
    time: '2026-11-26T11:59:00.000Z',
    content: {
      kind: 'image',
      dtype: 'uint8',
      shape: [4, 4, 1],
      data: Uint8Array.from({ length: 16 }, (_, i) => i * 9),
    },
  };
}

function message(c: Candidate, timestamp: number, key: string | null = c.id) {
  return {
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from(encodeCandidate(c)),
    timestamp: String(timestamp),
  };
}

const empty = (): LabelingState<StoredCandidate> => ({ pool: emptyPool(), labels: emptyLabels() });

void describe('takeCandidate', () => {
  void it('admits a valid candidate at its producer time, with its pixels and measured size', () => {
    const c = candidate('c-1');
    const taken = takeCandidate(empty(), message(c, NOW - 5000), source, NOW, config.limits, labeling);
    assert.ok(taken.ok);
    assert.deepEqual(taken.value.effects, [{ type: 'admitted', id: 'c-1' }]);
    const pooled = getCandidate(taken.value.state.pool, 'c-1')!;
    assert.equal(pooled.arrivedAtMs, NOW - 5000);
    assert.deepEqual(pooled.source, source);
    assert.deepEqual(pooled.payload, c.content);
    assert.equal(pooled.bytes, storedBytes(pooled.payload, 'c-1'));
  });

  void it('takes now as the arrival when the producer time is in the future or missing', () => {
    const future = takeCandidate(
      empty(),
      message(candidate('c-2'), NOW + 60_000),
      source,
      NOW,
      config.limits,
      labeling,
    );
    assert.ok(future.ok);
    assert.equal(getCandidate(future.value.state.pool, 'c-2')!.arrivedAtMs, NOW);
    const missing = { ...message(candidate('c-3'), 0), timestamp: 'not a time' };
    const taken = takeCandidate(empty(), missing, source, NOW, config.limits, labeling);
    assert.ok(taken.ok);
    assert.equal(getCandidate(taken.value.state.pool, 'c-3')!.arrivedAtMs, NOW);
  });

  void it('refuses what parseCandidate refuses, with its reason, and leaves the state alone', () => {
    const state = empty();
    const wrongKey = takeCandidate(
      state,
      message(candidate('c-4'), NOW, 'other'),
      source,
      NOW,
      config.limits,
      labeling,
    );
    assert.equal(wrongKey.ok, false);
    assert.equal(!wrongKey.ok && wrongKey.reason, 'key-mismatch');
    const garbage = { key: null, value: Buffer.from('{nope'), timestamp: String(NOW) };
    const bad = takeCandidate(state, garbage, source, NOW, config.limits, labeling);
    assert.equal(!bad.ok && bad.reason, 'invalid-json');
    assert.equal(poolSize(state.pool), 0);
  });

  void it('keeps no source references (they are checked, never kept)', () => {
    const taken = takeCandidate(
      empty(),
      message(candidate('c-5'), NOW),
      source,
      NOW,
      config.limits,
      labeling,
    );
    assert.ok(taken.ok);
    const stored = getCandidate(taken.value.state.pool, 'c-5')!.payload;
    assert.equal(JSON.stringify(stored).includes('st-1'), false);
  });

  void it('dead-letters a candidate without a key as a key mismatch (the fast path and the standard one)', () => {
    const state = empty();
    for (const c of [
      candidate('c-6'),
      { ...candidate('c-7'), content: { ...candidate('c-7').content, roi: undefined } },
    ]) {
      const taken = takeCandidate(
        state,
        message(c as Candidate, NOW, null),
        source,
        NOW,
        config.limits,
        labeling,
      );
      assert.equal(!taken.ok && taken.reason, 'key-mismatch');
    }
    assert.equal(poolSize(state.pool), 0);
  });

  void it('refuses a valid candidate its check refuses (patches the model cannot take), leaving the state alone', () => {
    const state = empty();
    const taken = takeCandidate(
      state,
      message(candidate('c-8'), NOW),
      source,
      NOW,
      config.limits,
      labeling,
      (stored) => {
        const shape = patchShapeOf(stored, { size: 4 });
        return typeof shape !== 'string' && shape[2] !== 3
          ? { ok: false, reason: 'shape-mismatch', error: `its patches are ${shape.join('x')}` }
          : undefined;
      },
    );
    assert.deepEqual(taken, { ok: false, reason: 'shape-mismatch', error: 'its patches are 4x4x1' });
    assert.equal(poolSize(state.pool), 0);
  });
});

void describe('patchShapeOf', () => {
  void it('is the patches carried, or the side the augmentation cuts from the image with its channels', () => {
    const patches: StoredCandidate = {
      kind: 'patches',
      dtype: 'uint8',
      shape: [2, 8, 8, 3],
      data: new Uint8Array(384),
    };
    assert.deepEqual(patchShapeOf(patches, { size: 28 }), [8, 8, 3]);
    const image: StoredCandidate = {
      kind: 'image',
      dtype: 'uint8',
      shape: [64, 64, 3],
      data: new Uint8Array(64 * 64 * 3),
    };
    assert.deepEqual(patchShapeOf(image, { size: 28 }), [28, 28, 3]);
    const roi: StoredCandidate = { ...image, roi: { x: 4, y: 4, width: 10, height: 10 } };
    assert.deepEqual(patchShapeOf(roi, {}), [10, 10, 3], "without a size: the ROI's side");
    assert.match(
      String(patchShapeOf(image, { size: 0 })),
      /size must be a positive integer/,
      'an invalid spec: why',
    );
  });
});
