/**
 * The kafkajs side of scale-out (docs/scale-out.md), as inputs of the loop and the effects it
 * carries out: the ledger read in full (in a group of its own per start, never committed), the
 * coordination group whose single partition makes its owner the coordinator (its shortlists
 * arrive there), the coordinator's transactional writer (opened per term: it fences any previous
 * coordinator), the rewind of a gained candidates partition, and the main group's co-partitioned
 * assigner. It decides nothing: the step does (loop/cluster/).
 */
import type { Consumer, ConsumerRunConfig, Kafka, TopicMessages } from 'kafkajs';
import { Subject, type Observable } from 'rxjs';
import type { Config } from '../../config/index.js';
import type { ElectionEvent } from '../../core/election.js';
import { parseLedgerMessage, parseShortlistMessage } from '../../messages/index.js';
import {
  CoordinatorFencedError,
  CoordinatorWriter,
  coordinatorTransactionalId,
} from '../coordinator-writer.js';
import { faultDelayMs } from '../fault-points.js';
import type { Input } from '../loop/io.js';
import type { Clock, OutMessage } from '../ports.js';
import { coordinationAssigner } from './assigners.js';
import type { KafkaBroker } from './kafka-broker.js';
import { readToEnd } from './read-to-end.js';

/** An instance id as an opaque id (hostnames may hold other characters). */
export function safeInstanceId(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 128);
  return safe.length > 0 ? safe : 'instance';
}

export class KafkaCluster {
  private readonly subject = new Subject<Input>();
  readonly inputs$: Observable<Input> = this.subject.asObservable();
  readonly instanceId: string;
  /** Next offset to read, per partition, of the ledger and of model-versions. */
  private readonly positions = new Map<string, number>();
  private ledger?: Consumer;
  private election?: Consumer;
  private electionMemberId?: string;
  /** The member id under which this instance was given the coordination partition (assigners.ts). */
  private heldAs: string | null = null;
  private main?: Consumer;
  /** The coordinator's transactional writer, by term (of the latest term only). */
  private readonly writers = new Map<number, CoordinatorWriter>();
  /** The latest term a take-over was asked for: an older one finishing later is dropped. */
  private latestTerm = 0;
  private freezeWatch?: NodeJS.Timeout;
  private closing = false;

  constructor(
    private readonly config: Config,
    private readonly clock: Clock,
    private readonly broker: KafkaBroker,
  ) {
    this.instanceId = safeInstanceId(config.cluster.instanceId);
  }

  private get kafka(): Kafka {
    return this.broker.kafka;
  }

  private get topics(): Config['kafka']['topics'] {
    return this.config.kafka.topics;
  }

  private input(input: Input): void {
    if (!this.closing) this.subject.next(input);
  }

  /**
   * The broker adapter's consumers, as they are made (before they run): the main one is rewound
   * through; what the model-versions one reads counts for a take-over's catch-up from the start.
   */
  consumer(role: 'main' | 'versions', consumer: Consumer): void {
    if (role === 'main') this.main = consumer;
    else this.followReads(consumer);
  }

