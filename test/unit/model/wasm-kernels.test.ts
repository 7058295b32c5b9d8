/**
 * The training kernels added to the wasm backend agree with the cpu backend's, leak nothing, and
 * let a small tfjs-layers CNN train on wasm.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, tf } from '../../../src/model/backend.js';
import {
  registerWasmTrainingKernels,
  restoreReplacedWasmKernels,
  WASM_REPLACED_KERNELS,
  WASM_TRAINING_KERNELS,
} from '../../../src/model/wasm-kernels.js';

type Pad =
  'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
type Shape4 = [number, number, number, number];

before(async () => {
  const info = await initBackend('wasm');
  assert.equal(info.name, 'wasm');
});

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** max |a - b| relative to max(1, max |a|). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let mag = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    mag = Math.max(mag, Math.abs(a[i] as number));
  }
  return diff / mag;
}

async function onBackend<T>(name: string, fn: () => T): Promise<T> {
  assert.ok(await tf.setBackend(name), `setBackend(${name})`);
  return fn();
}

/** Gradients of sum(conv2d(x, f) * dy) w.r.t. f and x, and the forward output, as plain arrays. */
function conv2dGrads(xShape: Shape4, fShape: Shape4, strides: number | [number, number], pad: Pad) {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(size(xShape), 1), xShape);
    const f = tf.tensor4d(values(size(fShape), 2), fShape);
    const y = tf.conv2d(x, f, strides, pad);
    const dy = tf.tensor(values(y.size, 3), y.shape);
    const loss = (xx: tf.Tensor, ff: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, strides, pad), dy));
    const [dx, df] = tf.grads(loss)([x, f]);
    return { y: y.dataSync(), df: df!.dataSync(), dx: dx!.dataSync(), dfShape: df!.shape };
  });
}

async function compareConv2d(xShape: Shape4, fShape: Shape4, strides: number | [number, number], pad: Pad) {
  const cpu = await onBackend('cpu', () => conv2dGrads(xShape, fShape, strides, pad));
  const wasm = await onBackend('wasm', () => conv2dGrads(xShape, fShape, strides, pad));
  const label = `x ${xShape.join('x')} f ${fShape.join('x')} strides ${String(strides)} pad ${JSON.stringify(pad)}`;
  assert.deepEqual(wasm.dfShape, fShape, label);
  const df = relDiff(cpu.df, wasm.df);
  assert.ok(df <= 1e-5, `${label}: dW differs by ${df}`);
  const dx = relDiff(cpu.dx, wasm.dx);
  assert.ok(dx <= 1e-5, `${label}: dx differs by ${dx}`);
  assert.ok(relDiff(cpu.y, wasm.y) <= 1e-5, `${label}: forward differs`);
}

describe('registration', () => {
  it('initBackend("wasm") registered every kernel; registering again is a no-op', () => {
    for (const name of [...WASM_TRAINING_KERNELS, ...WASM_REPLACED_KERNELS]) {
      assert.ok(tf.getKernel(name, 'wasm'), `${name} registered for wasm`);
    }
    assert.deepEqual([...WASM_REPLACED_KERNELS].sort(), [
      'BatchMatMul',
      'Conv2DBackpropInput',
      'MaxPoolGrad',
    ]);
    assert.deepEqual(registerWasmTrainingKernels(), []);
    assert.deepEqual(registerWasmTrainingKernels(), []);
  });

  it('the replaced kernels can be restored, and replaced again', () => {
    const replaced = WASM_REPLACED_KERNELS.map((k) => tf.getKernel(k, 'wasm')?.kernelFunc);
    assert.deepEqual(restoreReplacedWasmKernels().sort(), [...WASM_REPLACED_KERNELS].sort());
    WASM_REPLACED_KERNELS.forEach((k, i) => {
      const config = tf.getKernel(k, 'wasm');
      assert.ok(config && config.kernelFunc !== replaced[i], `${k} restored`);
      assert.ok(config.setupFunc, `${k} keeps wasm's setupFunc`);
    });
    assert.deepEqual(restoreReplacedWasmKernels(), []);
    assert.deepEqual(registerWasmTrainingKernels().sort(), [...WASM_REPLACED_KERNELS].sort());
    assert.deepEqual(registerWasmTrainingKernels(), []);
  });
});

