/**
 * The one place that chooses and initializes the TensorFlow.js backend.
 *
 * Import `tf` from here rather than from '@tensorflow/tfjs-core' directly: this
 * module also registers the gradients (tfjs-core's Node bundle registers none;
 * tfjs-layers' bundle does, so it is imported here for that side effect), and
 * `initBackend` makes sure the wasm backend can train CNNs.
 *
 * Backends, in the order 'auto' tries them:
 *  - tensorflow-gpu: '@tensorflow/tfjs-node-gpu' (libtensorflow with CUDA), and only
 *    if TensorFlow actually sees a GPU device;
 *  - tensorflow: '@tensorflow/tfjs-node' (libtensorflow, CPU); if the GPU package is
 *    already loaded but found no GPU, its 'tensorflow' backend (on CPU) is reused
 *    rather than loading a second libtensorflow into the process;
 *  - wasm: '@tensorflow/tfjs-backend-wasm' (XNNPACK, SIMD, single-threaded under Node),
 *    plus the training kernels it lacks (./wasm-kernels.ts);
 *  - cpu: '@tensorflow/tfjs-backend-cpu' (plain JavaScript; slow, always works).
 * A backend is taken only if it loads AND passes a tiny smoke test (a conv2d,
 * a matMul and the conv2d filter gradient, checked against known values).
 */
import * as tfc from '@tensorflow/tfjs-core';
// Side effect: registers every gradient into the (global) gradient registry.
import '@tensorflow/tfjs-layers';
import { registerWasmTrainingKernels } from './wasm-kernels.js';

export * as tf from '@tensorflow/tfjs-core';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendRequest = 'auto' | BackendName;

export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', ...BACKEND_NAMES];

export interface BackendAttempt {
  name: BackendName;
  /** Why this backend was not taken; absent for the one that was. */
  error?: string;
}

export interface BackendInfo {
  name: BackendName;
  /** tf.getBackend() after initialization: 'tensorflow' (both native packages), 'wasm' or 'cpu'. */
  tfBackend: string;
  /** Every backend tried, in order, the chosen one last. */
  tried: BackendAttempt[];
}

export type BackendLog = (msg: string, fields?: object) => void;

export interface InitBackendOptions {
  log?: BackendLog;
  /**
   * How a package is loaded; defaults to a dynamic import(). A seam for tests
   * (to simulate a native package that is missing, broken or without a GPU).
   */
  importModule?: (specifier: string) => Promise<unknown>;
}

const PACKAGES: Record<BackendName, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

