/**
 * Measures the tfjs backends on this machine with a small 28x28x1 CNN (conv 3x3x16 relu, maxpool 2,
 * conv 3x3x32 relu, maxpool 2, flatten, dense 64 relu, dense 2 softmax; 'same' padding):
 * inference patches/s (batch 256) and training samples/s (batch 64, Adam).
 *
 *   npx tsx scripts/probe-backends.ts [--seconds S] [--wasm-originals] [backend ...]
 *
 * Backends default to wasm and cpu; S to 2. --wasm-originals also measures wasm with its own
 * (slow) Conv2DBackpropInput, MaxPoolGrad and BatchMatMul instead of src/model/wasm-kernels.ts's.
 *
 * Each measurement warms up, then runs whole batches until S seconds have passed. Prints a table
 * and one JSON line per backend.
 */
import os from 'node:os';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  initBackend,
  parseBackendRequest,
  resetBackendForTesting,
  tf,
  type BackendName,
} from '../src/model/backend.js';
import { registerWasmTrainingKernels, restoreReplacedWasmKernels } from '../src/model/wasm-kernels.js';

const INFER_BATCH = 256;
const TRAIN_BATCH = 64;

function buildModel(): tfl.LayersModel {
  const init = (seed: number) => tfl.initializers.heNormal({ seed });
  const L = tfl.layers;
  return tfl.sequential({
    layers: [
      L.conv2d({
        inputShape: [28, 28, 1],
        filters: 16,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(1),
      }),
      L.maxPooling2d({ poolSize: 2 }),
      L.conv2d({
        filters: 32,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(2),
      }),
      L.maxPooling2d({ poolSize: 2 }),
      L.flatten(),
      L.dense({ units: 64, activation: 'relu', kernelInitializer: init(3) }),
      L.dense({ units: 2, activation: 'softmax', kernelInitializer: init(4) }),
    ],
  });
}

/**
 * Runs `step` (one batch) `warmup` times (just once if a step takes longer than `seconds`), then
 * until `seconds` have passed (at least once); returns items/s and the change in live tensors
 * over the timed steps.
 */
async function rate(step: () => Promise<void>, itemsPerStep: number, seconds: number, warmup = 2) {
  for (let i = 0; i < warmup; i++) {
    const t = performance.now();
    await step();
    if (performance.now() - t > seconds * 1000) break;
  }
  const tensors = tf.memory().numTensors;
  let steps = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    await step();
    steps++;
    elapsed = (performance.now() - t0) / 1000;
  } while (elapsed < seconds);
  return {
    perSecond: (steps * itemsPerStep) / elapsed,
    steps,
    msPerStep: (elapsed * 1000) / steps,
    tensorDelta: tf.memory().numTensors - tensors,
  };
}

async function probe(name: BackendName, seconds: number, wasmOriginals = false) {
  resetBackendForTesting();
  const info = await initBackend(name);
  if (name === 'wasm') {
    if (wasmOriginals) restoreReplacedWasmKernels();
    else registerWasmTrainingKernels();
  }
  const model = buildModel();
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const xInfer = tf.randomUniform([INFER_BATCH, 28, 28, 1], 0, 1, 'float32', 1);
  const xTrain = tf.randomUniform([TRAIN_BATCH, 28, 28, 1], 0, 1, 'float32', 2);
  const yTrain = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: TRAIN_BATCH }, (_, i) => i % 2),
      'int32',
    ),
    2,
  );

  const inference = await rate(
    async () => {
      const y = model.predict(xInfer, { batchSize: INFER_BATCH }) as tf.Tensor;
      await y.data();
      y.dispose();
    },
    INFER_BATCH,
    seconds,
  );
  const training = await rate(
    async () => {
      await model.trainOnBatch(xTrain, yTrain);
    },
    TRAIN_BATCH,
    seconds,
  );

  tf.dispose([xInfer, xTrain, yTrain]);
  model.optimizer.dispose();
  model.dispose();
  const backend = wasmOriginals ? 'wasm (original kernels)' : info.name;
  return { backend, tfBackend: info.tfBackend, inference, training };
}

async function main() {
  const args = process.argv.slice(2);
  let seconds = 2;
  let wasmOriginals = false;
  const names: BackendName[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--seconds') {
      seconds = Number(args[++i]);
      if (!(seconds > 0)) throw new Error('--seconds needs a positive number');
    } else if (a === '--wasm-originals') {
      wasmOriginals = true;
    } else {
      const r = parseBackendRequest(a);
      if (r === 'auto') throw new Error("name backends explicitly ('auto' is not a backend)");
      names.push(r);
    }
  }
  if (names.length === 0) names.push('wasm', 'cpu');

  const cpus = os.cpus();
  console.log(
    `node ${process.version}, ${cpus.length} x ${cpus[0]?.model ?? '?'}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `${seconds} s per measurement; inference batch ${INFER_BATCH}, training batch ${TRAIN_BATCH} (Adam)\n`,
  );
  console.log('backend                   inference patches/s   ms/batch   training samples/s   ms/batch');
  type Run = { name: BackendName; originals: boolean };
  const runs = names.flatMap((name): Run[] =>
    name === 'wasm' && wasmOriginals
      ? [
          { name, originals: false },
          { name, originals: true },
        ]
      : [{ name, originals: false }],
  );
  for (const { name, originals } of runs) {
    try {
      const r = await probe(name, seconds, originals);
      const col = (v: number, width: number, digits: number) => v.toFixed(digits).padStart(width);
      console.log(
        r.backend.padEnd(25) +
          col(r.inference.perSecond, 20, 0) +
          col(r.inference.msPerStep, 11, 1) +
          col(r.training.perSecond, 21, 0) +
          col(r.training.msPerStep, 11, 1),
      );
      console.log(JSON.stringify(r));
    } catch (e) {
      console.log(`${name.padEnd(25)} unavailable: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

await main();
