/**
 * The scoring parts of the throughput benchmark, without Kafka: the matrix-multiply peak of each
 * backend, patches scored per second per backend and worker count (through ScoringService, the
 * daemon's own path: patch making in the workers included), and full-pool rescoring with and
 * without the feature cache.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { PAPER_POLYP_SPEC } from '../../src/core/patches.js';
import { deriveSeed } from '../../src/core/rng.js';
import type { ScoreOptions } from '../../src/core/score.js';
import { initialModel } from '../../src/daemon/initial-model.js';
import type { Task } from '../../src/data/task.js';
import { imageAt } from '../../src/data/image-set.js';
import type { BackendRequest } from '../../src/model/backend.js';
import { fineTune } from '../../src/model/fine-tune.js';
import { splitModel, type FineTuneDepth } from '../../src/model/fine-tune-depth.js';
import { deserializeModel, serializeModel } from '../../src/model/model-store.js';
import { generatePatches } from '../../src/core/patches.js';
import {
  ScoringService,
  type ModelVersionArtifact,
  type ScoreRequestOptions,
  type ScoringInput,
} from '../../src/workers/scoring-service.js';
import { WorkerHost, siblingModuleUrl } from '../../src/workers/worker-host.js';
import type { PeakResult, PeakWorkerApi } from './peak-worker.js';

const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

/** Scoring requests of the benchmark: the paper's 24-patch augmentation, entropy + majority. */
export function scoreRequest(m: number, seed: number): ScoreRequestOptions {
  const scoreOptions: ScoreOptions = { alpha: 0.25, majority: true, lambdaEntropy: 1, lambdaDiversity: 0 };
  return { m, augmentation: { ...PAPER_POLYP_SPEC, m }, seed, scoreOptions };
}

/** `count` image candidates from the task's pool (cycled; ids made unique by `tag`). */
export function poolCandidates(task: Task, count: number, tag: string): ScoringInput[] {
  const { set } = task;
  const pool = task.pool.indices;
  return Array.from({ length: count }, (_, i) => ({
    id: `${tag}-${i}`,
    image: { data: imageAt(set, pool[i % pool.length]!), shape: [set.height, set.width, set.channels] },
  }));
}

/** Multiply-adds x 2 of one patch through `layers` (Conv2D and Dense; the rest is not counted). */
export function flopsOf(layers: readonly tfl.layers.Layer[]): number {
  let flops = 0;
  for (const layer of layers) {
    const kernel = layer.getWeights()[0];
    if (kernel === undefined) continue;
    const out = layer.outputShape as (number | null)[];
    const k = kernel.shape;
    if (layer.getClassName() === 'Conv2D' && k.length === 4) {
      flops += 2 * (out[1] ?? 0) * (out[2] ?? 0) * k[0]! * k[1]! * k[2]! * k[3]!;
    } else if (layer.getClassName() === 'Dense' && k.length === 2) {
      flops += 2 * k[0]! * k[1]!;
    }
  }
  return flops;
}

export interface Models {
  /** M0 with a seeded 2-class head: the served version before any window. */
  v1: ModelVersionArtifact;
  /** v1 fine-tuned at `depth` on labeled pool patches: its frozen layers are v1's. */
  v2: ModelVersionArtifact;
  depth: FineTuneDepth;
  flopsPerPatch: number;
  flopsAboveCut: number;
  cutLayer: string | null;
  featureValuesPerPatch: number | null;
  fineTune: { candidates: number; epochs: number; seed: number };
}

