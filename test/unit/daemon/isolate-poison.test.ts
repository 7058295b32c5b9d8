import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isolatePoison } from '../../../src/daemon/isolate-poison.js';
import { WorkerTaskError } from '../../../src/workers/worker-host.js';

const candidateError = () =>
  new WorkerTaskError('score', { name: 'InvalidCandidateError', message: 'does not fit the model' });

void describe('isolatePoison', () => {
  void it('scores every other candidate and hands only the poison ones over', async () => {
    const poison = new Set(['c3', 'c7']);
    const scored: string[] = [];
    const dead: string[] = [];
    const ids = Array.from({ length: 10 }, (_, i) => `c${i}`);
    await isolatePoison(
      ids,
      (part) => {
        if (part.some((id) => poison.has(id))) return Promise.reject(candidateError());
        scored.push(...part);
        return Promise.resolve();
      },
      (id) => {
        dead.push(id);
        return Promise.resolve();
      },
    );
    assert.deepEqual(dead, ['c3', 'c7']);
    assert.deepEqual([...scored].sort(), ids.filter((id) => !poison.has(id)).sort());
  });

  void it('throws any other error as it is, without splitting', async () => {
    let calls = 0;
    const crash = new Error('worker crashed');
    await assert.rejects(
      isolatePoison(
        ['a', 'b'],
        () => {
          calls++;
          return Promise.reject(crash);
        },
        () => Promise.resolve(),
      ),
      crash,
    );
    assert.equal(calls, 1);
  });
});
