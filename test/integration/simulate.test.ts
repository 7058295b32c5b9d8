/**
 * The hospital simulator against a real Kafka broker: candidates stream in and parse, labeling
 * requests (produced here as the daemon would) get the oracle's answers with their request ids,
 * a closed-loop share is labeled unasked, and model versions are measured (or reported as
 * unreadable).
 *
 *   node --import tsx --test test/integration/simulate.test.ts
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KafkaMessage } from 'kafkajs';
import {
  DEFAULT_MESSAGE_LIMITS,
  encodeLabelingRequest,
  encodeModelVersion,
  parseCandidate,
  parseFeedback,
  type Candidate,
  type FeedbackMessage,
  type ModelVersionMessage,
} from '../../src/messages/index.js';
import { initBackend } from '../../src/model/backend.js';
import { buildCnn } from '../../src/model/cnn.js';
import { saveModelToDir, type StoredModel } from '../../src/model/model-store.js';
import { isUnsolicited } from '../../src/simulate/oracle.js';
import type { VersionReport } from '../../src/simulate/report.js';
import { startSimulator, type Simulator } from '../../src/simulate/simulator.js';
import { createTopics, uniqueTopic, useKafka } from '../support/kafka.js';
import { patience } from '../support/patience.js';

const TOTAL = 30;
const SEED = 3;
const UNSOLICITED = 0.3;

async function waitFor(what: string, condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const budget = patience(timeoutMs);
  while (!condition()) {
    if (budget.expired()) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// At file level: its after() (disconnect every client, stop the broker) runs after the suite's.
const kafka = useKafka();

describe('acft simulate on a real broker', { timeout: 240_000 }, () => {
  const topics = {
    candidates: uniqueTopic('it-sim-candidates'),
    feedback: uniqueTopic('it-sim-feedback'),
    labelingRequests: uniqueTopic('it-sim-requests'),
    modelVersions: uniqueTopic('it-sim-versions'),
  };
  const groupId = uniqueTopic('it-sim-group');
  let dir = '';
  let stored: StoredModel | undefined;
  let sim: Simulator | undefined;
  const reports: VersionReport[] = [];
  const candidates: { key: string | undefined; candidate: Candidate }[] = [];
  const feedback: { key: string | undefined; message: FeedbackMessage }[] = [];
  const unparsed: string[] = [];

  before(async () => {
    await createTopics(kafka.brokers, [topics.candidates, topics.feedback], 3);
    await createTopics(kafka.brokers, [topics.labelingRequests, topics.modelVersions], 1);
    await initBackend();
    dir = await mkdtemp(path.join(os.tmpdir(), 'acft-it-simulate-'));
    const model = buildCnn({
      height: 28,
      width: 28,
      channels: 1,
      numClasses: 2,
      filters: [4, 8],
      denseUnits: 8,
      seed: 1,
    });
    try {
      stored = await saveModelToDir(model, path.join(dir, 'v1'), {
        version: 'v1',
        parent: null,
        createdAt: new Date().toISOString(),
        info: {},
      });
    } finally {
      model.dispose();
    }

    const watch = await kafka.consumer({ groupId: uniqueTopic('it-sim-watch'), maxWaitTimeInMs: 250 });
    await watch.subscribe({ topics: [topics.candidates, topics.feedback], fromBeginning: true });
    await watch.run({
      eachMessage: ({ topic, message }: { topic: string; message: KafkaMessage }) => {
        const key = message.key?.toString();
        if (topic === topics.candidates) {
          const c = parseCandidate(message.value, { limits: DEFAULT_MESSAGE_LIMITS, key: message.key });
          if (c.ok) candidates.push({ key, candidate: c.value });
          else unparsed.push(c.error);
        } else {
          const f = parseFeedback(message.value, { numClasses: 2, key: message.key });
          if (f.ok) feedback.push({ key, message: f.value });
          else unparsed.push(f.error);
        }
        return Promise.resolve();
      },
    });

    sim = await startSimulator({
      kafka: { brokers: kafka.brokers, clientId: 'it-simulator', topics },
      groupId,
      seed: SEED,
      ratePerSecond: 300,
      total: TOTAL,
      answerDelayMs: 100,
      answerJitterMs: 50,
      unsolicitedShare: UNSOLICITED,
      evaluate: true,
      evalSize: 120,
      versionsFromBeginning: true,
      onVersion: (r) => reports.push(r),
    });
  });

  after(async () => {
    await sim?.stop();
    const admin = await kafka.admin();
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
    await admin.deleteGroups([groupId, `${groupId}.versions`]).catch(() => undefined);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  function simulator(): Simulator {
    assert.ok(sim, 'the simulator started');
    return sim;
  }

  it('streams the planned candidates, keyed by id, as 28x28x1 uint8 images with opaque source refs', async () => {
    const s = simulator();
    await s.streamed;
    await waitFor(`${TOTAL} candidates`, () => candidates.length >= TOTAL);
    assert.deepEqual(unparsed, []);
    assert.equal(candidates.length, TOTAL);
    const poolIds = new Set(s.task.pool.ids);
    const ids = candidates.map((c) => c.candidate.id);
    assert.equal(new Set(ids).size, TOTAL, 'no candidate twice');
    for (const { key, candidate } of candidates) {
      assert.equal(key, candidate.id);
      assert.ok(poolIds.has(candidate.id), `${candidate.id} is a pool candidate`);
      assert.equal(candidate.content.kind, 'image');
      assert.equal(candidate.content.dtype, 'uint8');
      assert.deepEqual(candidate.content.shape, [28, 28, 1]);
      for (const value of Object.values(candidate.sourceRefs)) assert.match(value, /^2\.25\.\d+$/);
    }
    const stats = s.stats();
    assert.equal(stats.candidatesSent, TOTAL);
    assert.equal(stats.candidatesPlanned, TOTAL);
    assert.equal(stats.streamFinished, true);
  });

  it('labels the closed-loop share unasked, with the true labels', async () => {
    const s = simulator();
    const expected = candidates.filter((c) => isUnsolicited(c.candidate.id, UNSOLICITED, SEED));
    assert.ok(expected.length > 0, 'some candidates are in the closed-loop share');
    await waitFor(
      'closed-loop labels',
      () => feedback.filter((f) => f.message.source === 'cad-closed-loop').length >= expected.length,
    );
    const unasked = feedback.filter((f) => f.message.source === 'cad-closed-loop');
    assert.deepEqual(
      unasked.map((f) => f.message.candidateId).sort(),
      expected.map((c) => c.candidate.id).sort(),
    );
    for (const f of unasked) {
      assert.equal(f.key, f.message.candidateId);
      assert.equal(f.message.requestId, undefined);
      assert.equal(f.message.label, s.oracle.answer(f.message.candidateId)?.truth);
    }
    assert.equal(s.stats().unsolicitedSent, expected.length);
  });

  it('answers labeling requests with the oracle label and the request id; unknown and invalid ones are counted', async () => {
    const s = simulator();
    const poolLabel = new Map(s.task.pool.ids.map((id, i) => [id, s.task.pool.labels[i]!]));
    // One positive and one negative if the stream has both.
    const positive = candidates.find((c) => poolLabel.get(c.candidate.id) === 1);
    const negative = candidates.find((c) => poolLabel.get(c.candidate.id) === 0);
    const asked = [positive ?? candidates[0]!, negative ?? candidates[1]!].map((c) => c.candidate.id);
    const now = new Date();
    const request = (requestId: string, candidateId: string) => ({
      key: candidateId,
      value: encodeLabelingRequest({
        requestId,
        candidateId,
        modelVersion: 'v0',
        scores: { score: 0.69, entropy: 0.69, diversity: 0, dominantClass: 0, meanProbs: [0.5, 0.5] },
        rank: 0,
        drawProbability: 0.5,
        shortlistSize: 10,
        takenBy: 'draw',
        criterion: 'entropy',
        leaseExpiresAt: new Date(now.getTime() + 3_600_000).toISOString(),
        time: now.toISOString(),
      }),
    });
    const producer = await kafka.producer();
    await producer.send({
      topic: topics.labelingRequests,
      messages: [
        request('req-1', asked[0]!),
        { key: 'x', value: '{not json' },
        request('req-2', asked[1]!),
        request('req-3', 'fmnist-6-99999'),
      ],
    });
    await waitFor('two answers', () => feedback.filter((f) => f.message.source === 'requested').length >= 2);
    const answers = feedback.filter((f) => f.message.source === 'requested');
    assert.deepEqual(answers.map((f) => f.message.requestId).sort(), ['req-1', 'req-2']);
    for (const f of answers) {
      const id = f.message.candidateId;
      assert.equal(f.key, id);
      assert.equal(id, f.message.requestId === 'req-1' ? asked[0] : asked[1]);
      assert.equal(f.message.label, poolLabel.get(id), 'the true task label (binary: 1 shirt, 0 other)');
      assert.equal(f.message.annotatorId, 'sim-radiologist-1');
    }
    await waitFor('the unknown request counted', () => s.stats().requestsUnknown === 1);
    const stats = s.stats();
    assert.equal(stats.requestsReceived, 3);
    assert.equal(stats.requestsInvalid, 1);
    assert.equal(stats.answersSent, 2);
    assert.equal(stats.answersPending, 0);
    // Every request is answered or ignored: its offset is committed.
    const admin = await kafka.admin();
    let committed: string | undefined;
    const budget = patience(30_000);
    while (committed !== '4' && !budget.expired()) {
      const offsets = await admin.fetchOffsets({ groupId, topics: [topics.labelingRequests] });
      committed = offsets[0]?.partitions[0]?.offset;
      if (committed !== '4') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(committed, '4');
  });

  it('measures a promoted version from its artifact directory and reports an unreadable one', async () => {
    const s = simulator();
    assert.ok(stored);
    const version = (v: string, status: 'promoted' | 'rejected', location: string): ModelVersionMessage => ({
      schema: 'acft.model-version/v1',
      version: v,
      parent: v === 'v1' ? null : 'v1',
      strategy: 'ACFT(HQ)',
      status,
      counts: { q: 2, h: 0, labeled: 2, holdout: 1 },
      trainedOn: [],
      metrics: { holdoutAuc: 0.75, parentHoldoutAuc: null },
      artifact: { location, sha256: stored!.sha256 },
      windowStartedAt: new Date().toISOString(),
      time: new Date().toISOString(),
    });
    const producer = await kafka.producer();
    await producer.send({
      topic: topics.modelVersions,
      messages: [
        version('v1', 'promoted', stored.dir),
        version('v2', 'rejected', path.join(dir, 'v2')),
        version('v3', 'promoted', path.join(dir, 'missing')),
      ].map((m) => ({ key: m.version, value: encodeModelVersion(m) })),
    });
    await waitFor('three version reports', () => reports.length >= 3, 120_000);
    const byVersion = new Map(reports.map((r) => [r.version, r]));
    const v1 = byVersion.get('v1');
    assert.equal(v1?.evaluation.kind, 'evaluated');
    if (v1?.evaluation.kind === 'evaluated') {
      assert.ok(v1.evaluation.auc !== null && v1.evaluation.auc >= 0 && v1.evaluation.auc <= 1);
      assert.equal(v1.evaluation.size, 120);
    }
    assert.equal(v1?.holdoutAuc, 0.75);
    assert.equal(v1?.labels, 3);
    assert.deepEqual(byVersion.get('v2')?.evaluation, { kind: 'skipped', why: 'rejected' });
    const v3 = byVersion.get('v3')?.evaluation;
    assert.equal(v3?.kind, 'failed');
    assert.match(v3?.kind === 'failed' ? v3.error : '', /artifact unreadable: .*does not exist here/);
    const stats = s.stats();
    assert.equal(stats.versionsPromoted, 2);
    assert.equal(stats.versionsRejected, 1);
    assert.equal(stats.evaluations, 1);
    assert.equal(stats.evaluationFailures, 1);
    assert.equal(stats.lastAuc?.version, 'v3');
  });

  it('stops cleanly and only once', async () => {
    const s = simulator();
    const first = s.stop();
    assert.equal(s.stop(), first);
    await first;
  });
});