describe('Conv2DBackpropFilter and (the replaced) Conv2DBackpropInput on wasm equal the cpu backend', () => {
  it('batch 1/4, channels 1/3/8, kernels 1/3/5, strides 1/2, same/valid, odd/even sizes', async () => {
    let n = 0;
    for (const batch of [1, 4])
      for (const ci of [1, 3, 8])
        for (const k of [1, 3, 5])
          for (const s of [1, 2])
            for (const pad of ['same', 'valid'] as const)
              for (const h of [7, 8]) {
                // Width h + 3 has the other parity than the height.
                await compareConv2d([batch, h, h + 3, ci], [k, k, ci, 2 + (ci % 4)], s, pad);
                n++;
              }
    assert.equal(n, 144);
  });

  it('asymmetric kernels and strides, numeric and explicit padding, kernel larger than the input', async () => {
    await compareConv2d([2, 9, 10, 2], [3, 2, 2, 4], [2, 1], 'same');
    await compareConv2d([2, 9, 10, 2], [2, 3, 2, 4], [1, 2], 'valid');
    await compareConv2d([2, 9, 10, 2], [3, 3, 2, 4], 2, 1);
    await compareConv2d([2, 9, 10, 2], [3, 3, 2, 4], 1, 2);
    await compareConv2d([2, 9, 10, 2], [3, 3, 2, 4], 1, [
      [0, 0],
      [2, 1],
      [0, 3],
      [0, 0],
    ]);
    // Padding beyond the kernel: negative paddings in the dx convolution (slices instead).
    await compareConv2d([2, 7, 8, 2], [2, 2, 2, 3], 2, [
      [0, 0],
      [3, 0],
      [0, 4],
      [0, 0],
    ]);
    await compareConv2d([1, 3, 3, 2], [5, 5, 2, 3], 1, 'same');
    await compareConv2d([3, 1, 1, 4], [1, 1, 4, 2], 1, 'valid');
    await compareConv2d([4, 28, 28, 16], [3, 3, 16, 32], 2, 'same');
    await compareConv2d([4, 28, 28, 1], [5, 5, 1, 8], 3, 'valid');
  });

  it('a dilated conv2d runs forward on wasm like on cpu; tfjs-core has no gradient for dilation > 1', async () => {
    for (const pad of ['same', 'valid'] as const) {
      const fwd = () =>
        tf.tidy(() =>
          tf
            .conv2d(
              tf.tensor4d(values(2 * 11 * 12 * 3, 4), [2, 11, 12, 3]),
              tf.tensor4d(values(36, 5), [3, 2, 3, 2]),
              1,
              pad,
              'NHWC',
              2,
            )
            .dataSync(),
        );
      const cpu = await onBackend('cpu', fwd);
      const wasm = await onBackend('wasm', fwd);
      assert.ok(relDiff(cpu, wasm) <= 1e-5);
    }
    assert.throws(
      () =>
        tf.tidy(() => {
          const x = tf.ones([1, 6, 6, 1]) as tf.Tensor4D;
          tf.grad((f) => tf.sum(tf.conv2d(x, f as tf.Tensor4D, 1, 'same', 'NHWC', 2)))(tf.ones([2, 2, 1, 1]));
        }),
      /dilation/,
    );
  });

  it('the kernels create no tensors, free all their backend data, and do not grow the wasm heap', async () => {
    await tf.setBackend('wasm');
    const be = tf.backend() as unknown as { numDataIds(): number; wasm: { HEAPU8: Uint8Array } };
    const x = tf.tensor4d(values(8 * 20 * 20 * 3, 6), [8, 20, 20, 3]);
    const dy = tf.tensor4d(values(8 * 10 * 10 * 8, 7), [8, 10, 10, 8]);
    const w = tf.tensor4d(values(3 * 3 * 3 * 8, 8), [3, 3, 3, 8]);
    const pooled = tf.maxPool(x, 2, 2, 'valid');
    const dyPool = tf.tensor4d(values(pooled.size, 9), pooled.shape);
    const a = tf.tensor2d(values(30 * 40, 10), [30, 40]);
    const b = tf.tensor2d(values(50 * 40, 11), [50, 40]);
    const c = tf.tensor2d(values(30 * 50, 12), [30, 50]);
    const d = tf.tensor2d(values(20 * 30, 13), [20, 30]);
    const conv = { strides: 2, pad: 'same', dataFormat: 'NHWC' } as const;
    const calls: [string, tf.NamedTensorMap, object][] = [
      ['Conv2DBackpropFilter', { x, dy }, { ...conv, filterShape: [3, 3, 3, 8] }],
      ['Conv2DBackpropInput', { dy, filter: w }, { ...conv, inputShape: [8, 20, 20, 3] }],
      ['MaxPoolGrad', { dy: dyPool, input: x, output: pooled }, { filterSize: 2, strides: 2, pad: 'valid' }],
      ['BatchMatMul', { a, b }, { transposeA: false, transposeB: true }],
      ['BatchMatMul', { a, b: c }, { transposeA: true, transposeB: false }],
      ['BatchMatMul', { a: c, b: d }, { transposeA: true, transposeB: true }],
    ];
    const step = () => {
      for (const [name, inputs, attrs] of calls) {
        const out = tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
        out.dataSync();
        out.dispose();
      }
    };
    for (let i = 0; i < 3; i++) step();
    const tensors = tf.memory().numTensors;
    const dataIds = be.numDataIds();
    const heap = be.wasm.HEAPU8.length;
    for (let i = 0; i < 30; i++) step();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(be.numDataIds(), dataIds);
    assert.equal(be.wasm.HEAPU8.length, heap);
    tf.dispose([x, dy, w, pooled, dyPool, a, b, c, d]);
  });
});

