/**
 * Model identity on a real broker (issue 14): a model store that already holds promoted versions
 * of another M0 (the default `./acft-data/models` is reused from run to run) and a fresh state
 * directory, with ACFT_MODEL_M0_PATH pointing at a hospital's own 64x64x3 model:
 *
 * - the daemon serves that M0 (its id hashes its weights), says in one sentence that the store's
 *   other versions are not served, and scores valid 64x64x3 candidates;
 * - a 28x28x1 candidate is dead-lettered `shape-mismatch`, not `poison`;
 * - started again on that state with the default M0, it refuses to start, naming
 *   ACFT_MODEL_M0_PATH.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_M0_PATH } from '../../src/config/index.js';
import { initialModel } from '../../src/daemon/initial-model.js';
import { encodeCandidate } from '../../src/messages/index.js';
import { initBackend } from '../../src/model/backend.js';
import { buildCnn } from '../../src/model/cnn.js';
import { ModelStore, saveModelToDir } from '../../src/model/model-store.js';
import { FaultScenario } from '../support/fault-scenario.js';
import { useKafka } from '../support/kafka.js';

const kafka = useKafka();

describe('model identity on a real broker', { timeout: 600_000 }, () => {
  it("another M0 starts its own lineage: the store's other versions are not served, other shapes are dead-lettered", async () => {
    const s = new FaultScenario(kafka.brokers, 'identity', {
      ACFT_LIMITS_MAX_PAYLOAD_BYTES: String(1 << 20),
    });
    try {
      const dir = await s.dir;
      const createdAt = new Date().toISOString();
      await initBackend('cpu');
      // The store: a promoted 28x28x1 version of the default M0's lineage, and one from before
      // lineages were recorded.
      const old = await initialModel(DEFAULT_M0_PATH, 2, 1);
      const store = new ModelStore(path.join(dir, 'models'));
      await store.saveArtifact(old.artifact, {
        version: 'mv-old-lineage',
        parent: old.version,
        createdAt,
        info: { status: 'promoted', m0: old.version, holdoutAuc: 0.9 },
      });
      await store.saveArtifact(old.artifact, {
        version: 'mv-unrecorded',
        parent: null,
        createdAt,
        info: { status: 'promoted', holdoutAuc: 0.9 },
      });
      // The hospital's own M0: 64x64x3.
      const cadPath = path.join(dir, 'cad64');
      const cad = buildCnn({ height: 64, width: 64, channels: 3, numClasses: 2, seed: 3 });
      await saveModelToDir(cad, cadPath, { version: 'cad64', parent: null, createdAt, info: {} });
      cad.dispose();
      const cadM0 = await initialModel(cadPath, 2, 1);
      assert.notEqual(cadM0.version, old.version);

      const d1 = await s.startDaemon({ ACFT_MODEL_M0_PATH: cadPath });
      const foreign = await d1.waitForEvent('foreign-versions');
      assert.equal(foreign['count'], 2);
      assert.match(String(foreign['msg']), /ACFT_MODEL_M0_PATH=.*cad64 \(M0 m0-[0-9a-f]{12}\)/);
      assert.match(String(foreign['msg']), /they are not served/);
      const serving = await d1.waitForEvent('serving');
      assert.equal(serving['version'], cadM0.version, "this M0, not the store's newest version");
      await d1.waitForEvent('started');
      await s.collect();

      const rgb = (id: string, seed: number) => ({
        key: id,
        value: encodeCandidate({
          id,
          sourceRefs: { study: `st-${id}` },
          time: new Date().toISOString(),
          content: {
            kind: 'image',
            dtype: 'uint8',
            shape: [64, 64, 3],
            data: Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 31 + seed * 17) % 251),
          },
        }),
      });
      await s.send(s.topics.candidates, [rgb('cad-1', 1), rgb('cad-2', 2), rgb('cad-3', 3)]);
      const small = await s.sendCandidates(0, 2);
      await s.waitFor('two shape-mismatch dead letters', () => s.dead.length >= 2, 60_000, d1);
      assert.deepEqual(
        s.dead.map((x) => x.reason),
        ['shape-mismatch', 'shape-mismatch'],
      );
      assert.match(s.dead[0]!.error, /its patches are 28x28x1, the model .* takes 64x64x3/);
      const url = await d1.url();
      // The three 64x64x3 candidates scored, m = 4 patches each.
      for (;;) {
        const text = await (await fetch(`${url}/metrics`)).text();
        const scored = Number(/^acft_patches_scored_total (\S+)$/m.exec(text)?.[1] ?? 0);
        if (scored >= 3 * 4) break;
        assert.ok(d1.running, d1.tail());
        await new Promise((r) => setTimeout(r, 200));
      }
      await s.waitAllCommitted();
      assert.equal((await d1.stop()).code, 0);
      const counts = await s.verify({ discarded: small });
      assert.equal(counts.accounting.candidatesAccounted, 5);

      // The same state with the default M0: refused, in one sentence naming ACFT_MODEL_M0_PATH.
      const d2 = await s.startDaemon();
      const exit = await d2.exited;
      assert.equal(exit.code, 1);
      const stderr = d2.stderr.join('');
      assert.match(stderr, /was built on M0 m0-[0-9a-f]{12}, not on ACFT_MODEL_M0_PATH=/);
      s.report('another M0 in the same store', counts, { refusedStart: true });
    } finally {
      await s.cleanup();
    }
  });
});
