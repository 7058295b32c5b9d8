/** One benchmark worker thread: its own tfjs backend, data cache and M0; runs jobs on request. */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendRequest } from '../model/backend.js';
import { loadModelFromPath } from '../model/model-store.js';
import type * as tfl from '@tensorflow/tfjs-layers';
import { loadDataset } from './dataset.js';
import { buildTask } from '../data/task.js';
import { prepareData } from './prepare.js';
import { runTrajectory, type PreparedData } from './trajectory.js';
import type { FromWorker, ToWorker } from './run-bench.js';

const port = parentPort;
if (!port) throw new Error('bench-worker must run in a worker thread');

const info = await initBackend((workerData as { backend: BackendRequest }).backend);
const send = (msg: FromWorker) => port.postMessage(msg);
let cached: { key: string; data: PreparedData } | undefined;
let m0: { dir: string; model: tfl.LayersModel } | undefined;

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'exit') {
    port.close();
    return;
  }
  const { job, options } = msg;
  void (async () => {
    try {
      const key = JSON.stringify([options.data, job.seed]);
      if (cached?.key !== key) {
        cached = undefined;
        const set = await loadDataset(options.data.dataset);
        const task = buildTask(set, {
          positive: options.data.positive,
          negative: options.data.negative,
          classes: options.data.classes,
          ratio: options.data.ratio,
          seed: job.seed,
        });
        // eslint-disable-next-line require-atomic-updates -- one job at a time: the pool posts the next after this one's result
        cached = {
          key,
          data: prepareData(set, task, {
            augmentation: options.data.augmentation,
            poolSize: options.data.poolSize,
            evaluationSize: options.data.evaluationSize,
            evaluationSplit: options.data.evaluationSplit,
            seed: job.seed,
          }),
        };
      }
      if (m0?.dir !== options.m0Dir) {
        m0?.model.dispose();
        // eslint-disable-next-line require-atomic-updates -- one job at a time (as above)
        m0 = { dir: options.m0Dir, model: (await loadModelFromPath(options.m0Dir)).model };
      }
      const result = await runTrajectory(
        m0.model,
        cached.data,
        {
          strategy: job.strategy,
          criterion: job.criterion,
          policy: job.policy,
          policyName: job.policyName,
          b: options.b,
          steps: options.steps,
          omega: options.omega,
          alpha: options.alpha,
          seed: job.seed,
          fineTune: options.fineTune,
          scoreChunk: options.scoreChunk,
        },
        (record) => send({ type: 'step', jobId: job.id, record }),
      );
      send({ type: 'done', jobId: job.id, result });
    } catch (error) {
      send({ type: 'failed', jobId: job.id, error: (error as Error).stack ?? String(error) });
    }
  })();
});
send({ type: 'ready', backend: info.name });
