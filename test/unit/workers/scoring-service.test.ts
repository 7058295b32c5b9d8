import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { initBackend, tf } from '../../../src/model/backend.js';
import { buildCnn } from '../../../src/model/cnn.js';
import { deserializeModel, serializeModel } from '../../../src/model/model-store.js';
import { scoreCandidatesBatch } from '../../../src/model/scoring.js';
import { fineTune } from '../../../src/model/fine-tune.js';
import { generatePatches, type AugmentationSpec } from '../../../src/core/patches.js';
import { createRng } from '../../../src/core/rng.js';
import type { ScoreOptions } from '../../../src/core/score.js';
import {
  NoModelError,
  ScoringService,
  type CandidateScoreResult,
  type ModelVersionArtifact,
  type ScoringInput,
} from '../../../src/workers/scoring-service.js';
import { InvalidCandidateError } from '../../../src/workers/candidate-batch.js';
import { WorkerClosedError, WorkerCrashedError } from '../../../src/workers/worker-host.js';

const M = 6;
const AUGMENTATION: AugmentationSpec = { flips: true, rotations: [0, 90] };
const SEED = 7;
const SCORE_OPTIONS: ScoreOptions = { lambdaEntropy: 0.5, lambdaDiversity: 0.5, majority: true, alpha: 0.5 };
const request = { m: M, augmentation: AUGMENTATION, seed: SEED, scoreOptions: SCORE_OPTIONS };

async function smallModel(seed: number, version: string): Promise<ModelVersionArtifact> {
  const model = buildCnn({
    height: 28,
    width: 28,
    channels: 1,
    numClasses: 2,
    seed,
    filters: [4, 8],
    denseUnits: 16,
  });
  const artifact = await serializeModel(model);
  model.dispose();
  return { version, ...artifact };
}

/** Random grey 28x28 images in the three pixel types, some with an ROI. */
function candidates(count: number, seed: number): ScoringInput[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, (_, i) => {
    const kind = i % 3;
    const n = 28 * 28;
    const data =
      kind === 0
        ? Uint8Array.from({ length: n }, () => rng.int(256))
        : kind === 1
          ? Uint16Array.from({ length: n }, () => rng.int(65536))
          : Float32Array.from({ length: n }, () => rng.next());
    const c: ScoringInput = { id: `cand-${seed}-${i}`, image: { data, shape: [28, 28, 1] } };
    if (i % 4 === 3) c.roi = { x: 4, y: 2, width: 20, height: 24 };
    return c;
  });
}

/** Scores on the main thread, straight through scoreCandidatesBatch, on the same patches. */
async function directScores(artifact: ModelVersionArtifact, cands: ScoringInput[]) {
  const model = await deserializeModel(artifact.topology, artifact.weightSpecs, artifact.weights);
  const per = M * 28 * 28;
  const all = new Float32Array(cands.length * per);
  cands.forEach((c, i) => {
    const img = c.image!;
    const p = generatePatches(
      img.data,
      { height: 28, width: 28, channels: 1 },
      { ...AUGMENTATION, m: M, size: 28 },
      { candidateId: c.id, seed: SEED, ...(c.roi ? { roi: c.roi } : {}) },
    );
    all.set(p, i * per);
  });
  const x = tf.tensor4d(all, [cands.length * M, 28, 28, 1]);
  const r = await scoreCandidatesBatch(model, x, M, SCORE_OPTIONS);
  x.dispose();
  model.dispose();
  return { r, patches: all };
}

function assertClose(actual: CandidateScoreResult[], expected: CandidateScoreResult[], tol: number): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    assert.equal(a.id, e.id);
    assert.equal(a.dominantClass, e.dominantClass, `dominant class of ${a.id}`);
    for (const k of ['score', 'entropy', 'diversity'] as const) {
      assert.ok(Math.abs(a[k] - e[k]) <= tol, `${k} of ${a.id}: ${a[k]} vs ${e[k]}`);
    }
    a.meanProbs.forEach((p, y) => assert.ok(Math.abs(p - e.meanProbs[y]!) <= tol, `meanProbs of ${a.id}`));
  });
}

