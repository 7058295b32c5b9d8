import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Subject, from, lastValueFrom, toArray } from 'rxjs';
import { mapWithState, mergeWhileBusy, ofType } from '../../../src/daemon/rx-operators.js';

void describe('mergeWhileBusy', () => {
  void it('works on the first batch at once and merges those that arrive while it runs', async () => {
    const source = new Subject<number[]>();
    const calls: number[][] = [];
    let release!: () => void;
    const work = async (items: number[]) => {
      calls.push(items);
      if (calls.length === 1) await new Promise<void>((r) => (release = r));
      return items.length;
    };
    const out = lastValueFrom(source.pipe(mergeWhileBusy(work, 4), toArray()));
    source.next([1]);
    source.next([2, 3]);
    source.next([4, 5, 6]);
    source.complete();
    await new Promise((r) => setTimeout(r, 0));
    release();
    assert.deepEqual(await out, [1, 4, 1], "each call's result");
    assert.deepEqual(calls, [[1], [2, 3, 4, 5], [6]], 'merged up to maxBatch, in order, nothing lost');
  });
});

void describe('mapWithState', () => {
  void it('folds each value into one state and emits what each step gives', async () => {
    const out = await lastValueFrom(
      from([1, 2, 3]).pipe(
        mapWithState((sum: number, x: number) => ({ state: sum + x, output: `${sum}+${x}` }), 10),
        toArray(),
      ),
    );
    assert.deepEqual(out, ['10+1', '11+2', '13+3']);
  });
});

void describe('ofType', () => {
  void it('keeps the values of the named types, typed as such', async () => {
    type V = { type: 'a'; n: number } | { type: 'b'; s: string } | { type: 'c' };
    const values: V[] = [{ type: 'a', n: 1 }, { type: 'b', s: 'x' }, { type: 'c' }, { type: 'a', n: 2 }];
    const out = await lastValueFrom(from(values).pipe(ofType('a', 'c'), toArray()));
    assert.deepEqual(out, [{ type: 'a', n: 1 }, { type: 'c' }, { type: 'a', n: 2 }]);
  });
});
