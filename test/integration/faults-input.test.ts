/**
 * Fault tests, hostile input (issue 5, scenarios 4, 5, 6 and 9), against `acft run` as a child
 * process on a real broker:
 * - duplicate feedback across a SIGKILL and restart, conflicting labels (two annotators; one
 *   annotator changing their mind);
 * - feedback before its candidate, and feedback for a candidate that never comes;
 * - malformed JSON, schema-invalid fields (NaN, wrong dtype, wrong shape, unknown class), an
 *   oversized payload, over-limit patches, and a candidate that throws inside scoring (poison):
 *   each dead-lettered with its reason, the other partitions unaffected, no restart loop;
 * - corrupt model artifacts (truncated weights, wrong sha256, NaN weights) on model-versions:
 *   refused, the last good version keeps serving, the error reported.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { initialModel } from '../../src/daemon/initial-model.js';
import { encodeModelVersion } from '../../src/messages/index.js';
import { initBackend } from '../../src/model/backend.js';
import { saveArtifactToDir } from '../../src/model/model-store.js';
import { FaultScenario, taskData } from '../support/fault-scenario.js';
import { useKafka } from '../support/kafka.js';
import { patience } from '../support/patience.js';

const kafka = useKafka();

const b64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

function candidateJson(
  id: string,
  tensor: Record<string, unknown>,
  field: 'image' | 'patches' = 'image',
): string {
  return JSON.stringify({
    schema: 'acft.candidate/v1',
    id,
    sourceRefs: { study: `st-${id}` },
    time: new Date().toISOString(),
    [field]: tensor,
  });
}

async function readyDetails(url: string): Promise<{ ready: boolean; details: Record<string, unknown> }> {
  return (await (await fetch(`${url}/readyz`)).json()) as {
    ready: boolean;
    details: Record<string, unknown>;
  };
}

describe('hostile input on a real broker', { timeout: 600_000 }, () => {
  it('dead-letters each bad message with its reason, resolves feedback, and survives a restart', async () => {
    const s = new FaultScenario(kafka.brokers, 'input', { ACFT_SELECTION_B: '50' });
    try {
      const d1 = await s.startDaemon();
      await d1.waitForEvent('started');
      await s.collect();
      const { set, task } = await taskData();
      const t = s.topics;

      // Scenario 5: feedback before its candidate, and for a candidate that never comes.
      const early = task.pool.ids[0]!;
      await s.sendFeedback([{ candidateId: early, label: task.pool.labels[0]!, annotatorId: 'cad' }]);
      await s.send(t.feedback, [
        {
          key: 'never-comes-1',
          value: JSON.stringify({
            schema: 'acft.feedback/v1',
            candidateId: 'never-comes-1',
            label: 1,
            annotatorId: 'cad',
            time: new Date().toISOString(),
          }),
        },
      ]);
      const ids = await s.sendCandidates(0, 36);

      // Scenario 6: bad input, spread over the partitions by key.
      const img = set.images.slice(0, 28 * 28);
      const nanData = new Float32Array(28 * 28).fill(0.5);
      nanData[3] = NaN;
      const bad: { key: string; value: string }[] = [
        { key: 'bad-json', value: '{"schema": "acft.candidate/v1", ' },
        {
          key: 'bad-nan-literal',
          value: candidateJson('bad-nan-literal', { dtype: 'uint8', shape: [28, 28, 1], data: 'x' }).replace(
            '"x"',
            'NaN',
          ),
        },
        {
          key: 'bad-nan',
          value: candidateJson('bad-nan', {
            dtype: 'float32',
            shape: [28, 28, 1],
            data: b64(new Uint8Array(nanData.buffer)),
          }),
        },
        {
          key: 'bad-dtype',
          value: candidateJson('bad-dtype', { dtype: 'int64', shape: [28, 28, 1], data: b64(img) }),
        },
        {
          key: 'bad-shape',
          value: candidateJson('bad-shape', { dtype: 'uint8', shape: [28, 28], data: b64(img) }),
        },
        { key: 'bad-oversized', value: 'x'.repeat(64 * 1024 + 1) },
        {
          key: 'bad-patches',
          value: candidateJson(
            'bad-patches',
            { dtype: 'uint8', shape: [65, 2, 2, 1], data: b64(new Uint8Array(65 * 4)) },
            'patches',
          ),
        },
        // Valid on the wire, but its 16x16 patches do not fit the 28x28 model: refused at intake.
        {
          key: 'bad-shape-mismatch',
          value: candidateJson(
            'bad-shape-mismatch',
            { dtype: 'uint8', shape: [4, 16, 16, 1], data: b64(new Uint8Array(4 * 256).fill(7)) },
            'patches',
          ),
        },
      ];
      await s.send(t.candidates, bad);
      // Valid messages without a key: scale-out could not route them, so they are refused.
      const keyless = candidateJson('keyless-1', { dtype: 'uint8', shape: [28, 28, 1], data: b64(img) });
      await s.send(t.candidates, [{ key: null, value: keyless }]);
      await s.send(t.feedback, [
        {
          key: null,
          value: JSON.stringify({
            schema: 'acft.feedback/v1',
            candidateId: ids[0],
            label: 0,
            annotatorId: 'cad',
            time: new Date().toISOString(),
          }),
        },
      ]);
      // An unknown class (the task has 2).
      await s.send(t.feedback, [
        {
          key: ids[1]!,
          value: JSON.stringify({
            schema: 'acft.feedback/v1',
            candidateId: ids[1],
            label: 7,
            annotatorId: 'cad',
            time: new Date().toISOString(),
          }),
        },
      ]);

      // Scenario 4: labels, then a SIGKILL once they are checkpointed, then the same again.
      const first = ids
        .slice(2, 8)
        .map((id) => ({ candidateId: id, label: s.sent.get(id)!, annotatorId: 'dr-a' }));
      await s.sendFeedback(first);
      const budget = patience(60_000);
      for (;;) {
        const snap = await s.checkpoint();
        if (snap && snap.labels.records.length >= 7) break;
        assert.ok(!budget.expired(), `labels not checkpointed:\n${d1.tail()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await s.waitFor('every dead letter', () => s.dead.length >= 12, 60_000, d1);
      assert.equal(d1.events('started').length, 1, 'no restart loop');
      const digest = await s.digest();
      d1.kill('SIGKILL');
      await d1.exited;

      const d2 = await s.startDaemon();
      await FaultScenario.assertRestored(d2, digest);
      await d2.waitForEvent('started');
      // Duplicates across the restart, a second annotator who disagrees, and a changed mind.
      const flip = (id: string) => 1 - s.sent.get(id)!;
      await s.sendFeedback([
        ...first,
        { candidateId: ids[2]!, label: flip(ids[2]!), annotatorId: 'dr-b' },
        { candidateId: ids[3]!, label: flip(ids[3]!), annotatorId: 'dr-a' },
      ]);
      const url = await d2.url();
      await s.waitAllCommitted();
      const details = (await readyDetails(url)).details;
      assert.equal(details['labeled'], 7, 'the 7 labeled candidates, none twice');
      assert.equal(d2.events('started').length, 1, 'no restart loop');
      assert.ok(d2.running);
      const exit = await d2.stop();
      assert.equal(exit.code, 0);
      const snap = (await s.checkpoint())!;
      const record = (id: string) => snap.labels.records.find((r) => r.id === id)!;
      // dr-a's later label replaces theirs; with a tie between two annotators the most recent wins.
      assert.equal(record(ids[3]!).label, flip(ids[3]!));
      assert.equal(record(ids[2]!).votes.length, 2);
      const counts = await s.verify({
        expectedDead: {
          'invalid-json': 2,
          'tensor-data': 1,
          'tensor-dtype': 1,
          'tensor-shape': 1,
          oversized: 1,
          'limit-exceeded': 1,
          'shape-mismatch': 1,
          'key-mismatch': 2,
          'unknown-class': 1,
          'unknown-candidate': 1,
        },
      });
      assert.equal(counts.candidatesSent, 36);
      s.report('hostile input + duplicate/conflicting feedback across SIGKILL', counts);
    } finally {
      await s.cleanup();
    }
  });

  it('refuses corrupt model artifacts and keeps serving the last good version', async () => {
    const s = new FaultScenario(kafka.brokers, 'artifact');
    try {
      const d = await s.startDaemon();
      await d.waitForEvent('started');
      const url = await d.url();
      const served = (await readyDetails(url)).details['servedVersion'];
      await initBackend('cpu');
      // The daemon's M0: the default model, the task's 2 classes, the default training seed.
      const m0 = await initialModel('models/m0-digits', 2, 1);
      const dir = path.join(await s.dir, 'published');
      await mkdir(dir, { recursive: true });
      const good = await saveArtifactToDir(m0.artifact, path.join(dir, 'good'), {
        version: 'mv-good',
        parent: null,
        createdAt: new Date().toISOString(),
        info: {},
      });
      // Truncated weights (the model.json checksum no longer matches either).
      await mkdir(path.join(dir, 'truncated'));
      await copyFile(path.join(good.dir, 'model.json'), path.join(dir, 'truncated', 'model.json'));
      await copyFile(path.join(good.dir, 'weights.bin'), path.join(dir, 'truncated', 'weights.bin'));
      await truncate(path.join(dir, 'truncated', 'weights.bin'), 1000);
      // NaN weights, with a checksum that matches them.
      const nan = new Uint8Array(m0.artifact.weights);
      new Float32Array(nan.buffer, nan.byteOffset, 4).fill(NaN);
      const bad = await saveArtifactToDir({ ...m0.artifact, weights: nan }, path.join(dir, 'nan'), {
        version: 'mv-nan',
        parent: null,
        createdAt: new Date().toISOString(),
        info: {},
      });
      const message = (version: string, location: string, sha256: string, lineage = m0.version) => ({
        key: version,
        value: encodeModelVersion({
          version,
          parent: null,
          m0: lineage,
          strategy: 'ACFT(HQ)',
          status: 'promoted',
          counts: { q: 1, h: 0, labeled: 1, holdout: 0 },
          trainedOn: ['c-1'],
          metrics: { holdoutAuc: null, parentHoldoutAuc: null },
          artifact: { location, sha256 },
          windowStartedAt: new Date().toISOString(),
          time: new Date().toISOString(),
        }),
      });
      const truncatedSha = JSON.parse(await readFile(path.join(dir, 'truncated', 'model.json'), 'utf8')) as {
        acft: { sha256: string };
      };
      await s.send(s.topics.modelVersions, [
        message('mv-truncated', path.join(dir, 'truncated'), truncatedSha.acft.sha256),
        message('mv-wrong-sha', good.dir, 'f'.repeat(64)),
        message('mv-nan', bad.dir, bad.sha256),
        // An intact artifact, of another M0's lineage.
        message('mv-foreign', good.dir, good.sha256, 'm0-000000000000'),
      ]);
      await s.waitFor('four refusals', () => d.events('model-refused').length >= 4, 60_000, d);
      const refused = d.events('model-refused').map((l) => l['version']);
      assert.deepEqual(refused.sort(), ['mv-foreign', 'mv-nan', 'mv-truncated', 'mv-wrong-sha']);
      assert.deepEqual(
        d
          .events('model-refused')
          .filter((l) => l['reason'] === 'lineage')
          .map((l) => l['version']),
        ['mv-foreign'],
        'refused for its lineage; the others for their artifacts',
      );
      const after = await readyDetails(url);
      assert.equal(after.details['servedVersion'], served, 'the last good version keeps serving');
      assert.ok(after.ready);
      // A good one is taken: the refusals were about the artifacts.
      await s.send(s.topics.modelVersions, [
        message(`mv-ok-${randomUUID().slice(0, 8)}`, good.dir, good.sha256),
      ]);
      await s.waitFor('the good version served', () => d.events('serving').length >= 2, 60_000, d);
      assert.match(String(d.events('serving').at(-1)!['version']), /^mv-ok-/);
      await writeFile(path.join(dir, 'done'), '');
      s.report('corrupt model artifacts', s.counts(), {
        refused: refused.length,
        served: 'last good, then the valid one',
      });
    } finally {
      await s.cleanup();
    }
  });
});
