import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { CoordinatorFencedError, isFencedError } from '../../../src/daemon/coordinator-writer.js';

// kafkajs is CommonJS: Node does not see these two among its named exports.
const { KafkaJSNonRetriableError, KafkaJSProtocolError } = kafkajs;

/** A broker error as kafkajs raises it (protocol error with its type and code). */
function protocolError(type: string, code: number): Error {
  return new KafkaJSProtocolError({ message: type, type, code, retriable: false } as unknown as Error);
}

void describe('isFencedError', () => {
  void it('recognizes a fenced producer, also wrapped by the retrier', () => {
    const epoch = protocolError('INVALID_PRODUCER_EPOCH', 47);
    assert.equal(isFencedError(epoch), true);
    // The retrier's wrapping: a non-retriable error whose cause is the broker's.
    const wrapped = Object.assign(new KafkaJSNonRetriableError(epoch.message), { cause: epoch });
    assert.equal(isFencedError(wrapped), true);
    // PRODUCER_FENCED (90) is unknown to kafkajs 2.2: recognized by its code.
    assert.equal(isFencedError({ type: 'KAFKAJS_UNKNOWN', code: 90 }), true);
    assert.equal(isFencedError(new CoordinatorFencedError('fenced')), true);
  });

  void it('does not take other failures for fencing', () => {
    assert.equal(isFencedError(protocolError('MESSAGE_TOO_LARGE', 10)), false);
    assert.equal(isFencedError(new Error('connection closed')), false);
    assert.equal(isFencedError(undefined), false);
    const loop: { cause?: unknown } = {};
    loop.cause = loop;
    assert.equal(isFencedError(loop), false);
  });
});
