import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { rotateSquare, rotationPretextSet, ROTATION_CLASS_NAMES } from '../../../src/data/rotation.js';
import type { ImageSet } from '../../../src/data/image-set.js';

const imageArb = fc
  .record({ side: fc.integer({ min: 1, max: 6 }), channels: fc.integer({ min: 1, max: 3 }) })
  .chain(({ side, channels }) =>
    fc
      .uint8Array({ minLength: side * side * channels, maxLength: side * side * channels })
      .map((image) => ({ side, channels, image })),
  );

void describe('rotateSquare', () => {
  void it('turns clockwise: the top row becomes the right column', () => {
    // 1 2 / 3 4  ->  3 1 / 4 2
    assert.deepEqual([...rotateSquare(Uint8Array.from([1, 2, 3, 4]), 2, 1, 1)], [3, 1, 4, 2]);
    assert.deepEqual([...rotateSquare(Uint8Array.from([1, 2, 3, 4]), 2, 1, 2)], [4, 3, 2, 1]);
    assert.deepEqual([...rotateSquare(Uint8Array.from([1, 2, 3, 4]), 2, 1, 3)], [2, 4, 1, 3]);
  });

  void it('four quarter turns are the identity, and k turns compose', () => {
    fc.assert(
      fc.property(imageArb, fc.integer({ min: 0, max: 3 }), ({ side, channels, image }, k) => {
        let x: Uint8Array = image;
        for (let i = 0; i < 4; i++) x = rotateSquare(x, side, channels, 1);
        assert.deepEqual(x, image);
        let y: Uint8Array = image;
        for (let i = 0; i < k; i++) y = rotateSquare(y, side, channels, 1);
        assert.deepEqual(rotateSquare(image, side, channels, k), y);
      }),
    );
  });

  void it('refuses an image of the wrong size', () => {
    assert.throws(() => rotateSquare(new Uint8Array(5), 2, 1, 1), RangeError);
  });
});

void describe('rotationPretextSet', () => {
  const set: ImageSet = {
    name: 'tiny',
    idPrefix: 'tiny',
    source: '',
    height: 2,
    width: 2,
    channels: 1,
    classNames: ['a', 'b'],
    images: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
    labels: Uint8Array.from([0, 1]),
    sourceIndex: Int32Array.from([0, 0]),
    count: 2,
    rejected: [],
  };

  void it('makes four labeled rotations of each chosen image and ignores the source labels', () => {
    const pretext = rotationPretextSet(set, [1]);
    assert.equal(pretext.count, 4);
    assert.deepEqual(pretext.classNames, [...ROTATION_CLASS_NAMES]);
    assert.deepEqual([...pretext.labels], [0, 1, 2, 3]);
    assert.deepEqual([...pretext.sourceIndex], [1, 1, 1, 1]);
    assert.deepEqual([...pretext.images.subarray(0, 4)], [5, 6, 7, 8]);
    assert.deepEqual([...pretext.images.subarray(4, 8)], [7, 5, 8, 6]);
  });

  void it('refuses non-square images and indices out of range', () => {
    assert.throws(() => rotationPretextSet({ ...set, width: 4, height: 1 }, [0]), RangeError);
    assert.throws(() => rotationPretextSet(set, [2]), RangeError);
  });
});
