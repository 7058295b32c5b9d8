/**
 * Scale-out (docs/scale-out.md): the Kafka side of several `acft run` instances in one consumer
 * group. Every instance
 * - consumes its share of the candidate and feedback partitions (co-partitioned: partition p of
 *   both goes to one instance), rebuilds the pool of a partition it is given by replaying the
 *   candidates of the last pool TTL, and scores that pool;
 * - writes a `labeled` ledger entry (votes, label, pixels) when feedback it owns changes a
 *   candidate's votes, and reads the whole ledger, so that L is the same on every instance;
 * - publishes its shortlist (top ω·b) to the coordination topic.
 * The instance that owns the coordination topic's single partition, in a group of its own, is the
 * coordinator once it has read the ledger and the model versions to their end: it merges the
 * shortlists, makes the randomized selection, records each request in the ledger in the
 * transaction that publishes it, and runs the fine-tuning windows (the daemon asks {@link Cluster.isCoordinator}).
 * No other instance writes labeling requests or model versions: the coordinator writes them through
 * a transactional producer opened when its term begins, which fences any previous coordinator
 * (see coordinator-writer.ts); a fenced write makes it step down.
 */
import {
  AssignerProtocol,
  type Consumer,
  type ConsumerRunConfig,
  type Kafka,
  type KafkaMessage,
  type PartitionAssigner,
  type Producer,
  type TopicMessages,
} from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { coPartitionedAssignment } from '../core/assignment.js';
import { INITIAL_ELECTION, electionReducer, type ElectionEvent } from '../core/election.js';
import {
  isLabeled,
  newLabelsSinceWindow,
  type LabelingConfig,
  type LabelingEffect,
  type LabelingState,
} from '../core/labels.js';
import {
  applyLabeledEntry,
  bookRequest,
  expireRequests,
  isOutstanding,
  labeledEntry,
  observeWindow,
  type LateTrained,
  type RequestBook,
} from '../core/ledger.js';
import type { PartitionOffset } from '../core/offsets.js';
import { getCandidate, poolCandidates, poolReducer, type SourceRef } from '../core/pool.js';
import { deriveSeed } from '../core/rng.js';
import { mergeShortlists, planMergedRequests, shortlistOf, type Shortlist } from '../core/shortlist.js';
import {
  encodeLedgerMessage,
  encodeShortlistMessage,
  parseLedgerMessage,
  parseShortlistMessage,
  type LabeledLedgerMessage,
  type ModelVersionMessage,
} from '../messages/index.js';
import type { AcftMetrics } from '../observability/metrics.js';
import {
  CoordinatorFencedError,
  CoordinatorWriter,
  coordinatorTransactionalId,
} from './coordinator-writer.js';
import { encodePlannedRequest } from './request-message.js';
import { decodeStored, encodeStored, type StoredCandidate } from './stored-candidate.js';
import { faultDelayMs } from './fault-points.js';

/** What the cluster needs of the daemon. */
export interface ClusterHost {
  /** The daemon's pool and label store (in scale-out, L holds every instance's labels). */
  state(): LabelingState<StoredCandidate>;
  readonly labelingConfig: LabelingConfig;
  servedVersion(): string;
  /** A window of this instance is training (no requests then, as with one instance). */
  windowRunning(): boolean;
  /** A request on a candidate this instance owns was recorded (label latency counts from `atMs`). */
  onRequested(candidateId: string, atMs: number): void;
  /** The coordinator role was lost: a window in flight must not publish. */
  onStepDown(): void;
  /** The coordinator role was gained. */
  onCoordinator(): void;
}

export interface ClusterOptions {
  config: Config;
  log: Logger;
  metrics: AcftMetrics;
  host: ClusterHost;
}

/** An instance id as an opaque id (hostnames may hold other characters). */
export function safeInstanceId(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 128);
  return safe.length > 0 ? safe : 'instance';
}

/**
 * Caps commits of feedback partitions below the earliest feedback still waiting for its candidate,
 * so that waiting feedback is read again by whoever owns the partition after a crash.
 */
