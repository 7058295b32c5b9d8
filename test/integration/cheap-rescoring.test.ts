/**
 * Cheap rescoring in the daemon, on a real broker: with a fine-tuning depth of 1 the window trains
 * the head only, the promoted version's frozen layers are M0's bit for bit, and the full-pool
 * rescore it starts runs from the cached features (counted by the metrics) on every scoring worker.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { DEFAULT_M0_PATH, resolveConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { initialModel } from '../../src/daemon/initial-model.js';
import { loadFashionMnist, type ImageSet } from '../../src/data/image-set.js';
import { buildTask, type Task } from '../../src/data/task.js';
import {
  encodeCandidate,
  encodeFeedback,
  parseModelVersion,
  type ModelVersionMessage,
} from '../../src/messages/index.js';
import { initBackend } from '../../src/model/backend.js';
import { trunkFingerprint } from '../../src/model/fine-tune-depth.js';
import { loadArtifactFromPath } from '../../src/model/model-store.js';
import { waitFor as waitUntil } from '../support/acft-instance.js';
import { daemonKafkaConfig, uniqueTopic, useKafka } from '../support/kafka.js';

const kafka = useKafka();
let set: ImageSet;
let task: Task;
let dir: string;

before(async () => {
  set = await loadFashionMnist();
  task = buildTask(set, { positive: [6], negative: [0, 2, 4], ratio: 3, seed: 1 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'acft-cheap-rescoring-'));
  await initBackend();
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function metric(registry: Registry, name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (m === undefined) throw new Error(`no metric ${name}`);
  return (await m.get()).values.reduce((s, v) => s + v.value, 0);
}

/** The shared wait, with this test's longer bound (training on 2 cores). */
const waitFor = (what: string, predicate: () => boolean | Promise<boolean>): Promise<void> =>
  waitUntil(what, predicate, 180_000);

describe('cheap rescoring on a real broker', { timeout: 300_000 }, () => {
  it('fine-tunes the head only, keeps M0 below it, and rescores the pool from cached features', async () => {
    const name = uniqueTopic('cheap');
    const config = resolveConfig({
      env: {},
      overrides: {
        kafka: daemonKafkaConfig(kafka.brokers, name),
        selection: { b: 6 },
        // Two workers, so the cached rescoring is spread over both.
        scoring: { m: 4, workers: 2, microBatchMaxWaitMs: 20 },
        // Tolerance 1: the version is promoted whatever its hold-out AUC, so that it is served.
        training: {
          epochs: 1,
          fineTuneDepth: 1,
          holdoutShare: 0.25,
          promotionTolerance: 1,
          promotionMinAuc: 0,
        },
        model: { storeDir: path.join(dir, name, 'models') },
        state: { checkpointDir: path.join(dir, name, 'state') },
        http: { port: 0 },
        log: { level: 'silent' },
      },
    });
    const registry = new Registry();
    const daemon = await Daemon.start({
      config,
      logger: pino({ level: 'silent' }),
      registry,
      onFatal: (e) => assert.fail(e),
    });
    const producer = await kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    const versions: ModelVersionMessage[] = [];
    const watcher = await kafka.consumer({ groupId: `${name}-watch`, maxWaitTimeInMs: 100 });
    try {
      await watcher.subscribe({ topics: [config.kafka.topics.modelVersions], fromBeginning: true });
      await watcher.run({
        eachMessage: ({ message }) => {
          const p = parseModelVersion(message.value);
          if (p.ok) versions.push(p.value);
          return Promise.resolve();
        },
      });
      const n = 40;
      const size = 28 * 28;
      const candidates = Array.from({ length: n }, (_, pos) => {
        const index = task.pool.indices[pos]!;
        return {
          id: task.pool.ids[pos]!,
          label: task.pool.labels[pos]!,
          data: set.images.slice(index * size, (index + 1) * size),
        };
      });
      await producer.send({
        topic: config.kafka.topics.candidates,
        messages: candidates.map((c) => ({
          key: c.id,
          value: encodeCandidate({
            id: c.id,
            sourceRefs: { study: `st-${c.id}` },
            time: new Date().toISOString(),
            content: { kind: 'image', dtype: 'uint8', shape: [28, 28, 1], data: c.data },
          }),
        })),
      });
      await waitFor('every candidate scored', () => daemon.status().scored === n);
      // Every pooled candidate's features at the cut are cached (and counted).
      await waitFor(
        'the cache to hold the pool',
        async () => (await metric(registry, 'acft_feature_cache_candidates')) >= n,
      );
      assert.ok((await metric(registry, 'acft_feature_cache_bytes')) >= n * 4 * 64 * 4);
      assert.equal(await metric(registry, 'acft_patches_from_feature_cache_total'), 0);

      // Unsolicited labels (a closed-loop CAD): enough for a window of b.
      await producer.send({
        topic: config.kafka.topics.feedback,
        messages: candidates.slice(0, 16).map((c) => ({
          key: c.id,
          value: encodeFeedback({
            candidateId: c.id,
            label: c.label,
            annotatorId: 'cad',
            time: new Date().toISOString(),
          }),
        })),
      });
      await waitFor('a promoted version', () => versions.some((v) => v.status === 'promoted'));
      const version = versions.find((v) => v.status === 'promoted')!;
      await waitFor('the version to be served', () => daemon.status().servedVersion === version.version);
      await waitFor(
        'the pool to be rescored from the cache',
        async () => (await metric(registry, 'acft_patches_from_feature_cache_total')) >= (n - 16) * 4,
      );

      // The version's layers below the head are M0's, bit for bit.
      const m0 = await initialModel(DEFAULT_M0_PATH, 2, config.training.seed);
      const trained = await loadArtifactFromPath(version.artifact.location, version.artifact.sha256);
      const before = trunkFingerprint(m0.artifact, 1);
      const afterTraining = trunkFingerprint(trained.artifact, 1);
      assert.ok(before !== null && afterTraining !== null);
      assert.equal(afterTraining.cut.cutLayer, 'features');
      assert.equal(afterTraining.fingerprint, before.fingerprint);
      // ... and the head did change.
      assert.notDeepEqual(trained.artifact.weights, m0.artifact.weights);
    } finally {
      // The producer and the watcher are the fixture's: it disconnects them.
      await daemon.close();
    }
  });
});
