/**
 * Real-Kafka fixture for node:test integration tests.
 *
 *   const kafka = useKafka();                       // before(): acquire a broker; after(): clean up
 *   test('...', async () => {
 *     const topic = uniqueTopic('scores');
 *     await createTopics(kafka.brokers, [topic], 3);
 *     const producer = await kafka.producer();      // connected, and disconnected by cleanup
 *   });
 *
 * One broker per test FILE: `node --test` runs every file in its own process, and Node 20 has no
 * global setup hook. For ONE broker per test RUN, start it outside and hand it over in KAFKA_BROKERS,
 * which acquireBroker() prefers:
 *
 *   npx tsx scripts/kafka-local.ts exec -- node --import tsx --test test/integration/*.test.ts
 *
 * Set KAFKA_TEST_LOG=1 to see kafkajs and broker logs on stderr.
 */

import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import {
  Kafka,
  logLevel,
  Partitioners,
  type Admin,
  type Consumer,
  type ConsumerConfig,
  type Producer,
  type ProducerConfig,
} from 'kafkajs';
import {
  acquireBroker,
  type AcquireBrokerOptions,
  type AcquiredBroker,
  type BrokerKind,
} from '../../src/kafka/broker-source.js';

const verbose = process.env['KAFKA_TEST_LOG'] === '1';
const logLine = (line: string): void => {
  if (verbose) process.stderr.write(`[kafka] ${line}\n`);
};

let topicCounter = 0;

/** A topic name no other test (or earlier run against the same broker) uses: prefix-<time>-<pid>-<n>-<rand>. */
export function uniqueTopic(prefix = 'test'): string {
  topicCounter += 1;
  const name = `${prefix}-${Date.now().toString(36)}-${process.pid}-${topicCounter}-${randomBytes(3).toString('hex')}`;
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(name)) throw new Error(`'${name}' is not a legal Kafka topic name`);
  return name;
}

/** A kafkajs client, quiet unless KAFKA_TEST_LOG=1. */
/** The daemon's topics for a test called `name` (`<name>.candidates`, ...). */
export function daemonTopics(name: string) {
  const t = (topic: string) => `${name}.${topic}`;
  return {
    candidates: t('candidates'),
    feedback: t('feedback'),
    labelingRequests: t('requests'),
    modelVersions: t('versions'),
    deadLetter: t('dead'),
    coordination: t('coord'),
  };
}

/** The daemon's topic variables for a test called `name` (`ACFT_KAFKA_TOPICS_*`). */
export function daemonTopicEnv(name: string): Record<string, string> {
  const t = daemonTopics(name);
  return {
    ACFT_KAFKA_TOPICS_CANDIDATES: t.candidates,
    ACFT_KAFKA_TOPICS_FEEDBACK: t.feedback,
    ACFT_KAFKA_TOPICS_LABELING_REQUESTS: t.labelingRequests,
    ACFT_KAFKA_TOPICS_MODEL_VERSIONS: t.modelVersions,
    ACFT_KAFKA_TOPICS_DEAD_LETTER: t.deadLetter,
    ACFT_KAFKA_TOPICS_COORDINATION: t.coordination,
  };
}

/**
 * The `kafka` part of an in-process daemon's configuration for a test called `name`: its own
 * group, client id and topics, and a session timeout of seconds.
 */
export function daemonKafkaConfig(brokers: string[], name: string) {
  return {
    brokers,
    groupId: `${name}-group`,
    clientId: name,
    topics: daemonTopics(name),
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1_000,
  };
}

export function kafkaClient(brokers: string[], clientId = `acft-test-${process.pid}`): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: verbose ? logLevel.INFO : logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100 },
  });
}

/** Creates the topics (replication factor 1) and waits until every partition has a leader. */
export async function createTopics(brokers: string[], topics: string[], partitions = 1): Promise<void> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
    });
    if (!created) throw new Error(`createTopics: some of ${topics.join(', ')} already existed`);
  } finally {
    await admin.disconnect();
  }
}

interface Disconnectable {
  disconnect(): Promise<void>;
}

export class KafkaFixture {
  private acquired: AcquiredBroker | undefined;
  private client: Kafka | undefined;
  private readonly clients: Disconnectable[] = [];

  constructor(private readonly options: AcquireBrokerOptions = {}) {}

  /** Acquires the broker (KAFKA_BROKERS, Testcontainers or embedded). Idempotent. */
  async start(): Promise<void> {
    this.acquired ??= await acquireBroker({
      log: logLine,
      ...this.options,
      embedded: { log: verbose ? logLine : undefined, ...this.options.embedded },
    });
  }

  private get broker(): AcquiredBroker {
    if (!this.acquired)
      throw new Error('Kafka fixture not started: use it inside tests, after before() ran.');
    return this.acquired;
  }

  get brokers(): string[] {
    return this.broker.brokers;
  }

  get kind(): BrokerKind {
    return this.broker.kind;
  }

  /** The acquired broker (its `embedded` handle allows fault injection when kind is 'embedded'). */
  get handle(): AcquiredBroker {
    return this.broker;
  }

  /** A shared kafkajs client for this broker. */
  get kafka(): Kafka {
    this.client ??= kafkaClient(this.brokers);
    return this.client;
  }

  /** Registers a client to be disconnected by cleanup(). */
  track<T extends Disconnectable>(client: T): T {
    this.clients.push(client);
    return client;
  }

  async admin(): Promise<Admin> {
    const admin = this.track(this.kafka.admin());
    await admin.connect();
    return admin;
  }

  /** A connected producer (kafkajs' default partitioner, without its v2 warning). */
  async producer(config: ProducerConfig = {}): Promise<Producer> {
    const producer = this.track(
      this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...config }),
    );
    await producer.connect();
    return producer;
  }

  /** A connected consumer. */
  async consumer(config: ConsumerConfig): Promise<Consumer> {
    const consumer = this.track(this.kafka.consumer(config));
    await consumer.connect();
    return consumer;
  }

  /** Disconnects every tracked client (newest first, errors ignored), then stops the broker. Idempotent. */
  async cleanup(): Promise<void> {
    const clients = this.clients.splice(0).reverse();
    for (const client of clients) {
      await client.disconnect().catch(() => undefined);
    }
    const acquired = this.acquired;
    this.acquired = undefined;
    this.client = undefined;
    await acquired?.stop();
  }
}

/** A fixture whose broker is acquired in before() and cleaned up in after() of the enclosing suite (or file). */
export function useKafka(options: AcquireBrokerOptions = {}): KafkaFixture {
  const fixture = new KafkaFixture(options);
  before(() => fixture.start());
  after(() => fixture.cleanup());
  return fixture;
}
