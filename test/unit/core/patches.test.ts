import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  PAPER_POLYP_SPEC,
  UPRIGHT_SPEC,
  enumerateAugmentations,
  flipPatchHorizontal,
  generatePatches,
  isIdentityAugmentation,
  patchGridSize,
  patchSide,
  renderAugmentation,
  resolveAugmentationSpec,
  rotatePatch,
  selectAugmentations,
  type Augmentation,
  type ImageShape,
} from '../../../src/core/patches.js';

const SHAPE: ImageShape = { height: 28, width: 28, channels: 1 };

/** A deterministic pseudo-random uint8 image (no rng dependency in the fixture). */
function noiseImage(shape: ImageShape, salt = 1): Uint8Array {
  const img = new Uint8Array(shape.height * shape.width * shape.channels);
  let x = salt * 2654435761;
  for (let i = 0; i < img.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    img[i] = x >>> 24;
  }
  return img;
}

function aug(partial: Partial<Augmentation>): Augmentation {
  return { scale: 1, tx: 0, ty: 0, flip: false, rotation: 0, ...partial };
}

function assertClose(a: Float32Array, b: Float32Array, tol = 1e-6): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i]! - b[i]!) > tol) assert.fail(`index ${i}: ${a[i]} vs ${b[i]}`);
  }
}

function centroid(patch: Float32Array, size: number): { x: number; y: number; mass: number } {
  let mass = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < size; i++)
    for (let j = 0; j < size; j++) {
      const v = patch[i * size + j]!;
      mass += v;
      sx += v * (j + 0.5);
      sy += v * (i + 0.5);
    }
  return { x: sx / mass, y: sy / mass, mass };
}

/** A bright 6x6 square centred in a 28x28 image. */
function blobImage(): Uint8Array {
  const img = new Uint8Array(28 * 28);
  for (let y = 11; y < 17; y++) for (let x = 11; x < 17; x++) img[y * 28 + x] = 255;
  return img;
}

describe('augmentation spec', () => {
  it('fills in the documented defaults', () => {
    const r = resolveAugmentationSpec({});
    assert.deepEqual(r.scales, [1, 1.2, 1.5]);
    assert.deepEqual(r.translations, [-0.1, 0, 0.1]);
    assert.equal(r.flips, false);
    assert.deepEqual(r.rotations, [0]);
    assert.equal(r.includeIdentity, true);
    assert.equal(r.size, undefined);
    assert.equal(r.m, 27);
  });

  it('grid sizes of the presets', () => {
    assert.equal(patchGridSize(PAPER_POLYP_SPEC), 3 * 9 * 8);
    assert.equal(resolveAugmentationSpec(PAPER_POLYP_SPEC).m, 24);
    assert.equal(patchGridSize(UPRIGHT_SPEC), 3 * 9 * 2);
    assert.deepEqual(resolveAugmentationSpec(UPRIGHT_SPEC).rotations, [0]);
    const all = enumerateAugmentations(PAPER_POLYP_SPEC);
    assert.equal(all.length, 216);
    assert.equal(new Set(all.map((a) => JSON.stringify(a))).size, 216);
    assert.equal(all.filter(isIdentityAugmentation).length, 1);
  });

  it('rejects bad specs with clear messages', () => {
    assert.throws(() => resolveAugmentationSpec({ scales: [] }), /scales must be a non-empty array/);
    assert.throws(() => resolveAugmentationSpec({ scales: [0] }), /scales must be > 0/);
    assert.throws(() => resolveAugmentationSpec({ scales: [1, 1] }), /holds 1 twice/);
    assert.throws(() => resolveAugmentationSpec({ translations: [NaN] }), /finite numbers/);
    assert.throws(() => resolveAugmentationSpec({ rotations: [45 as 90] }), /among 0, 90, 180, 270/);
    assert.throws(() => resolveAugmentationSpec({ m: 0 }), /m \(patches per candidate\)/);
    assert.throws(() => resolveAugmentationSpec({ m: 2.5 }), /positive integer/);
    assert.throws(() => resolveAugmentationSpec({ size: -3 }), /size must be a positive integer/);
    assert.throws(
      () => generatePatches(new Uint8Array(10), SHAPE, {}, { candidateId: 'a', seed: 1 }),
      /expected height\*width\*channels/,
    );
    assert.throws(
      () => generatePatches(noiseImage(SHAPE), SHAPE, {}, { candidateId: 'a', seed: 1.5 }),
      /seed must be a safe integer/,
    );
  });
});

