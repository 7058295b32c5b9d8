import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deadLettersOf, withDeadLetters, type QueuedDeadLetter } from '../../../src/daemon/dead-letters.js';

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