describe('the replaced MaxPoolGrad and BatchMatMul on wasm equal the cpu backend', () => {
  it('max-pool gradients: sizes 2/3, strides 1/2/3, same/valid, odd/even, with ties', async () => {
    for (const [f, s] of [
      [2, 2],
      [3, 2],
      [2, 1],
      [3, 3],
      [1, 2],
    ] as const)
      for (const pad of ['same', 'valid'] as const)
        for (const h of [7, 8])
          for (const ties of [false, true]) {
            const shape: Shape4 = [2, h, h + 1, 3];
            const run = () =>
              tf.tidy(() => {
                let v = values(size(shape), 41 + h);
                // Ties: a few distinct values, and many zeros (as after a relu).
                if (ties) v = v.map((e) => Math.max(0, Math.round(e * 2) / 2));
                const x = tf.tensor4d(v, shape);
                const y = tf.maxPool(x, f, s, pad);
                const dy = tf.tensor(values(y.size, 42), y.shape);
                return tf
                  .grad((t) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, f, s, pad), dy)))(x)
                  .dataSync();
              });
            const cpu = await onBackend('cpu', run);
            const wasm = await onBackend('wasm', run);
            assert.ok(relDiff(cpu, wasm) <= 1e-6, `pool ${f} stride ${s} ${pad} h ${h} ties ${ties}`);
          }
  });

  it('matMul with every transpose combination, batched and broadcast, and its gradients', async () => {
    // tfjs-core cannot take the gradient of a broadcast matMul (on any backend): forward only there.
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 7], [7, 3], false, false],
      [[7, 5], [7, 3], true, false],
      [[5, 7], [3, 7], false, true],
      [[7, 5], [3, 7], true, true],
      [[2, 5, 7], [2, 3, 7], false, true],
      [[2, 7, 5], [7, 3], true, false],
      [[1, 5, 7], [4, 3, 7], false, true],
      [[3, 7, 5], [3, 3, 7], true, true],
      [[64, 1568], [1568, 64], false, false],
    ];
    for (const [as, bs, ta, tb] of cases) {
      const run = () =>
        tf.tidy(() => {
          const a = tf.tensor(values(size(as), 51), as);
          const b = tf.tensor(values(size(bs), 52), bs);
          const y = tf.matMul(a, b, ta, tb);
          const dy = tf.tensor(values(y.size, 53), y.shape);
          if (as.slice(0, -2).join() !== bs.slice(0, -2).join())
            return { y: y.dataSync(), da: [], db: [], shape: y.shape };
          const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) =>
            tf.sum(tf.mul(tf.matMul(p, q, ta, tb), dy)),
          )([a, b]);
          return { y: y.dataSync(), da: da!.dataSync(), db: db!.dataSync(), shape: y.shape };
        });
      const cpu = await onBackend('cpu', run);
      const wasm = await onBackend('wasm', run);
      const label = `${as.join('x')} ${ta ? 'T' : ''} * ${bs.join('x')} ${tb ? 'T' : ''}`;
      assert.deepEqual(wasm.shape, cpu.shape, label);
      for (const k of ['y', 'da', 'db'] as const)
        assert.ok(relDiff(cpu[k], wasm[k]) <= 1e-5, `${label}: ${k}`);
    }
  });
});

