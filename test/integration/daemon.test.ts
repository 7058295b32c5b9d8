/**
 * The daemon against a real Kafka broker: candidates in -> labeling requests out -> oracle feedback
 * in -> a promoted model version on model-versions -> the scorer serves it; bad input of each kind
 * dead-lettered while valid messages flow; duplicate, conflicting and early feedback; graceful
 * shutdown commits and a restart continues without re-requesting answered candidates.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import kafkajs, { type Consumer, type Producer } from 'kafkajs';
import pino from 'pino';
import { resolveConfig, type Config } from '../../src/config/index.js';
import { readCheckpoint } from '../../src/daemon/checkpoint-file.js';
import { Daemon } from '../../src/daemon/daemon.js';
import type { DaemonEvent } from '../../src/daemon/loop/events.js';
import type { Observable } from 'rxjs';
import { loadFashionMnist, type ImageSet } from '../../src/data/image-set.js';
import { buildTask, type Task } from '../../src/data/task.js';
import {
  encodeCandidate,
  encodeFeedback,
  parseDeadLetter,
  parseLabelingRequest,
  parseModelVersion,
  type DeadLetterMessage,
  type LabelingRequestMessage,
  type ModelVersionMessage,
} from '../../src/messages/index.js';
import { daemonKafkaConfig, uniqueTopic, useKafka } from '../support/kafka.js';
import { patience } from '../support/patience.js';

const kafka = useKafka();

let set: ImageSet;
let task: Task;
let dir: string;
const logLines: string[] = [];
/** Every event of every daemon of this file, in order (the daemons' typed event stream). */
const events: DaemonEvent[] = [];
const observe = (events$: Observable<DaemonEvent>) => void events$.subscribe((e) => events.push(e));

/** A daemon on `config` whose events this file collects; a fatal error fails the test. */
function startObserved(config: Config): Promise<Daemon> {
  return Daemon.start({ config, logger: testLogger(), observe, onFatal: (e) => assert.fail(e) });
}

before(async () => {
  set = await loadFashionMnist();
  task = buildTask(set, { positive: [6], negative: [0, 2, 4], ratio: 3, seed: 1 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'acft-daemon-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function testLogger() {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString());
      if (process.env.ACFT_TEST_LOG) process.stderr.write(chunk);
      cb();
    },
  });
  return pino({ level: 'info' }, sink);
}

function config(name: string): Config {
  return resolveConfig({
    env: {},
    overrides: {
      kafka: daemonKafkaConfig(kafka.brokers, name),
      selection: { b: 8, leaseMs: 120_000 },
      scoring: { m: 4, microBatchMaxWaitMs: 20 },
      training: { epochs: 2, holdoutShare: 0.25, windowMaxIntervalMs: 600_000, coldStartFullLr: true },
      pool: { maxCandidates: 1_000, pendingFeedbackTtlMs: 3_000 },
      limits: { maxPayloadBytes: 64 * 1024 },
      model: { storeDir: path.join(dir, name, 'models') },
      state: { checkpointDir: path.join(dir, name, 'state'), checkpointIntervalMs: 500 },
      http: { port: 0 },
      log: { level: 'info' },
    },
  });
}

/** A task candidate as a message (uint8 image). */
function candidateMessage(i: number) {
  const pos = i % task.pool.indices.length;
  const index = task.pool.indices[pos]!;
  const id = task.pool.ids[pos]!;
  const size = 28 * 28;
  const data = set.images.slice(index * size, (index + 1) * size);
  return {
    id,
    label: task.pool.labels[pos]!,
    message: {
      key: id,
      value: encodeCandidate({
        id,
        sourceRefs: { study: `st-${id}`, series: `se-${id}` },
        time: new Date().toISOString(),
        content: { kind: 'image', dtype: 'uint8', shape: [28, 28, 1], data },
      }),
    },
  };
}

function feedback(candidateId: string, label: number, annotatorId = 'oracle', requestId?: string) {
  return {
    key: candidateId,
    value: encodeFeedback({
      candidateId,
      label,
      annotatorId,
      time: new Date().toISOString(),
      ...(requestId ? { requestId } : {}),
    }),
  };
}

