import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../../src/model/backend.js';
import { buildCnn, outputClasses } from '../../../src/model/cnn.js';
import { deserializeModel, serializeModel, sha256Hex } from '../../../src/model/model-store.js';
import type { ModelArtifact } from '../../../src/workers/protocol.js';
import { createRng } from '../../../src/core/rng.js';
import type { ScoringInput } from '../../../src/workers/candidate-batch.js';
import {
  TrainingService,
  type LabeledCandidates,
  type TrainingJob,
  type TrainingResult,
} from '../../../src/workers/training-service.js';
import { WorkerClosedError, WorkerCrashedError, WorkerTaskError } from '../../../src/workers/worker-host.js';

async function smallModel(seed: number, numClasses: number): Promise<ModelArtifact> {
  const model = buildCnn({
    height: 28,
    width: 28,
    channels: 1,
    numClasses,
    seed,
    filters: [4, 8],
    denseUnits: 16,
  });
  const artifact = await serializeModel(model);
  model.dispose();
  return artifact;
}

/**
 * A separable toy task: class 1 is bright in the top half, class 0 in the bottom half, with noise.
 * (The augmentation flips horizontally, which keeps top and bottom.)
 */
function toyTask(count: number, seed: number): LabeledCandidates {
  const rng = createRng(seed);
  const candidates: ScoringInput[] = [];
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const y = i % 2;
    const data = new Uint8Array(28 * 28);
    for (let r = 0; r < 28; r++) {
      const bright = r < 14 === (y === 1);
      for (let c = 0; c < 28; c++) data[r * 28 + c] = Math.min(255, (bright ? 150 : 30) + rng.int(100));
    }
    candidates.push({ id: `toy-${seed}-${i}`, image: { data, shape: [28, 28, 1] } });
    labels.push(y);
  }
  return { candidates, labels };
}

/** Largest lateness of a 10 ms interval timer on this thread while `work` runs. */
async function maxEventLoopLag<T>(work: () => Promise<T>): Promise<{ value: T; lagMs: number }> {
  let lagMs = 0;
  let expected = performance.now() + 10;
  const timer = setInterval(() => {
    const now = performance.now();
    lagMs = Math.max(lagMs, now - expected);
    expected = now + 10;
  }, 10);
  try {
    const value = await work();
    return { value, lagMs };
  } finally {
    clearInterval(timer);
  }
}

const base = {
  m: 4,
  augmentation: { flips: true, translations: [-0.1, 0, 0.1] },
  seed: 3,
  numClasses: 2,
} as const;