describe('depthwise conv2d gradients on wasm equal the cpu backend', () => {
  function grads(xShape: Shape4, fShape: Shape4, strides: number, pad: 'same' | 'valid') {
    return tf.tidy(() => {
      const x = tf.tensor4d(values(size(xShape), 11), xShape);
      const f = tf.tensor4d(values(size(fShape), 12), fShape);
      const y = tf.depthwiseConv2d(x, f, strides, pad);
      const dy = tf.tensor(values(y.size, 13), y.shape);
      const [dx, df] = tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
        tf.sum(tf.mul(tf.depthwiseConv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, strides, pad), dy)),
      )([x, f]);
      return { dx: dx!.dataSync(), df: df!.dataSync() };
    });
  }

  it('multipliers 1/2, kernels 1/3/5, strides 1/2, same/valid, odd/even sizes', async () => {
    for (const batch of [1, 3])
      for (const [c, m] of [
        [1, 1],
        [4, 1],
        [3, 2],
      ] as const)
        for (const k of [1, 3, 5])
          for (const s of [1, 2])
            for (const pad of ['same', 'valid'] as const)
              for (const h of [7, 8]) {
                const xShape: Shape4 = [batch, h, h + 3, c];
                const fShape: Shape4 = [k, k, c, m];
                const cpu = await onBackend('cpu', () => grads(xShape, fShape, s, pad));
                const wasm = await onBackend('wasm', () => grads(xShape, fShape, s, pad));
                const label = `x ${xShape.join('x')} f ${fShape.join('x')} s ${s} ${pad}`;
                assert.ok(relDiff(cpu.df, wasm.df) <= 1e-5, `${label}: dW`);
                assert.ok(relDiff(cpu.dx, wasm.dx) <= 1e-5, `${label}: dx`);
              }
  });
});

describe('UnsortedSegmentSum on wasm (the gradient of gather)', () => {
  it('equals the cpu backend (float32, int32, ids out of range dropped) and a reference for 2-D ids', async () => {
    const run = () =>
      tf.tidy(() => {
        const table = tf.tensor2d(Array.from(values(12, 21)), [4, 3]);
        const w = tf.tensor2d(Array.from(values(15, 22)), [5, 3]);
        const g = tf.grad((t) => tf.sum(tf.mul(tf.gather(t, [3, 0, 3, 1, 3]), w)))(table);
        const a = tf.unsortedSegmentSum(
          tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2], 'int32'),
          [2, -1, 2, 7],
          3,
        );
        return { g: g.dataSync(), a: Array.from(a.dataSync()) };
      });
    const cpu = await onBackend('cpu', run);
    const wasm = await onBackend('wasm', run);
    assert.ok(relDiff(cpu.g, wasm.g) <= 1e-6);
    assert.deepEqual(wasm.a, [0, 0, 0, 0, 6, 8]);
    assert.deepEqual(wasm.a, cpu.a);

    // Ids with several dimensions (a prefix of x's); the cpu kernel cannot do these, so a reference.
    const xv = values(24, 23);
    const ids = [1, 0, 1, 1, 2, 0];
    const want = new Float64Array(12);
    ids.forEach((id, i) => {
      for (let j = 0; j < 4; j++) want[id * 4 + j] = (want[id * 4 + j] as number) + (xv[i * 4 + j] as number);
    });
    const out = tf
      .engine()
      .runKernel(
        'UnsortedSegmentSum',
        { x: tf.tensor3d(xv, [2, 3, 4]), segmentIds: tf.tensor2d(ids, [2, 3], 'int32') },
        { numSegments: 3 },
      ) as tf.Tensor;
    assert.deepEqual(out.shape, [3, 4]);
    assert.ok(relDiff(want, out.dataSync()) <= 1e-6);
    out.dispose();
  });
});

