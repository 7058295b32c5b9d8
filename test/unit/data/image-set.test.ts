import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  ImageSetLoadError,
  MNIST_CLASS_NAMES,
  imageAt,
  loadImageSetFromDir,
  loadMnist,
  type ImageSet,
} from '../../../src/data/image-set.js';

/** A 2x3 single-channel image whose pixels encode (class, image, pixel). */
function pixels(cls: number, img: number): number[] {
  return Array.from({ length: 6 }, (_, p) => cls * 100 + img * 10 + p);
}

let dir = '';

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'acft-imageset-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeSet(name: string, files: Record<string, unknown>): Promise<string> {
  const d = path.join(dir, name);
  await mkdir(d);
  for (const [f, content] of Object.entries(files)) {
    await writeFile(path.join(d, f), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return d;
}

describe('loadImageSetFromDir (synthetic sets)', () => {
  it('reads the per-image layout with byte values and rejects bad records without misaligning', async () => {
    const d = await writeSet('per-image', {
      '0.json': { data: [pixels(0, 0), [], pixels(0, 2), [1, 2, 3], pixels(0, 4)] },
      '1.json': { data: [pixels(1, 0), [...pixels(1, 1).slice(0, 5), 300], pixels(1, 2), 'oops'] },
      'README.txt': 'not a class file',
    });
    const set = await loadImageSetFromDir(d, { name: 'syn', height: 2, width: 3 });
    assert.equal(set.count, 5);
    assert.deepEqual(set.classNames, ['0', '1']);
    assert.deepEqual([...set.labels], [0, 0, 0, 1, 1]);
    assert.deepEqual([...set.sourceIndex], [0, 2, 4, 0, 2]);
    assert.deepEqual([...imageAt(set, 1)], pixels(0, 2));
    assert.deepEqual([...imageAt(set, 4)], pixels(1, 2));
    assert.equal(set.images.length, 5 * 6);
    assert.ok(set.images instanceof Uint8Array);
    assert.deepEqual(
      set.rejected.map((r) => [r.file, r.index]),
      [
        ['0.json', 1],
        ['0.json', 3],
        ['1.json', 1],
        ['1.json', 3],
      ],
    );
    assert.match(set.rejected[0]!.reason, /record has 0 values, expected 6/);
    assert.match(set.rejected[2]!.reason, /value 300 at position 5 is not a number in 0\.\.255/);
    assert.match(set.rejected[3]!.reason, /expected an array of 6 numbers/);
  });

  it('reads the flat layout with 0..1 floats, rejecting a trailing partial image', async () => {
    const unit = (cls: number, img: number): number[] => pixels(cls, img).map((v) => v / 255);
    const d = await writeSet('flat', {
      // A corrupt record (a 300 among 0..1 floats) is rejected, and does not flip the file's scale.
      'a.json': {
        data: [...unit(0, 0), ...unit(0, 1), ...pixels(0, 2).map((v, k) => (k === 3 ? 300 : v / 255))],
      },
      'b.json': { data: [...unit(1, 0), ...unit(1, 1), ...unit(1, 2), 0.5, 0.5] },
    });
    const set = await loadImageSetFromDir(d, { name: 'flat', height: 2, width: 3, idPrefix: 'fl' });
    assert.equal(set.count, 5);
    assert.equal(set.idPrefix, 'fl');
    assert.deepEqual(set.classNames, ['a', 'b']);
    assert.deepEqual([...set.labels], [0, 0, 1, 1, 1]);
    assert.deepEqual([...imageAt(set, 0)], pixels(0, 0));
    assert.deepEqual([...imageAt(set, 4)], pixels(1, 2));
    assert.deepEqual(
      set.rejected.map((r) => [r.file, r.index]),
      [
        ['a.json', 2],
        ['b.json', 3],
      ],
    );
    assert.match(set.rejected[0]!.reason, /value 300 at position 3 is not a number in 0\.\.1/);
    assert.match(set.rejected[1]!.reason, /trailing 2 values/);
  });

  it('orders numeric class files numerically, supports channels and class names', async () => {
    const rgb = (v: number): number[] => new Array<number>(2 * 2 * 3).fill(v);
    const d = await writeSet('numeric', {
      '10.json': { data: [rgb(10)] },
      '2.json': { data: [rgb(2), rgb(3)] },
      '0.json': { data: [rgb(0)] },
    });
    const set = await loadImageSetFromDir(d, {
      name: 'rgb',
      height: 2,
      width: 2,
      channels: 3,
      classNames: ['zero', 'two', 'ten'],
    });
    assert.deepEqual(set.classNames, ['zero', 'two', 'ten']);
    assert.deepEqual([...set.labels], [0, 1, 1, 2]);
    assert.equal(imageAt(set, 3).length, 12);
    assert.equal(imageAt(set, 3)[0], 10);
    assert.throws(() => imageAt(set, 4), /out of range/);
    await assert.rejects(
      loadImageSetFromDir(d, { name: 'rgb', height: 2, width: 2, channels: 3, classNames: ['a'] }),
      /1 class names given for 3 class files/,
    );
  });

  it('fails clearly on a missing directory or malformed file, and does not cache failures', async () => {
    await assert.rejects(loadImageSetFromDir(path.join(dir, 'nope'), { name: 'x' }), ImageSetLoadError);
    await assert.rejects(
      loadImageSetFromDir(dir, { name: 'x', height: 0 }),
      /height must be a positive integer/,
    );
    const d = await writeSet('broken', { '0.json': '{"data": [1, 2,' });
    await assert.rejects(loadImageSetFromDir(d, { name: 'x' }), /0\.json: not valid JSON/);
    const e = await writeSet('wrong-shape', { '0.json': { images: [] } });
    await assert.rejects(loadImageSetFromDir(e, { name: 'x' }), /expected \{"data": \[\.\.\.\]\}/);
    await writeFile(path.join(d, '0.json'), JSON.stringify({ data: [new Array<number>(784).fill(7)] }));
    const fixed = await loadImageSetFromDir(d, { name: 'x' });
    assert.equal(fixed.count, 1);
  });

  it('caches per directory and options', async () => {
    const d = await writeSet('cached', { '0.json': { data: [pixels(0, 0)] } });
    const a = await loadImageSetFromDir(d, { name: 'c', height: 2, width: 3 });
    const b = await loadImageSetFromDir(d, { name: 'c', height: 2, width: 3 });
    const c = await loadImageSetFromDir(d, { name: 'c', height: 2, width: 3, cache: false });
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.deepEqual(a.images, c.images);
  });
});

describe('loadMnist', () => {
  let mnist: ImageSet;
  before(async () => {
    mnist = await loadMnist();
  });

  it('has the package counts per digit and no rejected records', () => {
    const counts = new Array<number>(10).fill(0);
    for (const l of mnist.labels) counts[l]! += 1;
    assert.deepEqual(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    assert.equal(mnist.count, 10000);
    assert.equal(mnist.rejected.length, 0);
    assert.deepEqual(mnist.classNames, [...MNIST_CLASS_NAMES]);
    assert.equal(mnist.images.length, 10000 * 784);
  });

  it('maps the 0..1 floats to bytes with a full range', () => {
    let max = 0;
    for (const v of mnist.images) if (v > max) max = v;
    assert.equal(max, 255);
    // A digit has ink in the middle of the image and none in the corner.
    const img = imageAt(mnist, 0);
    assert.equal(img[0], 0);
    assert.ok(img.reduce((s, v) => s + v, 0) > 255 * 50);
  });

  it('is cached in memory', async () => {
    assert.equal(await loadMnist(), mnist);
  });
});
