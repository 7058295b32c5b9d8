/**
 * The kafkajs adapter of the broker port: one consumer group on candidates and feedback (batches
 * cut into chunks of at most 256 messages, each handed to the loop and answered before the next,
 * so kafkajs's backpressure holds: the batch handler resolves when its messages are processed), a
 * consumer of model-versions in a group of its own (read from the start, to its end before the
 * loop publishes anything), one idempotent producer, and the brokers' answers and failures as
 * inputs for the loop's view of their health.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Consumer,
  type ConsumerConfig,
  type EachBatchPayload,
  type Kafka,
  type PartitionAssigner,
  type Producer,
} from 'kafkajs';
import { Subject, type Observable } from 'rxjs';
import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';
import type { PartitionOffset, TopicPartition } from '../../core/offsets.js';
import { parseModelVersion } from '../../messages/index.js';
import { BrokerProbe, isBrokerError } from '../broker-health.js';
import {
  brokersError,
  checkCoPartitioned,
  commitConfirmed,
  createKafka,
  ensureTopics,
  kafkaOptions,
  probeBrokers,
} from '../kafka-client.js';
import type { ChunkOutcome, Input } from '../loop/io.js';
import type { BrokerPort, Clock, OutMessage } from '../ports.js';
import { readToEnd } from './read-to-end.js';

/** Messages of a fetched batch processed in one step, with no turn of the event loop. */
export const CHUNK = 256;
/** How long a shutdown waits for sends still in flight. */
const SEND_SETTLE_MS = 10_000;
/** At most one "a broker answered" input per this many ms (a fetch comes every 250 ms). */
const ANSWER_EVERY_MS = 1_000;

export interface KafkaBrokerOptions {
  readonly config: Config;
  readonly clock: Clock;
  /** Scale-out: the consumer's partition assigner (co-partitioned candidates and feedback). */
  readonly assigner?: PartitionAssigner;
  /** Where kafkajs's own warnings and errors go. */
  readonly log?: Logger;
  /** Scale-out: makes the topics of the ledger too, and checks co-partitioning. */
  readonly scaleOut?: boolean;
  /** Scale-out: each consumer as it is made, before it runs (the cluster follows what they read). */
  readonly onConsumer?: (role: 'main' | 'versions', consumer: Consumer) => void;
}

export class KafkaBroker implements BrokerPort {
  private readonly subject = new Subject<Input>();
  readonly inputs$: Observable<Input>;
  kafka!: Kafka;
  producer!: Producer;
  private consumer?: Consumer;
  private versions?: Consumer;
  private probeClient?: BrokerProbe;
  private readonly sends = new Set<Promise<unknown>>();
  private lastAnswer = 0;
  private closing = false;

  constructor(private readonly options: KafkaBrokerOptions) {
    this.inputs$ = this.subject.asObservable();
  }

  private get config(): Config {
    return this.options.config;
  }

  private input(input: Input): void {
    if (!this.closing) this.subject.next(input);
  }

  private answered(): void {
    const now = this.options.clock.now();
    if (now - this.lastAnswer < ANSWER_EVERY_MS) return;
    this.lastAnswer = now;
    this.input({ type: 'broker-answered', now });
  }

  async connect(): Promise<void> {
    const { kafka: k } = this.config;
    await probeBrokers(kafkaOptions(k)).catch((cause: unknown) => {
      throw brokersError(k.brokers, cause);
    });
    this.probeClient = new BrokerProbe(kafkaOptions(k), 2_000);
    this.kafka = createKafka(k, this.options.log);
    await ensureTopics(this.kafka, k.topics, { scaleOut: this.options.scaleOut === true });
    if (this.options.scaleOut) await checkCoPartitioned(this.kafka, [k.topics.candidates, k.topics.feedback]);
    this.producer = this.kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await this.producer.connect();
  }

  async consume(): Promise<void> {
    await this.consumeVersions();
    await this.consumeInputs();
  }

  private async consumeVersions(): Promise<void> {
    const { kafka: k } = this.config;
    // Every instance follows model-versions from the start, in a group of its own.
    const consumer = this.kafka.consumer({
      groupId: `${k.groupId}.versions.${hostname()}.${process.pid}.${Date.now()}`,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
      // Scale-out: a version counts once the coordinator's transaction commits.
      readUncommitted: false,
    });
    this.versions = consumer;
    this.options.onConsumer?.('versions', consumer);
    const read = new Map<number, number>();
    await consumer.connect();
    await consumer.subscribe({ topics: [k.topics.modelVersions], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: ({ partition, message }) => {
        const parsed = parseModelVersion(message.value);
        if (parsed.ok)
          this.input({ type: 'version-read', message: parsed.value, now: this.options.clock.now() });
        read.set(partition, Number(message.offset) + 1);
        return Promise.resolve();
      },
    });
    // Bounded: a slow read only risks sending again a version message that is already out.
    await readToEnd(this.kafka, [k.topics.modelVersions], (_t, p) => read.get(p) ?? 0, {
      stopped: () => this.closing,
      timeoutMs: 60_000,
    });
  }