export function capCommits(
  commits: readonly PartitionOffset[],
  waiting: Iterable<SourceRef>,
): PartitionOffset[] {
  const earliest = new Map<string, number>();
  for (const s of waiting) {
    const key = `${s.topic}:${s.partition}`;
    earliest.set(key, Math.min(earliest.get(key) ?? Infinity, s.offset));
  }
  return commits.flatMap((c) => {
    const cap = earliest.get(`${c.topic}:${c.partition}`);
    if (cap === undefined || c.offset <= cap) return [c];
    return [{ ...c, offset: cap }];
  });
}

const CATCH_UP_POLL_MS = 50;

/**
 * A ledger write failed (e.g. the brokers are away): the feedback that caused it must be read
 * again, not dead-lettered as poison. The daemon lets it fail the batch, which kafkajs retries.
 */
export class LedgerWriteError extends Error {
  readonly code = 'LEDGER_WRITE';
  readonly retryable = true;
  override readonly name = 'LedgerWriteError';
}

export class Cluster {
  readonly instanceId: string;
  private election = INITIAL_ELECTION;
  private readonly book: RequestBook = new Map();
  private readonly late: LateTrained = new Map();
  private readonly shortlists = new Map<string, Shortlist>();
  private readonly knownVersions = new Set<string>();
  /** Next offset to read, per partition, of the ledger and of model-versions. */
  private readonly positions = new Map<string, number>();
  /** Candidates partition -> committed offset when it was assigned: below it, a replay. */
  private readonly replayUntil = new Map<number, number>();
  /** Feedback waiting for its candidate, by candidate id: where it came from (earliest). */
  private readonly waiting = new Map<string, SourceRef>();
  /** Labeled candidates whose ledger entry is still to be written. */
  private readonly unwritten = new Set<string>();
  private ownedCandidates: number[] = [];
  private kafka?: Kafka;
  private producer?: Producer;
  /** The coordinator's transactional writer, for the current term only. */
  private writer?: CoordinatorWriter;
  private mainConsumer?: Consumer;
  private ledgerConsumer?: Consumer;
  private electionConsumer?: Consumer;
  private electionMemberId?: string;
  private shortlistTimer?: NodeJS.Timeout;
  /** Test-only: the watch for a freeze (see electionNotice). */
  private freezeWatch?: NodeJS.Timeout;
  private requesting = false;
  private requestRound = 0;
  private closing = false;

  constructor(private readonly options: ClusterOptions) {
    this.instanceId = safeInstanceId(options.config.cluster.instanceId);
  }

  private get config(): Config {
    return this.options.config;
  }

  private get log(): Logger {
    return this.options.log;
  }

  private get topics(): Config['kafka']['topics'] {
    return this.config.kafka.topics;
  }

  /** Coordinates now: owns the coordination partition and has caught up. */
  get isCoordinator(): boolean {
    return this.election.coordinator;
  }

  /** Outstanding requests known to this instance (from the ledger). */
  outstandingCount(now = Date.now()): number {
    let n = 0;
    for (const id of this.book.keys()) if (isOutstanding(this.book, id, now)) n++;
    return n;
  }

  /**
   * Starts reading the ledger in full and waits until it is read to its end, so that L is whole
   * before candidates are replayed (a labeled candidate is then never pooled again).
   */
  async start(kafka: Kafka, producer: Producer): Promise<void> {
    this.kafka = kafka;
    this.producer = producer;
    // A group of its own per start and never a commit: the whole ledger is read every time, and a
    // restarted instance does not wait for its dead predecessor's session to time out.
    this.ledgerConsumer = kafka.consumer({
      groupId: `${this.config.kafka.groupId}.ledger.${this.instanceId}.${Date.now().toString(36)}`,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
      // Requests and their `requested` entries count once their transaction commits.
      readUncommitted: false,
    });
    this.followReads(this.ledgerConsumer);
    await this.ledgerConsumer.connect();
    await this.ledgerConsumer.subscribe({ topics: [this.topics.ledger], fromBeginning: true });
    await this.ledgerConsumer.run({
      autoCommit: false,
      eachMessage: ({ partition, message }) => {
        this.onLedger(message);
        this.positions.set(`${this.topics.ledger}:${partition}`, Number(message.offset) + 1);
        return Promise.resolve();
      },
    });
    await this.catchUp([this.topics.ledger]);
    this.log.info({ event: 'ledger-read', labeled: this.state.labels.records.size }, 'ledger read');
  }

