/**
 * Scoring off the event loop: a pool of scoring worker threads, each with its own tfjs backend
 * and a copy of the served model version. A batch of candidates is split across the workers; each
 * worker makes the patches from the candidates' compact images and scores them.
 *
 * Ordering: every worker has one main-side queue, and both model swaps and scoring batches go
 * through it. `setModel` enqueues the swap on every worker at once and `score` enqueues all its
 * batches at once, so a score call made after `setModel` is scored (entirely) by the new version,
 * and one made before it (entirely) by the old; the version used is in the result.
 *
 * Backpressure: at most `maxInFlightPerWorker` batches are posted to a worker at a time (one being
 * scored, the next already transferred); the rest wait in its queue, which `stats()` reports.
 */
import os from 'node:os';
import type { ScoreOptions } from '../core/score.js';
import type { AugmentationSpec } from '../core/patches.js';
import type { BackendRequest } from '../model/backend.js';
import { checkRecipe, packCandidates, type PatchRecipe, type ScoringInput } from './candidate-batch.js';
import type { ModelArtifact, ModelWorkerData, ModelWorkerInfo, ScoringWorkerApi } from './protocol.js';
import { WorkerClosedError, WorkerHost, WorkerTaskError, siblingModuleUrl } from './worker-host.js';

export type { ScoringInput } from './candidate-batch.js';

export interface ScoringServiceOptions {
  /** The tfjs backend each worker initializes. Default: $ACFT_BACKEND, else 'auto'. */
  backend?: BackendRequest;
  /** Worker threads. Default 1; `os.availableParallelism()` uses every core. */
  workers?: number;
  /** Batches posted to one worker and not yet answered. Default 2. */
  maxInFlightPerWorker?: number;
  /** Patches per batch sent to a worker (bounds a worker's memory per call). Default 4096. */
  maxPatchesPerBatch?: number;
}

/** A model version to serve. */
export interface ModelVersionArtifact extends ModelArtifact {
  version: string;
}

/** How to make the patches and score them. */
export interface ScoreRequestOptions {
  /** Patches per candidate. */
  m: number;
  augmentation: AugmentationSpec;
  /** Seed of the patch sampling (with the candidate id). */
  seed: number;
  scoreOptions?: ScoreOptions;
}

/** The worthiness of one candidate (DESIGN.md, "Worthiness score"). */
export interface CandidateScoreResult {
  id: string;
  score: number;
  entropy: number;
  diversity: number;
  dominantClass: number;
  /** The candidate's prediction: the mean of its patches' class probabilities. */
  meanProbs: number[];
}

export interface ScoreBatchResult {
  /** The model version that scored every candidate of the call. */
  version: string;
  /** In the order of the candidates given. */
  results: CandidateScoreResult[];
  /** Wall-clock seconds of the call, queueing included. */
  seconds: number;
  /** Patches scored (candidates x m). */
  patches: number;
}

export interface ScoringStats {
  workers: number;
  /** Batches waiting in the main-side queues. */
  queuedBatches: number;
  /** Batches posted to workers and not yet answered. */
  inFlightBatches: number;
  /** Patches queued or in flight. */
  pendingPatches: number;
  /** Worker restarts after crashes. */
  restarts: number;
}

/** A score call made before any model version was set. */
export class NoModelError extends Error {
  readonly code = 'no-model';
  readonly retryable = false;
  constructor() {
    super('no model version has been set on the scoring service');
    this.name = 'NoModelError';
  }
}

interface QueuedOp {
  patches: number;
  run: () => Promise<void>;
  abandon: (error: unknown) => void;
}

/** One worker and its main-side queue. */
class Lane {
  readonly host: WorkerHost<ScoringWorkerApi>;
  private readonly queue: QueuedOp[] = [];
  private inFlight = 0;
  /** Patches queued or in flight: the load a new batch is balanced on. */
  load = 0;
  /** The last model posted to this worker; a restarted worker gets it first. */
  private model: ModelVersionArtifact | undefined;

