/**
 * The whole daemon loop (Daemon.startLoop: restore, the pipeline, the step, every stage) on
 * in-memory fakes of its ports with a virtual clock (test/support/fake-ports.ts): candidates to
 * requests; feedback to a window to a published version; a restart from the checkpoint; a newer
 * version interrupting a rescore; a shutdown abandoning a window. Seconds, no broker, no workers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveConfig, type Config } from '../../../src/config/index.js';
import { Daemon } from '../../../src/daemon/daemon.js';
import { initialModel } from '../../../src/daemon/initial-model.js';
import type { DaemonEvent } from '../../../src/daemon/loop/events.js';
import {
  encodeCandidate,
  encodeFeedback,
  encodeModelVersion,
  parseLabelingRequest,
  parseModelVersion,
} from '../../../src/messages/index.js';
import { initBackend } from '../../../src/model/backend.js';
import {
  FakeBroker,
  FakeScorer,
  FakeTrainer,
  Gate,
  MemoryCheckpoints,
  MemoryStore,
  VirtualClock,
} from '../../support/fake-ports.js';

const TOPICS = {
  candidates: 'c',
  feedback: 'f',
  labelingRequests: 'r',
  modelVersions: 'v',
  deadLetter: 'd',
  coordination: 'x',
  ledger: 'l',
};

function config(extra: Record<string, string> = {}): Config {
  return resolveConfig({
    env: {
      ACFT_KAFKA_TOPICS_CANDIDATES: TOPICS.candidates,
      ACFT_KAFKA_TOPICS_FEEDBACK: TOPICS.feedback,
      ACFT_KAFKA_TOPICS_LABELING_REQUESTS: TOPICS.labelingRequests,
      ACFT_KAFKA_TOPICS_MODEL_VERSIONS: TOPICS.modelVersions,
      ACFT_KAFKA_TOPICS_DEAD_LETTER: TOPICS.deadLetter,
      ACFT_SELECTION_B: '4',
      ACFT_SCORING_M: '2',
      ACFT_SCORING_MICRO_BATCH_MAX_WAIT_MS: '20',
      ACFT_TRAINING_HOLDOUT_SHARE: '0',
      ACFT_TRAINING_WINDOW_MAX_INTERVAL_MS: '3600000',
      ACFT_STATE_CHECKPOINT_INTERVAL_MS: '1000',
      ACFT_HTTP_PORT: '0',
      ACFT_BACKEND: 'cpu',
      ACFT_LOG_LEVEL: 'silent',
      ...extra,
    },
  });
}

function candidate(id: string): { key: string; value: string } {
  return {
    key: id,
    value: encodeCandidate({
      id,
      sourceRefs: { study: `st-${id}` },
      time: '2026-12-01T08:00:00.000Z',
      content: {
        kind: 'image',
        dtype: 'uint8',
        shape: [28, 28, 1],
        data: Uint8Array.from({ length: 784 }, (_, i) => (i * 7 + id.length * 13) % 256),
      },
    }),
  };
}

function answer(candidateId: string, requestId: string, label: number): { key: string; value: string } {
  return {
    key: candidateId,
    value: encodeFeedback({
      candidateId,
      requestId,
      label,
      annotatorId: 'dr-a',
      time: '2026-12-01T08:00:01.000Z',
    }),
  };
}

/** A daemon of the loop on fakes, and what the test needs of it. */
async function harness(shared?: { checkpoints: MemoryCheckpoints; store: MemoryStore }, extra = {}) {
  const clock = new VirtualClock();
  const owned = [0, 1].flatMap((partition) => [
    { topic: TOPICS.candidates, partition },
    { topic: TOPICS.feedback, partition },
  ]);
  const broker = new FakeBroker(clock, owned);
  const scorer = new FakeScorer();
  const trainer = new FakeTrainer();
  const checkpoints = shared?.checkpoints ?? new MemoryCheckpoints();
  const store = shared?.store ?? new MemoryStore();
  const events: DaemonEvent[] = [];
  const fatal: Error[] = [];
  const started = Daemon.start({
    config: config(extra),
    logger: pino({ level: 'silent' }),
    ports: { clock, broker, scorer, trainer, checkpoints, store },
    onFatal: (e) => fatal.push(e),
    observe: (events$) => events$.subscribe((e) => events.push(e)),
  });
  const daemon = await started;
  const requests = () =>
    broker.sent(TOPICS.labelingRequests).map((m) => {
      const r = parseLabelingRequest(m.value);
      assert.ok(r.ok);
      return r.value;
    });
  const of = <K extends DaemonEvent['type']>(type: K) =>
    events.filter((e): e is Extract<DaemonEvent, { type: K }> => e.type === type);
  return { clock, broker, scorer, trainer, checkpoints, store, daemon, events, of, fatal, requests };
}