async function collect<T>(
  consumer: Consumer,
  topic: string,
  parse: (v: Buffer | null) => { ok: true; value: T } | { ok: false },
  sink: T[],
): Promise<void> {
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: ({ message }) => {
      const parsed = parse(message.value);
      if (parsed.ok) sink.push(parsed.value);
      return Promise.resolve();
    },
  });
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 120_000): Promise<void> {
  const budget = patience(timeoutMs);
  while (!predicate()) {
    if (budget.expired()) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('acft run on a real broker', { timeout: 400_000 }, () => {
  it('closes the loop, dead-letters bad input, survives a restart without asking twice', async () => {
    const name = uniqueTopic('loop');
    const cfg = config(name);
    const topics = cfg.kafka.topics;
    let daemon = await Daemon.start({
      config: cfg,
      logger: testLogger(),
      observe,
      onFatal: (e) => assert.fail(e),
    });
    try {
      const producer: Producer = await kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      const requests: LabelingRequestMessage[] = [];
      const versions: ModelVersionMessage[] = [];
      const dead: DeadLetterMessage[] = [];
      const oracle = await kafka.consumer({ groupId: `${name}-oracle`, maxWaitTimeInMs: 100 });
      await collect(oracle, topics.labelingRequests, (v) => parseLabelingRequest(v), requests);
      const watcher = await kafka.consumer({ groupId: `${name}-watch`, maxWaitTimeInMs: 100 });
      await watcher.subscribe({ topics: [topics.modelVersions, topics.deadLetter], fromBeginning: true });
      await watcher.run({
        eachMessage: ({ topic, message }) => {
          if (topic === topics.modelVersions) {
            const p = parseModelVersion(message.value);
            if (p.ok) versions.push(p.value);
          } else {
            const p = parseDeadLetter(message.value);
            if (p.ok) dead.push(p.value);
          }
          return Promise.resolve();
        },
      });

      // Feedback that comes before its candidate, and feedback for one that never comes.
      const early = candidateMessage(0);
      await producer.send({
        topic: topics.feedback,
        messages: [feedback(early.id, early.label, 'cad'), feedback('never-seen-1', 1, 'cad')],
      });
      // Bad input of each kind, among valid candidates.
      const candidates = Array.from({ length: 80 }, (_, i) => candidateMessage(i));
      const labelOf = new Map(candidates.map((c) => [c.id, c.label]));
      await producer.send({
        topic: topics.candidates,
        messages: [
          { key: 'bad-json', value: '{"schema": "acft.candidate/v1", ' },
          {
            key: 'bad-shape',
            value: JSON.stringify({
              schema: 'acft.candidate/v1',
              id: 'bad-shape',
              sourceRefs: {},
              time: new Date().toISOString(),
              image: { dtype: 'uint8', shape: [28, 28, 1], data: Buffer.alloc(100).toString('base64') },
            }),
          },
          { key: 'too-big', value: 'x'.repeat(cfg.limits.maxPayloadBytes + 1) },
          ...candidates.map((c) => c.message),
        ],
      });
      await producer.send({ topic: topics.feedback, messages: [feedback(candidates[1]!.id, 7)] });

      // The oracle answers every request (twice for one, and one annotator disagrees once).
      const answered = new Set<string>();
      const answer = async () => {
        const fresh = requests.filter((r) => !answered.has(r.requestId));
        if (fresh.length === 0) return;
        for (const r of fresh) answered.add(r.requestId);
        await producer.send({
          topic: topics.feedback,
          messages: fresh.flatMap((r, i) => {
            const label = labelOf.get(r.candidateId)!;
            const msgs = [feedback(r.candidateId, label, 'oracle', r.requestId)];
            if (i === 0) msgs.push(feedback(r.candidateId, label, 'oracle', r.requestId));
            return msgs;
          }),
        });
      };
      await waitFor('a promoted version', () => {
        void answer();
        return versions.some((v) => v.status === 'promoted');
      });
      const promoted = versions.find((v) => v.status === 'promoted')!;
      await waitFor('the daemon to serve it', () => daemon.status().servedVersion === promoted.version);
      assert.equal(promoted.strategy, 'ACFT(HQ)');
      assert.ok(promoted.counts.q >= 1);
      assert.equal(promoted.artifact.sha256.length, 64);
      assert.ok(promoted.trainedOn.length >= promoted.counts.q);
      assert.ok(
        requests.every((r) => labelOf.has(r.candidateId)),
        'only real candidates are requested',
      );

      await waitFor('dead letters', () => dead.length >= 5);
      const reasons = dead.map((d) => d.reason).sort();
      assert.deepEqual(reasons, [
        'invalid-json',
        'oversized',
        'tensor-data',
        'unknown-candidate',
        'unknown-class',
      ]);
      // The early feedback found its candidate: it is labeled, not pooled, not requested.
      assert.ok(!requests.some((r) => r.candidateId === early.id));

      // Graceful shutdown, then a restart on the same state: nothing answered is asked again.
      const before = daemon.status();
      await daemon.close();
      const requestedBefore = new Set(requests.map((r) => r.candidateId));
      const answeredBefore = new Set(
        requests.filter((r) => answered.has(r.requestId)).map((r) => r.candidateId),
      );
      const metricsText = await (await fetch(`${before.httpUrl}/metrics`).catch(() => undefined))?.text();
      assert.equal(metricsText, undefined, 'the metrics server is closed after shutdown');
      const mark = events.length;
      const oldVersions = new Set(versions.map((v) => v.version));
      // eslint-disable-next-line require-atomic-updates -- the test's own sequence: the old daemon is closed
      daemon = await Daemon.start({
        config: cfg,
        logger: testLogger(),
        observe,
        onFatal: (e) => assert.fail(e),
      });
      const afterRestart = daemon.status();
      assert.equal(afterRestart.labeled, before.labeled);
      assert.equal(afterRestart.servedVersion, before.servedVersion);
      const countBefore = requests.length;
      await waitFor('new requests after the restart', () => {
        void answer();
        return requests.length > countBefore;
      });
      await new Promise((r) => setTimeout(r, 1_000));
      // Replaying model-versions from its start does not walk the served model back.
      const servedAfter = events.slice(mark).flatMap((e) => (e.type === 'serving' ? [e.version] : []));
      for (const v of servedAfter) {
        assert.ok(
          v === before.servedVersion || !oldVersions.has(v),
          `an older version ${v} was served again`,
        );
      }
      const exposition = await (await fetch(`${daemon.status().httpUrl}/metrics`)).text();
      assert.match(exposition, /acft_consumer_lag\{topic="[^"]+",partition="\d+"\} \d+/);
      assert.match(exposition, /acft_pool_candidates \d+/);
      const later = requests.slice(countBefore);
      for (const r of later) {
        assert.ok(!answeredBefore.has(r.candidateId), `${r.candidateId} was answered before and asked again`);
      }
      assert.ok(requestedBefore.size > 0);
      // No patient-like identifiers (source references) in the logs.
      const logs = logLines.join('');
      for (const c of candidates)
        assert.ok(!logs.includes(`st-${c.id}`), 'source references must not be logged');
    } finally {
      await daemon.close();
    }
  });

  it('bounds the pool under a flood, pauses and resumes intake, and skips nothing', async () => {
    const name = uniqueTopic('flood');
    const base = config(name);
    const cfg: Config = {
      ...base,
      pool: { ...base.pool, maxCandidates: 60, highWatermark: 0.5, lowWatermark: 0.25 },
      scoring: { ...base.scoring, microBatchSize: 8 },
      selection: { ...base.selection, b: 1 },
    };
    const mark = events.length;
    const daemon = await startObserved(cfg);
    try {
      const producer = await kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      const total = 600;
      for (let start = 0; start < total; start += 200) {
        await producer.send({
          topic: cfg.kafka.topics.candidates,
          messages: Array.from({ length: 200 }, (_, i) => candidateMessage(start + i).message),
        });
      }
      let maxPool = 0;
      let sawPause = false;
      let ingested = 0;
      const poll = setInterval(() => {
        void daemon.metrics.candidatesIngested.get().then((m) => (ingested = m.values[0]?.value ?? 0));
      }, 100);
      await waitFor('every candidate ingested', () => {
        const s = daemon.status();
        maxPool = Math.max(maxPool, s.pool);
        sawPause ||= s.paused;
        return ingested >= total;
      });
      clearInterval(poll);
      assert.ok(maxPool <= 60, `pool reached ${maxPool}`);
      assert.ok(sawPause, 'intake paused at the high watermark');
      const refused = events.slice(mark).filter((e) => e.type === 'candidate-refused');
      assert.deepEqual(refused, [], 'no candidate was refused for room');
      await waitFor('intake resumed', () => !daemon.status().paused);
      await daemon.close();
      // Everything was consumed and committed: the group's offsets reach the end of every partition.
      const admin = await kafka.admin();
      const ends = await admin.fetchTopicOffsets(cfg.kafka.topics.candidates);
      const committed = await admin.fetchOffsets({
        groupId: cfg.kafka.groupId,
        topics: [cfg.kafka.topics.candidates],
      });
      for (const p of ends) {
        const c = committed[0]!.partitions.find((x) => x.partition === p.partition)!;
        assert.equal(c.offset, p.offset, `partition ${p.partition} committed to its end`);
      }
    } finally {
      await daemon.close();
    }
  });
  it('sends again after a restart the labeling requests whose send was not confirmed, under the same ids', async () => {
    const name = uniqueTopic('unconfirmed');
    const base = config(name);
    // Sends that keep retrying for about 5 s: the checkpoints taken meanwhile hold them as
    // unconfirmed. (Not much longer: the shutdown waits for them to settle.)
    const cfg: Config = {
      ...base,
      kafka: { ...base.kafka, retry: { retries: 20, initialRetryTimeMs: 100, maxRetryTimeMs: 300 } },
    };
    const topics = cfg.kafka.topics;
    const admin = await kafka.admin();
    const producer = await kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    const requests: LabelingRequestMessage[] = [];
    const watcher = await kafka.consumer({ groupId: `${name}-watch`, maxWaitTimeInMs: 100 });
    let second: Daemon | undefined;
    try {
      const first = await Daemon.start({
        config: cfg,
        logger: testLogger(),
        observe,
        onFatal: (e) => assert.fail(e),
      });
      try {
        // With its topic gone, every request send fails with UNKNOWN_TOPIC_OR_PARTITION, a
        // retriable error, and stays in flight until the daemon stops.
        await admin.deleteTopics({ topics: [topics.labelingRequests] });
        await producer.send({
          topic: topics.candidates,
          messages: Array.from({ length: 30 }, (_, i) => candidateMessage(i).message),
        });
        await waitFor('b requests issued', () => first.status().outstanding === cfg.selection.b);
      } finally {
        await first.close();
      }
      const checkpoint = (await readCheckpoint(cfg.state.checkpointDir)) as {
        unconfirmedRequests: { requestId: string; key: string }[];
      };
      const unconfirmed = checkpoint.unconfirmedRequests;
      assert.equal(unconfirmed.length, cfg.selection.b, 'the shutdown checkpoint holds the sends in flight');

      // The restarted daemon makes the topic again and sends the same requests.
      second = await Daemon.start({
        config: cfg,
        logger: testLogger(),
        observe,
        onFatal: (e) => assert.fail(e),
      });
      await collect(
        watcher,
        topics.labelingRequests,
        (v) => parseLabelingRequest(v, { numClasses: 2 }),
        requests,
      );
      const distinct = () => [...new Set(requests.map((r) => `${r.requestId} ${r.candidateId}`))].sort();
      await waitFor('the requests sent again', () => distinct().length >= cfg.selection.b);
      // The same requests under the same ids. (The first daemon's send may land too, once the topic
      // is back: kafkajs goes on retrying a send after its producer is disconnected, tulios/kafkajs
      // #1174. A daemon's process exits after its shutdown, so that copy happens only in-process.)
      const expected = unconfirmed.map((r) => `${r.requestId} ${r.key}`).sort();
      assert.deepEqual(distinct(), expected);
      // They are outstanding, not asked for again under new ids.
      assert.equal(second.status().outstanding, cfg.selection.b);
      await new Promise((r) => setTimeout(r, 1_500));
      assert.deepEqual(distinct(), expected);
    } finally {
      await second?.close();
      await producer.disconnect();
      await watcher.disconnect();
    }
  });

  it('withdraws labeling requests it cannot publish, and asks again once it can', async () => {
    const name = uniqueTopic('withdraw');
    const cfg = config(name);
    const topics = cfg.kafka.topics;
    // The broker refuses every request message until the topic takes larger ones: each publish
    // fails (MESSAGE_TOO_LARGE), as during an outage, but deterministically.
    const admin = await kafka.admin();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic: topics.labelingRequests,
          numPartitions: 1,
          replicationFactor: 1,
          configEntries: [{ name: 'max.message.bytes', value: '64' }],
        },
      ],
    });
    const mark = events.length;
    const daemon = await startObserved(cfg);
    const requests: LabelingRequestMessage[] = [];
    const watcher = await kafka.consumer({ groupId: `${name}-watch`, maxWaitTimeInMs: 100 });
    try {
      await collect(
        watcher,
        topics.labelingRequests,
        (v) => parseLabelingRequest(v, { numClasses: 2 }),
        requests,
      );
      const producer = await kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.send({
        topic: topics.candidates,
        messages: Array.from({ length: 30 }, (_, i) => candidateMessage(i).message),
      });
      const failed = () =>
        events.slice(mark).flatMap((e) => (e.type === 'publish-failed' && e.what === 'requests' ? [e] : []));
      await waitFor('a publish that failed', () => failed().some((f) => (f.withdrawn ?? 0) > 0));
      // Nothing is left waiting for an answer to a request nobody received.
      await waitFor('no request outstanding', () => daemon.status().outstanding === 0, 30_000);
      assert.equal(requests.length, 0);

      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            // kafkajs is CommonJS: its enums come through the default export.
            type: kafkajs.ConfigResourceTypes.TOPIC,
            name: topics.labelingRequests,
            configEntries: [{ name: 'max.message.bytes', value: '1048576' }],
          },
        ],
      });
      await waitFor('requests once the topic takes them', () => requests.length >= cfg.selection.b);
      const ids = requests.map((r) => r.candidateId);
      assert.equal(new Set(ids).size, ids.length, 'no candidate asked twice');
      await producer.disconnect();
    } finally {
      await watcher.disconnect();
      await daemon.close();
    }
  });
});
