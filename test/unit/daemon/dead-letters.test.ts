import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DeadLetterOutbox,
  deadLettersOf,
  withDeadLetters,
  type QueuedDeadLetter,
} from '../../../src/daemon/dead-letters.js';

const letter = (i: number, hold = false): QueuedDeadLetter => ({
  key: i % 2 === 0 ? `c-${i}` : null,
  value: `{"n":${i}}`,
  ...(hold ? { hold: { topic: 'candidates', partition: 0, offset: i } } : {}),
});

void describe('dead letters in the checkpoint file', () => {
  void it('round-trip without the held offsets, and are none in a file without them', () => {
    const file = withDeadLetters({ format: 'acft-checkpoint/1' }, [letter(0), letter(1, true)]);
    assert.deepEqual(deadLettersOf(JSON.parse(JSON.stringify(file))), [
      { key: 'c-0', value: '{"n":0}' },
      { key: null, value: '{"n":1}' },
    ]);
    assert.deepEqual(deadLettersOf({ format: 'acft-checkpoint/1' }), []);
    assert.throws(() => deadLettersOf({ deadLetters: [{ key: 1, value: 'x' }] }), /deadLetters/);
  });
});

void describe('DeadLetterOutbox', () => {
  void it('sends in order, in batches, and keeps what the broker did not confirm until it does', async () => {
    const sent: string[] = [];
    const confirmed: string[] = [];
    const failures: number[] = [];
    let up = false;
    const outbox = new DeadLetterOutbox({
      send: (batch) => {
        if (!up) return Promise.reject(new Error('broker down'));
        sent.push(...batch.map((d) => d.value));
        return Promise.resolve();
      },
      onSent: (batch) => confirmed.push(...batch.map((d) => d.value)),
      onFailed: (_error, queued) => failures.push(queued),
      retryAfterMs: 5,
      maxBatch: 2,
    });
    outbox.push(letter(0), letter(1), letter(2));
    await outbox.flush();
    assert.equal(outbox.size, 3, 'nothing confirmed while the broker is down');
    assert.deepEqual(
      outbox.unsent.map((d) => d.value),
      ['{"n":0}', '{"n":1}', '{"n":2}'],
    );
    assert.ok(failures.length >= 1);
    up = true;
    outbox.push(letter(3));
    // The retry (or the push) sends everything, oldest first.
    for (let i = 0; i < 100 && outbox.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(outbox.size, 0);
    assert.deepEqual(sent, ['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}']);
    assert.deepEqual(confirmed, sent);
    await outbox.stop();
  });

  void it('restores letters without sending them, and sends nothing once stopped', async () => {
    let sends = 0;
    const outbox = new DeadLetterOutbox({
      send: () => {
        sends++;
        return Promise.resolve();
      },
      onSent: () => undefined,
      onFailed: () => undefined,
      retryAfterMs: 5,
    });
    outbox.restore([letter(0)]);
    assert.equal(sends, 0);
    await outbox.flush();
    assert.equal(sends, 1);
    await outbox.stop();
    outbox.push(letter(1));
    await outbox.flush();
    assert.equal(sends, 1);
    assert.equal(outbox.size, 1);
  });
});
