/**
 * Fine-tuning off the event loop: one training worker thread with its own tfjs backend runs a
 * whole job (patches, training, holdout evaluation of the new model and of its parent,
 * serialization, sha256), so consumption, heartbeats and scoring go on meanwhile. Jobs run one at
 * a time, in the order given.
 */
import type { AugmentationSpec } from '../core/patches.js';
import type { BackendRequest } from '../model/backend.js';
import type { FineTuneOptions } from '../model/fine-tune.js';
import { checkRecipe, packCandidates, type PatchRecipe, type ScoringInput } from './candidate-batch.js';
import type { ModelArtifact, ModelWorkerData, ModelWorkerInfo, TrainingWorkerApi } from './protocol.js';
import { WorkerClosedError, WorkerHost, siblingModuleUrl } from './worker-host.js';

export interface TrainingServiceOptions {
  /** The tfjs backend the worker initializes. Default: $ACFT_BACKEND, else 'auto'. */
  backend?: BackendRequest;
}

/** Labeled candidates: `labels[i]` is the class of `candidates[i]`. */
export interface LabeledCandidates {
  candidates: readonly ScoringInput[];
  labels: readonly number[];
}

/** One fine-tuning window's job (DESIGN.md, "Learning strategies"). */
export interface TrainingJob {
  /** The serving model M_{t-1}: the start for 'previous', and the baseline of the holdout. */
  parent: ModelArtifact;
  /** The pre-trained M0, required when `startFrom` is 'M0'. */
  m0?: ModelArtifact;
  startFrom: 'M0' | 'previous';
  /**
   * Classes of the task. Starting from M0 with another class count, its head is replaced by a
   * fresh one seeded by deriveSeed('head', seed).
   */
  numClasses: number;
  train: LabeledCandidates;
  holdout: LabeledCandidates;
  /** Patches per candidate. */
  m: number;
  augmentation: AugmentationSpec;
  /** Seed of patch sampling and of the new head; the fine-tuning seed derives from it unless given. */
  seed: number;
  fineTune?: Partial<FineTuneOptions>;
}

export interface TrainingResult {
  artifact: ModelArtifact & { sha256: string };
  /** Macro AUC of the new model on the holdout; null if the holdout lacks a class. */
  holdoutAuc: number | null;
  /** The parent's, on the same holdout; null also when its classes differ from the task's. */
  parentHoldoutAuc: number | null;
  /** Seconds the job took in the worker. */
  seconds: number;
  /** Mean training loss per epoch. */
  epochLosses: number[];
  /** Patches trained on (candidates x m). */
  trainPatches: number;
}

function checkLabels(what: string, set: LabeledCandidates, numClasses: number): Int32Array<ArrayBuffer> {
  if (set.labels.length !== set.candidates.length) {
    throw new RangeError(`${what}: ${set.candidates.length} candidates but ${set.labels.length} labels`);
  }
  set.labels.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) {
      throw new RangeError(
        `${what}: label ${y} of candidate '${set.candidates[i]?.id}' is not in 0..${numClasses - 1}`,
      );
    }
  });
  return Int32Array.from(set.labels);
}

/** A private copy of an artifact whose weights buffer can be transferred. */
function transferableCopy(a: ModelArtifact): { artifact: ModelArtifact; buffer: ArrayBuffer } {
  const weights = new Uint8Array(a.weights);
  return {
    artifact: { topology: a.topology, weightSpecs: a.weightSpecs, weights },
    buffer: weights.buffer,
  };
}

/** See the module comment. Start with {@link TrainingService.start}. */
export class TrainingService {
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly host: WorkerHost<TrainingWorkerApi>,
    /** The tfjs backend the worker uses. */
    readonly backend: string,
  ) {}

  /** Starts the worker (it initializes its backend) and resolves once it is ready. */
  static async start(options: TrainingServiceOptions = {}): Promise<TrainingService> {
    const host = new WorkerHost<TrainingWorkerApi>({
      url: siblingModuleUrl(import.meta.url, 'training-worker'),
      workerData: { backend: options.backend } satisfies ModelWorkerData,
      name: 'training worker',
    });
    try {
      const info = (await host.start()) as ModelWorkerInfo;
      return new TrainingService(host, info.backend);
    } catch (error) {
      await host.close();
      throw error;
    }
  }

  /**
   * Runs one fine-tuning job in the worker. Rejects with WorkerTaskError if the job fails there
   * (a bad artifact, say), WorkerCrashedError if the worker dies (the next job gets a new one),
   * WorkerClosedError on close.
   */
  async train(job: TrainingJob): Promise<TrainingResult> {
    if (this.closed) throw new WorkerClosedError('training service is closed');
    const recipe: PatchRecipe = { m: job.m, augmentation: job.augmentation, seed: job.seed };
    checkRecipe(recipe);
    if (!Number.isInteger(job.numClasses) || job.numClasses < 2) {
      throw new RangeError(`numClasses must be an integer >= 2, got ${job.numClasses}`);
    }
    if (job.startFrom !== 'M0' && job.startFrom !== 'previous') {
      throw new RangeError(`startFrom must be 'M0' or 'previous', got ${String(job.startFrom)}`);
    }
    if (job.startFrom === 'M0' && job.m0 === undefined) throw new RangeError("startFrom 'M0' needs m0");
    const trainLabels = checkLabels('train', job.train, job.numClasses);
    const holdoutLabels = checkLabels('holdout', job.holdout, job.numClasses);
    const train = packCandidates(job.train.candidates, job.m);
    const holdout = packCandidates(job.holdout.candidates, job.m);
    const parent = transferableCopy(job.parent);
    const m0 = job.m0 === undefined ? undefined : transferableCopy(job.m0);
    return this.host.call(
      'train',
      {
        parent: parent.artifact,
        m0: m0?.artifact,
        startFrom: job.startFrom,
        numClasses: job.numClasses,
        train: { batch: train, labels: trainLabels },
        holdout: { batch: holdout, labels: holdoutLabels },
        recipe,
        fineTune: job.fineTune ?? {},
      },
      [
        train.buffer,
        holdout.buffer,
        trainLabels.buffer,
        holdoutLabels.buffer,
        parent.buffer,
        ...(m0 ? [m0.buffer] : []),
      ],
    );
  }

  /** Stops the worker; a job in progress rejects with WorkerClosedError. Idempotent. */
  close(): Promise<void> {
    this.closed ??= this.host.close();
    return this.closed;
  }

  /**
   * Test hook: makes the worker die ('throw': an uncaught exception; 'exit': process.exit). The
   * returned call rejects with WorkerCrashedError.
   * @internal
   */
  crashWorkerForTesting(mode: 'throw' | 'exit'): Promise<never> {
    return this.host.call('__crash', { mode });
  }
}
