import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UPRIGHT_SPEC, generatePatches } from '../../../src/core/patches.js';
import { createRng } from '../../../src/core/rng.js';
import { imageAt, type ImageSet } from '../../../src/data/image-set.js';
import { buildTask, type Task } from '../../../src/data/task.js';
import {
  DEFAULT_MESSAGE_LIMITS,
  IDENTIFIER_KEY_PATTERN,
  encodeCandidate,
  parseCandidate,
  sourceRefsSchema,
} from '../../../src/messages/index.js';
import { buildCandidate, streamOrder, syntheticSourceRefs } from '../../../src/simulate/candidates.js';
import { evaluationPositions } from '../../../src/simulate/evaluation-set.js';

/** 40 random 28x28x1 images in each of 3 classes. */
function tinySet(): ImageSet {
  const classes = 3;
  const perClass = 40;
  const count = classes * perClass;
  const images = new Uint8Array(count * 28 * 28);
  const rng = createRng(7);
  for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
  return {
    name: 'tiny',
    idPrefix: 'tiny',
    source: '',
    height: 28,
    width: 28,
    channels: 1,
    classNames: ['a', 'b', 'c'],
    images,
    labels: Uint8Array.from({ length: count }, (_, i) => Math.floor(i / perClass)),
    sourceIndex: Int32Array.from({ length: count }, (_, i) => i % perClass),
    count,
    rejected: [],
  };
}

function tinyTask(): Task {
  return buildTask(tinySet(), { positive: [2], seed: 1, testPerClass: 5, valPerClass: 5 });
}

describe('simulated candidates', () => {
  it('an image candidate round-trips through parseCandidate with its id as the key', () => {
    const task = tinyTask();
    const time = new Date('2025-01-31T12:00:00.000Z');
    for (const position of [0, 17, task.pool.ids.length - 1]) {
      const c = buildCandidate(task, task.pool, position, { time });
      const parsed = parseCandidate(encodeCandidate(c), { limits: DEFAULT_MESSAGE_LIMITS, key: c.id });
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
      const v = parsed.value;
      assert.equal(v.id, task.pool.ids[position]);
      assert.equal(v.time, time.toISOString());
      assert.deepEqual(v.sourceRefs, syntheticSourceRefs(v.id));
      assert.equal(v.content.kind, 'image');
      assert.equal(v.content.dtype, 'uint8');
      assert.deepEqual(v.content.shape, [28, 28, 1]);
      assert.deepEqual(v.content.data, imageAt(task.set, task.pool.indices[position]!));
    }
  });

  it('a patches candidate carries the daemon-style patches as uint8 and round-trips', () => {
    const task = tinyTask();
    const spec = { ...UPRIGHT_SPEC, m: 5 };
    const c = buildCandidate(task, task.pool, 3, { mode: 'patches', augmentation: spec, patchSeed: 9 });
    const parsed = parseCandidate(encodeCandidate(c), { limits: DEFAULT_MESSAGE_LIMITS, key: c.id });
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    const content = parsed.value.content;
    assert.equal(content.kind, 'patches');
    assert.deepEqual(content.shape, [5, 28, 28, 1]);
    const image = imageAt(task.set, task.pool.indices[3]!);
    const expected = generatePatches(image, { height: 28, width: 28, channels: 1 }, spec, {
      candidateId: c.id,
      seed: 9,
    });
    content.data.forEach((v, i) => assert.ok(Math.abs(v / 255 - expected[i]!) <= 0.5 / 255 + 1e-6));
  });

  it('synthetic source references are opaque UIDs that hold no identifier', () => {
    const seen = new Set<string>();
    for (const id of ['fmnist-6-00123', 'fmnist-0-00001', 'tiny-2-00007', 'Jane.Doe-1']) {
      const refs = syntheticSourceRefs(id);
      assert.deepEqual(Object.keys(refs).sort(), ['instance', 'series', 'study']);
      assert.ok(sourceRefsSchema.safeParse(refs).success);
      for (const [key, value] of Object.entries(refs)) {
        assert.doesNotMatch(key, IDENTIFIER_KEY_PATTERN);
        // Digits and dots only: no letters at all, so no name, and not the candidate id.
        assert.match(value, /^2\.25\.(0|[1-9]\d{0,38})$/);
        assert.ok(value.length <= 64, 'a DICOM UID has at most 64 characters');
        assert.ok(!value.includes(id));
        seen.add(value);
      }
      assert.deepEqual(syntheticSourceRefs(id), refs, 'stable');
    }
    assert.equal(seen.size, 12, 'different for every candidate and every level');
  });

  it('streams the pool in a seeded order: a permutation, the same for the same seed', () => {
    const task = tinyTask();
    const a = streamOrder(task.pool, 1);
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      Array.from({ length: task.pool.ids.length }, (_, i) => i),
    );
    assert.deepEqual(streamOrder(task.pool, 1), a);
    assert.notDeepEqual(streamOrder(task.pool, 2), a);
  });

  it('evaluates on a fixed subsample of the validation split', () => {
    const task = tinyTask();
    const n = task.validation.ids.length;
    assert.deepEqual(
      evaluationPositions(task.validation, 1000),
      Array.from({ length: n }, (_, i) => i),
    );
    const some = evaluationPositions(task.validation, 7);
    assert.equal(some.length, 7);
    assert.equal(new Set(some).size, 7);
    assert.deepEqual(evaluationPositions(task.validation, 7), some);
  });
});
