import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Subject, lastValueFrom, toArray } from 'rxjs';
import { mergeWhileBusy } from '../../../src/daemon/rx-operators.js';

describe('mergeWhileBusy', () => {
  it('works on the first batch at once and merges those that arrive while it runs', async () => {
    const source = new Subject<number[]>();
    const calls: number[][] = [];
    let release!: () => void;
    const work = async (items: number[]) => {
      calls.push(items);
      if (calls.length === 1) await new Promise<void>((r) => (release = r));
    };
    const out = lastValueFrom(source.pipe(mergeWhileBusy(work, 4), toArray()));
    source.next([1]);
    source.next([2, 3]);
    source.next([4, 5, 6]);
    source.complete();
    await new Promise((r) => setTimeout(r, 0));
    release();
    assert.deepEqual(await out, [1, 4, 1]);
    assert.deepEqual(calls, [[1], [2, 3, 4, 5], [6]], 'merged up to maxBatch, in order, nothing lost');
  });
});
