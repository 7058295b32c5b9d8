/**
 * One fault scenario: its own topics, group, state and model directories on a real broker, the
 * daemon as a child process (test/support/daemon-process.ts), an oracle radiologist, collectors of
 * everything the daemon publishes, and the checks every fault test ends with:
 *
 * - no input lost: every valid candidate sent is in the pool or the labeled set (or was
 *   dead-lettered for a reason the test expects), and the group's offsets reach the end of every
 *   input partition;
 * - no label counted twice: each labeled candidate once, with the label its feedback resolves to,
 *   one vote per annotator;
 * - no duplicate or partial model version: every version id once on model-versions, its artifact
 *   intact (sha256) in the store, and no two versions trained from the same parent on the same set;
 * - state after restart equals state before: the restarted daemon's restored digest equals the one
 *   of the checkpoint file the crash left.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Consumer, Producer } from 'kafkajs';
import { fromSnapshot, type CheckpointSnapshot } from '../../src/core/checkpoint-state.js';
import { readCheckpoint } from '../../src/daemon/checkpoint-file.js';
import { stateDigest, type StateDigest } from '../../src/daemon/state-digest.js';
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
import { initBackend } from '../../src/model/backend.js';
import { loadArtifactFromPath } from '../../src/model/model-store.js';
import { DaemonProcess, isErrorLine, type LogLine } from './daemon-process.js';
import { account, assertNothingLost, tally } from './accounting.js';
import { CliProcess } from './cli-process.js';
import { patience } from './patience.js';
import { daemonTopicEnv, daemonTopics, kafkaClient, uniqueTopic } from './kafka.js';
import { Partitioners } from 'kafkajs';

let data: Promise<{ set: ImageSet; task: Task }> | undefined;

/** The CAD-like binary task's pool (shirts among tops), loaded once per process. */
export function taskData(): Promise<{ set: ImageSet; task: Task }> {
  data ??= loadFashionMnist().then((set) => ({
    set,
    task: buildTask(set, { positive: [6], negative: [0, 2, 4], ratio: 3, seed: 1 }),
  }));
  return data;
}

export interface SentFeedback {
  candidateId: string;
  label: number;
  annotatorId: string;
}

export class FaultScenario {
  readonly name: string;
  readonly dir: Promise<string>;
  readonly requests: LabelingRequestMessage[] = [];
  readonly versions: ModelVersionMessage[] = [];
  readonly dead: DeadLetterMessage[] = [];
  /** Valid candidates sent: id -> true label. */
  readonly sent = new Map<string, number>();
  readonly feedback: SentFeedback[] = [];
  readonly daemons: DaemonProcess[] = [];
  readonly simulators: CliProcess[] = [];
  private producer?: Producer;
  private readonly consumers: Consumer[] = [];
  private readonly answered = new Set<string>();
  private oracleTimer?: NodeJS.Timeout;
  private oracleRun?: Promise<void>;
  private oracleStopped = false;

  constructor(
    readonly brokers: string[],
    prefix: string,
    readonly env: Record<string, string> = {},
  ) {
    this.name = uniqueTopic(prefix);
    this.dir = mkdtemp(path.join(os.tmpdir(), `acft-fault-${prefix}-`));
  }

  get topics() {
    return daemonTopics(this.name);
  }

  get groupId(): string {
    return `${this.name}-group`;
  }

  async stateDir(): Promise<string> {
    return this.env['ACFT_STATE_CHECKPOINT_DIR'] ?? path.join(await this.dir, 'state');
  }

