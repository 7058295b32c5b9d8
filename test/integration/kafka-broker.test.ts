/**
 * Integration test of the real-Kafka fixture: a broker from acquireBroker() (KAFKA_BROKERS,
 * Testcontainers or the embedded JVM broker), a 3-partition topic, 100 keyed messages, a consumer
 * group with manual commits, and a clean stop.
 *
 *   node --import tsx --test test/integration/kafka-broker.test.ts
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Partitioners, type Admin, type Consumer, type Producer } from 'kafkajs';
import { acquireBroker, type AcquiredBroker } from '../../src/kafka/broker-source.js';
import { startEmbeddedBroker } from '../../src/kafka/embedded-broker.js';
import { createTopics, kafkaClient, uniqueTopic } from '../support/kafka.js';

const MESSAGES = 100;
const PARTITIONS = 3;

let broker: AcquiredBroker | undefined;

before(async () => {
  broker = await acquireBroker({
    log: (line) => process.stderr.write(`${line}\n`),
  });
});

after(async () => {
  await broker?.stop();
});

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not set`);
  return value;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

test(
  `${MESSAGES} keyed messages on ${PARTITIONS} partitions are consumed exactly once with manual commits`,
  { timeout: 120_000 },
  async () => {
    const { brokers } = required(broker, 'broker');
    const topic = uniqueTopic('it-kafka-broker');
    const groupId = uniqueTopic('it-kafka-group');
    await createTopics(brokers, [topic], PARTITIONS);

    const kafka = kafkaClient(brokers);
    let admin: Admin | undefined;
    let producer: Producer | undefined;
    let consumer: Consumer | undefined;
    try {
      admin = kafka.admin();
      await admin.connect();
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      assert.equal(metadata.topics[0]?.partitions.length, PARTITIONS);

      // Produce: keys spread over the partitions by kafkajs' default (murmur2) partitioner.
      producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      const sent = Array.from({ length: MESSAGES }, (_, i) => ({ key: `key-${i}`, value: `value-${i}` }));
      await producer.send({ topic, acks: -1, messages: sent });

      const endOffsets = new Map(
        (await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)] as const),
      );
      assert.equal(endOffsets.size, PARTITIONS);
      assert.equal(
        [...endOffsets.values()].reduce((a, b) => a + b, 0n),
        BigInt(MESSAGES),
      );
      assert.ok(
        [...endOffsets.values()].filter((high) => high > 0n).length >= 2,
        'keys should land on more than one partition',
      );

      // Consume in a group, committing offset + 1 after each message.
      // A short fetch wait: disconnect() waits for the in-flight fetch (kafkajs' default is 5 s).
      consumer = kafka.consumer({
        groupId,
        sessionTimeout: 10_000,
        heartbeatInterval: 1_000,
        maxWaitTimeInMs: 250,
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const received: { key: string; value: string; partition: number; offset: bigint }[] = [];
      const activeConsumer = consumer;
      const allReceived = new Promise<void>((resolve, reject) => {
        activeConsumer
          .run({
            autoCommit: false,
            eachMessage: async ({ topic: t, partition, message }) => {
              received.push({
                key: message.key?.toString() ?? '',
                value: message.value?.toString() ?? '',
                partition,
                offset: BigInt(message.offset),
              });
              await activeConsumer.commitOffsets([
                { topic: t, partition, offset: (BigInt(message.offset) + 1n).toString() },
              ]);
              if (received.length >= MESSAGES) resolve();
            },
          })
          .catch(reject);
      });
      await withTimeout(allReceived, 60_000, `receiving ${MESSAGES} messages`);
      // Give a duplicate (there should be none) the chance to show up before we count.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await consumer.disconnect();
      consumer = undefined;

      assert.equal(received.length, MESSAGES, 'every message exactly once');
      assert.deepEqual(received.map((m) => m.key).sort(), sent.map((m) => m.key).sort());
      for (const m of received) assert.equal(m.value, m.key.replace('key-', 'value-'));
      // Per partition: offsets 0..high-1, in order, each once.
      for (const [partition, high] of endOffsets) {
        const offsets = received.filter((m) => m.partition === partition).map((m) => m.offset);
        assert.deepEqual(
          offsets,
          Array.from({ length: Number(high) }, (_, i) => BigInt(i)),
          `partition ${partition}`,
        );
      }

      // The group's committed offsets are the end offsets.
      const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
      const partitions = committed.find((t) => t.topic === topic)?.partitions ?? [];
      assert.equal(partitions.length, PARTITIONS);
      for (const { partition, offset } of partitions) {
        assert.equal(BigInt(offset), endOffsets.get(partition), `committed offset of partition ${partition}`);
      }
    } finally {
      await consumer?.disconnect().catch(() => undefined);
      await producer?.disconnect().catch(() => undefined);
      await admin?.disconnect().catch(() => undefined);
    }
  },
);

test(
  'an embedded broker stops cleanly: stop() is idempotent and its JVM is gone',
  { timeout: 120_000 },
  async () => {
    // Its own broker, so this runs whatever source the shared one came from.
    const own = await startEmbeddedBroker();
    const admin = kafkaClient(own.brokers).admin();
    await admin.connect();
    assert.ok((await admin.describeCluster()).brokers.length === 1);
    await admin.disconnect();
    await own.stop();
    await own.stop(); // idempotent
    assert.throws(() => process.kill(own.pid, 0), { code: 'ESRCH' }, `JVM ${own.pid} should be gone`);
    assert.deepEqual(own.kill('SIGKILL'), false);
  },
);