/** v1 = M0 re-headed; v2 = v1 fine-tuned at `depth` on `labeled` candidates of the pool (seeded). */
export async function makeModels(
  task: Task,
  m0Path: string,
  depth: FineTuneDepth,
  m: number,
  seed: number,
): Promise<Models> {
  const init = await initialModel(m0Path, task.numClasses, seed);
  const v1: ModelVersionArtifact = { version: 'v1', ...init.artifact };
  const model = await deserializeModel(v1.topology, v1.weightSpecs, v1.weights);
  const labeled = 50;
  const epochs = 2;
  const per = 28 * 28;
  const patches = new Float32Array(labeled * m * per);
  const labels = new Int32Array(labeled * m);
  const { set } = task;
  for (let i = 0; i < labeled; i++) {
    const idx = task.pool.indices[i]!;
    patches.set(
      generatePatches(
        imageAt(set, idx),
        { height: 28, width: 28, channels: 1 },
        { ...PAPER_POLYP_SPEC, m },
        {
          candidateId: task.pool.ids[i]!,
          seed,
        },
      ),
      i * m * per,
    );
    labels.fill(task.pool.labels[i]!, i * m, (i + 1) * m);
  }
  const ftSeed = deriveSeed(seed, 'bench-throughput-fine-tune');
  await fineTune(
    model,
    { patches, labels, count: labeled * m, patchShape: [28, 28, 1] },
    { depth, epochs, seed: ftSeed },
  );
  const v2: ModelVersionArtifact = { version: 'v2', ...(await serializeModel(model)) };
  const split = splitModel(model, depth);
  const flopsPerPatch = flopsOf(model.layers);
  const flopsAboveCut = split === null ? flopsPerPatch : flopsOf(split.top);
  model.dispose();
  return {
    v1,
    v2,
    depth,
    flopsPerPatch,
    flopsAboveCut,
    cutLayer: split?.cut.cutLayer ?? null,
    featureValuesPerPatch: split?.featureSize ?? null,
    fineTune: { candidates: labeled, epochs, seed: ftSeed },
  };
}

/** The matMul peak of `backend`, measured in a worker thread of its own. */
export async function matMulPeak(
  backend: BackendRequest,
  sizes: number[],
  seconds: number,
): Promise<PeakResult> {
  const host = new WorkerHost<PeakWorkerApi>({
    url: siblingModuleUrl(import.meta.url, 'peak-worker'),
    workerData: { backend },
    name: `peak worker (${backend})`,
  });
  try {
    const r = await host.call('peak', { sizes, seconds });
    return {
      ...r,
      bestGflops: round(r.bestGflops),
      bySize: r.bySize.map((x) => ({ ...x, gflops: round(x.gflops), seconds: round(x.seconds) })),
    };
  } finally {
    await host.close();
  }
}

/**
 * Scores every candidate in calls of `chunk`, `inFlight` calls at a time (as many as there are
 * workers, so none waits for the main thread); resolves with the results in order.
 */
