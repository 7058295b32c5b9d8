import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  FASHION_MNIST_CLASS_NAMES,
  loadFashionMnist,
  loadImageSetFromDir,
  loadMnist,
  type ImageSet,
} from '../../../src/data/image-set.js';
import {
  buildTask,
  describeTask,
  formatTaskDescription,
  parseClassList,
  type Split,
  type Task,
} from '../../../src/data/task.js';

let fashion: ImageSet;

before(async () => {
  fashion = await loadFashionMnist(); // once per file: about 2 s
});

function assertDisjoint(task: Task): void {
  const seen = new Set<number>();
  for (const s of [task.pool, task.validation, task.test]) {
    for (const i of s.indices) {
      assert.ok(!seen.has(i), `index ${i} in two splits`);
      seen.add(i);
    }
  }
  const ids = [...task.pool.ids, ...task.validation.ids, ...task.test.ids];
  assert.equal(new Set(ids).size, ids.length);
}

function count(split: Split, label: number): number {
  return split.labels.filter((l) => l === label).length;
}

describe('fashion-mnist', () => {
  it('loads 70,000 images and reports exactly the two empty records of class 0', () => {
    assert.equal(fashion.count, 70000);
    assert.deepEqual(fashion.classNames, [...FASHION_MNIST_CLASS_NAMES]);
    assert.deepEqual(
      fashion.rejected.map((r) => [r.file, r.index]),
      [
        ['0.json', 1000],
        ['0.json', 7001],
      ],
    );
    for (const r of fashion.rejected) assert.match(r.reason, /has 0 values, expected 784/);
    // No misalignment: class 0 keeps its record numbers around the hole.
    const class0 = [...fashion.sourceIndex.subarray(0, 7000)];
    assert.equal(class0[999], 999);
    assert.equal(class0[1000], 1001);
    assert.equal(class0[6999], 7000);
    assert.equal(fashion.sourceIndex[7000], 0);
    assert.equal(fashion.labels[7000], 1);
  });

  it('10-class task: split sizes, disjointness, labels in the given order', () => {
    const task = buildTask(fashion, { classes: parseClassList('0-9'), seed: 1 });
    assert.equal(task.kind, 'multiclass');
    assert.equal(task.numClasses, 10);
    assert.equal(task.test.indices.length, 10000);
    assert.equal(task.validation.indices.length, 5000);
    assert.equal(task.pool.indices.length, 55000);
    assertDisjoint(task);
    for (let k = 0; k < 10; k++) assert.equal(count(task.test, k), 1000);
    // The test set is the last 1000 valid records of each file.
    assert.equal(task.test.ids.filter((id) => id.startsWith('fmnist-0-')).length, 1000);
    assert.ok(task.test.ids.includes('fmnist-0-07000'));
    assert.ok(task.test.ids.includes('fmnist-0-06001'));
    assert.ok(task.validation.ids.includes('fmnist-0-06000'));
    assert.ok(task.validation.ids.includes('fmnist-0-05501'));
    assert.ok(task.pool.ids.includes('fmnist-0-05500'));
    assert.ok(!task.pool.ids.includes('fmnist-0-01000'));
    // Reordered classes map to 0..K-1 in the order given.
    const re = buildTask(fashion, { classes: [9, 3], seed: 1, testPerClass: 10, valPerClass: 5 });
    assert.deepEqual(re.classNames, ['Ankle boot', 'Dress']);
    re.test.indices.forEach((i, k) => assert.equal(re.test.labels[k], fashion.labels[i] === 9 ? 0 : 1));
  });

  it('binary shirt task at 1:9 honours the ratio per split and keeps the test split across seeds', () => {
    const spec = { positive: [6], negative: [0, 2, 4], ratio: 9 };
    const a = buildTask(fashion, { ...spec, seed: 1 });
    const b = buildTask(fashion, { ...spec, seed: 1 });
    const c = buildTask(fashion, { ...spec, seed: 2 });
    assert.equal(a.kind, 'binary');
    assert.deepEqual(a.classNames, ['T-shirt/top+Pullover+Coat', 'Shirt']);
    assert.match(a.name, /Shirt vs T-shirt\/top\+Pullover\+Coat \(1:9\)/);
    assertDisjoint(a);
    for (const s of [a.pool, a.validation, a.test]) {
      const pos = count(s, 1);
      const neg = count(s, 0);
      assert.ok(Math.abs(neg / pos - 9) < 0.05, `ratio ${neg}/${pos}`);
    }
    // Fewer negatives than 9 per positive: positives are subsampled, negatives all kept.
    assert.equal(count(a.pool, 0), 3 * 5500);
    assert.equal(count(a.pool, 1), Math.round(16500 / 9));
    assert.equal(count(a.test, 0), 3000);
    assert.equal(count(a.test, 1), 333);
    assert.equal(count(a.validation, 1), 167);
    // Determinism per seed; seeds differ in pool and validation; the test split never changes.
    assert.deepEqual(a.pool, b.pool);
    assert.deepEqual(a.validation, b.validation);
    assert.notDeepEqual(a.pool.indices, c.pool.indices);
    assert.notDeepEqual(a.validation.indices, c.validation.indices);
    assert.deepEqual(a.test, c.test);
  });

  it('subsamples negatives when they are too many, and defaults negatives to every other class', () => {
    const t = buildTask(fashion, { positive: [1], ratio: 2, seed: 5 });
    assert.deepEqual(t.sourceClasses, [[0, 2, 3, 4, 5, 6, 7, 8, 9], [1]]);
    assert.equal(count(t.pool, 1), 5500);
    assert.equal(count(t.pool, 0), 11000);
    assert.equal(count(t.test, 0), 2000);
    const d = describeTask(t);
    assert.equal(d.splits.pool.total, 16500);
    assert.deepEqual(d.splits.test.perClass, [2000, 1000]);
    const negTest = [0, 2, 3, 4, 5, 6, 7, 8, 9].reduce(
      (s, c) => s + (d.splits.test.perSourceClass[c] ?? 0),
      0,
    );
    assert.equal(negTest, 2000);
    assert.match(formatTaskDescription(d), /test 3000: .* 2000, Trouser 1000/);
  });

  it('rejects bad task specs', () => {
    assert.throws(() => buildTask(fashion, { seed: 1 }), /give positive/);
    assert.throws(() => buildTask(fashion, { classes: [1, 2], positive: [1], seed: 1 }), /not both/);
    assert.throws(() => buildTask(fashion, { classes: [1, 2], ratio: 9, seed: 1 }), /binary tasks only/);
    assert.throws(() => buildTask(fashion, { classes: [1], seed: 1 }), /at least 2 classes/);
    assert.throws(
      () => buildTask(fashion, { positive: [6], negative: [6, 0], seed: 1 }),
      /both positive and negative/,
    );
    assert.throws(() => buildTask(fashion, { positive: [10], seed: 1 }), /class 10 does not exist/);
    assert.throws(() => buildTask(fashion, { positive: [6], ratio: 0, seed: 1 }), /ratio/);
    assert.throws(() => buildTask(fashion, { classes: [0, 1], seed: 1, testPerClass: 7000 }), /fewer than/);
  });
});