  /**
   * Counts what a consumer of the ledger or of model-versions has read, transaction markers
   * included (they never reach a handler, yet a catch-up must pass them).
   */
  followReads(consumer: Consumer): void {
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const key = `${payload.topic}:${payload.partition}`;
      const next = Number(payload.lastOffset) + 1;
      if (next > (this.positions.get(key) ?? 0)) this.positions.set(key, next);
    });
  }

  /** The daemon's main consumer, before it runs: partitions it is given are rewound through it. */
  useConsumer(consumer: Consumer): void {
    this.mainConsumer = consumer;
  }

  /** Joins the coordination group (after the daemon's consumers run) and starts the shortlists. */
  async startCoordination(): Promise<void> {
    const kafka = this.kafka as Kafka;
    const { kafka: k } = this.config;
    this.electionConsumer = kafka.consumer({
      groupId: `${k.groupId}.coordinator`,
      sessionTimeout: k.sessionTimeoutMs,
      heartbeatInterval: k.heartbeatIntervalMs,
      rebalanceTimeout: k.rebalanceTimeoutMs,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
    });
    const c = this.electionConsumer;
    const later = this.electionNotice();
    c.on(c.events.GROUP_JOIN, (e) =>
      later(() => {
        const owns = (e.payload.memberAssignment[this.topics.coordination] ?? []).includes(0);
        // A new member id: this instance was dropped from the group (its session expired, e.g.
        // while frozen) and kafkajs rejoined without a rebalance event. Whatever it owned before is
        // gone, and so is its term, even if the new assignment gives it the partition again.
        if (this.electionMemberId !== undefined && e.payload.memberId !== this.electionMemberId)
          this.dispatch({ type: 'rebalancing' });
        this.electionMemberId = e.payload.memberId;
        this.dispatch({ type: 'assigned', owns });
      }),
    );
    c.on(c.events.REBALANCING, () => later(() => this.dispatch({ type: 'rebalancing' })));
    c.on(c.events.CRASH, () => later(() => this.dispatch({ type: 'rebalancing' })));
    c.on(c.events.STOP, () => this.dispatch({ type: 'stopped' }));
    await c.connect();
    // Shortlists are fresh or useless: a new coordinator starts at the end (nothing is committed).
    await c.subscribe({ topics: [this.topics.coordination], fromBeginning: false });
    await c.run(this.electionRun());
    this.shortlistTimer = setInterval(
      () => void this.publishShortlist(),
      this.config.cluster.shortlistIntervalMs,
    );
  }

  /**
   * How the news of the coordination group reaches the election: at once, except under the
   * test-only `ACFT_FAULT_DELAY=election-notice:<ms>` (fault-points.ts). Then a process that finds
   * it was frozen past its session (its clock jumped) hears of the group only `<ms>` after waking,
   * in order: it still believes it coordinates and writes as a real zombie would, whatever the
   * machine's load, and the broker's fencing is what stops it. The others hear at once.
   */
  private electionNotice(): (notice: () => void) => void {
    const hold = faultDelayMs('election-notice');
    if (hold <= 0) return (notice) => notice();
    let until = 0;
    let last = Date.now();
    const held: (() => void)[] = [];
    this.freezeWatch = setInterval(() => {
      const now = Date.now();
      if (now - last > this.config.kafka.sessionTimeoutMs) {
        until = now + hold;
        setTimeout(() => held.splice(0).forEach((notice) => notice()), hold).unref();
      }
      last = now;
    }, 100);
    this.freezeWatch.unref();
    return (notice) => (Date.now() < until ? void held.push(notice) : notice());
  }

  private electionRun(): ConsumerRunConfig {
    return {
      autoCommit: false,
      eachMessage: ({ message }) => {
        this.onShortlist(message);
        return Promise.resolve();
      },
    };
  }

  // --- election ---

  private dispatch(event: ElectionEvent): void {
    const step = electionReducer(this.election, event);
    this.election = step.state;
    for (const effect of step.effects) {
      switch (effect.type) {
        case 'catch-up-needed':
          void this.takeOver(effect.term).catch((error: unknown) => {
            if (!this.closing)
              this.log.error(
                { event: 'catch-up-failed', err: error },
                'take-over failed (writer or catch-up)',
              );
          });
          break;
        case 'became-coordinator':
          this.shortlists.clear();
          this.options.metrics.leader.set(1);
          this.log.info(
            { event: 'coordinator', role: 'gained', term: effect.term, instance: this.instanceId },
            'this instance coordinates selection, windows and versions',
          );
          this.options.host.onCoordinator();
          break;
        case 'stepped-down':
          this.options.metrics.leader.set(0);
          this.options.metrics.coordinatorShortlists.set(0);
          this.log.info(
            { event: 'coordinator', role: 'lost', term: effect.term, instance: this.instanceId },
            'this instance no longer coordinates',
          );
          this.dropWriter();
          this.options.host.onStepDown();
          break;
      }
    }
  }

  /**
   * A new term: opens the transactional writer first (which fences the previous coordinator and
   * aborts its open transaction, so the ledger holds no write of it still to come), then reads the
   * ledger and the model versions to their ends, then coordinates.
   */
  private async takeOver(term: number): Promise<void> {
    const writer = await CoordinatorWriter.open(this.kafka as Kafka, {
      transactionalId: coordinatorTransactionalId(this.config.kafka.groupId),
      // Longer than a session: a process frozen long enough for the broker to abort its
      // transaction has lost the partition too, so a new term follows.
      transactionTimeoutMs: Math.min(900_000, Math.max(60_000, 2 * this.config.kafka.sessionTimeoutMs)),
    });
    if (this.closing || !this.election.owns || this.election.term !== term) {
      await writer.close();
      return;
    }
    // A writer of an earlier term whose catch-up a rebalance interrupted (no step-down then).
    this.dropWriter();
    this.writer = writer;
    await this.catchUp([this.topics.ledger, this.topics.modelVersions]);
    this.dispatch({ type: 'caught-up', term });
  }

  private dropWriter(): void {
    const writer = this.writer;
    this.writer = undefined;
    void writer?.close();
  }

  /**
   * Writes as the coordinator of the current term, in one transaction. A fenced write (another
   * instance took over while this one was frozen or cut off) is never retried: this instance steps
   * down. So does one whose transaction could not be ended; it then rejoins the election.
   */
  async writeAsCoordinator(topicMessages: TopicMessages[]): Promise<void> {
    const writer = this.writer;
    const term = this.election.term;
    if (!this.isCoordinator || writer === undefined) throw new Error('not the coordinator');
    try {
      await writer.write(topicMessages);
    } catch (error) {
      const fenced = error instanceof CoordinatorFencedError;
      if (fenced) this.options.metrics.coordinatorFenced.inc();
      if (fenced || (!writer.usable && !this.closing)) {
        // A newer term of this instance has a writer of its own: nothing to step down from.
        const current = this.election.owns && this.election.term === term;
        this.log[fenced ? 'warn' : 'error'](
          {
            event: fenced ? 'coordinator-fenced' : 'coordinator-writer-lost',
            term,
            instance: this.instanceId,
            err: error,
          },
          fenced
            ? 'another instance coordinates now: write refused, stepping down'
            : 'transaction not ended: stepping down',
        );
        this.dispatch({ type: 'writer-lost', term });
        // The group may still give this instance the partition (kafkajs says nothing when the
        // broker fenced it without a rebalance): leaving and joining again makes a new term.
        if (current) void this.rejoinElection();
      }
      throw error;
    }
  }

  /** Leaves and rejoins the coordination group: a new assignment, a new term and writer. */
  private async rejoinElection(): Promise<void> {
    const c = this.electionConsumer;
    if (c === undefined || this.closing) return;
    this.log.info({ event: 'coordination-rejoin' }, 'leaving and rejoining the coordination group');
    try {
      await c.stop();
      if (!this.closing) await c.run(this.electionRun());
    } catch (error) {
      if (!this.closing)
        this.log.error({ event: 'rejoin-failed', err: error }, 'coordination group not rejoined');
    }
  }

  /** Resolves once the topics are read up to their ends as of now. */
  private async catchUp(topics: readonly string[]): Promise<void> {
    const admin = (this.kafka as Kafka).admin();
    await admin.connect();
    const targets: [string, number][] = [];
    try {
      for (const topic of topics) {
        for (const p of await admin.fetchTopicOffsets(topic)) {
          if (Number(p.high) > Number(p.low)) targets.push([`${topic}:${p.partition}`, Number(p.high)]);
        }
      }
    } finally {
      await admin.disconnect();
    }
    while (!this.closing && targets.some(([key, high]) => (this.positions.get(key) ?? 0) < high)) {
      await new Promise((r) => setTimeout(r, CATCH_UP_POLL_MS));
    }
  }

  // --- the ledger ---

  private get state(): LabelingState<StoredCandidate> {
    return this.options.host.state();
  }

  private onLedger(message: KafkaMessage): void {
    const parsed = parseLedgerMessage(message.value);
    if (!parsed.ok) {
      this.log.warn({ event: 'ledger-invalid', reason: parsed.reason }, 'ledger entry ignored');
      return;
    }
    const m = parsed.value;
    const now = Date.now();
    if (m.kind === 'labeled') {
      this.book.delete(m.candidateId);
      applyLabeledEntry(
        this.state,
        {
          candidateId: m.candidateId,
          label: m.label,
          heldOut: m.heldOut,
          votes: m.votes,
          source: m.source,
          payload: decodeStored(m.candidate as never),
        },
        now,
        this.options.host.labelingConfig,
        this.late,
      );
      return;
    }
    if (isLabeled(this.state.labels, m.candidateId)) return;
    bookRequest(this.book, {
      candidateId: m.candidateId,
      requestId: m.requestId,
      modelVersion: m.modelVersion,
      issuedAtMs: Date.parse(m.issuedAt),
      leaseUntilMs: Date.parse(m.leaseExpiresAt),
    });
    this.markRequested(m.candidateId, now);
  }

  /** Marks an owned, pooled candidate requested when the ledger holds a live request on it. */
  private markRequested(candidateId: string, now: number): void {
    const entry = this.book.get(candidateId);
    const c = getCandidate(this.state.pool, candidateId);
    if (entry === undefined || entry.leaseUntilMs <= now || c === undefined || c.state !== 'pooled') return;
    const step = poolReducer(
      this.state.pool,
      { type: 'requests-issued', now, requests: [{ candidateId, requestId: entry.requestId }] },
      this.options.host.labelingConfig.pool,
    );
    if (step.effects.some((e) => e.type === 'requested'))
      this.options.host.onRequested(candidateId, entry.issuedAtMs);
  }

  /**
   * After a message (or a tick) changed the pool and L: applies live requests to candidates just
   * admitted, remembers feedback waiting for its candidate, and writes a `labeled` entry for every
   * candidate whose votes changed here. Resolves once the entries are written.
   */
  async afterStep(effects: readonly LabelingEffect<StoredCandidate>[], source?: SourceRef): Promise<void> {
    const now = Date.now();
    const changed = new Set<string>();
    for (const e of effects) {
      switch (e.type) {
        case 'admitted':
          this.markRequested(e.id, now);
          break;
        case 'feedback-pending':
          if (source !== undefined && !this.waiting.has(e.candidateId))
            this.waiting.set(e.candidateId, source);
          break;
        case 'pending-applied':
          this.waiting.delete(e.candidateId);
          break;
        case 'dead-letter':
          this.waiting.delete(e.feedback.candidateId);
          break;
        case 'first-label':
        case 'label-changed':
        case 'label-confirmed':
          changed.add(e.candidateId);
          break;
        default:
          break;
      }
    }
    // Requests seen in the ledger whose lease ended are forgotten (on the clock's tick).
    if (source === undefined) expireRequests(this.book, now);
    // Entries not written yet (a failed write) go with the next step: a redelivered feedback
    // message is a no-op for L, so it would not ask for them again.
    for (const id of changed) this.unwritten.add(id);
    if (this.unwritten.size > 0) {
      const ids = [...this.unwritten];
      try {
        await this.publishLabeled(ids);
      } catch (cause) {
        throw new LedgerWriteError('labeled candidates not written to the ledger', { cause });
      }
      for (const id of ids) this.unwritten.delete(id);
    }
  }

  private async publishLabeled(ids: readonly string[]): Promise<void> {
    const time = new Date().toISOString();
    const messages = ids.flatMap((id) => {
      const entry = labeledEntry(this.state.labels, id);
      if (entry === undefined) return [];
      const value: LabeledLedgerMessage = {
        schema: 'acft.ledger/v1',
        kind: 'labeled',
        candidateId: id,
        label: entry.label,
        heldOut: entry.heldOut,
        votes: [...entry.votes],
        source: { ...entry.source },
        candidate: encodeStored(entry.payload) as LabeledLedgerMessage['candidate'],
        writer: this.instanceId,
        time,
      };
      return [{ key: id, value: encodeLedgerMessage(value) }];
    });
    if (messages.length > 0) await this.producer?.send({ topic: this.topics.ledger, messages });
  }

  /** Commits to make: feedback partitions are held below feedback still waiting for its candidate. */
  commits(commits: readonly PartitionOffset[]): PartitionOffset[] {
    return capCommits(commits, this.waiting.values());
  }

  // --- partitions of the main group ---

  /** The main group's assignor: partition p of candidates and of feedback go to one member. */
  assigner(): PartitionAssigner {
    return ({ cluster }) => ({
      name: 'AcftCoPartitionAssigner',
      version: 0,
      assign: ({ members, topics }) => {
        const partitions = Object.fromEntries(
          topics.map((t) => [t, cluster.findTopicPartitionMetadata(t).map((m) => m.partitionId)]),
        );
        const assignment = coPartitionedAssignment(
          members.map((m) => m.memberId),
          partitions,
        );
        return Promise.resolve(
          Object.entries(assignment).map(([memberId, a]) => ({
            memberId,
            memberAssignment: AssignerProtocol.MemberAssignment.encode({
              version: 0,
              assignment: a,
              userData: Buffer.alloc(0),
            }),
          })),
        );
      },
      protocol: ({ topics }) => ({
        name: 'AcftCoPartitionAssigner',
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
      }),
    });
  }

  /**
   * A new assignment of the main group: candidates of partitions no longer owned leave the pool
   * (their new owner pools them); a newly owned candidates partition is paused, rewound to the
   * start of the pool's TTL to rebuild its pool, and resumed. Synchronous part first, so that no
   * fetch of the new partition happens before the pause.
   */
  onAssignment(assignment: Record<string, number[]>): void {
    const owned = assignment[this.topics.candidates] ?? [];
    const gained = owned.filter((p) => !this.ownedCandidates.includes(p));
    this.ownedCandidates = [...owned];
    const lost: string[] = [];
    for (const c of poolCandidates(this.state.pool)) {
      if (c.source.topic === this.topics.candidates && !owned.includes(c.source.partition)) lost.push(c.id);
    }
    for (const id of lost) {
      poolReducer(
        this.state.pool,
        { type: 'discard', id, reason: 'partition-revoked' },
        this.options.host.labelingConfig.pool,
      );
    }
    for (const p of [...this.replayUntil.keys()]) if (!owned.includes(p)) this.replayUntil.delete(p);
    if (lost.length > 0)
      this.log.info(
        { event: 'pool-handed-over', candidates: lost.length },
        'candidates of revoked partitions left the pool',
      );
    if (gained.length === 0 || this.mainConsumer === undefined) return;
    const consumer = this.mainConsumer;
    const topic = this.topics.candidates;
    consumer.pause([{ topic, partitions: gained }]);
    void this.rewind(gained)
      .catch((error: unknown) => {
        if (!this.closing)
          this.log.error(
            { event: 'rewind-failed', err: error },
            'pool rebuild failed; reading on from the committed offset',
          );
      })
      .finally(() => {
        if (!this.closing) consumer.resume([{ topic, partitions: gained }]);
      });
  }

  private async rewind(partitions: readonly number[]): Promise<void> {
    const consumer = this.mainConsumer as Consumer;
    const topic = this.topics.candidates;
    const admin = (this.kafka as Kafka).admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId: this.config.kafka.groupId, topics: [topic] });
      const ttl = this.config.pool.ttlMs;
      const from = await admin.fetchTopicOffsetsByTimestamp(topic, Math.max(0, Date.now() - ttl));
      for (const p of partitions) {
        const done = Number(committed?.partitions.find((x) => x.partition === p)?.offset ?? -1);
        const start = Number(from.find((x) => x.partition === p)?.offset ?? 0);
        if (done <= 0) continue; // nothing committed: the group reads from the beginning anyway
        this.replayUntil.set(p, done);
        if (start < done) consumer.seek({ topic, partition: p, offset: String(start) });
        this.log.info(
          { event: 'pool-rebuild', partition: p, from: start, committed: done },
          'replaying the candidates of the pool TTL',
        );
      }
    } finally {
      await admin.disconnect();
    }
  }

  /** A candidate message below the offset committed when its partition was assigned: a replay. */
  isReplay(source: SourceRef): boolean {
    if (source.topic !== this.topics.candidates) return false;
    const until = this.replayUntil.get(source.partition);
    return until !== undefined && source.offset < until;
  }

  // --- shortlists and selection ---

  private async publishShortlist(): Promise<void> {
    if (this.closing || this.producer === undefined) return;
    const size = Math.ceil(this.config.selection.omega * this.config.selection.b);
    const entries = shortlistOf(this.state.pool, size).map((e) => ({
      candidateId: e.candidateId,
      scores: {
        score: e.score.value,
        entropy: e.score.entropy,
        diversity: e.score.diversity,
        dominantClass: e.score.dominantClass,
        meanProbs: [...e.score.meanProbs],
      },
      modelVersion: e.score.modelVersion,
      scoredAt: new Date(e.score.scoredAtMs).toISOString(),
    }));
    try {
      await this.producer.send({
        topic: this.topics.coordination,
        messages: [
          {
            key: this.instanceId,
            value: encodeShortlistMessage({
              schema: 'acft.shortlist/v1',
              instanceId: this.instanceId,
              servedVersion: this.options.host.servedVersion(),
              partitions: [...this.ownedCandidates],
              entries,
              time: new Date().toISOString(),
            }),
          },
        ],
      });
    } catch (error) {
      if (!this.closing) this.log.warn({ event: 'shortlist-failed', err: error }, 'shortlist not published');
    }
  }

  private onShortlist(message: KafkaMessage): void {
    if (!this.isCoordinator) return;
    const parsed = parseShortlistMessage(message.value);
    if (!parsed.ok) return;
    const m = parsed.value;
    const now = Date.now();
    this.shortlists.set(m.instanceId, {
      instanceId: m.instanceId,
      // The coordinator's clock decides freshness: instances' clocks may differ.
      sentAtMs: now,
      entries: m.entries.map((e) => ({
        candidateId: e.candidateId,
        score: {
          value: e.scores.score,
          entropy: e.scores.entropy,
          diversity: e.scores.diversity,
          dominantClass: e.scores.dominantClass,
          meanProbs: e.scores.meanProbs,
          modelVersion: e.modelVersion,
          scoredAtMs: Date.parse(e.scoredAt),
        },
      })),
    });
    let fresh = 0;
    for (const s of this.shortlists.values())
      if (now - s.sentAtMs <= this.config.cluster.shortlistMaxAgeMs) fresh++;
    this.options.metrics.coordinatorShortlists.set(fresh);
    this.maybeRequest();
  }

  /**
   * On the coordinator: tops the outstanding requests up to b (less the new labels of this
   * window) from the merged shortlists; each request is written to the ledger in the transaction
   * that publishes it, so a coordinator that takes over knows it.
   */
  maybeRequest(): void {
    if (!this.isCoordinator || this.requesting || this.closing || this.options.host.windowRunning()) return;
    const now = Date.now();
    expireRequests(this.book, now);
    const labels = this.state.labels;
    const need = this.config.selection.b - newLabelsSinceWindow(labels) - this.book.size;
    if (need <= 0) return;
    const merged = mergeShortlists(this.shortlists.values(), {
      nowMs: now,
      maxAgeMs: this.config.cluster.shortlistMaxAgeMs,
      exclude: (id) => isLabeled(labels, id) || isOutstanding(this.book, id, now),
    });
    if (merged.length === 0) return;
    const modelVersion = this.options.host.servedVersion();
    const planned = planMergedRequests(merged, {
      b: need,
      omega: this.config.selection.omega,
      randomness: this.config.selection.randomness,
      seed: deriveSeed(this.config.selection.seed, 'select', labels.windowSeq, this.requestRound++),
      modelVersion,
      windowSeq: labels.windowSeq,
    });
    if (planned.requests.length === 0) return;
    const leaseUntilMs = now + this.config.selection.leaseMs;
    for (const r of planned.requests) {
      bookRequest(this.book, {
        candidateId: r.candidateId,
        requestId: r.requestId,
        modelVersion,
        issuedAtMs: now,
        leaseUntilMs,
      });
    }
    this.requesting = true;
    void this.publishRequests(planned, now, leaseUntilMs).finally(() => {
      this.requesting = false;
    });
  }

  /**
   * The `requested` ledger entries and the labeling requests of one selection, in one transaction:
   * a coordinator that takes over sees both or neither, and a fenced one publishes neither.
   */
  private async publishRequests(
    planned: ReturnType<typeof planMergedRequests>,
    now: number,
    leaseUntilMs: number,
  ): Promise<void> {
    const issuedAt = new Date(now).toISOString();
    const leaseExpiresAt = new Date(leaseUntilMs).toISOString();
    const ledger = planned.requests.map((r) => ({
      key: r.candidateId,
      value: encodeLedgerMessage({
        schema: 'acft.ledger/v1',
        kind: 'requested',
        candidateId: r.candidateId,
        requestId: r.requestId,
        modelVersion: r.modelVersion,
        issuedAt,
        leaseExpiresAt,
        writer: this.instanceId,
      }),
    }));
    const requests = planned.requests.map((r) => ({
      key: r.candidateId,
      value: encodePlannedRequest(r, {
        shortlistSize: planned.selection.shortlist.length,
        criterion: this.config.scoring.criterion,
        leaseExpiresAt,
        time: issuedAt,
      }),
    }));
    try {
      await this.writeAsCoordinator([
        { topic: this.topics.ledger, messages: ledger },
        { topic: this.topics.labelingRequests, messages: requests },
      ]);
    } catch (error) {
      for (const r of planned.requests) this.book.delete(r.candidateId);
      if (!this.closing && !(error instanceof CoordinatorFencedError))
        this.log.error({ event: 'publish-failed', err: error }, 'labeling requests not published');
      return;
    }
    this.options.metrics.labelingRequestsEmitted.inc(requests.length);
    this.log.info(
      { event: 'requests', count: requests.length, version: planned.requests[0]?.modelVersion },
      'labeling requests issued',
    );
  }

  // --- model versions ---

  /** Counts a model-versions message as read (for the catch-up of a new coordinator). */
  versionRead(partition: number, offset: string): void {
    this.positions.set(`${this.topics.modelVersions}:${partition}`, Number(offset) + 1);
  }

  /** A version this instance is about to publish: not to be observed as another's window. */
  ownVersion(version: string): void {
    this.knownVersions.add(version);
  }

  /** A version on `model-versions` (promoted or rejected): another instance's window, once. */
  onVersion(msg: ModelVersionMessage): void {
    if (this.knownVersions.has(msg.version)) return;
    this.knownVersions.add(msg.version);
    observeWindow(
      this.state.labels,
      { strategy: msg.strategy, trainedOn: msg.trainedOn },
      Date.now(),
      this.options.host.labelingConfig.labels,
      this.late,
    );
  }

  /** Stops the shortlists and the coordination and ledger consumers. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.shortlistTimer) clearInterval(this.shortlistTimer);
    if (this.freezeWatch) clearInterval(this.freezeWatch);
    const writer = this.writer;
    this.dispatch({ type: 'stopped' });
    await writer?.close();
    await this.electionConsumer?.disconnect().catch(() => undefined);
    await this.ledgerConsumer?.disconnect().catch(() => undefined);
  }
}