const TF_BACKEND: Record<BackendName, string> = {
  'tensorflow-gpu': 'tensorflow',
  tensorflow: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

/** Parses a backend request ('auto' or a backend name), case-insensitively; throws on anything else. */
export function parseBackendRequest(s: string): BackendRequest {
  const v = s.trim().toLowerCase();
  const found = BACKEND_REQUESTS.find((r) => r === v);
  if (found === undefined) {
    throw new Error(`invalid tfjs backend '${s}': expected one of ${BACKEND_REQUESTS.join(', ')}`);
  }
  return found;
}

let current: { promise: Promise<BackendInfo> } | undefined;

/**
 * Chooses and initializes the tfjs backend (see the module comment). The
 * request defaults to $ACFT_BACKEND, else 'auto'. An explicit request that
 * cannot be satisfied throws, naming the backend and why; 'auto' throws only
 * if nothing works. Idempotent: later calls (concurrent ones included) return
 * the same info; a later explicit request for a different backend throws.
 */
export async function initBackend(
  request?: BackendRequest,
  options: InitBackendOptions = {},
): Promise<BackendInfo> {
  let req: BackendRequest;
  if (request !== undefined) {
    req = parseBackendRequest(request);
  } else {
    const env = process.env.ACFT_BACKEND;
    try {
      req = env === undefined || env.trim() === '' ? 'auto' : parseBackendRequest(env);
    } catch (e) {
      throw new Error(`ACFT_BACKEND: ${errorMessage(e)}`);
    }
  }
  if (current === undefined) {
    const entry = { promise: choose(req, options) };
    current = entry;
    entry.promise.catch(() => {
      // A failed initialization may be retried (with another request, say).
      if (current === entry) current = undefined;
    });
  }
  const info = await current.promise;
  if (req !== 'auto' && req !== info.name) {
    throw new Error(
      `tfjs backend '${req}' requested, but the backend is already initialized as '${info.name}' ` +
        `(initBackend is once per process)`,
    );
  }
  return info;
}

/**
 * Forgets the initialized backend so that the next initBackend chooses again.
 * For tests and probes only; it neither disposes nor unregisters anything.
 */
export function resetBackendForTesting(): void {
  current = undefined;
}

async function choose(req: BackendRequest, options: InitBackendOptions): Promise<BackendInfo> {
  const log = options.log ?? (() => undefined);
  const importModule = options.importModule ?? ((s: string) => import(s) as Promise<unknown>);
  const candidates: readonly BackendName[] = req === 'auto' ? BACKEND_NAMES : [req];
  const tried: BackendAttempt[] = [];
  for (const name of candidates) {
    try {
      await activate(name, importModule, log);
      smokeTest();
    } catch (e) {
      tried.push({ name, error: errorMessage(e) });
      if (req !== 'auto') {
        throw new Error(`tfjs backend '${name}' (${PACKAGES[name]}) is not usable: ${errorMessage(e)}`);
      }
      continue;
    }
    tried.push({ name });
    const info: BackendInfo = { name, tfBackend: tfc.getBackend(), tried };
    log('tfjs backend initialized', { backend: info.name, tfBackend: info.tfBackend, tried: info.tried });
    return info;
  }
  throw new Error(
    `no tfjs backend is usable: ${tried.map((t) => `${t.name}: ${t.error ?? '?'}`).join('; ')}`,
  );
}

async function activate(
  name: BackendName,
  importModule: (specifier: string) => Promise<unknown>,
  log: BackendLog,
): Promise<void> {
  const tfName = TF_BACKEND[name];
  const reuseNative = name === 'tensorflow' && tfc.findBackendFactory(tfName) !== null;
  if (!reuseNative) {
    let mod: unknown;
    try {
      mod = await importModule(PACKAGES[name]);
    } catch (e) {
      throw new Error(`cannot load ${PACKAGES[name]}: ${describeImportError(e)}`);
    }
    if (name === 'tensorflow' || name === 'tensorflow-gpu') checkCoreVersion(name, mod, log);
  }
  if (tfc.findBackendFactory(tfName) === null) {
    throw new Error(
      `${PACKAGES[name]} loaded but registered no '${tfName}' backend with this process's ` +
        `@tensorflow/tfjs-core ${tfc.version_core} (a second, different copy of tfjs-core? dedupe the install)`,
    );
  }
  if (name === 'wasm') registerWasmTrainingKernels();
  const ok = await withoutEmscriptenProcessHooks(() => tfc.setBackend(tfName), log);
  if (!ok || tfc.getBackend() !== tfName) {
    throw new Error(`tf.setBackend('${tfName}') failed (tfjs logged the reason as a warning)`);
  }
  if (name === 'cpu') {
    // The cpu backend prints a banner recommending tfjs-node to stderr on its first write;
    // the choice (and why the native backends were passed over) is in `tried` and the log.
    const be = tfc.backend() as { firstUse?: boolean };
    if (be.firstUse === true) be.firstUse = false;
  }
  if (name === 'tensorflow-gpu') {
    const be = tfc.backend() as { isGPUPackage?: boolean; isUsingGpuDevice?: boolean };
    if (be.isUsingGpuDevice !== true) {
      throw new Error(
        'TensorFlow sees no GPU device (CUDA/cuDNN libraries missing, or no GPU); its CPU fallback is taken as "tensorflow" instead',
      );
    }
  }
}

/** The tfjs-core version a native package was built with, if it says, against ours. */
function checkCoreVersion(name: BackendName, mod: unknown, log: BackendLog): void {
  if (typeof mod !== 'object' || mod === null) return;
  const theirs = (mod as { version_core?: unknown }).version_core;
  if (typeof theirs === 'string' && theirs !== tfc.version_core) {
    log('tfjs-core version mismatch', {
      backend: name,
      package: PACKAGES[name],
      theirs,
      ours: tfc.version_core,
    });
  }
}

/**
 * The wasm backend's Emscripten runtime adds process-wide 'uncaughtException'
 * and 'unhandledRejection' listeners that rethrow (to support exit() from C++,
 * which tfjs never uses). They break other listeners (a rethrow in an earlier
 * listener ends the process before later ones run, e.g. node:test's or a
 * daemon's own crash logging) and make Node print the whole minified runtime
 * with every crash. Remove exactly the listeners added while `fn` ran that
 * look like Emscripten's; Node's defaults (crash on either) remain.
 */
async function withoutEmscriptenProcessHooks<T>(fn: () => Promise<T>, log: BackendLog): Promise<T> {
  const emitter: NodeJS.EventEmitter = process;
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = new Map(events.map((ev) => [ev, new Set(emitter.listeners(ev))]));
  try {
    return await fn();
  } finally {
    for (const ev of events) {
      const had = before.get(ev) ?? new Set();
      for (const l of emitter.listeners(ev)) {
        const src = l.toString();
        if (
          !had.has(l) &&
          (src.includes('ExitStatus') || /^function\s*\(reason\)\s*\{\s*throw reason;?\s*\}$/.test(src))
        ) {
          emitter.removeListener(ev, l as (...args: unknown[]) => void);
          log('removed an Emscripten process listener', { event: ev });
        }
      }
    }
  }
}

/** A conv2d, a matMul and the conv2d filter gradient on the active backend, against known values. */
function smokeTest(): void {
  const out = tfc.tidy(() => {
    const x = tfc.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const f = tfc.tensor4d([1, 1, 1, 1], [2, 2, 1, 1]);
    const y = tfc.conv2d(x, f, 1, 'valid'); // [12, 16, 24, 28]
    const m = tfc.matMul(tfc.reshape(y, [1, 4]), tfc.tensor2d([1, 1, 1, 1], [4, 1])); // 80
    const dw = tfc.grad((w) => tfc.sum(tfc.conv2d(x, w as tfc.Tensor4D, 1, 'valid')))(f); // [12, 16, 24, 28]
    return tfc.concat([tfc.reshape(y, [4]), tfc.reshape(m, [1]), tfc.reshape(dw, [4])]);
  });
  let got: number[];
  try {
    got = Array.from(out.dataSync());
  } finally {
    out.dispose();
  }
  const want = [12, 16, 24, 28, 80, 12, 16, 24, 28];
  if (got.length !== want.length || got.some((v, i) => Math.abs(v - (want[i] ?? NaN)) > 1e-4)) {
    throw new Error(`smoke test gave [${got.join(', ')}], expected [${want.join(', ')}]`);
  }
}

function describeImportError(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
    return `not installed (${firstLine(errorMessage(e))})`;
  }
  return firstLine(errorMessage(e));
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string') {
    return (e as { message: string }).message;
  }
  return String(e);
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}