describe('ScoringService', () => {
  let service: ScoringService;
  let v1: ModelVersionArtifact;
  let v2: ModelVersionArtifact;
  // The ROI is 24 high: size 28 makes every patch the model's 28x28.
  const spec = { ...request, augmentation: { ...AUGMENTATION, size: 28 } };

  before(async () => {
    await initBackend();
    [v1, v2] = await Promise.all([smallModel(1, 'v1'), smallModel(2, 'v2')]);
    service = await ScoringService.start({ workers: 1 });
  });

  after(async () => {
    await service.close();
  });

  it('refuses to score before a model version is set', async () => {
    await assert.rejects(service.score(candidates(2, 1), spec), NoModelError);
  });

  it('gives the scores scoreCandidatesBatch gives on the main thread, on the same patches (to 1e-5)', async () => {
    await service.setModel(v1);
    const cands = candidates(12, 3);
    const got = await service.score(cands, spec);
    const { r } = await directScores(v1, cands);
    assert.equal(got.version, 'v1');
    assert.equal(got.patches, 12 * M);
    assert.ok(got.seconds > 0);
    const expected = cands.map((c, i) => ({
      id: c.id,
      score: r.score[i]!,
      entropy: r.entropy[i]!,
      diversity: r.diversity[i]!,
      dominantClass: r.dominantClass[i]!,
      meanProbs: Array.from(r.meanProbs.subarray(i * 2, i * 2 + 2)),
    }));
    assertClose(got.results, expected, 1e-5);
  });

  it('takes ready patches (in any pixel type) as well as images', async () => {
    await service.setModel(v1);
    const cands = candidates(4, 4);
    const { patches } = await directScores(v1, cands);
    const withPatches: ScoringInput[] = cands.map((c, i) => ({
      id: c.id,
      patches: {
        data: patches.subarray(i * M * 784, (i + 1) * M * 784),
        shape: [M, 28, 28, 1],
      },
    }));
    const fromImages = await service.score(cands, spec);
    const fromPatches = await service.score(withPatches, spec);
    assertClose(fromPatches.results, fromImages.results, 1e-6);
    // uint8 patches are read as value / 255, like uint8 images.
    const bytes = Uint8Array.from({ length: M * 784 }, (_, k) => (k * 7) % 256);
    const asFloat = Float32Array.from(bytes, (b) => b / 255);
    const [a, b] = await Promise.all([
      service.score([{ id: 'u8', patches: { data: bytes, shape: [M, 28, 28, 1] } }], spec),
      service.score([{ id: 'u8', patches: { data: asFloat, shape: [M, 28, 28, 1] } }], spec),
    ]);
    assertClose(a.results, b.results, 1e-6);
  });

  it('gives the same scores for the same inputs (patch generation is deterministic)', async () => {
    await service.setModel(v1);
    const first = await service.score(candidates(9, 5), spec);
    const second = await service.score(candidates(9, 5), spec);
    assert.deepEqual(second.results, first.results);
    // Another patch seed samples other augmentations, so the scores move.
    const reseeded = await service.score(candidates(9, 5), { ...spec, seed: SEED + 1 });
    assert.notDeepEqual(reseeded.results, first.results);
  });

  it('a call after a larger one (the worker reuses its patch buffer) scores as it would alone', async () => {
    await service.setModel(v1);
    const large = candidates(15, 11);
    const small = candidates(2, 12);
    // Queued back to back on the one worker: the small call's patches overwrite only the start
    // of the buffer the large call filled.
    const [, got] = await Promise.all([service.score(large, spec), service.score(small, spec)]);
    const { r } = await directScores(v1, small);
    assert.deepEqual(
      got.results.map((x) => x.id),
      small.map((c) => c.id),
    );
    got.results.forEach((x, i) => assert.ok(Math.abs(x.score - r.score[i]!) <= 1e-5, `score of ${x.id}`));
  });

  it('swaps the model: calls made after setModel use the new version, earlier ones the old', async () => {
    await service.setModel(v1);
    const cands = candidates(6, 6);
    const before = service.score(cands, spec);
    const swap = service.setModel(v2);
    const afterSwap = service.score(cands, spec);
    assert.equal(service.version, 'v2');
    const [b, , a] = await Promise.all([before, swap, afterSwap]);
    assert.equal(b.version, 'v1');
    assert.equal(a.version, 'v2');
    assert.notDeepEqual(
      a.results.map((r) => r.score),
      b.results.map((r) => r.score),
    );
    const { r } = await directScores(v2, cands);
    a.results.forEach((res, i) => assert.ok(Math.abs(res.score - r.score[i]!) <= 1e-5));
  });

  it('keeps the served version when a new one cannot be loaded', async () => {
    await service.setModel(v1);
    const broken = { ...v2, version: 'broken', weights: v2.weights.subarray(0, 100) };
    await assert.rejects(service.setModel(broken), /cannot rebuild the model|weights/);
    assert.equal(service.version, 'v1');
    const r = await service.score(candidates(2, 7), spec);
    assert.equal(r.version, 'v1');
    // A worker restarted after that gets the version it served, not the broken one.
    await assert.rejects(service.crashWorkerForTesting(0, 'exit'), WorkerCrashedError);
    assert.equal((await service.score(candidates(2, 7), spec)).version, 'v1');
  });

  it('a worker that dies during a swap serves the new version once restarted', async () => {
    await service.setModel(v1);
    const crash = service.crashWorkerForTesting(0, 'throw');
    const swap = service.setModel(v2);
    await assert.rejects(crash, WorkerCrashedError);
    await assert.rejects(swap, WorkerCrashedError);
    assert.equal(service.version, 'v2');
    assert.equal((await service.score(candidates(2, 7), spec)).version, 'v2');
  });

  it('rejects an invalid candidate, naming it, before anything is queued', async () => {
    await service.setModel(v1);
    const bad = [
      ...candidates(2, 8),
      { id: 'short', image: { data: new Uint8Array(10), shape: [28, 28, 1] as [number, number, number] } },
    ];
    await assert.rejects(
      service.score(bad, spec),
      (e: unknown) => e instanceof InvalidCandidateError && e.candidateId === 'short',
    );
    // Patches of another size than the model's are refused in the worker, also by name.
    const wrongSize = [
      { id: 'big', image: { data: new Uint8Array(32 * 32), shape: [32, 32, 1] as [number, number, number] } },
    ];
    await assert.rejects(
      service.score(wrongSize, request),
      /candidate 'big'.*32x32x1, the model takes 28x28x1/,
    );
    assert.equal(service.stats().pendingPatches, 0);
  });

  it('rejects the pending call with WorkerCrashedError when a worker dies, and the next call works', async () => {
    await service.setModel(v1);
    const cands = candidates(5, 9);
    const good = await service.score(cands, spec);
    const restarts = service.stats().restarts;
    const crash = service.crashWorkerForTesting(0, 'throw');
    const pending = service.score(cands, spec);
    await assert.rejects(crash, WorkerCrashedError);
    await assert.rejects(pending, WorkerCrashedError);
    // The restarted worker gets the served model back before the next call.
    const again = await service.score(cands, spec);
    assert.equal(again.version, 'v1');
    assert.deepEqual(again.results, good.results);
    assert.equal(service.stats().restarts, restarts + 1);
  });
});