describe('TrainingService', () => {
  let service: TrainingService;
  let parent: ModelArtifact;
  let result: TrainingResult;
  let lagMs: number;
  let wallSeconds: number;

  before(async () => {
    await initBackend();
    parent = await smallModel(1, 2);
    service = await TrainingService.start();
    const job: TrainingJob = {
      ...base,
      parent,
      startFrom: 'previous',
      // About 8,000 patch updates: a few seconds on one wasm thread.
      train: toyTask(200, 1),
      holdout: toyTask(40, 2),
      fineTune: { epochs: 10, batchSize: 32, learningRate: 1e-3 },
    };
    const t0 = performance.now();
    ({ value: result, lagMs } = await maxEventLoopLag(() => service.train(job)));
    wallSeconds = (performance.now() - t0) / 1000;
  });

  after(async () => {
    await service.close();
  });

  it('keeps the main event loop free while a job of a few seconds trains', () => {
    assert.ok(wallSeconds > 1.5, `the job should take a while to prove anything (took ${wallSeconds} s)`);
    assert.ok(
      lagMs < 200,
      `max event-loop lag ${lagMs.toFixed(1)} ms during ${wallSeconds.toFixed(1)} s of training`,
    );
  });

  it('returns a model with a high holdout AUC on a separable task, and the parent baseline', () => {
    assert.equal(result.trainPatches, 200 * base.m);
    assert.equal(result.epochLosses.length, 10);
    assert.ok(result.epochLosses.at(-1)! < result.epochLosses[0]!, 'the loss goes down');
    assert.ok(result.holdoutAuc !== null && result.holdoutAuc > 0.95, `holdout AUC ${result.holdoutAuc}`);
    assert.ok(
      result.parentHoldoutAuc !== null && result.parentHoldoutAuc >= 0 && result.parentHoldoutAuc <= 1,
    );
    assert.ok(result.seconds > 0);
  });

  it('returns the artifact with the sha256 of its weights, loadable and different from the parent', async () => {
    const { artifact } = result;
    assert.match(artifact.sha256, /^[0-9a-f]{64}$/);
    assert.equal(artifact.sha256, sha256Hex(artifact.weights));
    assert.notEqual(artifact.sha256, sha256Hex(parent.weights));
    const model = await deserializeModel(artifact.topology, artifact.weightSpecs, artifact.weights);
    assert.equal(outputClasses(model), 2);
    model.dispose();
  });

  it('is deterministic: the same job gives the same weights', async () => {
    const job: TrainingJob = {
      ...base,
      parent,
      startFrom: 'previous',
      train: toyTask(20, 5),
      holdout: toyTask(10, 6),
      fineTune: { epochs: 1, batchSize: 16 },
    };
    const [a, b] = [await service.train(job), await service.train(job)];
    assert.equal(a.artifact.sha256, b.artifact.sha256);
  });

  it("starts from M0 with a new seeded head when M0's classes differ; the parent is still the baseline", async () => {
    const m0 = await smallModel(9, 3);
    const job: TrainingJob = {
      ...base,
      parent,
      m0,
      startFrom: 'M0',
      train: toyTask(40, 7),
      holdout: toyTask(10, 8),
      fineTune: { epochs: 2, batchSize: 32 },
    };
    const r = await service.train(job);
    const model = await deserializeModel(r.artifact.topology, r.artifact.weightSpecs, r.artifact.weights);
    assert.equal(outputClasses(model), 2);
    model.dispose();
    assert.ok(r.holdoutAuc !== null);
    assert.ok(r.parentHoldoutAuc !== null);
    assert.equal((await service.train(job)).artifact.sha256, r.artifact.sha256, 'the head is seeded');
  });

  it('reports a null AUC when the holdout lacks a class', async () => {
    const holdout = toyTask(10, 9);
    const onlyZeros: LabeledCandidates = {
      candidates: holdout.candidates.filter((_, i) => holdout.labels[i] === 0),
      labels: holdout.labels.filter((y) => y === 0),
    };
    const r = await service.train({
      ...base,
      parent,
      startFrom: 'previous',
      train: toyTask(8, 10),
      holdout: onlyZeros,
      fineTune: { epochs: 1 },
    });
    assert.equal(r.holdoutAuc, null);
    assert.equal(r.parentHoldoutAuc, null);
  });

  it('rejects bad jobs clearly', async () => {
    const job: TrainingJob = {
      ...base,
      parent,
      startFrom: 'previous',
      train: toyTask(4, 11),
      holdout: toyTask(4, 12),
    };
    await assert.rejects(service.train({ ...job, train: { ...job.train, labels: [0, 1, 2, 0] } }), /label 2/);
    await assert.rejects(service.train({ ...job, startFrom: 'M0' }), /needs m0/);
    await assert.rejects(
      service.train({ ...job, numClasses: 3 }),
      (e: unknown) => e instanceof WorkerTaskError && /predicts 2 classes, the job has 3/.test(e.message),
    );
  });

  it('rejects the pending job with WorkerCrashedError when the worker dies, and the next job works', async () => {
    const job: TrainingJob = {
      ...base,
      parent,
      startFrom: 'previous',
      train: toyTask(8, 13),
      holdout: toyTask(8, 14),
      fineTune: { epochs: 1 },
    };
    const crash = service.crashWorkerForTesting('exit');
    const pending = service.train(job);
    await assert.rejects(crash, WorkerCrashedError);
    await assert.rejects(pending, WorkerCrashedError);
    const r = await service.train(job);
    assert.match(r.artifact.sha256, /^[0-9a-f]{64}$/);
  });

  it('leaves no tensors behind on the main thread', () => {
    // The main thread only packs and unpacks: tfjs there is untouched by the service.
    assert.equal(tf.memory().numTensors, 0);
  });
});

describe('TrainingService.close', () => {
  it('is idempotent and abandons a job in progress with WorkerClosedError', async () => {
    const service = await TrainingService.start();
    const parent = await smallModel(2, 2);
    const job = service.train({
      ...base,
      parent,
      startFrom: 'previous',
      train: toyTask(40, 15),
      holdout: toyTask(10, 16),
      fineTune: { epochs: 20 },
    });
    const rejected = assert.rejects(job, WorkerClosedError);
    const first = service.close();
    assert.equal(service.close(), first);
    await first;
    await rejected;
    await assert.rejects(
      service.train({ ...base, parent, startFrom: 'previous', train: toyTask(2, 1), holdout: toyTask(2, 2) }),
      WorkerClosedError,
    );
  });
});