describe('a small tfjs-layers CNN trains on wasm', () => {
  const H = 16;
  const N = 32;

  /** Horizontal (class 0) or vertical (class 1) stripes plus noise. */
  function data() {
    const x = new Float32Array(N * H * H);
    const y = new Float32Array(N * 2);
    const noise = values(N * H * H, 31);
    for (let n = 0; n < N; n++) {
      const cls = n % 2;
      y[n * 2 + cls] = 1;
      for (let i = 0; i < H; i++)
        for (let j = 0; j < H; j++) {
          const on = (cls === 0 ? i : j) % 4 < 2 ? 1 : 0;
          x[(n * H + i) * H + j] = on + 0.3 * (noise[(n * H + i) * H + j] as number);
        }
    }
    return { xs: tf.tensor4d(x, [N, H, H, 1]), ys: tf.tensor2d(y, [N, 2]) };
  }

  function buildModel(variant: 'plain' | 'bn-dropout-stride2'): tfl.LayersModel {
    const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
    const L = tfl.layers;
    const layers: tfl.layers.Layer[] = [
      L.conv2d({
        inputShape: [H, H, 1],
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(1),
      }),
    ];
    if (variant !== 'plain') layers.push(L.batchNormalization({}));
    layers.push(L.maxPooling2d({ poolSize: 2 }));
    layers.push(
      L.conv2d({
        filters: 8,
        kernelSize: 3,
        strides: variant === 'plain' ? 1 : 2,
        padding: 'valid',
        activation: 'relu',
        kernelInitializer: init(2),
      }),
    );
    layers.push(L.maxPooling2d({ poolSize: 2, padding: 'same' }), L.flatten());
    if (variant !== 'plain') layers.push(L.dropout({ rate: 0.2, seed: 3 }));
    layers.push(L.dense({ units: 2, activation: 'softmax', kernelInitializer: init(4) }));
    return tfl.sequential({ layers });
  }

  for (const [variant, optimizer] of [
    ['plain', 'adam'],
    ['bn-dropout-stride2', 'sgd-momentum'],
  ] as const) {
    it(`${variant} with ${optimizer}: the loss decreases and numTensors stays flat`, async () => {
      await tf.setBackend('wasm');
      const model = buildModel(variant);
      model.compile({
        optimizer: optimizer === 'adam' ? tf.train.adam(0.01) : tf.train.momentum(0.05, 0.9),
        loss: 'categoricalCrossentropy',
      });
      const { xs, ys } = data();
      const losses: number[] = [];
      const counts: number[] = [];
      for (let step = 0; step < 10; step++) {
        const loss = await model.trainOnBatch(xs, ys);
        losses.push(loss as number);
        counts.push(tf.memory().numTensors);
      }
      assert.ok(
        losses.every((l) => Number.isFinite(l)),
        `losses ${losses.join(', ')}`,
      );
      const first = (losses[0]! + losses[1]!) / 2;
      const last = (losses[8]! + losses[9]!) / 2;
      assert.ok(last < first * 0.9, `loss did not decrease: ${losses.join(', ')}`);
      // The optimizer creates its slots in the first step; after that nothing may accumulate.
      assert.deepEqual(
        counts.slice(1),
        Array<number>(counts.length - 1).fill(counts[1]!),
        `numTensors ${counts.join(', ')}`,
      );
      tf.dispose([xs, ys]);
      model.optimizer.dispose();
      model.dispose();
    });
  }

  it('the gradients of the whole CNN loss on wasm equal those on cpu', async () => {
    await tf.setBackend('cpu');
    const model = buildModel('plain');
    const { xs, ys } = data();
    const grads = () =>
      tf.tidy(() => {
        const { grads: g } = tf.variableGrads(() =>
          tf.mean(tfl.metrics.categoricalCrossentropy(ys, model.apply(xs) as tf.Tensor)),
        );
        return Object.keys(g)
          .sort()
          .map((k) => ({ k, v: g[k]!.dataSync() }));
      });
    const cpu = grads();
    await tf.setBackend('wasm');
    const wasm = grads();
    assert.deepEqual(
      wasm.map((g) => g.k),
      cpu.map((g) => g.k),
    );
    assert.equal(cpu.length, 6);
    cpu.forEach((g, i) => assert.ok(relDiff(g.v, wasm[i]!.v) <= 1e-5, `${g.k}: ${relDiff(g.v, wasm[i]!.v)}`));
    tf.dispose([xs, ys]);
    model.dispose();
  });
});