  constructor(
    index: number,
    workerData: ModelWorkerData,
    private readonly maxInFlight: number,
  ) {
    this.host = new WorkerHost<ScoringWorkerApi>({
      url: siblingModuleUrl(import.meta.url, 'scoring-worker'),
      workerData,
      name: `scoring worker ${index}`,
      onStart: async ({ call }) => {
        if (this.model !== undefined) await call('setModel', this.model);
      },
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  get posted(): number {
    return this.inFlight;
  }

  setModel(model: ModelVersionArtifact): Promise<void> {
    return this.enqueue(0, async () => {
      const previous = this.model;
      this.model = model;
      try {
        await this.host.call('setModel', model);
      } catch (error) {
        // A model the worker refused is not handed to its restarts (it would fail them all);
        // after a crash, the restart loads it.
        if (error instanceof WorkerTaskError) this.model = previous;
        throw error;
      }
    });
  }

  enqueue<T>(patches: number, fn: () => Promise<T>): Promise<T> {
    this.load += patches;
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        patches,
        run: () => fn().then(resolve, reject),
        abandon: reject,
      });
      this.pump();
    });
  }

  /** Rejects every queued (not yet posted) operation. */
  abandonQueued(error: unknown): void {
    for (const op of this.queue.splice(0)) {
      this.load -= op.patches;
      op.abandon(error);
    }
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight) {
      const op = this.queue.shift();
      if (op === undefined) return;
      this.inFlight++;
      void op.run().finally(() => {
        this.inFlight--;
        this.load -= op.patches;
        this.pump();
      });
    }
  }
}

