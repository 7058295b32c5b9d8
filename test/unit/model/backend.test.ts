/**
 * Backend selection. The native packages (@tensorflow/tfjs-node[-gpu]) are optional and usually
 * absent here, so they are simulated through initBackend's importModule seam: a fake 'tensorflow'
 * backend is a MathBackendCPU registered under that name (with the cpu kernels, or none to fail
 * the smoke test), carrying tfjs-node's isGPUPackage / isUsingGpuDevice flags.
 */
import { afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  BACKEND_NAMES,
  initBackend,
  parseBackendRequest,
  resetBackendForTesting,
  tf,
  type BackendInfo,
} from '../../../src/model/backend.js';
import { WASM_TRAINING_KERNELS } from '../../../src/model/wasm-kernels.js';

const GPU_PKG = '@tensorflow/tfjs-node-gpu';
const CPU_PKG = '@tensorflow/tfjs-node';

/** A real 'tensorflow' backend was registered before the fakes could be (tfjs-node is installed and loaded). */
let realNativeLoaded = false;

before(() => {
  realNativeLoaded = tf.findBackendFactory('tensorflow') !== null;
});

function notInstalled(spec: string): Error {
  return Object.assign(new Error(`Cannot find package '${spec}' imported from test`), {
    code: 'ERR_MODULE_NOT_FOUND',
  });
}

/** Registers a fake 'tensorflow' backend, as importing a tfjs-node package would. */
function registerFakeTensorflow(opts: { gpuPackage: boolean; gpuDevice: boolean; kernels: boolean }): void {
  if (opts.kernels) {
    for (const k of tf.getKernelsForBackend('cpu')) {
      tf.registerKernel({ ...k, backendName: 'tensorflow' });
    }
  }
  tf.registerBackend(
    'tensorflow',
    () =>
      Object.assign(new MathBackendCPU(), {
        isGPUPackage: opts.gpuPackage,
        isUsingGpuDevice: opts.gpuDevice,
        firstUse: false, // no "install tfjs-node" banner
      }),
    3,
  );
}

async function removeFakeTensorflow(): Promise<void> {
  if (tf.findBackendFactory('tensorflow') === null) return;
  await tf.setBackend('cpu');
  tf.removeBackend('tensorflow');
  for (const k of tf.getKernelsForBackend('tensorflow')) tf.unregisterKernel(k.kernelName, 'tensorflow');
}

/**
 * An importModule that fakes the native packages: 'missing' throws as Node does for an absent
 * package, 'empty' loads but registers nothing, otherwise it registers a fake backend.
 */
function fakeImports(spec: {
  gpu: 'missing' | 'empty' | { gpuDevice: boolean; kernels: boolean };
  cpu: 'missing' | 'empty' | { kernels: boolean };
  calls?: string[];
}): (s: string) => Promise<unknown> {
  return (s: string) => {
    spec.calls?.push(s);
    if (s === GPU_PKG || s === CPU_PKG) {
      const what = s === GPU_PKG ? spec.gpu : spec.cpu;
      if (what === 'missing') return Promise.reject(notInstalled(s));
      if (what !== 'empty') {
        registerFakeTensorflow({
          gpuPackage: s === GPU_PKG,
          gpuDevice: (what as { gpuDevice?: boolean }).gpuDevice === true,
          kernels: what.kernels,
        });
      }
      return Promise.resolve({ version_core: tf.version_core });
    }
    return import(s) as Promise<unknown>;
  };
}

function assertConsistent(info: BackendInfo): void {
  assert.ok(BACKEND_NAMES.includes(info.name));
  assert.equal(info.tfBackend, tf.getBackend());
  const last = info.tried.at(-1);
  assert.deepEqual(last, { name: info.name });
  for (const t of info.tried.slice(0, -1))
    assert.ok(t.error !== undefined && t.error.length > 0, JSON.stringify(t));
}