describe('parseClassList', () => {
  it('parses lists and ranges', () => {
    assert.deepEqual(parseClassList('0,2,4'), [0, 2, 4]);
    assert.deepEqual(parseClassList(' 6 , 0-2 '), [6, 0, 1, 2]);
    assert.deepEqual(parseClassList('0-9', 10).length, 10);
  });
  it('rejects bad input clearly', () => {
    assert.throws(() => parseClassList(''), /empty/);
    assert.throws(() => parseClassList('0,,2'), /is not a class number/);
    assert.throws(() => parseClassList('a'), /is not a class number/);
    assert.throws(() => parseClassList('-1'), /is not a class number/);
    assert.throws(() => parseClassList('1.5'), /is not a class number/);
    assert.throws(() => parseClassList('0,0'), /listed twice/);
    assert.throws(() => parseClassList('5-3'), /descending/);
    assert.throws(() => parseClassList('3,10', 10), /class 10 does not exist/);
  });
});

describe('other sets', () => {
  it('mnist: a task with smaller splits (the package has about 1000 images per digit)', async () => {
    const mnist = await loadMnist();
    assert.throws(
      () => buildTask(mnist, { classes: parseClassList('0-9'), seed: 1 }),
      /has \d+ valid images/,
    );
    const t = buildTask(mnist, {
      classes: parseClassList('0-9'),
      seed: 1,
      testPerClass: 200,
      valPerClass: 100,
    });
    assert.equal(t.test.indices.length, 2000);
    assert.equal(t.validation.indices.length, 1000);
    assert.equal(t.pool.indices.length, 7000);
    assert.equal(count(t.pool, 0), 1001 - 300);
    assert.ok(t.pool.ids[0]!.startsWith('mnist-0-'));
    assertDisjoint(t);
  });

  describe('synthetic directory, both layouts', () => {
    let dir = '';
    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'acft-task-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('builds a binary task with ratio from a generic set', async () => {
      const img = (v: number): number[] => new Array<number>(4).fill(v);
      await mkdir(path.join(dir, 'set'));
      // cats: per-image layout, 0..255, one bad record; dogs: flat layout, 0..1 floats.
      const cats = Array.from({ length: 41 }, (_, i) => (i === 7 ? [1, 2] : img(i)));
      const dogs = Array.from({ length: 12 }, (_, i) => img(i / 255)).flat();
      await writeFile(path.join(dir, 'set', 'cat.json'), JSON.stringify({ data: cats }));
      await writeFile(path.join(dir, 'set', 'dog.json'), JSON.stringify({ data: dogs }));
      const set = await loadImageSetFromDir(path.join(dir, 'set'), { name: 'pets', height: 2, width: 2 });
      assert.deepEqual(set.classNames, ['cat', 'dog']);
      assert.equal(set.count, 52);
      assert.deepEqual(
        set.rejected.map((r) => r.index),
        [7],
      );
      const t = buildTask(set, {
        positive: [1],
        negative: [0],
        ratio: 4,
        seed: 3,
        testPerClass: 2,
        valPerClass: 2,
      });
      // pool: 8 dogs, 36 cats -> 32 cats; validation/test: 2 dogs, 2 cats -> 1 dog.
      assert.deepEqual([count(t.pool, 1), count(t.pool, 0)], [8, 32]);
      assert.deepEqual([count(t.test, 1), count(t.test, 0)], [1, 2]);
      assert.ok(t.test.ids.every((id) => /^pets-[01]-000\d\d$/.test(id)));
      // The last two valid cats (records 39, 40) are the test cats.
      assert.deepEqual(
        t.test.ids.filter((id) => id.startsWith('pets-0-')),
        ['pets-0-00039', 'pets-0-00040'],
      );
      assertDisjoint(t);
    });
  });
});
