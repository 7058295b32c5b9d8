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
 *
 * Cheap rescoring: with a fine-tuning depth (`cutDepth`) and a feature cache (`featureCacheMaxBytes`),
 * the workers split each model at its cut and return every candidate's features at the cut with
 * its scores; the service keeps them (bounded, least recently used out first) under the
 * fingerprint of the frozen layers. A later call for the same candidate, with a version whose
 * frozen layers are the same, sends the cached features instead of the image, and the worker runs
 * only the layers above the cut. A version with other frozen layers empties the cache.
 */
import os from 'node:os';
import type { ScoreOptions } from '../core/score.js';
import type { AugmentationSpec } from '../core/patches.js';
import type { BackendRequest } from '../model/backend.js';
import { checkFineTuneDepth, trunkFingerprint, type FineTuneDepth } from '../model/fine-tune-depth.js';
import { checkRecipe, packCandidates, type PatchRecipe, type ScoringInput } from './candidate-batch.js';
import { FeatureCache, type FeatureCacheStats } from './feature-cache.js';
import type {
  ModelArtifact,
  ModelWorkerData,
  ModelWorkerInfo,
  ScoringWorkerApi,
  WorkerScores,
} from './protocol.js';
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
  /**
   * Bytes of cached features per call to a worker (rescoring from the cache). Default 16 MiB: a
   * deep cut keeps ~150 KB per candidate, and batches of hundreds of megabytes made the rescore
   * at depth 2 half as fast.
   */
  maxFeatureBytesPerBatch?: number;
  /**
   * The fine-tuning depth of the versions to be served: where models are cut for the feature
   * cache. Default 'all' (no cut, no cache).
   */
  cutDepth?: FineTuneDepth;
  /** Bound of the feature cache in bytes; 0 (the default) turns it off. */
  featureCacheMaxBytes?: number;
  /**
   * Niceness of the worker threads (0-19; Linux only, where it is per thread): above 0, the
   * caller's thread runs first when the cores are busy. Default 0.
   */
  nice?: number;
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
  /** Patches scored (candidates x m), from the cache included. */
  patches: number;
  /** Of them, patches rescored from cached features (only the layers above the cut ran). */
  patchesFromCache: number;
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
  /** The frozen layers' fingerprint of the latest version; null when it has no cut. */
  private latestTrunk: string | null = null;
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly lanes: Lane[],
    /** The tfjs backend the workers use. */
    readonly backend: string,
    /** The workers' niceness, or why the one asked for could not be taken. */
    readonly nice: number | { error: string },
    private readonly maxPatchesPerBatch: number,
    private readonly maxFeatureBytesPerBatch: number,
    private readonly cutDepth: FineTuneDepth,
    private readonly cache: FeatureCache | undefined,
  ) {}

  /** Starts the workers (each initializes its backend) and resolves once all are ready. */
  static async start(options: ScoringServiceOptions = {}): Promise<ScoringService> {
    const workers = options.workers ?? 1;
    const maxInFlight = options.maxInFlightPerWorker ?? 2;
    const maxPatches = options.maxPatchesPerBatch ?? 4096;
    const maxFeatureBytes = options.maxFeatureBytesPerBatch ?? 16 * 1024 * 1024;
    for (const [name, v] of [
      ['workers', workers],
      ['maxInFlightPerWorker', maxInFlight],
      ['maxPatchesPerBatch', maxPatches],
      ['maxFeatureBytesPerBatch', maxFeatureBytes],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    const cutDepth = options.cutDepth ?? 'all';
    checkFineTuneDepth(cutDepth);
    const cacheBytes = options.featureCacheMaxBytes ?? 0;
    const cache = cutDepth !== 'all' && cacheBytes > 0 ? new FeatureCache(cacheBytes) : undefined;
    const nice = options.nice ?? 0;
    if (!Number.isInteger(nice) || nice < 0 || nice > 19) {
      throw new RangeError(`nice must be an integer from 0 to 19, got ${nice}`);
    }
    const data: ModelWorkerData = { backend: options.backend, ...(cache ? { cutDepth } : {}), nice };
    const lanes = Array.from({ length: workers }, (_, i) => new Lane(i, data, maxInFlight));
    const started = await Promise.allSettled(lanes.map((l) => l.host.start()));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) {
      await Promise.allSettled(lanes.map((l) => l.host.close()));
      throw failed.reason;
    }
    const info = (started[0] as PromiseFulfilledResult<unknown>).value as ModelWorkerInfo;
    return new ScoringService(
      lanes,
      info.backend,
      info.nice ?? 0,
      maxPatches,
      maxFeatureBytes,
      cutDepth,
      cache,
    );
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
    const previousTrunk = this.latestTrunk;
    this.latest = model.version;
    if (this.cache !== undefined) {
      this.latestTrunk = trunkFingerprint(model, this.cutDepth)?.fingerprint ?? null;
      if (this.latestTrunk !== previousTrunk) this.cache.clear();
    }
    return Promise.all(this.lanes.map((l) => l.setModel(artifact))).then(
      () => undefined,
      (error: unknown) => {
        if (error instanceof WorkerTaskError && this.latest === model.version) {
          this.latest = previous;
          this.latestTrunk = previousTrunk;
        }
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
    if (n === 0) return { version, results: [], seconds: 0, patches: 0, patchesFromCache: 0 };
    const scoreOptions = options.scoreOptions ?? {};
    const m = recipe.m;

    // Which candidates have features at the cut of this version's frozen layers.
    const cache = this.cache;
    const trunk = this.latestTrunk;
    const cacheKey = cache !== undefined && trunk !== null ? `${trunk}|${recipeKey(recipe)}` : undefined;
    const full: number[] = [];
    const cached: { index: number; features: Float32Array }[] = [];
    candidates.forEach((c, i) => {
      const features = cacheKey === undefined ? undefined : cache!.get(c.id, cacheKey);
      if (features === undefined) full.push(i);
      else cached.push({ index: i, features });
    });

    // Pack and enqueue every batch synchronously: no model swap can fall between them.
    const lanes = this.lanes.length;
    const replies: { indices: number[]; reply: Promise<WorkerScores> }[] = [];
    const perBatch = Math.max(
      1,
      Math.min(Math.floor(this.maxPatchesPerBatch / m), Math.ceil(full.length / lanes)),
    );
    for (let from = 0; from < full.length; from += perBatch) {
      const indices = full.slice(from, from + perBatch);
      const batch = packCandidates(
        indices.map((i) => candidates[i]!),
        m,
      );
      const returnFeatures = cacheKey !== undefined;
      replies.push({
        indices,
        reply: this.post(indices.length * m, (host) =>
          host.call('score', { batch, recipe, scoreOptions, returnFeatures }, [batch.buffer]),
        ),
      });
    }
    const fullBatches = replies.length;
    if (cached.length > 0) {
      // The layers above the cut are cheap: larger batches, still split over the workers, and at
      // most maxFeatureBytesPerBatch of features each.
      const candidateBytes = cached[0]!.features.byteLength;
      const perFeatureBatch = Math.max(
        1,
        Math.min(
          Math.floor((8 * this.maxPatchesPerBatch) / m),
          Math.floor(this.maxFeatureBytesPerBatch / candidateBytes),
          Math.ceil(cached.length / lanes),
        ),
      );
      for (let from = 0; from < cached.length; from += perFeatureBatch) {
        const part = cached.slice(from, from + perFeatureBatch);
        const size = part[0]!.features.length;
        const features = new Float32Array(part.length * size);
        part.forEach((p, j) => features.set(p.features, j * size));
        replies.push({
          indices: part.map((p) => p.index),
          // Balanced as a patch each: the top layers cost a small fraction of a full patch.
          reply: this.post(part.length, (host) =>
            host.call('scoreFeatures', { features, candidates: part.length, m, scoreOptions }, [
              features.buffer,
            ]),
          ),
        });
      }
    }
    const scored = await Promise.all(replies.map((r) => r.reply));

    const results = new Array<CandidateScoreResult>(n);
    let patches = 0;
    let patchesFromCache = 0;
    let scoredBy: string | undefined;
    scored.forEach((r, b) => {
      scoredBy ??= r.version;
      if (r.version !== scoredBy) {
        throw new Error(`one score call was scored by versions ${scoredBy} and ${r.version}`);
      }
      const { indices } = replies[b]!;
      const k = r.numClasses;
      indices.forEach((i, j) => {
        const id = candidates[i]!.id;
        results[i] = {
          id,
          score: r.score[j]!,
          entropy: r.entropy[j]!,
          diversity: r.diversity[j]!,
          dominantClass: r.dominantClass[j]!,
          meanProbs: Array.from(r.meanProbs.subarray(j * k, (j + 1) * k)),
        };
        // Kept only while this version's frozen layers are still the latest (a swap may have
        // emptied the cache meanwhile).
        if (r.features !== undefined && cacheKey !== undefined && this.latestTrunk === trunk) {
          const size = r.features.length / indices.length;
          cache!.set(id, cacheKey, r.features.slice(j * size, (j + 1) * size));
        }
      });
      patches += r.patches;
      if (b >= fullBatches) patchesFromCache += r.patches;
    });
    return {
      version: scoredBy ?? version,
      results,
      seconds: (performance.now() - started) / 1000,
      patches,
      patchesFromCache,
    };
  }

  /** Drops the cached features of candidates that left the pool. */
  forget(ids: Iterable<string>): void {
    if (this.cache === undefined) return;
    for (const id of ids) this.cache.delete(id);
  }

  /** The feature cache's size and counts; undefined when there is none. */
  featureCacheStats(): FeatureCacheStats | undefined {
    return this.cache?.stats();
  }

  /** Enqueues a call on the least loaded worker, counting `load` patches against it. */
  private post<T>(load: number, call: (host: WorkerHost<ScoringWorkerApi>) => Promise<T>): Promise<T> {
    const lane = this.lanes.reduce((best, l) => (l.load < best.load ? l : best));
    return lane.enqueue(load, () => call(lane.host));
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

/** What makes two score calls' patches the same: m, the augmentation and the seed. */
function recipeKey(recipe: PatchRecipe): string {
  return JSON.stringify([recipe.m, recipe.seed, recipe.augmentation]);
}

/** The number of cores Node says this process may use: the natural worker count. */
export function coreCount(): number {
  return os.availableParallelism();
}