describe('ScoringService on the cpu backend', () => {
  it('reuses its patch buffer safely where tensors keep a reference to their input array', async () => {
    // The cpu backend keeps the array a tensor is made from instead of copying it (wasm copies),
    // so this is where a reused buffer would show if a call's tensors outlived it.
    const v1 = await smallModel(1, 'v1');
    const service = await ScoringService.start({ workers: 1, backend: 'cpu' });
    try {
      assert.equal(service.backend, 'cpu');
      await service.setModel(v1);
      const spec = { ...request, augmentation: { ...AUGMENTATION, size: 28 } };
      const large = candidates(10, 21);
      const small = candidates(3, 22);
      const [first, second] = await Promise.all([service.score(large, spec), service.score(small, spec)]);
      for (const [got, cands] of [
        [first, large],
        [second, small],
      ] as const) {
        const { r } = await directScores(v1, cands);
        got.results.forEach((x, i) => assert.ok(Math.abs(x.score - r.score[i]!) <= 1e-4, `score of ${x.id}`));
      }
    } finally {
      await service.close();
    }
  });
});

describe('ScoringService niceness', () => {
  it('lowers the priority of its worker threads only, not the caller (Linux)', async () => {
    const before = os.getPriority();
    const service = await ScoringService.start({ workers: 1, nice: 5 });
    try {
      if (process.platform === 'linux') assert.equal(service.nice, Math.max(before, 5));
      else assert.match((service.nice as { error: string }).error, /per process/);
      assert.equal(os.getPriority(), before, 'the calling thread keeps its priority');
    } finally {
      await service.close();
    }
  });

  it('refuses a niceness outside 0-19', async () => {
    await assert.rejects(ScoringService.start({ nice: 20 }), /nice must be an integer from 0 to 19/);
    await assert.rejects(ScoringService.start({ nice: -1 }), /nice must be/);
  });
});