/** See the module comment. Start with {@link ScoringService.start}. */
export class ScoringService {
  private latest: string | undefined;
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly lanes: Lane[],
    /** The tfjs backend the workers use. */
    readonly backend: string,
    private readonly maxPatchesPerBatch: number,
  ) {}

  /** Starts the workers (each initializes its backend) and resolves once all are ready. */
  static async start(options: ScoringServiceOptions = {}): Promise<ScoringService> {
    const workers = options.workers ?? 1;
    const maxInFlight = options.maxInFlightPerWorker ?? 2;
    const maxPatches = options.maxPatchesPerBatch ?? 4096;
    for (const [name, v] of [
      ['workers', workers],
      ['maxInFlightPerWorker', maxInFlight],
      ['maxPatchesPerBatch', maxPatches],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    const data: ModelWorkerData = { backend: options.backend };
    const lanes = Array.from({ length: workers }, (_, i) => new Lane(i, data, maxInFlight));
    const started = await Promise.allSettled(lanes.map((l) => l.host.start()));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) {
      await Promise.allSettled(lanes.map((l) => l.host.close()));
      throw failed.reason;
    }
    const info = (started[0] as PromiseFulfilledResult<unknown>).value as ModelWorkerInfo;
    return new ScoringService(lanes, info.backend, maxPatches);
  }

  /** Worker threads, as started (`os.availableParallelism()` on this machine: see {@link coreCount}). */
  get workers(): number {
    return this.lanes.length;
  }

  /**
   * The version of the latest `setModel` (what later score calls use), back to the previous one
   * if that failed; undefined before any.
   */
  get version(): string | undefined {
    return this.latest;
  }

  /**
   * Serves `model` from now on: every score call made after this one uses it. Resolves when every
   * worker has loaded it. Rejects with WorkerTaskError if the model cannot be loaded (the workers
   * keep the previous version, and so does `version`), or with WorkerCrashedError if a worker died
   * meanwhile (its restart loads this version).
   */
  setModel(model: ModelVersionArtifact): Promise<void> {
    if (this.closed) return Promise.reject(new WorkerClosedError('scoring service is closed'));
    // One copy in shared memory for every worker (and for restarts), none per worker.
    const shared = new Uint8Array(new SharedArrayBuffer(model.weights.byteLength));
    shared.set(model.weights);
    const artifact: ModelVersionArtifact = {
      version: model.version,
      topology: model.topology,
      weightSpecs: model.weightSpecs,
      weights: shared,
    };
    const previous = this.latest;
    this.latest = model.version;
    return Promise.all(this.lanes.map((l) => l.setModel(artifact))).then(
      () => undefined,
      (error: unknown) => {
        if (error instanceof WorkerTaskError && this.latest === model.version) this.latest = previous;
        throw error;
      },
    );
  }

  /**
   * Scores `candidates` with the current model version. The workers make the patches (from each
   * candidate's image, or take its ready patches); a large call is split into batches of at most
   * `maxPatchesPerBatch` patches, spread over the workers by load.
   */
  async score(candidates: readonly ScoringInput[], options: ScoreRequestOptions): Promise<ScoreBatchResult> {
    if (this.closed) throw new WorkerClosedError('scoring service is closed');
    const started = performance.now();
    const recipe: PatchRecipe = { m: options.m, augmentation: options.augmentation, seed: options.seed };
    checkRecipe(recipe);
    const version = this.latest;
    if (version === undefined) throw new NoModelError();
    const n = candidates.length;
    if (n === 0) return { version, results: [], seconds: 0, patches: 0 };

    // Pack and enqueue every batch synchronously: no model swap can fall between them.
    const perBatch = Math.max(
      1,
      Math.min(Math.floor(this.maxPatchesPerBatch / recipe.m), Math.ceil(n / this.lanes.length)),
    );
    const batches: { from: number; to: number }[] = [];
    for (let from = 0; from < n; from += perBatch) batches.push({ from, to: Math.min(n, from + perBatch) });
    const packed = batches.map(({ from, to }) => packCandidates(candidates.slice(from, to), recipe.m));
    const scoreOptions = options.scoreOptions ?? {};
    const replies = packed.map((batch) => {
      const lane = this.lanes.reduce((best, l) => (l.load < best.load ? l : best));
      return lane.enqueue(batch.entries.length * recipe.m, () =>
        lane.host.call('score', { batch, recipe, scoreOptions }, [batch.buffer]),
      );
    });
    const scored = await Promise.all(replies);

    const results: CandidateScoreResult[] = [];
    let patches = 0;
    scored.forEach((r, b) => {
      if (r.version !== scored[0]?.version) {
        throw new Error(`one score call was scored by versions ${scored[0]?.version} and ${r.version}`);
      }
      const { from, to } = batches[b]!;
      const k = r.numClasses;
      for (let j = 0; j < to - from; j++) {
        results.push({
          id: candidates[from + j]!.id,
          score: r.score[j]!,
          entropy: r.entropy[j]!,
          diversity: r.diversity[j]!,
          dominantClass: r.dominantClass[j]!,
          meanProbs: Array.from(r.meanProbs.subarray(j * k, (j + 1) * k)),
        });
      }
      patches += r.patches;
    });
    return {
      version: scored[0]?.version ?? version,
      results,
      seconds: (performance.now() - started) / 1000,
      patches,
    };
  }

  stats(): ScoringStats {
    return {
      workers: this.lanes.length,
      queuedBatches: this.lanes.reduce((s, l) => s + l.queued, 0),
      inFlightBatches: this.lanes.reduce((s, l) => s + l.posted, 0),
      pendingPatches: this.lanes.reduce((s, l) => s + l.load, 0),
      restarts: this.lanes.reduce((s, l) => s + Math.max(0, l.host.starts - 1), 0),
    };
  }

  /**
   * Stops every worker; calls still queued or in flight reject with WorkerClosedError.
   * Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      const error = new WorkerClosedError('scoring service is closed');
      for (const lane of this.lanes) lane.abandonQueued(error);
      const results = await Promise.allSettled(this.lanes.map((l) => l.host.close()));
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failures.length > 0) {
        throw new AggregateError(
          failures.map((f) => f.reason as unknown),
          'closing the scoring workers failed',
        );
      }
    })();
    return this.closed;
  }

  /**
   * Test hook: makes worker `index` die ('throw': an uncaught exception; 'exit': process.exit),
   * as a crash in the middle of a call would. The returned call rejects with WorkerCrashedError.
   * @internal
   */
  crashWorkerForTesting(index: number, mode: 'throw' | 'exit'): Promise<never> {
    const lane = this.lanes[index];
    if (lane === undefined) throw new RangeError(`no worker ${index}`);
    return lane.host.call('__crash', { mode });
  }
}

/** The number of cores Node says this process may use: the natural worker count. */
export function coreCount(): number {
  return os.availableParallelism();
}