  private async consumeInputs(): Promise<void> {
    const { kafka: k } = this.config;
    const config: ConsumerConfig = {
      groupId: k.groupId,
      sessionTimeout: k.sessionTimeoutMs,
      heartbeatInterval: k.heartbeatIntervalMs,
      rebalanceTimeout: k.rebalanceTimeoutMs,
      maxWaitTimeInMs: 250,
      maxBytesPerPartition: k.fetchMaxBytesPerPartition,
      maxBytes: 4 * k.fetchMaxBytesPerPartition,
      allowAutoTopicCreation: false,
      ...(this.options.assigner ? { partitionAssigners: [this.options.assigner] } : {}),
    };
    const consumer = this.kafka.consumer(config);
    this.consumer = consumer;
    this.options.onConsumer?.('main', consumer);
    this.watch(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics: [k.topics.candidates, k.topics.feedback], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (p) => this.onBatch(p) });
  }

  private watch(consumer: Consumer): void {
    const now = () => this.options.clock.now();
    let memberId: string | undefined;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const owned = Object.entries(e.payload.memberAssignment).flatMap(([topic, parts]) =>
        parts.map((partition): TopicPartition => ({ topic, partition })),
      );
      const rejoined = memberId !== undefined && memberId !== e.payload.memberId;
      memberId = e.payload.memberId;
      this.input({ type: 'assigned', owned, rejoined, now: now() });
    });
    consumer.on(consumer.events.CRASH, (e) =>
      this.input({
        type: 'consumer-crashed',
        error: e.payload.error,
        restart: e.payload.restart,
        brokers: isBrokerError(e.payload.error),
        now: now(),
      }),
    );
    // A fetch or heartbeat answered is the broker there (a request timeout ridden out by the
    // retries emits no CONNECT); between them, the loop probes.
    for (const event of [consumer.events.CONNECT, consumer.events.FETCH, consumer.events.HEARTBEAT])
      consumer.on(event, () => this.answered());
    consumer.on(consumer.events.REQUEST_TIMEOUT, () =>
      this.input({ type: 'broker-failed', cause: 'consumer request timed out', now: now() }),
    );
  }

  /** A batch, chunk by chunk: each answered by the loop before the next; stops where intake pauses. */
  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    for (let at = 0; at < batch.messages.length; at += CHUNK) {
      if (!payload.isRunning() || payload.isStale() || this.closing) return;
      const messages = batch.messages.slice(at, at + CHUNK).map((m) => ({
        offset: Number(m.offset),
        key: m.key,
        value: m.value,
        timestamp: m.timestamp,
      }));
      const outcome = await new Promise<ChunkOutcome>((reply) =>
        this.input({
          type: 'chunk',
          chunk: {
            topic: batch.topic,
            partition: batch.partition,
            messages,
            highWatermark: Number(batch.highWatermark),
          },
          reply,
          now: this.options.clock.now(),
        }),
      );
      if (outcome.lastTaken !== undefined) payload.resolveOffset(String(outcome.lastTaken));
      await payload.heartbeat();
      // The rest of the batch is fetched again after the resume.
      if (outcome.paused) return;
    }
  }

  send(topic: string, messages: readonly OutMessage[]): Promise<void> {
    const sending = this.producer.send({
      topic,
      messages: messages.map((m) => ({ key: m.key, value: m.value })),
    });
    this.sends.add(sending);
    void sending.then(
      () => this.answered(),
      () => undefined,
    );
    return sending.then(() => undefined).finally(() => this.sends.delete(sending));
  }

  commit(offsets: readonly PartitionOffset[]): Promise<void> {
    if (this.consumer === undefined) return Promise.reject(new Error('not consuming yet'));
    return commitConfirmed(this.consumer, offsets);
  }

  async committed(
    partitions: readonly TopicPartition[],
  ): Promise<(TopicPartition & { committed: number | null })[]> {
    const topics = [...new Set(partitions.map((p) => p.topic))];
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const read = await admin.fetchOffsets({ groupId: this.config.kafka.groupId, topics });
      return partitions.map((p) => {
        const raw = read
          .find((t) => t.topic === p.topic)
          ?.partitions.find((x) => x.partition === p.partition)?.offset;
        return { ...p, committed: raw === undefined || Number(raw) < 0 ? null : Number(raw) };
      });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  seek(offsets: readonly PartitionOffset[]): void {
    for (const o of offsets)
      this.consumer?.seek({ topic: o.topic, partition: o.partition, offset: String(o.offset) });
  }

  pause(topic: string): void {
    this.consumer?.pause([{ topic }]);
  }

  resume(topic: string): void {
    this.consumer?.resume([{ topic }]);
  }

  probe(): Promise<void> {
    return this.probeClient?.probe() ?? Promise.reject(new Error('not connected'));
  }

  /** Whether the main consumer is running (for readiness). */
  get consuming(): boolean {
    return this.consumer !== undefined;
  }

  async close(): Promise<void> {
    this.closing = true;
    const steps: (() => Promise<unknown> | undefined)[] = [
      () => this.consumer?.disconnect(),
      () => this.versions?.disconnect(),
      () => this.probeClient?.close(),
      async () => {
        await this.producer?.disconnect();
        // kafkajs goes on retrying a send in flight after a disconnect, and connects again for it
        // (tulios/kafkajs#1174): such a connection would outlive the daemon. Sends left get a few
        // seconds to settle (requests among them are checkpointed as unconfirmed), then the
        // producer is disconnected again.
        if (this.sends.size > 0) {
          await Promise.race([
            Promise.allSettled(this.sends),
            sleep(SEND_SETTLE_MS, undefined, { ref: false }),
          ]);
          await this.producer?.disconnect();
        }
      },
    ];
    for (const close of steps) await Promise.resolve(close()).catch(() => undefined);
    this.subject.complete();
  }
}