  /** Reads the ledger in full, to its end, before candidates are replayed (L is whole first). */
  async readLedger(): Promise<void> {
    // A group of its own per start and never a commit: the whole ledger is read every time, and a
    // restarted instance does not wait for its dead predecessor's session to time out.
    const consumer = this.kafka.consumer({
      groupId: `${this.config.kafka.groupId}.ledger.${this.instanceId}.${Date.now().toString(36)}`,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
      // Requests and their `requested` entries count once their transaction commits.
      readUncommitted: false,
    });
    this.ledger = consumer;
    this.followReads(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topics.ledger], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: ({ partition, message }) => {
        const parsed = parseLedgerMessage(message.value);
        if (parsed.ok) this.input({ type: 'ledger-entry', message: parsed.value, now: this.clock.now() });
        this.positions.set(`${this.topics.ledger}:${partition}`, Number(message.offset) + 1);
        return Promise.resolve();
      },
    });
    await this.catchUp([this.topics.ledger]);
  }

  /**
   * Counts what a consumer of the ledger or of model-versions has read, transaction markers
   * included (they never reach a handler, yet a catch-up must pass them).
   */
  private followReads(consumer: Consumer): void {
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const key = `${payload.topic}:${payload.partition}`;
      const next = Number(payload.lastOffset) + 1;
      if (next > (this.positions.get(key) ?? 0)) this.positions.set(key, next);
    });
  }

  /** Resolves once the topics are read up to their ends as of now. */
  private async catchUp(topics: readonly string[]): Promise<void> {
    const read = await readToEnd(this.kafka, topics, (t, p) => this.positions.get(`${t}:${p}`) ?? 0, {
      stopped: () => this.closing,
    });
    // A coordinator never acts on a ledger it has not read to its end.
    if (!read && !this.closing) throw new Error(`${topics.join(' and ')} not read to their ends`);
  }

  /** Joins the coordination group (after the daemon's consumers run); its shortlists come as inputs. */
  async joinElection(): Promise<void> {
    const k = this.config.kafka;
    const consumer = this.kafka.consumer({
      groupId: `${k.groupId}.coordinator`,
      sessionTimeout: k.sessionTimeoutMs,
      heartbeatInterval: k.heartbeatIntervalMs,
      rebalanceTimeout: k.rebalanceTimeoutMs,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
      partitionAssigners: [coordinationAssigner(() => this.heldAs)],
    });
    this.election = consumer;
    const notice = this.electionNotice();
    const elect = (event: ElectionEvent) =>
      notice(() => this.input({ type: 'election', event, now: this.clock.now() }));
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const owns = (e.payload.memberAssignment[this.topics.coordination] ?? []).includes(0);
      // A new member id: this instance was dropped from the group (its session expired, e.g. while
      // frozen) and kafkajs rejoined without a rebalance event. Whatever it owned before is gone,
      // and so is its term, even if the new assignment gives it the partition again.
      if (this.electionMemberId !== undefined && e.payload.memberId !== this.electionMemberId)
        elect({ type: 'membership-lost' });
      this.electionMemberId = e.payload.memberId;
      this.heldAs = owns ? e.payload.memberId : null;
      elect({ type: 'assigned', owns });
    });
    // A rebalance alone changes nothing: the coordinator keeps acting until an assignment says
    // otherwise (the assignor gives it the partition back); a successor's writer fences it anyway.
    consumer.on(consumer.events.CRASH, () => {
      this.heldAs = null;
      elect({ type: 'membership-lost' });
    });
    consumer.on(consumer.events.STOP, () => {
      this.heldAs = null;
      elect({ type: 'stopped' });
    });
    await consumer.connect();
    // Shortlists are fresh or useless: a new coordinator starts at the end (nothing is committed).
    await consumer.subscribe({ topics: [this.topics.coordination], fromBeginning: false });
    await consumer.run(this.electionRun());
  }

  private electionRun(): ConsumerRunConfig {
    return {
      autoCommit: false,
      eachMessage: ({ message }) => {
        const parsed = parseShortlistMessage(message.value);
        if (parsed.ok) this.input({ type: 'shortlist', message: parsed.value, now: this.clock.now() });
        return Promise.resolve();
      },
    };
  }

  /**
   * How the news of the coordination group reaches the loop: at once, except under the test-only
   * `ACFT_FAULT_DELAY=election-notice:<ms>` (fault-points.ts). Then a process that finds it was
   * frozen past its session (its clock jumped) hears of the group only `<ms>` after waking, in
   * order: it still believes it coordinates and writes as a real zombie would, whatever the
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

  /**
   * A new term: opens the transactional writer first (which fences the previous coordinator and
   * aborts its open transaction, so the ledger holds no write of it still to come), then reads the
   * ledger and the model versions to their ends; the loop coordinates once it hears `caught-up`.
   */
  async takeOver(term: number): Promise<Input> {
    this.latestTerm = Math.max(this.latestTerm, term);
    const writer = await CoordinatorWriter.open(this.kafka, {
      transactionalId: coordinatorTransactionalId(this.config.kafka.groupId),
      // Longer than a session: a process frozen long enough for the broker to abort its
      // transaction has lost the partition too, so a new term follows.
      transactionTimeoutMs: Math.min(900_000, Math.max(60_000, 2 * this.config.kafka.sessionTimeoutMs)),
    });
    // A newer term was asked for meanwhile: this one's writer would fence its.
    if (term < this.latestTerm || this.closing) {
      await writer.close();
      return {
        type: 'cluster-failed',
        what: 'take-over',
        error: new Error(`term ${term} superseded`),
        now: this.clock.now(),
      };
    }
    this.dropWriter(term);
    this.writers.set(term, writer);
    await this.catchUp([this.topics.ledger, this.topics.modelVersions]);
    return { type: 'election', event: { type: 'caught-up', term }, now: this.clock.now() };
  }

  /** Closes the writers of `term` and before (a newer term's stays). */
  dropWriter(term = Infinity): void {
    for (const [t, w] of this.writers)
      if (t <= term) {
        void w.close();
        this.writers.delete(t);
      }
  }

  /** Writes as the coordinator of `term`, in one transaction. */
  async writeAsCoordinator(term: number, topicMessages: readonly TopicMessages[]): Promise<void> {
    const writer = this.writers.get(term);
    if (writer === undefined) throw new Error('not the coordinator of this term');
    await writer.write([...topicMessages]);
  }

  /** Whether a failed coordinator write lost its writer (fenced, or its transaction not ended). */
  writerLost(term: number, error: unknown): { fenced: boolean; writerLost: boolean } {
    const fenced = error instanceof CoordinatorFencedError;
    const writer = this.writers.get(term);
    // No writer for the term (a take-over that failed): as lost, so that a new term begins.
    return { fenced, writerLost: fenced || ((writer === undefined || !writer.usable) && !this.closing) };
  }

  /** Leaves and rejoins the coordination group: a new assignment, a new term and writer. */
  async rejoinElection(): Promise<void> {
    const c = this.election;
    if (c === undefined || this.closing) return;
    this.heldAs = null;
    await c.stop();
    if (!this.closing) await c.run(this.electionRun());
  }

  /**
   * Pauses gained candidates partitions (at once: no fetch of them before), then rewinds each to
   * the start of the pool's TTL; below the offset committed then, a message is a replay.
   */
  async rewind(partitions: readonly number[]): Promise<Input> {
    const topic = this.topics.candidates;
    this.main?.pause([{ topic, partitions: [...partitions] }]);
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId: this.config.kafka.groupId, topics: [topic] });
      const from = await admin.fetchTopicOffsetsByTimestamp(
        topic,
        Math.max(0, this.clock.now() - this.config.pool.ttlMs),
      );
      const replays: { partition: number; until: number }[] = [];
      for (const p of partitions) {
        const until = Number(committed?.partitions.find((x) => x.partition === p)?.offset ?? -1);
        const start = Number(from.find((x) => x.partition === p)?.offset ?? 0);
        if (until <= 0) continue; // nothing committed: the group reads from the beginning anyway
        replays.push({ partition: p, until });
        if (start < until) this.main?.seek({ topic, partition: p, offset: String(start) });
      }
      return { type: 'rewound', replays, partitions, now: this.clock.now() };
    } finally {
      await admin.disconnect();
    }
  }

  resume(topic: string, partitions: readonly number[]): void {
    if (!this.closing) this.main?.resume([{ topic, partitions: [...partitions] }]);
  }

  send(topic: string, messages: readonly OutMessage[]): Promise<void> {
    return this.broker.send(topic, messages);
  }

  async close(): Promise<void> {
    this.input({ type: 'election', event: { type: 'stopped' }, now: this.clock.now() });
    this.closing = true;
    if (this.freezeWatch) clearInterval(this.freezeWatch);
    for (const w of this.writers.values()) await w.close().catch(() => undefined);
    this.writers.clear();
    await this.election?.disconnect().catch(() => undefined);
    await this.ledger?.disconnect().catch(() => undefined);
    this.subject.complete();
  }
}
