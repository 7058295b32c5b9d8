/** The random baseline's worker thread (see baseline.ts): rebuilds the task and runs RFT(LQ). */
import { parentPort, workerData } from 'node:worker_threads';
import { loadFashionMnist } from '../data/image-set.js';
import { buildTask } from '../data/task.js';
import { initBackend } from '../model/backend.js';
import {
  demoPreparedData,
  runRandomBaseline,
  type BaselineJob,
  type BaselineWorkerMessage,
} from './baseline.js';

const port = parentPort;
if (!port) throw new Error('baseline-worker must run in a worker thread');
const send = (msg: BaselineWorkerMessage) => port.postMessage(msg);
const job = workerData as BaselineJob;

try {
  await initBackend(job.backend);
  const task = buildTask(await loadFashionMnist(), { ...job.taskSpec, seed: job.taskSeed });
  const result = await runRandomBaseline({
    m0Dir: job.m0Dir,
    data: demoPreparedData(task, job.poolPositions, job.evalSize, job.augmentation, job.patchSeed),
    b: job.b,
    steps: job.steps,
    seed: job.seed,
    omega: job.omega,
    alpha: job.alpha,
    fineTune: job.fineTune,
    onStep: (record) => send({ type: 'step', record }),
  });
  send({ type: 'done', result });
} catch (error) {
  send({ type: 'failed', error: (error as Error).stack ?? String(error) });
}
