import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { holdoutPosition, InvalidHoldoutShareError, isHeldOut } from '../../../src/core/holdout.js';

const ids = Array.from({ length: 5000 }, (_, i) => `candidate-${i}`);

void describe('isHeldOut', () => {
  void it('is a deterministic function of the id (sha256, first 4 bytes)', () => {
    const digest = createHash('sha256').update('\u0000candidate-7').digest();
    assert.equal(holdoutPosition('candidate-7'), digest.readUInt32BE(0) / 2 ** 32);
    for (const id of ids.slice(0, 50)) assert.equal(isHeldOut(id, 0.2), isHeldOut(id, 0.2));
  });

  void it('holds out about the given share, and a larger share only adds ids', () => {
    for (const share of [0.1, 0.2, 0.5]) {
      const held = ids.filter((id) => isHeldOut(id, share)).length / ids.length;
      assert.ok(Math.abs(held - share) < 0.03, `share ${share}: held ${held}`);
    }
    for (const id of ids) if (isHeldOut(id, 0.1)) assert.ok(isHeldOut(id, 0.2));
  });

  void it('holds out none at share 0 and all at share 1', () => {
    assert.ok(ids.every((id) => !isHeldOut(id, 0)));
    assert.ok(ids.every((id) => isHeldOut(id, 1)));
  });

  void it('picks a different set under a different salt', () => {
    const a = ids.filter((id) => isHeldOut(id, 0.2));
    const b = ids.filter((id) => isHeldOut(id, 0.2, 'fold-2'));
    assert.notDeepEqual(a, b);
  });

  void it('refuses a share outside [0, 1]', () => {
    for (const share of [-0.1, 1.1, NaN]) {
      assert.throws(
        () => isHeldOut('x', share),
        (e: unknown) => e instanceof InvalidHoldoutShareError && e.code === 'INVALID_HOLDOUT_SHARE',
      );
    }
  });
});