describe('generatePatches', () => {
  const img = noiseImage(SHAPE);

  it('has length m*size*size*c and values in [0, 1]', () => {
    const out = generatePatches(img, SHAPE, PAPER_POLYP_SPEC, { candidateId: 'c1', seed: 7 });
    assert.equal(out.length, 24 * 28 * 28);
    for (const v of out) assert.ok(v >= 0 && v <= 1, `value ${v}`);
    const small = generatePatches(img, SHAPE, { ...UPRIGHT_SPEC, size: 16 }, { candidateId: 'c1', seed: 7 });
    assert.equal(small.length, 12 * 16 * 16);
    const rgb: ImageShape = { height: 20, width: 30, channels: 3 };
    const colour = generatePatches(noiseImage(rgb), rgb, { m: 5 }, { candidateId: 'x', seed: 0 });
    assert.equal(colour.length, 5 * 30 * 30 * 3);
    for (const v of colour) assert.ok(v >= 0 && v <= 1);
  });

  it('writes into a given buffer at an offset exactly what it returns in a new one', () => {
    const alone = generatePatches(img, SHAPE, PAPER_POLYP_SPEC, { candidateId: 'c1', seed: 7 });
    const side = patchSide(SHAPE, PAPER_POLYP_SPEC);
    assert.equal(side, 28);
    const out = new Float32Array(3 + alone.length + 5).fill(-1);
    const got = generatePatches(img, SHAPE, PAPER_POLYP_SPEC, { candidateId: 'c1', seed: 7 }, out, 3);
    assert.equal(got, out);
    assert.deepEqual(out.subarray(3, 3 + alone.length), alone);
    // Nothing outside its range is touched.
    assert.deepEqual([...out.subarray(0, 3), ...out.subarray(3 + alone.length)], Array(8).fill(-1));
    assert.throws(
      () => generatePatches(img, SHAPE, PAPER_POLYP_SPEC, { candidateId: 'c1', seed: 7 }, out, 9),
      /output buffer too small/,
    );
    const roi = { x: 2, y: 3, width: 10, height: 14 };
    assert.equal(patchSide(SHAPE, { m: 4 }, roi), 14);
    assert.equal(patchSide(SHAPE, { m: 4, size: 9 }, roi), 9);
    assert.equal(
      generatePatches(img, SHAPE, { m: 4 }, { candidateId: 'r', seed: 1, roi }).length,
      4 * 14 * 14,
    );
  });

  it('is deterministic for the same candidate id and seed', () => {
    const a = generatePatches(img, SHAPE, PAPER_POLYP_SPEC, { candidateId: 'fmnist-6-00123', seed: 42 });
    const b = generatePatches(img, SHAPE, PAPER_POLYP_SPEC, { candidateId: 'fmnist-6-00123', seed: 42 });
    assert.deepEqual(a, b);
  });

  it('differs (usually) between candidate ids and between seeds', () => {
    const seqs = new Set<string>();
    for (let k = 0; k < 20; k++)
      seqs.add(JSON.stringify(selectAugmentations(PAPER_POLYP_SPEC, `cand-${k}`, 42)));
    assert.ok(seqs.size >= 19, `only ${seqs.size} distinct sequences out of 20`);
    const a = generatePatches(img, SHAPE, PAPER_POLYP_SPEC, { candidateId: 'a', seed: 1 });
    const b = generatePatches(img, SHAPE, PAPER_POLYP_SPEC, { candidateId: 'b', seed: 1 });
    const c = generatePatches(img, SHAPE, PAPER_POLYP_SPEC, { candidateId: 'a', seed: 2 });
    assert.notDeepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('samples without repetition, identity first', () => {
    const augs = selectAugmentations(PAPER_POLYP_SPEC, 'id', 3);
    assert.equal(augs.length, 24);
    assert.ok(isIdentityAugmentation(augs[0]!));
    assert.equal(new Set(augs.map((a) => JSON.stringify(a))).size, 24);
    assert.equal(augs.slice(1).filter(isIdentityAugmentation).length, 0);
    const noId = selectAugmentations({ ...PAPER_POLYP_SPEC, includeIdentity: false, m: 216 }, 'id', 3);
    assert.equal(new Set(noId.map((a) => JSON.stringify(a))).size, 216);
  });

  it('repeats the grid cyclically when m exceeds it', () => {
    const spec = { scales: [1], translations: [0], flips: true, m: 5 };
    assert.equal(patchGridSize(spec), 2);
    const augs = selectAugmentations(spec, 'x', 0);
    assert.deepEqual(
      augs.map((a) => a.flip),
      [false, true, false, true, false],
    );
    // Identity not in the grid: it is still patch 0, then the grid follows.
    const zoomed = selectAugmentations({ scales: [1.5], translations: [0], m: 3 }, 'x', 0);
    assert.deepEqual(
      zoomed.map((a) => a.scale),
      [1, 1.5, 1],
    );
  });

  it('identity patch equals the normalised image (uint8, uint16, float32, multi-channel)', () => {
    const out = generatePatches(img, SHAPE, PAPER_POLYP_SPEC, { candidateId: 'q', seed: 9 });
    const expected = Float32Array.from(img, (v) => v / 255);
    assertClose(out.subarray(0, 784), expected, 1e-7);

    const u16 = Uint16Array.from(img, (v) => v * 257);
    assertClose(generatePatches(u16, SHAPE, { m: 1 }, { candidateId: 'q', seed: 9 }), expected, 1e-7);
    const f32 = Float32Array.from(img, (v) => v / 255);
    assertClose(generatePatches(f32, SHAPE, { m: 1 }, { candidateId: 'q', seed: 9 }), expected, 1e-7);

    const rgb: ImageShape = { height: 5, width: 7, channels: 3 };
    const c = noiseImage(rgb, 3);
    const id = renderAugmentation(c, rgb, aug({}), { size: 7 });
    // 5x7 image in a 7x7 window: rows 0 and 6 are zero padding, rows 1..5 are the image.
    for (let y = 0; y < 7; y++)
      for (let x = 0; x < 7; x++)
        for (let ch = 0; ch < 3; ch++) {
          const got = id[(y * 7 + x) * 3 + ch]!;
          const want = y >= 1 && y <= 5 ? c[((y - 1) * 7 + x) * 3 + ch]! / 255 : 0;
          assert.ok(Math.abs(got - want) < 1e-7, `(${y},${x},${ch}) ${got} vs ${want}`);
        }
  });

  it('a region of interest at scale 1 is a crop of the image; zooming out brings in context', () => {
    const roi = { x: 5, y: 8, width: 10, height: 10 };
    const crop = renderAugmentation(img, SHAPE, aug({}), { roi });
    assert.equal(crop.length, 100);
    for (let y = 0; y < 10; y++)
      for (let x = 0; x < 10; x++)
        assert.ok(Math.abs(crop[y * 10 + x]! - img[(y + 8) * 28 + x + 5]! / 255) < 1e-7);
    // Scale 2 with size 20: one output pixel per source pixel over a 20x20 window at (0, 3).
    const ctx = renderAugmentation(img, SHAPE, aug({ scale: 2 }), { roi, size: 20 });
    for (let y = 0; y < 20; y++)
      for (let x = 0; x < 20; x++)
        assert.ok(Math.abs(ctx[y * 20 + x]! - img[(y + 3) * 28 + x]! / 255) < 1e-6);
  });

  it('a horizontal flip of a flip is the identity, and matches the rendered flip', () => {
    const id = renderAugmentation(img, SHAPE, aug({}));
    const flipped = renderAugmentation(img, SHAPE, aug({ flip: true }));
    assert.deepEqual(flipPatchHorizontal(id, 28, 1), flipped);
    assert.deepEqual(flipPatchHorizontal(flipped, 28, 1), id);
    assert.equal(flipped[0], id[27]);
    assert.notDeepEqual(flipped, id);
  });

  it('four 90-degree rotations are the identity; rotation is counter-clockwise as displayed', () => {
    const id = renderAugmentation(img, SHAPE, aug({}));
    let r = id;
    for (let k = 0; k < 4; k++) {
      r = rotatePatch(r, 28, 1, 90);
      if (k < 3) assert.notDeepEqual(r, id);
    }
    assert.deepEqual(r, id);
    const r90 = renderAugmentation(img, SHAPE, aug({ rotation: 90 }));
    assert.deepEqual(r90, rotatePatch(id, 28, 1, 90));
    assert.deepEqual(renderAugmentation(img, SHAPE, aug({ rotation: 180 })), rotatePatch(r90, 28, 1, 90));
    assert.deepEqual(renderAugmentation(img, SHAPE, aug({ rotation: 270 })), rotatePatch(id, 28, 1, 270));
    // Counter-clockwise: the top-right corner goes to the top-left, the top-left to the bottom-left.
    assert.equal(r90[0], id[27]);
    assert.equal(r90[27 * 28], id[0]);
    // Flip then rotate, as documented.
    const fr = renderAugmentation(img, SHAPE, aug({ flip: true, rotation: 90 }));
    assert.deepEqual(fr, rotatePatch(flipPatchHorizontal(id, 28, 1), 28, 1, 90));
  });

  it('translations move mass the right way (+x right, +y down, by t*side pixels)', () => {
    const blob = blobImage();
    const c0 = centroid(renderAugmentation(blob, SHAPE, aug({})), 28);
    assert.ok(Math.abs(c0.x - 14) < 1e-6 && Math.abs(c0.y - 14) < 1e-6);
    const right = centroid(renderAugmentation(blob, SHAPE, aug({ tx: 0.1 })), 28);
    assert.ok(Math.abs(right.x - (14 + 2.8)) < 1e-4, `x ${right.x}`);
    assert.ok(Math.abs(right.y - 14) < 1e-4);
    const up = centroid(renderAugmentation(blob, SHAPE, aug({ ty: -0.1 })), 28);
    assert.ok(Math.abs(up.y - (14 - 2.8)) < 1e-4, `y ${up.y}`);
    assert.ok(Math.abs(up.x - 14) < 1e-4);
    // Mass is preserved when the content stays inside the patch (bilinear is a partition of unity).
    assert.ok(Math.abs(right.mass - c0.mass) < 1e-3);
  });

  it('scales > 1 zoom out: centred content shrinks by 1/f and pixels outside the image are 0', () => {
    const blob = blobImage();
    const c0 = centroid(renderAugmentation(blob, SHAPE, aug({})), 28);
    const z = centroid(renderAugmentation(blob, SHAPE, aug({ scale: 2 })), 28);
    assert.ok(Math.abs(z.x - 14) < 1e-6 && Math.abs(z.y - 14) < 1e-6);
    assert.ok(Math.abs(z.mass - c0.mass / 4) < 1e-3, `mass ${z.mass} vs ${c0.mass / 4}`);
    const ones = new Uint8Array(784).fill(255);
    const p = renderAugmentation(ones, SHAPE, aug({ scale: 1.5 }));
    assert.equal(p[0], 0);
    assert.equal(p[27], 0);
    assert.equal(p[14 * 28 + 14], 1);
  });
});
