import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  outboxOf,
  unconfirmedRequestsOf,
  withOutbox,
  withUnconfirmedRequests,
} from '../../../src/daemon/outbox.js';

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

  void it('keeps the unconfirmed labeling requests beside the outbox, and none in a file without them', () => {
    const request = { requestId: 'lr-1', key: 'c-1', value: '{"requestId":"lr-1"}' };
    const file = withUnconfirmedRequests(withOutbox({ format: 'acft-checkpoint/1' }, []), [request]);
    const read = JSON.parse(JSON.stringify(file)) as unknown;
    assert.deepEqual(unconfirmedRequestsOf(read), [request]);
    assert.deepEqual(outboxOf(read), []);
    assert.deepEqual(unconfirmedRequestsOf({ format: 'acft-checkpoint/1' }), []);
    assert.throws(
      () => unconfirmedRequestsOf({ unconfirmedRequests: [{ requestId: 'lr-1' }] }),
      /unconfirmed/,
    );
  });
});