  async daemonEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    const dir = await this.dir;
    return {
      ACFT_KAFKA_BROKERS: this.brokers.join(','),
      ACFT_KAFKA_GROUP_ID: this.groupId,
      ACFT_KAFKA_CLIENT_ID: this.name,
      ...daemonTopicEnv(this.name),
      ACFT_KAFKA_SESSION_TIMEOUT_MS: '10000',
      ACFT_KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
      ACFT_SELECTION_B: '6',
      ACFT_SELECTION_LEASE_MS: '600000',
      ACFT_SCORING_M: '4',
      ACFT_SCORING_MICRO_BATCH_MAX_WAIT_MS: '20',
      ACFT_TRAINING_EPOCHS: '2',
      ACFT_TRAINING_HOLDOUT_SHARE: '0.25',
      ACFT_TRAINING_WINDOW_MAX_INTERVAL_MS: '600000',
      ACFT_POOL_MAX_CANDIDATES: '1000',
      ACFT_POOL_PENDING_FEEDBACK_TTL_MS: '3000',
      ACFT_LIMITS_MAX_PAYLOAD_BYTES: String(64 * 1024),
      ACFT_MODEL_STORE_DIR: path.join(dir, 'models'),
      ACFT_STATE_CHECKPOINT_DIR: path.join(dir, 'state'),
      ACFT_STATE_CHECKPOINT_INTERVAL_MS: '500',
      ACFT_HTTP_PORT: '0',
      // Debug adds one line per commit ('offsets-committed'): a commit check that fails shows them.
      ACFT_LOG_LEVEL: 'debug',
      ...this.env,
      ...extra,
    };
  }

  /** Starts `acft run` (optionally with a fault point armed, or wrapped in another command). */
  async startDaemon(extra: Record<string, string> = {}, wrap: string[] = []): Promise<DaemonProcess> {
    const d = new DaemonProcess(await this.daemonEnv(extra), wrap);
    this.daemons.push(d);
    return d;
  }

  /**
   * Starts `acft simulate` on this scenario's topics (its oracle answers the requests). The
   * simulator's candidates are not in {@link sent}: the accounting reads them back from the topic.
   */
  async startSimulator(args: readonly string[]): Promise<CliProcess> {
    const env = await this.daemonEnv();
    delete env['ACFT_FAULT_POINT'];
    const sim = new CliProcess(
      'src/cli/main.ts',
      ['simulate', '--brokers', this.brokers.join(','), '--group-id', `${this.name}-simulator`, ...args],
      env,
    );
    this.simulators.push(sim);
    return sim;
  }

  /** Messages on `topic` now (the sum of its partitions' end offsets). */
  async topicSize(topic: string): Promise<number> {
    const admin = kafkaClient(this.brokers, `${this.name}-admin`).admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    } finally {
      await admin.disconnect();
    }
  }

  /** Starts the collectors of requests, versions and dead letters (after the daemon made the topics). */
  async collect(): Promise<void> {
    const kafka = kafkaClient(this.brokers, `${this.name}-watch`);
    const t = this.topics;
    const watcher = kafka.consumer({ groupId: `${this.name}-watch`, maxWaitTimeInMs: 100 });
    this.consumers.push(watcher);
    await watcher.connect();
    await watcher.subscribe({
      topics: [t.labelingRequests, t.modelVersions, t.deadLetter],
      fromBeginning: true,
    });
    await watcher.run({
      eachMessage: ({ topic, message }) => {
        if (topic === t.labelingRequests) {
          const p = parseLabelingRequest(message.value);
          if (p.ok) this.requests.push(p.value);
        } else if (topic === t.modelVersions) {
          const p = parseModelVersion(message.value);
          if (p.ok) this.versions.push(p.value);
        } else {
          const p = parseDeadLetter(message.value);
          if (p.ok) this.dead.push(p.value);
        }
        return Promise.resolve();
      },
    });
  }

  async send(
    topic: string,
    messages: { key: string | null; value: string | Buffer | null }[],
  ): Promise<void> {
    this.producer ??= await (async () => {
      const p = kafkaClient(this.brokers, `${this.name}-producer`).producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await p.connect();
      return p;
    })();
    for (let i = 0; i < messages.length; i += 500)
      await this.producer.send({ topic, messages: messages.slice(i, i + 500) });
  }

  /** Sends `count` valid candidates of the task, starting at pool position `from`. */
  async sendCandidates(from: number, count: number): Promise<string[]> {
    const { set, task } = await taskData();
    const size = set.height * set.width;
    const messages = Array.from({ length: count }, (_, k) => {
      const pos = (from + k) % task.pool.indices.length;
      const index = task.pool.indices[pos]!;
      // Past the task's pool, the same images again under new ids: every candidate is distinct.
      const round = Math.floor((from + k) / task.pool.indices.length);
      const id = round === 0 ? task.pool.ids[pos]! : `${task.pool.ids[pos]!}-r${round}`;
      this.sent.set(id, task.pool.labels[pos]!);
      return {
        key: id,
        value: encodeCandidate({
          id,
          sourceRefs: { study: `st-${id}`, series: `se-${id}` },
          time: new Date().toISOString(),
          content: {
            kind: 'image',
            dtype: 'uint8',
            shape: [set.height, set.width, 1],
            data: set.images.slice(index * size, (index + 1) * size),
          },
        }),
      };
    });
    await this.send(this.topics.candidates, messages);
    return messages.map((m) => m.key);
  }

  async sendFeedback(items: (SentFeedback & { requestId?: string })[]): Promise<void> {
    this.feedback.push(
      ...items.map(({ candidateId, label, annotatorId }) => ({ candidateId, label, annotatorId })),
    );
    await this.send(
      this.topics.feedback,
      items.map((f) => ({
        key: f.candidateId,
        value: encodeFeedback({
          candidateId: f.candidateId,
          label: f.label,
          annotatorId: f.annotatorId,
          time: new Date().toISOString(),
          ...(f.requestId ? { requestId: f.requestId } : {}),
        }),
      })),
    );
  }

  /**
   * Sends feedback for candidates that never come (a CAD label for a detection the hospital did
   * not stream): it waits, then is dead-lettered `unknown-candidate`. Not in {@link feedback}.
   */
  async sendOrphanFeedback(candidateIds: readonly string[]): Promise<void> {
    await this.send(
      this.topics.feedback,
      candidateIds.map((id) => ({
        key: id,
        value: encodeFeedback({
          candidateId: id,
          label: 1,
          annotatorId: 'cad',
          time: new Date().toISOString(),
        }),
      })),
    );
  }

  /** Answers every request (by request id, once) with the true label, every 200 ms, until stopped. */
  startOracle(): void {
    const answer = async () => {
      const fresh = this.requests.filter((r) => !this.answered.has(r.requestId));
      for (const r of fresh) this.answered.add(r.requestId);
      const items = fresh
        .filter((r) => this.sent.has(r.candidateId))
        .map((r) => ({
          candidateId: r.candidateId,
          label: this.sent.get(r.candidateId)!,
          annotatorId: 'oracle',
          requestId: r.requestId,
        }));
      if (items.length > 0)
        await this.sendFeedback(items).catch(() => items.forEach((i) => this.answered.delete(i.requestId!)));
    };
    this.oracleStopped = false;
    const loop = () => {
      this.oracleTimer = setTimeout(() => {
        this.oracleRun = answer().finally(() => {
          if (!this.oracleStopped) loop();
        });
      }, 200);
    };
    loop();
  }

  /** Stops the oracle, after the answers it is sending are sent. */
  async stopOracle(): Promise<void> {
    this.oracleStopped = true;
    clearTimeout(this.oracleTimer);
    await this.oracleRun;
  }

  async waitFor(
    what: string,
    predicate: () => boolean,
    timeoutMs = 180_000,
    daemon?: DaemonProcess,
  ): Promise<void> {
    const budget = patience(timeoutMs);
    while (!predicate()) {
      if (daemon && !daemon.running)
        throw new Error(`daemon exited while waiting for ${what}:\n${daemon.tail()}`);
      if (budget.expired()) {
        const ready = daemon ? await fetch(`${await daemon.url()}/readyz`).then((r) => r.text(), String) : '';
        throw new Error(
          `timed out waiting for ${what}${daemon ? `: /readyz ${ready}\n${daemon.tail()}` : ''}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The checkpoint on disk (undefined when none). */
  async checkpoint(): Promise<CheckpointSnapshot | undefined> {
    return (await readCheckpoint(await this.stateDir())) as CheckpointSnapshot | undefined;
  }

  async digest(): Promise<(StateDigest & { servedVersion: string | null }) | undefined> {
    const snap = await this.checkpoint();
    if (snap === undefined) return undefined;
    fromSnapshot(snap, { decodePayload: (x) => x }); // it must be a valid snapshot
    return { ...stateDigest(snap), servedVersion: snap.servedVersion };
  }

  /** Asserts that `daemon` restored exactly `before` (the checkpoint the crash left). */
  static async assertRestored(
    daemon: DaemonProcess,
    before: Awaited<ReturnType<FaultScenario['digest']>>,
  ): Promise<LogLine> {
    const restored = await daemon.waitForEvent('restored');
    if (before !== undefined) {
      for (const k of [
        'labeled',
        'holdout',
        'pool',
        'outstanding',
        'windowSeq',
        'sha',
        'servedVersion',
      ] as const)
        assert.equal(restored[k], before[k], `restored ${k}`);
    }
    return restored;
  }

  /** Waits until the group has committed every input message (the daemon consumed everything). */
  async waitAllCommitted(timeoutMs = 90_000): Promise<void> {
    const budget = patience(timeoutMs);
    for (;;) {
      try {
        return await this.assertAllCommitted();
      } catch (error) {
        if (budget.expired()) throw this.withCommitHistory(error);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** `error`, with what the daemons committed last and their last errors, to explain itself. */
  private withCommitHistory(error: unknown): Error {
    const lines = this.daemons.flatMap((d, i) => [
      ...d
        .events('offsets-committed')
        .slice(-3)
        .map((l) => `daemon ${i + 1} committed ${JSON.stringify(l['offsets'])}`),
      ...d.lines
        .filter(isErrorLine)
        .slice(-5)
        .map((l) => `daemon ${i + 1} ${l.event ?? ''}: ${l.msg ?? ''}`),
    ]);
    const message = error instanceof Error ? error.message : String(error);
    return new Error(`${message}\n${lines.join('\n') || '(no commit logged)'}`, { cause: error });
  }

  /** The group's committed offsets equal the end of every partition of the input topics. */
  async assertAllCommitted(): Promise<void> {
    const admin = kafkaClient(this.brokers, `${this.name}-admin`).admin();
    await admin.connect();
    try {
      for (const topic of [this.topics.candidates, this.topics.feedback]) {
        const ends = await admin.fetchTopicOffsets(topic);
        const [committed] = await admin.fetchOffsets({ groupId: this.groupId, topics: [topic] });
        for (const p of ends) {
          const c = committed!.partitions.find((x) => x.partition === p.partition)!;
          // An empty partition has nothing to commit (-1).
          const offset = c.offset === '-1' && p.offset === '0' ? '0' : c.offset;
          assert.equal(offset, p.offset, `${topic}[${p.partition}] committed to its end`);
        }
      }
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * The checks every fault test ends with, on the final checkpoint (the daemon stopped). Returns the
   * counts for the report table.
   */
  async verify(options: { expectedDead?: Record<string, number>; discarded?: readonly string[] } = {}) {
    const snap = await this.checkpoint();
    assert.ok(snap, 'a final checkpoint exists');
    await this.assertAllCommitted();
    // No input lost: every candidate and feedback message on the topics accounted for, by id.
    const acc = await account({
      brokers: this.brokers,
      topics: this.topics,
      checkpoint: snap,
      logs: this.daemons.flatMap((d) => d.lines),
    });
    assertNothingLost(acc);
    // The valid candidates this test sent reached the pipeline (none dead-lettered unless expected).
    const discarded = new Set(options.discarded ?? []);
    for (const id of this.sent.keys()) {
      const outcome = acc.byId.get(id);
      assert.ok(outcome !== undefined, `candidate ${id} is not on the candidates topic`);
      if (!discarded.has(id))
        assert.ok(!outcome.startsWith('dead-lettered'), `valid candidate ${id} was ${outcome}`);
    }
    const pooled = new Set(snap.pool.candidates.map((c) => c.id));
    const labeled = new Map(snap.labels.records.map((r) => [r.id, r]));
    for (const id of pooled) assert.ok(!labeled.has(id), `${id} both pooled and labeled`);
    // No label counted twice: once each, with the resolved label, one vote per annotator (the
    // feedback that became votes, read back from the topic in order).
    assert.equal(labeled.size, snap.labels.records.length, 'each labeled candidate once');
    const expected = new Map<string, Map<string, number>>();
    for (const f of acc.taken) {
      if (f.outcome !== 'vote') continue;
      const votes = expected.get(f.candidateId) ?? new Map<string, number>();
      votes.set(f.annotatorId, f.label);
      expected.set(f.candidateId, votes);
    }
    for (const [id, votes] of expected) {
      const r = labeled.get(id);
      assert.ok(r, `feedback for ${id} was not recorded`);
      assert.equal(r.votes.length, votes.size, `${id}: one vote per annotator`);
      for (const v of r.votes)
        assert.equal(v.label, votes.get(v.annotatorId), `${id}: ${v.annotatorId}'s latest label`);
    }
    assert.equal(labeled.size, expected.size, 'labeled = candidates with feedback');
    // No duplicate or partial model version.
    const ids = this.versions.map((v) => v.version);
    assert.equal(new Set(ids).size, ids.length, `a version published twice: ${ids.join(', ')}`);
    const trainings = this.versions.map((v) => `${v.parent}|${[...v.trainedOn].sort().join(',')}`);
    assert.equal(
      new Set(trainings).size,
      trainings.length,
      'two versions from the same parent and training set',
    );
    await initBackend('cpu');
    for (const v of this.versions) await loadArtifactFromPath(v.artifact.location, v.artifact.sha256);
    // No source references (stand-ins for patient identifiers) in any log line of any run.
    const logs = this.daemons
      .map((d) => `${d.lines.map((l) => JSON.stringify(l)).join('\n')}\n${d.stderr.join('')}`)
      .join('\n');
    const leaked = new Set(logs.match(/st-[A-Za-z0-9._:-]+/g) ?? []);
    for (const id of this.sent.keys())
      assert.ok(!leaked.has(`st-${id}`), `a source reference of ${id} was logged`);
    if (options.expectedDead) {
      // Dead letters are sent at least once (one confirmed just before a crash may come again):
      // counted once per source message.
      const bySource = new Map(
        this.dead.map((d) => [`${d.source.topic}:${d.source.partition}:${d.source.offset}`, d]),
      );
      const byReason: Record<string, number> = {};
      for (const d of bySource.values()) byReason[d.reason] = (byReason[d.reason] ?? 0) + 1;
      assert.deepEqual(byReason, options.expectedDead, 'dead-lettered by reason (once per source message)');
    }
    return { ...this.counts(snap), accounting: tally(acc) };
  }

  counts(snap?: CheckpointSnapshot) {
    const byReason: Record<string, number> = {};
    for (const d of this.dead) byReason[d.reason] = (byReason[d.reason] ?? 0) + 1;
    const requestIds = this.requests.map((r) => r.requestId);
    return {
      candidatesSent: this.sent.size,
      feedbackSent: this.feedback.length,
      labelsRecorded: snap?.labels.records.length ?? null,
      pooled: snap?.pool.candidates.length ?? null,
      requests: requestIds.length,
      requestsRepeated: requestIds.length - new Set(requestIds).size,
      versionsPublished: this.versions.length,
      deadLettered: byReason,
    };
  }

  /** Prints one line of counts (for the report table). */
  report(
    scenario: string,
    counts: ReturnType<FaultScenario['counts']>,
    extra: Record<string, unknown> = {},
  ): void {
    process.stdout.write(`FAULT-RESULT ${JSON.stringify({ scenario, ...counts, ...extra })}\n`);
  }

  async cleanup(): Promise<void> {
    await this.stopOracle();
    for (const sim of this.simulators) if (sim.running) await sim.stop(20_000);
    for (const d of this.daemons) {
      if (d.running) await d.stop(20_000);
    }
    for (const c of this.consumers) await c.disconnect().catch(() => undefined);
    await this.producer?.disconnect().catch(() => undefined);
    await rm(await this.dir, { recursive: true, force: true });
  }
}