before(() => initBackend('cpu'));

void describe('the daemon loop on fakes, with a virtual clock', () => {
  const open: { daemon: Daemon }[] = [];
  after(async () => {
    for (const h of open) await h.daemon.close();
  });

  void it('candidates become labeling requests, each named for the version that scored it', async () => {
    const h = await harness();
    open.push(h);
    await h.broker.deliver(TOPICS.candidates, 0, ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'].map(candidate));
    await h.broker.deliver(TOPICS.candidates, 1, ['c7', 'c8'].map(candidate));
    await h.clock.until('4 requests', () => h.requests().length >= 4);
    const requests = h.requests();
    assert.equal(requests.length, 4);
    assert.equal(new Set(requests.map((r) => r.candidateId)).size, 4, 'four candidates, once each');
    for (const r of requests) assert.equal(r.modelVersion, h.scorer.version, 'the version that scored it');
    assert.equal(h.daemon.status().pool, 8);
    assert.equal(h.daemon.status().outstanding, 4);
    const ingested = h.of('ingested').reduce((n, e) => n + e.count, 0);
    assert.equal(ingested, 8);
  });

  void it('feedback to a window, a version saved, checkpointed, then published and served', async () => {
    const h = await harness();
    open.push(h);
    await h.broker.deliver(TOPICS.candidates, 0, ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'].map(candidate));
    await h.clock.until('4 requests', () => h.requests().length >= 4);
    const answeredAt = h.clock.now();
    await h.broker.deliver(
      TOPICS.feedback,
      0,
      h.requests().map((r, i) => answer(r.candidateId, r.requestId, i % 2)),
    );
    await h.clock.until('a version published', () => h.broker.sent(TOPICS.modelVersions).length >= 1);
    const [published] = h.broker.sent(TOPICS.modelVersions);
    const v = parseModelVersion(published!.value);
    assert.ok(v.ok);
    // The b-th label starts the window at once, not on the next tick of the clock.
    assert.equal(Date.parse(v.value.windowStartedAt), answeredAt);
    assert.equal(v.value.status, 'promoted');
    assert.equal(v.value.counts.q, 4);
    assert.equal(h.trainer.jobs.length, 1);
    assert.ok(h.store.versions.has(v.value.version), 'saved before it was published');
    // The checkpoint that made it durable came before its publication, and holds its state.
    const windows = h.of('window');
    assert.equal(windows.length, 1);
    await h.clock.until('the new version served', () => h.daemon.status().servedVersion === v.value.version);
    await h.clock.until('the pool rescored with it', () =>
      h.of('rescored').some((e) => e.version === v.value.version),
    );
    assert.equal(h.daemon.status().labeled, 4);
    assert.equal(h.daemon.status().newLabels, 0, 'the labels of the window are consumed');
  });

  void it('restarts from its checkpoint: the same state, the offsets it committed, nothing asked twice', async () => {
    const checkpoints = new MemoryCheckpoints();
    const store = new MemoryStore();
    const first = await harness({ checkpoints, store });
    await first.broker.deliver(TOPICS.candidates, 0, ['r1', 'r2', 'r3', 'r4', 'r5'].map(candidate));
    await first.clock.until('4 requests', () => first.requests().length >= 4);
    const one = first.requests()[0]!;
    await first.broker.deliver(TOPICS.feedback, 1, [answer(one.candidateId, one.requestId, 1)]);
    await first.clock.advance(100);
    const before = first.daemon.status();
    await first.daemon.close();
    assert.equal(first.of('stopped').at(-1)?.forced, false, 'drained, not forced');
    assert.deepEqual(
      first.broker.committedOffsets.get(`${TOPICS.candidates}:0`),
      5,
      'committed what it holds',
    );
    const second = await harness({ checkpoints, store });
    open.push(second);
    const [was] = first.of('restored');
    const [restored] = second.of('restored');
    assert.ok(was && restored);
    assert.equal(restored.pool, before.pool);
    assert.notEqual(restored.sha, was.sha, 'the state of the checkpoint, not the empty one it started from');
    const now = second.daemon.status();
    for (const k of ['pool', 'labeled', 'outstanding', 'servedVersion'] as const)
      assert.equal(now[k], before[k], k);
    await second.clock.advance(2_000);
    assert.deepEqual(second.requests(), [], 'nothing asked again: every request is still outstanding');
  });

  void it('a newer version interrupts a rescore under way: the older chain stops at its chunk', async () => {
    const store = new MemoryStore();
    const h = await harness({ checkpoints: new MemoryCheckpoints(), store });
    open.push(h);
    const ids = Array.from({ length: 600 }, (_, i) => `p${i}`);
    for (let i = 0; i < ids.length; i += 100)
      await h.broker.deliver(TOPICS.candidates, 0, ids.slice(i, i + 100).map(candidate));
    await h.clock.until('the pool scored', () => h.daemon.status().scored === 600);
    const m0 = await initialModel(config().model.m0Path, 2, config().training.seed);
    const publish = async (version: string, at: string) => {
      const saved = await store.saveArtifact(m0.artifact, {
        version,
        parent: m0.version,
        createdAt: at,
        info: { status: 'promoted', m0: m0.version },
      });
      const parsed = parseModelVersion(
        encodeModelVersion({
          version,
          parent: m0.version,
          m0: m0.version,
          strategy: 'ACFT(HQ)',
          status: 'promoted',
          counts: { q: 0, h: 0, labeled: 0, holdout: 0 },
          trainedOn: [],
          metrics: { holdoutAuc: null, parentHoldoutAuc: null },
          artifact: { location: saved.location, sha256: saved.sha256 },
          windowStartedAt: at,
          time: at,
        }),
      );
      assert.ok(parsed.ok);
      h.broker.push({ type: 'version-read', message: parsed.value, now: h.clock.now() });
    };
    const gate = new Gate();
    h.scorer.gate = () => (h.scorer.version === 'mv-a' ? gate : undefined);
    await publish('mv-a', '2026-12-01T08:00:10.000Z');
    await h.clock.until('a rescore chunk of mv-a held', () => gate.held === 1);
    await publish('mv-b', '2026-12-01T08:00:20.000Z');
    await h.clock.until('mv-b served', () => h.scorer.version === 'mv-b');
    gate.open();
    await h.clock.until('the pool rescored with mv-b', () =>
      h.of('rescored').some((e) => e.version === 'mv-b'),
    );
    const rescoresWithA = h.scorer.calls.filter((c) => c.version === 'mv-a');
    assert.equal(rescoresWithA.length, 1, 'mv-a scored one chunk, then its chain stopped');
    assert.equal(
      h.of('rescored').some((e) => e.version === 'mv-a'),
      false,
    );
    assert.equal(h.of('rescored').find((e) => e.version === 'mv-b')?.candidates, 600);
  });

  void it('dead letters wait out an outage in the checkpoint, then go out; readiness follows the brokers', async () => {
    const checkpoints = new MemoryCheckpoints();
    const h = await harness({ checkpoints, store: new MemoryStore() });
    open.push(h);
    h.broker.refuseSends = true;
    await h.broker.deliver(TOPICS.candidates, 0, [
      { key: 'bad-1', value: '{"schema":' },
      { key: null, value: 'no' },
    ]);
    await h.clock.until('an outage', () => h.of('broker-outage').length > 0);
    await h.clock.until(
      'a checkpoint with them',
      () => (checkpoints.file?.['deadLetters'] as unknown[] | undefined)?.length === 2,
    );
    assert.equal(h.broker.sent(TOPICS.deadLetter).length, 0);
    h.broker.refuseSends = false;
    await h.clock.until('the dead letters sent', () => h.broker.sent(TOPICS.deadLetter).length === 2);
    await h.clock.until('the outage over', () => h.of('broker-outage-ended').length > 0);
    await h.clock.until(
      'a checkpoint without them',
      () => (checkpoints.file?.['deadLetters'] as unknown[]).length === 0,
    );
    // Both messages were taken: their offsets are committed.
    await h.clock.until('committed', () => h.broker.committedOffsets.get(`${TOPICS.candidates}:0`) === 2);
  });

  void it('a shutdown abandons a window still training: its labels stay new, nothing is published', async () => {
    const checkpoints = new MemoryCheckpoints();
    const h = await harness({ checkpoints, store: new MemoryStore() });
    h.trainer.gate = new Gate();
    await h.broker.deliver(TOPICS.candidates, 0, ['w1', 'w2', 'w3', 'w4', 'w5'].map(candidate));
    await h.clock.until('4 requests', () => h.requests().length >= 4);
    await h.broker.deliver(
      TOPICS.feedback,
      0,
      h.requests().map((r) => answer(r.candidateId, r.requestId, 0)),
    );
    await h.clock.until('the window training', () => h.trainer.jobs.length === 1);
    await h.daemon.close();
    assert.equal(h.broker.sent(TOPICS.modelVersions).length, 0);
    assert.equal(h.of('window').length, 0);
    const file = checkpoints.file as { labels: { inFlight: unknown; fresh: string[] } };
    assert.equal(file.labels.inFlight, null, 'the window is not in flight in the last checkpoint');
    assert.equal(file.labels.fresh.length, 4, 'its labels are new again: the window is planned again');
    assert.equal(h.trainer.gate.held, 1, 'training was left behind, not waited for');
  });
});
