import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { outboxOf, withOutbox } from '../../../src/daemon/outbox.js';

void describe('outbox in the checkpoint file', () => {
  void it('round-trips beside the snapshot, and is empty in a file without one', () => {
    const entry = { topic: 'v', key: 'mv-1', value: '{"version":"mv-1"}' };
    const file = withOutbox({ format: 'acft-checkpoint/1' }, [entry]);
    assert.equal(file.format, 'acft-checkpoint/1');
    assert.deepEqual(outboxOf(JSON.parse(JSON.stringify(file))), [entry]);
    assert.deepEqual(outboxOf({ format: 'acft-checkpoint/1' }), []);
  });

  void it('refuses a malformed outbox', () => {
    assert.throws(() => outboxOf({ outbox: [{ topic: 'v', key: 1 }] }), /outbox/);
  });
});