const emscriptenListeners = () =>
  [...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')].filter((l) => {
    const src = l.toString();
    return src.includes('ExitStatus') || /throw reason/.test(src);
  });

describe('parseBackendRequest', () => {
  it('accepts the five requests, ignoring case and surrounding space', () => {
    for (const s of ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'])
      assert.equal(parseBackendRequest(s), s);
    assert.equal(parseBackendRequest('  WASM '), 'wasm');
    assert.equal(parseBackendRequest('TensorFlow-GPU'), 'tensorflow-gpu');
  });

  it('rejects anything else, listing the valid values', () => {
    for (const s of ['', 'gpu', 'webgl', 'tensorflow_gpu', 'cpu2']) {
      assert.throws(
        () => parseBackendRequest(s),
        /invalid tfjs backend .*auto, tensorflow-gpu, tensorflow, wasm, cpu/,
      );
    }
  });
});

describe('initBackend', () => {
  afterEach(async () => {
    resetBackendForTesting();
    if (!realNativeLoaded) await removeFakeTensorflow();
  });

  it('reads ACFT_BACKEND when no request is given, and rejects a bad value', async () => {
    const saved = process.env.ACFT_BACKEND;
    try {
      process.env.ACFT_BACKEND = 'fastest';
      await assert.rejects(initBackend(), /ACFT_BACKEND: invalid tfjs backend 'fastest'/);
      process.env.ACFT_BACKEND = ' CPU ';
      const info = await initBackend();
      assert.equal(info.name, 'cpu');
      assert.deepEqual(info.tried, [{ name: 'cpu' }]);
      assert.equal(tf.getBackend(), 'cpu');
    } finally {
      if (saved === undefined) delete process.env.ACFT_BACKEND;
      else process.env.ACFT_BACKEND = saved;
    }
  });

  it('throws for an explicit native backend that is not installed, naming it and why; a later call may retry', async (t) => {
    if (realNativeLoaded) return t.skip('a real tfjs-node backend is loaded');
    const importModule = fakeImports({ gpu: 'missing', cpu: 'missing' });
    await assert.rejects(
      initBackend('tensorflow', { importModule }),
      /tfjs backend 'tensorflow' \(@tensorflow\/tfjs-node\) is not usable: cannot load @tensorflow\/tfjs-node: not installed/,
    );
    await assert.rejects(
      initBackend('tensorflow-gpu', { importModule }),
      /tfjs backend 'tensorflow-gpu' \(@tensorflow\/tfjs-node-gpu\) is not usable: .*not installed/,
    );
    assert.equal((await initBackend('cpu', { importModule })).name, 'cpu');
  });

  it('explains a native package that registers no backend in this tfjs-core', async (t) => {
    if (realNativeLoaded) return t.skip('a real tfjs-node backend is loaded');
    await assert.rejects(
      initBackend('tensorflow', { importModule: fakeImports({ gpu: 'missing', cpu: 'empty' }) }),
      /registered no 'tensorflow' backend with this process's @tensorflow\/tfjs-core .*dedupe/,
    );
  });

  it('auto takes tensorflow-gpu when TensorFlow sees a GPU', async (t) => {
    if (realNativeLoaded) return t.skip('a real tfjs-node backend is loaded');
    const logs: string[] = [];
    const info = await initBackend('auto', {
      importModule: fakeImports({ gpu: { gpuDevice: true, kernels: true }, cpu: 'missing' }),
      log: (msg) => logs.push(msg),
    });
    assert.equal(info.name, 'tensorflow-gpu');
    assert.equal(info.tfBackend, 'tensorflow');
    assert.deepEqual(info.tried, [{ name: 'tensorflow-gpu' }]);
    assert.deepEqual(logs, ['tfjs backend initialized']);
  });

  it('auto skips a GPU package without a GPU device and reuses its backend as "tensorflow"', async (t) => {
    if (realNativeLoaded) return t.skip('a real tfjs-node backend is loaded');
    const calls: string[] = [];
    const importModule = fakeImports({ gpu: { gpuDevice: false, kernels: true }, cpu: 'missing', calls });
    const info = await initBackend('auto', { importModule });
    assert.equal(info.name, 'tensorflow');
    assert.equal(info.tried.length, 2);
    assert.match(info.tried[0]?.error ?? '', /no GPU device/);
    assert.deepEqual(calls, [GPU_PKG], 'a second libtensorflow is not loaded');
    assertConsistent(info);
  });

  it('an explicit tensorflow-gpu request without a GPU device throws', async (t) => {
    if (realNativeLoaded) return t.skip('a real tfjs-node backend is loaded');
    await assert.rejects(
      initBackend('tensorflow-gpu', {
        importModule: fakeImports({ gpu: { gpuDevice: false, kernels: true }, cpu: 'missing' }),
      }),
      /'tensorflow-gpu'.*no GPU device/,
    );
  });

  it('auto takes tfjs-node when the GPU package is missing', async (t) => {
    if (realNativeLoaded) return t.skip('a real tfjs-node backend is loaded');
    const info = await initBackend('auto', {
      importModule: fakeImports({ gpu: 'missing', cpu: { kernels: true } }),
    });
    assert.equal(info.name, 'tensorflow');
    assert.match(info.tried[0]?.error ?? '', /not installed/);
    assertConsistent(info);
  });

  it('auto passes over a backend that loads but fails the smoke test', async (t) => {
    if (realNativeLoaded) return t.skip('a real tfjs-node backend is loaded');
    const info = await initBackend('auto', {
      importModule: fakeImports({ gpu: 'missing', cpu: { kernels: false } }),
    });
    assert.ok(info.name === 'wasm' || info.name === 'cpu');
    assert.match(info.tried[1]?.error ?? '', /Kernel 'Conv2D' not registered for backend 'tensorflow'/);
    assertConsistent(info);
  });

  it('auto on this machine: consistent, idempotent (concurrent calls too), and refuses to switch', async () => {
    const logs: { msg: string; fields?: object }[] = [];
    const [a, b] = await Promise.all([
      initBackend('auto', { log: (msg, fields) => logs.push({ msg, fields }) }),
      initBackend('auto'),
    ]);
    assert.equal(a, b);
    assertConsistent(a);
    assert.equal(await initBackend('auto'), a);
    assert.equal(await initBackend(a.name), a);
    const other = a.name === 'cpu' ? 'wasm' : 'cpu';
    await assert.rejects(
      initBackend(other),
      new RegExp(`'${other}' requested, but the backend is already initialized as '${a.name}'`),
    );
    const chosen = logs.find((l) => l.msg === 'tfjs backend initialized');
    assert.deepEqual(chosen?.fields, { backend: a.name, tfBackend: a.tfBackend, tried: a.tried });
  });

  it('wasm: registers the training kernels and leaves no Emscripten process listeners behind', async () => {
    const info = await initBackend('wasm');
    assert.deepEqual(info, { name: 'wasm', tfBackend: 'wasm', tried: [{ name: 'wasm' }] });
    for (const k of WASM_TRAINING_KERNELS) assert.ok(tf.getKernel(k, 'wasm'), k);
    assert.deepEqual(emscriptenListeners(), []);
    // A conv2d filter gradient (the kernel wasm lacks) through the public API.
    const dw = tf.tidy(() =>
      tf.grad((f) => tf.sum(tf.conv2d(tf.ones([2, 5, 5, 1]) as tf.Tensor4D, f as tf.Tensor4D, 2, 'same')))(
        tf.ones([3, 3, 1, 1]),
      ),
    );
    assert.deepEqual(Array.from(dw.dataSync()), [8, 12, 8, 12, 18, 12, 8, 12, 8]);
    dw.dispose();
  });

  it('cpu on request', async () => {
    const info = await initBackend('cpu');
    assert.deepEqual(info, { name: 'cpu', tfBackend: 'cpu', tried: [{ name: 'cpu' }] });
  });
});