describe('ScoringService with two workers', () => {
  it('splits a batch across the workers and gives the same results as one worker', async () => {
    await initBackend();
    const v1 = await smallModel(3, 'v1');
    const spec = { ...request, augmentation: { ...AUGMENTATION, size: 28 } };
    const cands = candidates(40, 10);
    const one = await ScoringService.start({ workers: 1 });
    // Small batches: 40 candidates become 10 batches over 2 workers, 2 in flight each.
    const two = await ScoringService.start({ workers: 2, maxPatchesPerBatch: 4 * M });
    try {
      assert.equal(two.workers, 2);
      await Promise.all([one.setModel(v1), two.setModel(v1)]);
      const [a, b] = await Promise.all([one.score(cands, spec), two.score(cands, spec)]);
      assert.equal(b.patches, 40 * M);
      assert.deepEqual(
        b.results.map((r) => r.id),
        cands.map((c) => c.id),
      );
      assertClose(b.results, a.results, 1e-6);
      assert.deepEqual(two.stats(), {
        workers: 2,
        queuedBatches: 0,
        inFlightBatches: 0,
        pendingPatches: 0,
        restarts: 0,
      });
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });
});

describe('ScoringService.close', () => {
  it('is idempotent; queued calls and later calls reject with WorkerClosedError', async () => {
    await initBackend();
    const service = await ScoringService.start({ maxInFlightPerWorker: 1 });
    await service.setModel(await smallModel(4, 'v1'));
    const spec = { ...request, augmentation: { ...AUGMENTATION, size: 28 } };
    const calls = [service.score(candidates(3, 11), spec), service.score(candidates(3, 12), spec)];
    const settled = Promise.allSettled(calls);
    const first = service.close();
    assert.equal(service.close(), first);
    await first;
    for (const s of await settled) {
      assert.equal(s.status, 'rejected');
      assert.ok((s as PromiseRejectedResult).reason instanceof WorkerClosedError);
    }
    await assert.rejects(service.score(candidates(1, 13), spec), WorkerClosedError);
    await service.close();
  });
});

describe('ScoringService with the feature cache (cheap rescoring)', () => {
  const spec = { ...request, augmentation: { ...AUGMENTATION, size: 28 } };
  const DEPTH = 2;

  /** v1, and v2 = v1 fine-tuned at DEPTH on a few labeled patches: same frozen layers. */
  async function versions(seed: number): Promise<[ModelVersionArtifact, ModelVersionArtifact]> {
    const v1 = await smallModel(seed, `v1-${seed}`);
    const model = await deserializeModel(v1.topology, v1.weightSpecs, v1.weights);
    const rng = createRng(seed);
    const count = 24;
    await fineTune(
      model,
      {
        patches: Float32Array.from({ length: count * 784 }, () => rng.next()),
        labels: Int32Array.from({ length: count }, (_, i) => i % 2),
        count,
        patchShape: [28, 28, 1],
      },
      { epochs: 2, batchSize: 8, seed, depth: DEPTH, learningRate: 1e-2 },
    );
    const v2 = { version: `v2-${seed}`, ...(await serializeModel(model)) };
    model.dispose();
    return [v1, v2];
  }

  function expectedOf(cands: ScoringInput[], r: Awaited<ReturnType<typeof directScores>>['r']) {
    return cands.map((c, i) => ({
      id: c.id,
      score: r.score[i]!,
      entropy: r.entropy[i]!,
      diversity: r.diversity[i]!,
      dominantClass: r.dominantClass[i]!,
      meanProbs: Array.from(r.meanProbs.subarray(i * 2, i * 2 + 2)),
    }));
  }

  it('rescores a version fine-tuned at that depth from cached features, as full scoring does (to 1e-5)', async () => {
    const [v1, v2] = await versions(11);
    const service = await ScoringService.start({
      workers: 2,
      cutDepth: DEPTH,
      featureCacheMaxBytes: 64 << 20,
    });
    try {
      const cands = candidates(20, 12);
      await service.setModel(v1);
      const first = await service.score(cands, spec);
      assert.equal(first.patchesFromCache, 0);
      assertClose(first.results, expectedOf(cands, (await directScores(v1, cands)).r), 1e-5);
      const stats = service.featureCacheStats()!;
      assert.equal(stats.entries, 20);
      // DEPTH 2 cuts at the flatten layer: 7 x 7 x 8 values per patch.
      assert.ok(stats.bytes >= 20 * M * 7 * 7 * 8 * 4, `cache holds ${stats.bytes} bytes`);

      await service.setModel(v2);
      const again = await service.score(cands, spec);
      assert.equal(again.version, 'v2-11');
      assert.equal(again.patchesFromCache, 20 * M);
      const { r } = await directScores(v2, cands);
      assertClose(again.results, expectedOf(cands, r), 1e-5);
      // v2 really differs from v1 (the cache did not just return v1's scores).
      assert.ok(again.results.some((x, i) => Math.abs(x.score - first.results[i]!.score) > 1e-4));

      // A mixed call: cached and new candidates together, results in the order given.
      const mixed = [...candidates(5, 13), ...cands.slice(0, 5)];
      const got = await service.score(mixed, spec);
      assert.equal(got.patchesFromCache, 5 * M);
      assertClose(got.results, expectedOf(mixed, (await directScores(v2, mixed)).r), 1e-5);
    } finally {
      await service.close();
    }
  });

  it('splits cached features into calls of at most maxFeatureBytesPerBatch, with the same scores', async () => {
    const [v1, v2] = await versions(31);
    const perCandidate = M * 7 * 7 * 8 * 4;
    // Two candidates' features per call: 20 candidates make 10 calls over the two workers.
    const service = await ScoringService.start({
      workers: 2,
      cutDepth: DEPTH,
      featureCacheMaxBytes: 64 << 20,
      maxFeatureBytesPerBatch: 2 * perCandidate,
    });
    try {
      const cands = candidates(20, 32);
      await service.setModel(v1);
      await service.score(cands, spec);
      await service.setModel(v2);
      const again = await service.score(cands, spec);
      assert.equal(again.patchesFromCache, 20 * M);
      assertClose(again.results, expectedOf(cands, (await directScores(v2, cands)).r), 1e-5);
    } finally {
      await service.close();
    }
  });

  it('stays within its byte bound, evicting the least recently used, and still scores right', async () => {
    const [v1, v2] = await versions(21);
    const perCandidate = M * 7 * 7 * 8 * 4;
    const bound = 6 * perCandidate + 6 * 400;
    const service = await ScoringService.start({ workers: 1, cutDepth: DEPTH, featureCacheMaxBytes: bound });
    try {
      const cands = candidates(15, 22);
      await service.setModel(v1);
      await service.score(cands, spec);
      const stats = service.featureCacheStats()!;
      assert.ok(stats.bytes <= bound, `${stats.bytes} > ${bound}`);
      assert.equal(stats.entries, 6);
      assert.equal(stats.evictions, 9);
      await service.setModel(v2);
      const again = await service.score(cands, spec);
      // The 6 most recent are rescored from the cache, the rest in full.
      assert.equal(again.patchesFromCache, 6 * M);
      assertClose(again.results, expectedOf(cands, (await directScores(v2, cands)).r), 1e-5);
      service.forget(cands.map((c) => c.id));
      assert.equal(service.featureCacheStats()!.bytes, 0);
    } finally {
      await service.close();
    }
  });

  it('empties the cache for a version with other frozen layers, and scores it in full', async () => {
    const [v1] = await versions(31);
    const other = await smallModel(32, 'other');
    const service = await ScoringService.start({
      workers: 1,
      cutDepth: DEPTH,
      featureCacheMaxBytes: 64 << 20,
    });
    try {
      const cands = candidates(8, 33);
      await service.setModel(v1);
      await service.score(cands, spec);
      await service.setModel(other);
      assert.equal(service.featureCacheStats()!.entries, 0);
      const got = await service.score(cands, spec);
      assert.equal(got.patchesFromCache, 0);
      assertClose(got.results, expectedOf(cands, (await directScores(other, cands)).r), 1e-5);
    } finally {
      await service.close();
    }
  });

  it('has no cache when every layer is fine-tuned', async () => {
    const service = await ScoringService.start({
      workers: 1,
      cutDepth: 'all',
      featureCacheMaxBytes: 64 << 20,
    });
    try {
      assert.equal(service.featureCacheStats(), undefined);
    } finally {
      await service.close();
    }
  });
});
