import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { BrokerHealth, isBrokerError } from '../../../src/daemon/broker-health.js';

const { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded } = kafkajs;

void describe('BrokerHealth', () => {
  void it('one outage from the first failure to the first answer, with its length', () => {
    const h = new BrokerHealth(0, 3_000);
    assert.equal(h.answered(100), null);
    assert.deepEqual(h.failed(1_000, 'probe'), { type: 'outage-started', atMs: 1_000, cause: 'probe' });
    assert.equal(h.failed(1_500, 'again'), null, 'a failure during an outage starts none');
    assert.equal(h.downSince, 1_000);
    assert.deepEqual(h.answered(21_000), { type: 'outage-ended', atMs: 21_000, durationMs: 20_000 });
    assert.equal(h.downSince, null);
  });

  void it('asks for a probe when no broker answered for staleAfterMs', () => {
    const h = new BrokerHealth(0, 3_000);
    assert.equal(h.needsProbe(2_999), false);
    assert.equal(h.needsProbe(3_000), true);
    h.answered(2_500);
    assert.equal(h.needsProbe(5_000), false);
    assert.equal(h.needsProbe(5_500), true);
  });
});

void describe('isBrokerError', () => {
  void it("is the brokers' doing when the root cause is a kafkajs error", () => {
    assert.equal(isBrokerError(new KafkaJSConnectionError('Connection error: ECONNREFUSED')), true);
    const wrapped = new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('refused'), {
      retryCount: 5,
      retryTime: 100,
    });
    assert.equal(isBrokerError(wrapped), true);
    assert.equal(isBrokerError(new Error('ledger write failed')), false);
    const daemonErrorRetried = new KafkaJSNumberOfRetriesExceeded(new TypeError('bug'), {
      retryCount: 5,
      retryTime: 100,
    });
    assert.equal(isBrokerError(daemonErrorRetried), false);
    assert.equal(isBrokerError('not an error'), false);
  });
});
