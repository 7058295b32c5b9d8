import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Subject, lastValueFrom, toArray } from 'rxjs';
import { bufferItems, mergeWhileBusy } from '../../../src/daemon/rx-operators.js';

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

describe('bufferItems', () => {
  it('sends full buffers at once and the rest after the wait, in order, nothing lost', async () => {
    const source = new Subject<readonly number[]>();
    const seen: { items: number[]; at: number }[] = [];
    const started = Date.now();
    const out = lastValueFrom(source.pipe(bufferItems(40, 3), toArray()));
    source.pipe(bufferItems(40, 3)).subscribe((items) => seen.push({ items, at: Date.now() - started }));
    source.next([1, 2]);
    source.next([3, 4, 5, 6, 7]);
    assert.deepEqual(
      seen.map((s) => s.items),
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      'full buffers go out at once',
    );
    source.next([]);
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(seen.at(-1)?.items, [7], 'the rest goes out after the wait');
    assert.ok(seen.at(-1)!.at >= 35, `the rest went out after ${seen.at(-1)!.at} ms`);
    source.next([8]);
    source.complete();
    assert.deepEqual(await out, [[1, 2, 3], [4, 5, 6], [7], [8]], 'completion sends what is left');
  });
});