export async function scoreAll(
  service: ScoringService,
  inputs: readonly ScoringInput[],
  request: ScoreRequestOptions,
  chunk: number,
  inFlight: number,
): Promise<{ seconds: number; scores: Float32Array; patches: number; patchesFromCache: number }> {
  const scores = new Float32Array(inputs.length);
  let next = 0;
  let patches = 0;
  let patchesFromCache = 0;
  const t0 = performance.now();
  const lane = async (): Promise<void> => {
    while (next < inputs.length) {
      const from = next;
      next = Math.min(inputs.length, next + chunk);
      const r = await service.score(inputs.slice(from, next), request);
      r.results.forEach((x, j) => (scores[from + j] = x.score));
      patches += r.patches;
      patchesFromCache += r.patchesFromCache;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return { seconds: (performance.now() - t0) / 1000, scores, patches, patchesFromCache };
}

export interface ThroughputSample {
  backend: string;
  workers: number;
  patches: number;
  seconds: number;
  patchesPerSecond: number;
  /** patches/s x FLOPs per patch. */
  gflops: number;
  /** gflops / (the backend's single-thread matMul peak x min(workers, cores)). */
  fractionOfMatMulPeak: number | null;
  /** patches/s of every round, in order, where the sample is the median of several. */
  rounds?: number[];
}

/** Patches scored per second with `workers` workers of `backend`, for at least `seconds`. */
export async function scoringThroughput(
  backend: BackendRequest,
  workers: number,
  models: Models,
  inputs: readonly ScoringInput[],
  request: ScoreRequestOptions,
  seconds: number,
  peakGflops: number | null,
  cores: number,
): Promise<ThroughputSample> {
  const service = await ScoringService.start({ backend, workers });
  try {
    await service.setModel(models.v1);
    // Small calls on the slow cpu backend, so that the calls in flight at the deadline end soon.
    const chunk = service.backend === 'cpu' ? 4 : 64;
    // Warm-up: one call per worker.
    await scoreAll(service, inputs.slice(0, chunk * workers), request, chunk, workers);
    // Then `workers` calls always in flight (no barrier between them) until the time is up.
    let patches = 0;
    let next = 0;
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    const lane = async (): Promise<void> => {
      while (performance.now() < deadline) {
        if (next + chunk > inputs.length) next = 0;
        const from = next;
        next += chunk;
        // Awaited first: `patches += await ...` would read `patches` before the await and lose
        // the other lanes' additions made meanwhile (it undercounted by half with two lanes).
        const scored = await service.score(inputs.slice(from, from + chunk), request);
        patches += scored.patches;
      }
    };
    await Promise.all(Array.from({ length: workers * 2 }, lane));
    const s = (performance.now() - t0) / 1000;
    const pps = patches / s;
    const gflops = (pps * models.flopsPerPatch) / 1e9;
    return {
      backend: service.backend,
      workers,
      patches,
      seconds: round(s),
      patchesPerSecond: round(pps, 1),
      gflops: round(gflops),
      fractionOfMatMulPeak:
        peakGflops === null ? null : round(gflops / (peakGflops * Math.min(workers, cores)), 4),
    };
  } finally {
    await service.close();
  }
}

export interface RescoreSample {
  candidates: number;
  m: number;
  patches: number;
  backend: string;
  workers: number;
  depth: FineTuneDepth;
  withoutCache: { seconds: number; patchesPerSecond: number };
  withCache: {
    firstScoreSeconds: number;
    rescoreSeconds: number;
    patchesPerSecond: number;
    patchesFromCache: number;
    cacheBytes: number;
    cacheBytesPerCandidate: number;
    cacheMaxBytes: number;
    evictions: number;
  };
  speedup: number;
  /** Largest |score with cache - score without| over the pool: the two paths agree. */
  maxAbsScoreDifference: number;
}

/**
 * Full-pool rescore of `count` candidates by v2 (v1 served before): without the cache (a service
 * with no cache: every patch made and run through every layer) and with it (v1 scores the pool
 * once, filling the cache; v2 then runs only the layers above the cut).
 */
export async function rescore(
  backend: BackendRequest,
  workers: number,
  models: Models,
  inputs: readonly ScoringInput[],
  request: ScoreRequestOptions,
  cacheMaxBytes: number,
  progress: (line: string) => void,
): Promise<RescoreSample> {
  const n = inputs.length;
  const chunk = 1024;
  const plain = await ScoringService.start({
    backend,
    workers,
    cutDepth: models.depth,
    featureCacheMaxBytes: 0,
  });
  let without: Awaited<ReturnType<typeof scoreAll>>;
  let backendName: string;
  try {
    backendName = plain.backend;
    await plain.setModel(models.v2);
    await scoreAll(plain, inputs.slice(0, Math.min(n, 64 * workers)), request, 64, workers);
    progress(`[rescore ${n}] without the cache`);
    without = await scoreAll(plain, inputs, request, chunk, workers);
  } finally {
    await plain.close();
  }
  const cached = await ScoringService.start({
    backend,
    workers,
    cutDepth: models.depth,
    featureCacheMaxBytes: cacheMaxBytes,
  });
  try {
    await cached.setModel(models.v1);
    progress(`[rescore ${n}] first score with v1 (fills the cache)`);
    const first = await scoreAll(cached, inputs, request, chunk, workers);
    await cached.setModel(models.v2);
    progress(`[rescore ${n}] rescore with v2 from the cache`);
    const again = await scoreAll(cached, inputs, request, chunk, workers);
    const stats = cached.featureCacheStats()!;
    let maxDiff = 0;
    for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(again.scores[i]! - without.scores[i]!));
    return {
      candidates: n,
      m: request.m,
      patches: n * request.m,
      backend: backendName,
      workers,
      depth: models.depth,
      withoutCache: {
        seconds: round(without.seconds),
        patchesPerSecond: round(without.patches / without.seconds, 1),
      },
      withCache: {
        firstScoreSeconds: round(first.seconds),
        rescoreSeconds: round(again.seconds),
        patchesPerSecond: round(again.patches / again.seconds, 1),
        patchesFromCache: again.patchesFromCache,
        cacheBytes: stats.bytes,
        cacheBytesPerCandidate: stats.entries > 0 ? round(stats.bytes / stats.entries, 1) : 0,
        cacheMaxBytes,
        evictions: stats.evictions,
      },
      speedup: round(without.seconds / again.seconds, 2),
      maxAbsScoreDifference: maxDiff,
    };
  } finally {
    await cached.close();
  }
}
