/**
 * The demo's yardstick: random selection (RFT(LQ): b candidates drawn at random per step, each step
 * fine-tuned from M0 on every label so far) run offline for as many labels as the daemon got, on
 * the candidates the simulator streamed, measured on the simulator's own evaluation set (same
 * candidates, same patches), with the daemon's m, augmentation and fine-tuning settings.
 */
import type { Worker } from 'node:worker_threads';
import { generatePatches, resolveAugmentationSpec, type AugmentationSpec } from '../core/patches.js';
import { imageAt } from '../data/image-set.js';
import type { Split, Task } from '../data/task.js';
import type { FineTuneOptions } from '../model/fine-tune.js';
import { loadModelFromPath } from '../model/model-store.js';
import { evaluationPositions } from '../simulate/evaluation-set.js';
import { DEFAULT_POLICY } from '../bench/policy.js';
import type { BackendRequest } from '../model/backend.js';
import { siblingModuleUrl, startModuleWorker } from '../workers/worker-host.js';
import {
  runTrajectory,
  type CandidateSet,
  type PreparedData,
  type StepRecord,
  type TrajectoryResult,
} from '../bench/trajectory.js';

/** The caller stopped the baseline (Ctrl-C). */
export class BaselineAbortedError extends Error {
  override readonly name = 'BaselineAbortedError';
}

function candidateSet(
  task: Task,
  split: Split,
  positions: readonly number[],
  augmentation: AugmentationSpec,
  patchSeed: number,
): CandidateSet {
  const set = task.set;
  const m = resolveAugmentationSpec(augmentation).m;
  const side = augmentation.size ?? set.height;
  const per = m * side * side * set.channels;
  const shape = { height: set.height, width: set.width, channels: set.channels };
  const patches = new Float32Array(positions.length * per);
  const labels = new Int32Array(positions.length);
  const ids: string[] = [];
  positions.forEach((p, i) => {
    const id = split.ids[p]!;
    patches.set(
      generatePatches(imageAt(set, split.indices[p]!), shape, augmentation, {
        candidateId: id,
        seed: patchSeed,
      }),
      i * per,
    );
    labels[i] = split.labels[p]!;
    ids.push(id);
  });
  return { ids, labels, patches, count: positions.length };
}

/**
 * The candidates of a baseline run: `poolPositions` of the task's pool split, and the simulator's
 * evaluation set (`evaluationPositions(task.validation, evalSize)`), with the daemon's patches
 * (its augmentation and patch seed, per candidate id).
 */
export function demoPreparedData(
  task: Task,
  poolPositions: readonly number[],
  evalSize: number,
  augmentation: AugmentationSpec,
  patchSeed: number,
): PreparedData {
  const m = resolveAugmentationSpec(augmentation).m;
  const side = augmentation.size ?? task.set.height;
  return {
    numClasses: task.numClasses,
    m,
    patchShape: [side, side, task.set.channels],
    pool: candidateSet(task, task.pool, poolPositions, augmentation, patchSeed),
    evaluation: candidateSet(
      task,
      task.validation,
      evaluationPositions(task.validation, evalSize),
      augmentation,
      patchSeed,
    ),
    evaluationSplit: 'validation',
  };
}

export interface BaselineOptions {
  m0Dir: string;
  data: PreparedData;
  b: number;
  steps: number;
  /** The daemon's training seed: M0's fresh head is then the daemon's initial head. */
  seed: number;
  omega: number;
  alpha: number;
  fineTune: Omit<FineTuneOptions, 'seed'>;
  onStep?: (record: StepRecord) => void;
}

/** Runs RFT(LQ) (random selection, fine-tuned from M0 on all labels at every step). */
export async function runRandomBaseline(o: BaselineOptions): Promise<TrajectoryResult> {
  const { model: m0 } = await loadModelFromPath(o.m0Dir);
  try {
    return await runTrajectory(
      m0,
      o.data,
      {
        strategy: 'RFT(LQ)',
        criterion: { measure: 'entropy', majority: true, randomness: true },
        // RFT is not continual: the policy's learning-rate factor and replay do not apply.
        policy: { ...DEFAULT_POLICY, replayPerClass: 0 },
        policyName: 'demo',
        b: o.b,
        steps: o.steps,
        omega: o.omega,
        alpha: o.alpha,
        seed: o.seed,
        fineTune: o.fineTune,
        scoreChunk: 128,
      },
      o.onStep,
    );
  } finally {
    m0.dispose();
  }
}

/** What the baseline worker needs to rebuild the demo's task and run (structured-clone data only). */
export interface BaselineJob {
  backend: BackendRequest;
  /** The task (Fashion-MNIST) and its seed, as the simulator built it. */
  taskSpec: { positive?: number[]; negative?: number[]; classes?: number[]; ratio?: number };
  taskSeed: number;
  /** Positions into the pool split of the streamed candidates. */
  poolPositions: number[];
  evalSize: number;
  augmentation: AugmentationSpec;
  patchSeed: number;
  m0Dir: string;
  b: number;
  steps: number;
  seed: number;
  omega: number;
  alpha: number;
  fineTune: Omit<FineTuneOptions, 'seed'>;
}

/** Messages from the baseline worker. */
export type BaselineWorkerMessage =
  | { type: 'step'; record: StepRecord }
  | { type: 'done'; result: TrajectoryResult }
  | { type: 'failed'; error: string };

/**
 * Runs {@link runRandomBaseline} in a worker thread. Aborting `signal` terminates the worker at
 * once and rejects with {@link BaselineAbortedError}.
 */
export function runBaselineInWorker(
  job: BaselineJob,
  options: { onStep?: (record: StepRecord) => void; signal?: AbortSignal } = {},
): Promise<TrajectoryResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(new BaselineAbortedError('random baseline stopped'));
      return;
    }
    const worker: Worker = startModuleWorker(siblingModuleUrl(import.meta.url, 'baseline-worker'), job);
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      fn();
      void worker.terminate();
    };
    const onAbort = () => settle(() => reject(new BaselineAbortedError('random baseline stopped')));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (msg: BaselineWorkerMessage) => {
      if (msg.type === 'step') options.onStep?.(msg.record);
      else if (msg.type === 'done') settle(() => resolve(msg.result));
      else settle(() => reject(new Error(`the random baseline failed: ${msg.error}`)));
    });
    worker.on('error', (error) => settle(() => reject(error)));
    worker.on('exit', (code) =>
      settle(() =>
        reject(new Error(`the random baseline's worker exited (code ${code}) before it finished`)),
      ),
    );
  });
}
